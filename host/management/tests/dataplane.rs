//! Data-plane registration against the sandbox, in the v5beta and the JAD v4alpha form:
//! the request shapes, updates only on change, removal, and that the control plane then
//! really signals Weft's per-tenant endpoint.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use common::*;
use serde_json::{Value, json};
use weft_management::config::SecretJson;
use weft_management::{ApiVersion, ManagementClient, ManagementError, Process, SyncOutcome};
use weft_runtime::bindings::management::Method;
use weft_sandbox::ClaimMode;
use weft_store::Store;

type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Weft's public listener, faked: records DPS signals per (ctx, path) and prepares at once.
async fn fake_weft() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn signal(
        State(seen): State<Seen>,
        Path((ctx, rest)): Path<(String, String)>,
        body: axum::body::Bytes,
    ) -> axum::Json<Value> {
        seen.lock().unwrap().push((ctx, rest));
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        axum::Json(json!({"messageId": "m", "dataFlowId": body["processId"], "state": "PREPARED"}))
    }
    let router = Router::new()
        .route("/dps/{ctx}/dataflows/{*rest}", post(signal))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, seen)
}

fn profiles(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Negotiates as the consumer and starts a transfer of `transfer_type`.
async fn start_transfer(f: &Fixture, client: &ManagementClient, asset: &str, transfer_type: &str) {
    offer(client, asset).await;
    let id = negotiate(f, client, CONSUMER, asset).await;
    let done = ["FINALIZED".to_owned(), "TERMINATED".to_owned()];
    let state = client
        .wait_for(
            CONSUMER,
            Process::Negotiation,
            &id,
            &done,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(state, "FINALIZED");
    let n = ok(
        client,
        CONSUMER,
        Method::Get,
        &format!("contractnegotiations/{id}"),
        None,
    )
    .await;
    ok(
        client,
        CONSUMER,
        Method::Post,
        "transferprocesses",
        Some(
            json!({"@type": "TransferRequest", "counterPartyAddress": f.dsp(PROVIDER),
            "contractId": n["contractAgreementId"], "transferType": transfer_type,
            "protocol": "dataspace-protocol-http:2025-1"}),
        ),
    )
    .await;
}

#[tokio::test]
async fn v5beta_registration_follows_the_profiles() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let (public, seen) = fake_weft().await;
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let mut config = f.config();
    config.public_url = Some(public.clone());
    config
        .dataplane
        .transfer_types
        .insert(HTTP_PULL.into(), vec!["HttpData-PULL".into()]);
    config.dataplane.labels = vec!["weft".into()];
    config.dataplane.authorization = Some(SecretJson(
        json!({"type": "static-token", "token": "dp-secret"}),
    ));
    let client = ManagementClient::new(config, Some(store.clone())).unwrap();

    f.sb.control_plane().clear_requests();
    let outcome = client
        .sync_dataplane(CONSUMER, &profiles(&[HTTP_PULL]))
        .await
        .unwrap();
    let SyncOutcome::Registered(reg) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(reg.dataplane_id, "weft-consumer-pc");
    assert_eq!(reg.endpoint, format!("{public}/dps/consumer-pc/dataflows"));
    let recorded = f.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "PUT");
    assert_eq!(
        recorded[0].path,
        "/api/mgmt/v5beta/participants/consumer-pc/dataplanes"
    );
    let body: Value = serde_json::from_str(&recorded[0].body).unwrap();
    assert_eq!(body["dataplaneId"], "weft-consumer-pc");
    assert_eq!(body["endpoint"], reg.endpoint.as_str());
    assert_eq!(body["profiles"], json!([HTTP_PULL]));
    assert_eq!(body["transferTypes"], json!(["HttpData-PULL", HTTP_PULL]));
    assert_eq!(body["labels"], json!(["weft"]));
    assert_eq!(body["authorization"]["type"], "static-token");
    let claims = claims(recorded[0].authorization.as_deref().unwrap());
    assert_eq!(
        claims["sub"], CONSUMER,
        "registered with the tenant's own token"
    );

    // Unchanged profiles: nothing sent.
    assert_eq!(
        client
            .sync_dataplane(CONSUMER, &profiles(&[HTTP_PULL]))
            .await
            .unwrap(),
        SyncOutcome::Unchanged
    );
    assert_eq!(f.recorded().len(), 1);

    // The control plane now signals Weft's endpoint for this tenant.
    start_transfer(&f, &client, "data", HTTP_PULL).await;
    eventually("a prepare signal", async || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(ctx, path)| ctx == CONSUMER && path == "prepare")
    })
    .await;

    // A new union of profiles updates the registration.
    let both = profiles(&[HTTP_PULL, "https://w3id.org/dspace-sig/profile/http-push"]);
    assert!(matches!(
        client.sync_dataplane(CONSUMER, &both).await.unwrap(),
        SyncOutcome::Registered(_)
    ));
    let stored = store.mgmt_dataplane(CONSUMER).await.unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<BTreeSet<String>>(&stored.profiles_json).unwrap(),
        both
    );

    // No profiles left: removed; and then nothing to do.
    f.sb.control_plane().clear_requests();
    assert_eq!(
        client
            .sync_dataplane(CONSUMER, &BTreeSet::new())
            .await
            .unwrap(),
        SyncOutcome::Removed
    );
    let recorded = f.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "DELETE");
    assert_eq!(
        recorded[0].path,
        "/api/mgmt/v5beta/participants/consumer-pc/dataplanes/weft-consumer-pc"
    );
    assert!(store.mgmt_dataplane(CONSUMER).await.unwrap().is_none());
    assert_eq!(
        client
            .sync_dataplane(CONSUMER, &BTreeSet::new())
            .await
            .unwrap(),
        SyncOutcome::Nothing
    );
    assert!(
        !client.unregister_dataplane(CONSUMER).await.unwrap(),
        "already gone: 404 is not an error"
    );
}

