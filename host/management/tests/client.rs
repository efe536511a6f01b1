//! The Management API client against the sandbox: tenant URLs and isolation, JSON-LD and
//! scopes, token caching, coalescing, renewal and refresh on 401, identity-provider outages,
//! read-only retries, the response size cap and `wait-for-state`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use weft_management::{ApiVersion, Grant, ManagementClient, Process, Secret};
use weft_runtime::GuestError;
use weft_runtime::bindings::management::Method;
use weft_sandbox::ClaimMode;

/// Generous bound for "does not hang": far above every deadline the tests configure.
const NO_HANG: Duration = Duration::from_secs(30);

fn scopes_of(authorization: &str) -> BTreeSet<String> {
    claims(authorization)["scope"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

async fn tenant_urls_and_isolation(mode: ClaimMode, version: ApiVersion) {
    let f = start(mode, version).await;
    let client = f.client();
    for ctx in [CONSUMER, OUTSIDER] {
        ok(&client, ctx, Method::Post, "assets",
            Some(json!({"@type": "Asset", "@id": format!("asset-of-{ctx}"), "properties": {"owner": ctx}}))).await;
    }
    f.sb.control_plane().clear_requests();
    // A's listing shows only A's asset, and A cannot read B's.
    let list = ok(
        &client,
        CONSUMER,
        Method::Post,
        "assets/request",
        Some(json!({"@type": "QuerySpec"})),
    )
    .await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["@id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["asset-of-consumer-pc"]);
    let other = send(
        &client,
        CONSUMER,
        Method::Get,
        "assets/asset-of-outsider-pc",
        None,
    )
    .await
    .unwrap();
    assert_eq!(other.status, 404, "{}", other.body);
    // Every request of A went to A's prefix, with a token for A, and nothing reached B's.
    let prefix = format!("/api/mgmt/{}/participants/{CONSUMER}/", version.as_str());
    let recorded = f.recorded();
    assert_eq!(recorded.len(), 2);
    for r in &recorded {
        assert!(r.path.starts_with(&prefix), "{}", r.path);
        assert!(
            !r.path.contains(&format!("/participants/{OUTSIDER}")),
            "{}",
            r.path
        );
        let claims = claims(r.authorization.as_deref().unwrap());
        let identity = match mode {
            ClaimMode::Subject => &claims["sub"],
            ClaimMode::ParticipantContext => &claims["participant_context_id"],
        };
        assert_eq!(identity, CONSUMER, "{claims}");
    }
}

#[tokio::test]
async fn tenant_urls_and_isolation_v5beta() {
    tenant_urls_and_isolation(ClaimMode::Subject, ApiVersion::V5beta).await;
}

#[tokio::test]
async fn tenant_urls_and_isolation_v4alpha() {
    tenant_urls_and_isolation(ClaimMode::ParticipantContext, ApiVersion::V4alpha).await;
}

#[tokio::test]
async fn json_ld_context_and_scopes_by_operation() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    // No @context in the body: the host adds it (the control plane requires it).
    let created = ok(
        &client,
        CONSUMER,
        Method::Post,
        "assets",
        Some(json!({"@type": "Asset", "@id": "a1", "properties": {"name": "a1"}})),
    )
    .await;
    assert_eq!(created["@id"], "a1");
    // A body with its own context is passed through unchanged.
    let own =
        json!({"@context": {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}, "@type": "QuerySpec"});
    ok(
        &client,
        CONSUMER,
        Method::Post,
        "assets/request",
        Some(own.clone()),
    )
    .await;
    // Query parameters are passed on.
    let mut req = request(Method::Get, "assets/a1", None);
    req.query.push(weft_runtime::bindings::types::Property {
        name: "x".into(),
        value: "a b".into(),
    });
    assert_eq!(client.send_as(CONSUMER, req).await.unwrap().status, 200);
    let recorded = f.recorded();
    let create: Value = serde_json::from_str(&recorded[0].body).unwrap();
    assert_eq!(
        create["@context"],
        json!([weft_management::MANAGEMENT_CONTEXT])
    );
    assert_eq!(recorded[1].body, own.to_string());
    assert_eq!(recorded[2].query.as_deref(), Some("x=a+b"));
    // Writes carry read+write, reads only read.
    assert_eq!(
        scopes_of(recorded[0].authorization.as_deref().unwrap()),
        BTreeSet::from([READ.into(), WRITE.into()])
    );
    assert_eq!(
        scopes_of(recorded[1].authorization.as_deref().unwrap()),
        BTreeSet::from([READ.into()])
    );
    assert_eq!(
        scopes_of(recorded[2].authorization.as_deref().unwrap()),
        BTreeSet::from([READ.into()])
    );
    // A 409 on create comes back as a response, not an error.
    let again = send(
        &client,
        CONSUMER,
        Method::Post,
        "assets",
        Some(json!({"@type": "Asset", "@id": "a1", "properties": {"name": "a1"}})),
    )
    .await
    .unwrap();
    assert_eq!(again.status, 409, "{}", again.body);
    // Bad input never leaves the host.
    f.sb.control_plane().clear_requests();
    let bad = client
        .send_as(
            CONSUMER,
            weft_runtime::bindings::management::Request {
                method: Method::Post,
                path: "assets".into(),
                query: vec![],
                body: Some("{not json".into()),
            },
        )
        .await;
    assert!(matches!(bad, Err(GuestError::Invalid(_))), "{bad:?}");
    for (path, expect_denied) in [
        ("participants", true),
        ("../other/assets", false),
        ("dataplanes", true),
    ] {
        let r = send(&client, CONSUMER, Method::Get, path, None).await;
        if expect_denied {
            assert!(
                matches!(r, Err(GuestError::AccessDenied(_))),
                "{path}: {r:?}"
            );
        } else {
            assert!(matches!(r, Err(GuestError::Invalid(_))), "{path}: {r:?}");
        }
    }
    assert!(f.recorded().is_empty());
}

#[tokio::test]
async fn tokens_are_cached_per_tenant_and_scope_and_coalesced() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    let reads = (0..20).map(|_| send(&client, CONSUMER, Method::Post, "assets/request", None));
    for r in futures::future::join_all(reads).await {
        assert_eq!(r.unwrap().status, 200);
    }
    assert_eq!(
        f.idp.count(),
        1,
        "twenty concurrent reads share one token request"
    );
    assert_eq!(client.tokens().idp_requests(), 1);
    ok(
        &client,
        CONSUMER,
        Method::Post,
        "assets",
        Some(json!({"@type": "Asset", "@id": "x", "properties": {}})),
    )
    .await;
    assert_eq!(f.idp.count(), 2, "writes need another scope set");
    ok(&client, OUTSIDER, Method::Post, "assets/request", None).await;
    assert_eq!(f.idp.count(), 3, "another tenant needs its own token");
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    ok(&client, CONSUMER, Method::Delete, "assets/x", None).await;
    assert_eq!(f.idp.count(), 3, "cached tokens are reused");
}

#[tokio::test]
async fn token_exchange_mints_tenant_tokens_from_one_client() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let mut config = f.config();
    config.identity.grant = Grant::TokenExchange {
        client_id: "weft".into(),
        client_secret: Some(Secret::new("weft-secret")),
        client_secret_file: None,
        subject_token_file: None,
        audience: Some("edcv".into()),
    };
    let client = ManagementClient::new(config, None).unwrap();
    ok(
        &client,
        CONSUMER,
        Method::Post,
        "assets",
        Some(json!({"@type": "Asset", "@id": "x", "properties": {}})),
    )
    .await;
    assert_eq!(f.idp.count(), 2, "Weft's subject token, then the exchange");
    ok(&client, OUTSIDER, Method::Post, "assets/request", None).await;
    assert_eq!(f.idp.count(), 3, "the subject token is reused");
    let recorded = f.recorded();
    assert_eq!(
        claims(recorded[0].authorization.as_deref().unwrap())["sub"],
        CONSUMER
    );
    assert_eq!(
        claims(recorded[1].authorization.as_deref().unwrap())["sub"],
        OUTSIDER
    );
    // The exchange is also isolated: the outsider does not see the consumer's asset.
    let list = ok(&client, OUTSIDER, Method::Post, "assets/request", None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn expired_tokens_are_renewed_transparently() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    f.sb.idp().set_token_lifetime(Duration::from_secs(1));
    let client = f.client();
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    assert_eq!(f.idp.count(), 1);
    // Let the cached token expire.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    assert_eq!(f.idp.count(), 2, "a new token was fetched");
    let recorded = f.recorded();
    assert_eq!(
        recorded.len(),
        2,
        "no request was sent with the expired token"
    );
    assert_ne!(recorded[0].authorization, recorded[1].authorization);
}

#[tokio::test]
async fn a_401_renews_the_token_once() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    assert_eq!((f.idp.count(), f.cp.count()), (1, 1));
    // The control plane refuses the cached token once: a new one is fetched and it works,
    // for a write too (a 401 means nothing was done).
    f.cp.fail_next(&[401]);
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    assert_eq!((f.idp.count(), f.cp.count()), (2, 3));
    ok(
        &client,
        CONSUMER,
        Method::Post,
        "assets",
        Some(json!({"@type": "Asset", "@id": "w", "properties": {}})),
    )
    .await;
    f.cp.fail_next(&[401]);
    ok(&client, CONSUMER, Method::Delete, "assets/w", None).await;
    let before = (f.idp.count(), f.cp.count());
    // Refused again with the fresh token: only one renewal, then access-denied.
    f.cp.fail_next(&[401, 401]);
    let r = send(&client, CONSUMER, Method::Post, "assets/request", None).await;
    assert!(matches!(r, Err(GuestError::AccessDenied(_))), "{r:?}");
    assert_eq!((f.idp.count(), f.cp.count()), (before.0 + 1, before.1 + 2));
}

