//! Lifecycle of the whole stand-in: seeding from config, URLs, ready-made tokens, body limits,
//! side-by-side instances and shutdown.

mod common;

use common::{CONSUMER, CTX, PROVIDER};
use reqwest::{Method, StatusCode};
use serde_json::json;
use weft_sandbox::{ApiVersion, ClaimMode, ClientSpec, Sandbox, SandboxConfig};

#[tokio::test]
async fn seeded_sandbox_serves_a_full_tenant_round_trip_in_both_modes() {
    for (mode, version) in [
        (ClaimMode::ParticipantContext, ApiVersion::V4alpha),
        (ClaimMode::Subject, ApiVersion::V5beta),
    ] {
        let config = SandboxConfig {
            claim_mode: mode,
            participants: common::participants(),
            clients: vec![ClientSpec::participant(
                CONSUMER,
                "s",
                CONSUMER,
                &["management-api:read", "management-api:write"],
            )],
            ..SandboxConfig::default()
        };
        let f = common::start_with(config, version).await;
        let urls = f.sb.urls().clone();
        for url in [
            &urls.idp,
            &urls.token,
            &urls.jwks,
            &urls.management,
            &urls.dsp,
            &urls.signaling,
        ] {
            assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        }
        assert_eq!(
            urls.management_for(version, "x"),
            format!("{}/{}/participants/x", urls.management, version.as_str())
        );
        assert_eq!(
            f.sb.control_plane().participants(),
            [CONSUMER, "outsider-pc", PROVIDER]
        );
        // Seeded client through the HTTP token endpoint.
        let response = f
            .http
            .post(&urls.token)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CONSUMER),
                ("client_secret", "s"),
            ])
            .send()
            .await
            .unwrap();
        let token = response.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = f
            .post(&f.url(CONSUMER, "/assets/request"), &token, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        // Ready-made tokens.
        let tenant =
            f.sb.tenant_token(PROVIDER, &["management-api:read"])
                .unwrap();
        assert_eq!(
            f.post(&f.url(PROVIDER, "/assets/request"), &tenant, json!({}))
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            f.post(&f.url(CONSUMER, "/assets/request"), &tenant, json!({}))
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        let admin = f.sb.admin_token().unwrap();
        assert_eq!(
            f.post(&f.url(CONSUMER, "/assets/request"), &admin, json!({}))
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(f.sb.claim_mode(), mode);
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let big = "x".repeat(weft_sandbox::controlplane::MAX_BODY_BYTES + 1);
    let body = json!({"@context": [CTX], "@type": "Asset", "properties": {"blob": big}});
    let (status, resp) = f
        .post(&f.url(PROVIDER, "/assets"), &f.token(PROVIDER), body)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    common::assert_error_array(&resp, None);
}

#[tokio::test]
async fn instances_run_side_by_side_and_shut_down() {
    let a = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let b = Sandbox::start(SandboxConfig::default()).await.unwrap();
    assert_ne!(a.urls().management, b.urls().management);
    let http = reqwest::Client::new();
    let jwks = a.urls().jwks.clone();
    let mgmt = format!("{}/v5beta/participants", a.urls().management);
    assert_eq!(
        common::call(&http, Method::GET, &jwks, None, None).await.0,
        StatusCode::OK
    );
    a.shutdown().await;
    assert!(
        reqwest::Client::new().get(&jwks).send().await.is_err(),
        "the IdP still answers"
    );
    assert!(
        reqwest::Client::new().get(&mgmt).send().await.is_err(),
        "the control plane still answers"
    );
    // The other instance is unaffected.
    assert_eq!(
        common::call(&http, Method::GET, &b.urls().jwks, None, None)
            .await
            .0,
        StatusCode::OK
    );
    // A port in use is a bind error, not a panic.
    let port: u16 = b.urls().idp.rsplit(':').next().unwrap().parse().unwrap();
    let err = Sandbox::start(SandboxConfig {
        idp_port: port,
        ..SandboxConfig::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, weft_sandbox::SandboxError::Bind { .. }),
        "{err}"
    );
}