#[tokio::test]
async fn jad_v4alpha_registration_form() {
    let f = start(ClaimMode::ParticipantContext, ApiVersion::V4alpha).await;
    let (public, seen) = fake_weft().await;
    let mut config = f.config();
    config.public_url = Some(format!("{public}/"));
    let client = ManagementClient::new(config, None).unwrap();
    f.sb.control_plane().clear_requests();
    let reg = client
        .register_dataplane(CONSUMER, &profiles(&[HTTP_PULL]))
        .await
        .unwrap();
    let recorded = f.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/api/mgmt/v4alpha/dataplanes/consumer-pc");
    let body: Value = serde_json::from_str(&recorded[0].body).unwrap();
    assert_eq!(body["id"], "weft-consumer-pc");
    assert_eq!(body["url"], format!("{public}/dps/consumer-pc/dataflows"));
    assert_eq!(body["url"], reg.endpoint.as_str());
    assert_eq!(body["allowedTransferTypes"], json!([HTTP_PULL]));
    assert_eq!(body["allowedSourceTypes"], json!([HTTP_PULL]));
    let claims = claims(recorded[0].authorization.as_deref().unwrap());
    assert_eq!(claims["participant_context_id"], CONSUMER);

    start_transfer(&f, &client, "data", HTTP_PULL).await;
    eventually("a prepare signal", async || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(ctx, path)| ctx == CONSUMER && path == "prepare")
    })
    .await;
    // That form has no removal endpoint: reported, not sent.
    f.sb.control_plane().clear_requests();
    assert!(!client.unregister_dataplane(CONSUMER).await.unwrap());
    assert!(f.recorded().is_empty());
}

#[tokio::test]
async fn registration_needs_a_public_url_and_profiles() {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let client = f.client();
    let r = client
        .register_dataplane(CONSUMER, &profiles(&[HTTP_PULL]))
        .await;
    assert!(matches!(r, Err(ManagementError::NotConfigured(_))), "{r:?}");
    let mut config = f.config();
    config.public_url = Some("https://weft.example".into());
    let client = ManagementClient::new(config, None).unwrap();
    let r = client.register_dataplane(CONSUMER, &BTreeSet::new()).await;
    assert!(matches!(r, Err(ManagementError::Request(_))), "{r:?}");
    // A tenant without credentials: refused before anything is sent.
    let r = client
        .register_dataplane("unknown-pc", &profiles(&[HTTP_PULL]))
        .await;
    assert!(
        matches!(&r, Err(ManagementError::Request(m)) if m.starts_with("unavailable")),
        "{r:?}"
    );
    assert!(f.recorded().is_empty());
}