#[tokio::test]
async fn an_identity_provider_outage_is_unavailable_not_a_hang() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    f.sb.idp().set_available(false);
    let r = tokio::time::timeout(
        NO_HANG,
        send(&client, CONSUMER, Method::Post, "assets/request", None),
    )
    .await
    .expect("the deadline is honoured");
    assert!(matches!(r, Err(GuestError::Unavailable(_))), "{r:?}");
    assert!(f.recorded().is_empty(), "nothing reached the control plane");
    // Back up: the next call works (failures are not cached here: failure-hold-ms = 0).
    f.sb.idp().set_available(true);
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;

    // An identity provider that accepts connections and never answers.
    let mut config = f.config();
    config.identity.token_url = format!("{}/token", black_hole().await);
    config.limits.deadline_ms = 300;
    let client = ManagementClient::new(config, None).unwrap();
    let r = tokio::time::timeout(
        NO_HANG,
        send(&client, CONSUMER, Method::Get, "assets/x", None),
    )
    .await
    .expect("the deadline is honoured");
    assert!(
        matches!(&r, Err(GuestError::Unavailable(m)) if m.contains("deadline")),
        "{r:?}"
    );
}

#[tokio::test]
async fn missing_or_refused_credentials_are_clear_errors() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    let r = send(&client, "unknown-pc", Method::Get, "assets/x", None).await;
    assert!(matches!(r, Err(GuestError::Unavailable(_))), "{r:?}");
    let mut config = f.config();
    if let Grant::ClientCredentials { clients, .. } = &mut config.identity.grant {
        clients[1].client_secret = Some(Secret::new("wrong"));
    }
    let client = ManagementClient::new(config, None).unwrap();
    let r = send(&client, CONSUMER, Method::Get, "assets/x", None).await;
    assert!(
        matches!(&r, Err(GuestError::AccessDenied(m)) if m.contains("invalid_client")),
        "{r:?}"
    );
    // The secret never shows in an error.
    assert!(!format!("{r:?}").contains("wrong"));
}

#[tokio::test]
async fn secrets_can_come_from_a_secret_directory() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(CONSUMER)).unwrap();
    std::fs::write(
        dir.path().join(CONSUMER).join("client-secret"),
        format!("{}\n", secret_of(CONSUMER)),
    )
    .unwrap();
    let mut config = f.config();
    config.identity.grant = Grant::ClientCredentials {
        clients: vec![],
        secret_dir: Some(dir.path().into()),
    };
    let client = ManagementClient::new(config, None).unwrap();
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    assert!(matches!(
        send(&client, OUTSIDER, Method::Post, "assets/request", None).await,
        Err(GuestError::Unavailable(_))
    ));
}

#[tokio::test]
async fn reads_are_retried_and_writes_are_not() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;
    let retries = client.config().limits.read_retries as usize;
    assert!(retries > 0);
    // A transient 503 on a read is retried transparently.
    f.cp.fail_next(&[503]);
    ok(&client, CONSUMER, Method::Post, "assets/request", None).await;

    let cp = f.sb.control_plane();
    cp.set_available(false);
    for (method, path, body) in [
        (Method::Get, "assets/x", None),
        (Method::Post, "assets/request", None),
        (
            Method::Post,
            "catalog/request",
            Some(json!({"@type": "CatalogRequest"})),
        ),
    ] {
        cp.clear_requests();
        let r = send(&client, CONSUMER, method, path, body).await;
        assert!(
            matches!(&r, Err(GuestError::Unavailable(m)) if m.contains("503")),
            "{path}: {r:?}"
        );
        assert_eq!(cp.requests().len(), 1 + retries, "{path} is retried");
    }
    for (method, path, body) in [
        (
            Method::Post,
            "assets",
            Some(json!({"@type": "Asset", "@id": "x", "properties": {}})),
        ),
        (Method::Delete, "assets/x", None),
        (
            Method::Post,
            "contractnegotiations/n1/terminate",
            Some(json!({"reason": "r"})),
        ),
    ] {
        cp.clear_requests();
        let r = send(&client, CONSUMER, method, path, body).await;
        assert!(
            matches!(r, Err(GuestError::Unavailable(_))),
            "{path}: {r:?}"
        );
        assert_eq!(cp.requests().len(), 1, "{path} is sent once");
    }
    // A control plane that does not answer at all.
    let mut config = f.config();
    config.base_url = format!("{}/api/mgmt", black_hole().await);
    config.limits.request_timeout_ms = 100;
    config.limits.deadline_ms = 1_000;
    let client = ManagementClient::new(config, None).unwrap();
    let r = tokio::time::timeout(
        NO_HANG,
        send(&client, CONSUMER, Method::Get, "assets/x", None),
    )
    .await
    .expect("the deadline is honoured");
    assert!(matches!(r, Err(GuestError::Unavailable(_))), "{r:?}");
}

#[tokio::test]
async fn responses_over_the_cap_are_limit_exceeded() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let mut config = f.config();
    config.limits.max_response_bytes = 2_048;
    let client = ManagementClient::new(config, None).unwrap();
    for i in 0..20 {
        ok(&client, CONSUMER, Method::Post, "assets",
            Some(json!({"@type": "Asset", "@id": format!("asset-{i}"), "properties": {"description": "x".repeat(100)}}))).await;
    }
    ok(&client, CONSUMER, Method::Get, "assets/asset-1", None).await;
    let r = send(
        &client,
        CONSUMER,
        Method::Post,
        "assets/request",
        Some(json!({"limit": 100})),
    )
    .await;
    assert!(
        matches!(&r, Err(GuestError::LimitExceeded(m)) if m.contains("2048")),
        "{r:?}"
    );
}

#[tokio::test]
async fn wait_for_state_reaches_finalized_and_terminated() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    offer(&client, "data").await;
    let done = ["FINALIZED".to_owned(), "TERMINATED".to_owned()];
    let wait = Duration::from_secs(20);

    let member = negotiate(&f, &client, CONSUMER, "data").await;
    let state = client
        .wait_for(CONSUMER, Process::Negotiation, &member, &done, wait)
        .await
        .unwrap();
    assert_eq!(state, "FINALIZED");
    let n = ok(
        &client,
        CONSUMER,
        Method::Get,
        &format!("contractnegotiations/{member}"),
        None,
    )
    .await;
    assert!(n["contractAgreementId"].is_string(), "{n}");

    let outsider = negotiate(&f, &client, OUTSIDER, "data").await;
    let state = client
        .wait_for(OUTSIDER, Process::Negotiation, &outsider, &done, wait)
        .await
        .unwrap();
    assert_eq!(state, "TERMINATED");
    let n = ok(
        &client,
        OUTSIDER,
        Method::Get,
        &format!("contractnegotiations/{outsider}"),
        None,
    )
    .await;
    assert!(
        n["errorDetail"]
            .as_str()
            .unwrap()
            .contains("MembershipCredential"),
        "{n}"
    );

    // Another tenant's negotiation is not found; an unknown one neither.
    let r = client
        .wait_for(OUTSIDER, Process::Negotiation, &member, &done, wait)
        .await;
    assert!(matches!(r, Err(GuestError::NotFound(_))), "{r:?}");
    // A state that is never reached ends at the deadline with the last state seen.
    let r = client
        .wait_for(
            CONSUMER,
            Process::Negotiation,
            &member,
            &["VERIFIED".to_owned()],
            Duration::from_millis(300),
        )
        .await;
    assert!(
        matches!(&r, Err(GuestError::Unavailable(m)) if m.contains("FINALIZED")),
        "{r:?}"
    );
    let r = client
        .wait_for(CONSUMER, Process::Negotiation, "", &done, wait)
        .await;
    assert!(matches!(r, Err(GuestError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn watch_needs_a_store_and_an_own_process() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    let r = client
        .add_watch(CONSUMER, "app", Process::Negotiation, "n1", "c")
        .await;
    assert!(matches!(r, Err(GuestError::Unavailable(_))), "{r:?}");
    let store = weft_store::Store::connect("sqlite::memory:").await.unwrap();
    let client = ManagementClient::new(f.config(), Some(store.clone())).unwrap();
    let r = client
        .add_watch(CONSUMER, "app", Process::Negotiation, "missing", "c")
        .await;
    assert!(matches!(r, Err(GuestError::NotFound(_))), "{r:?}");
    let r = client
        .add_watch(
            CONSUMER,
            "app",
            Process::Negotiation,
            "n1",
            &"c".repeat(2_000),
        )
        .await;
    assert!(matches!(r, Err(GuestError::Invalid(_))), "{r:?}");
    assert_eq!(store.mgmt_count_watches(CONSUMER).await.unwrap(), 0);
}
