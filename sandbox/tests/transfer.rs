//! Transfer processes driving fake DPS data planes: sync and async (202 + callbacks) flows,
//! pull and push, suspend/resume/terminate/completed, refusals and callback authentication.

mod common;

use common::{
    CONSUMER, CONSUMER_DID, CTX, FakeDataPlane, Fixture, Mode, PROVIDER, PROVIDER_DID, eventually,
    fake_dataplane, fake_dataplane_with, pull_address, push_address,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weft_sandbox::{
    ApiVersion, ClaimMode, ClientSpec, MintSpec, SandboxConfig, SignalingAuth, TransferState,
};

const PULL: &str = "HttpData-PULL";
const PUSH: &str = "HttpData-PUSH";

async fn setup(mode: Mode) -> (Fixture, FakeDataPlane, FakeDataPlane) {
    setup_with(
        SandboxConfig {
            participants: common::participants(),
            ..SandboxConfig::default()
        },
        mode,
    )
    .await
}

async fn setup_with(config: SandboxConfig, mode: Mode) -> (Fixture, FakeDataPlane, FakeDataPlane) {
    let f = common::start_with(config, ApiVersion::V5beta).await;
    let consumer_dp = fake_dataplane(mode).await;
    let provider_dp = fake_dataplane(mode).await;
    f.register_dataplane(
        CONSUMER,
        json!({"dataplaneId": "consumer-dp", "endpoint": consumer_dp.endpoint,
        "transferTypes": [PULL, PUSH]}),
    )
    .await;
    f.register_dataplane(
        PROVIDER,
        json!({"id": "provider-dp", "endpoint": provider_dp.endpoint,
        "profiles": [PULL, PUSH]}),
    )
    .await;
    (f, consumer_dp, provider_dp)
}

fn provider_id(f: &Fixture, consumer_tp: &str) -> String {
    f.sb.control_plane()
        .transfer(consumer_tp)
        .unwrap()
        .counterpart_id
        .unwrap()
}

async fn callback(
    f: &Fixture,
    id: &str,
    op: &str,
    auth: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let url = format!("{}/transfers/{id}/dataflow/{op}", f.sb.urls().signaling);
    let mut request = f.http.post(url).json(&body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn sync_pull_transfer_runs_the_dps_sequence() {
    let (f, consumer_dp, provider_dp) = setup(Mode::Sync).await;
    let agreement = f.agreement("data", json!({})).await;
    let id = f.start_transfer(&agreement, PULL).await;
    let t = f
        .wait_transfer(CONSUMER, &id, &["STARTED", "TERMINATED"])
        .await;
    assert_eq!(t["state"], "STARTED", "{t}");
    assert_eq!(t["@type"], "TransferProcess");
    assert_eq!(t["type"], "CONSUMER");
    assert_eq!(t["contractId"], agreement.as_str());
    assert_eq!(t["assetId"], "data");
    assert_eq!(t["transferType"], PULL);
    assert!(t["stateTimestamp"].as_u64().is_some());
    let pid = provider_id(&f, &id);
    assert_eq!(t["correlationId"], pid.as_str());

    // Consumer: prepare, then started with the provider's DataAddress.
    let prepare = consumer_dp.find("prepare").expect("prepare");
    let p = &prepare.body;
    assert!(p["messageId"].is_string());
    assert_eq!(p["participantId"], CONSUMER_DID);
    assert_eq!(p["counterPartyId"], PROVIDER_DID);
    assert_eq!(p["dataspaceContext"], "weft-sandbox");
    assert_eq!(p["processId"], id.as_str());
    assert_eq!(p["agreementId"], agreement.as_str());
    assert_eq!(p["datasetId"], "data");
    assert_eq!(p["profile"], PULL);
    assert_eq!(p["claims"]["participantId"], PROVIDER_DID);
    assert_eq!(p["labels"], json!(["l1"]));
    assert_eq!(p["metadata"], json!({"k": "v"}));
    assert!(p.get("dataAddress").is_none());
    // Provider: start without a DataAddress (pull), with the consumer's claims.
    let start = provider_dp.find("start").expect("start");
    let s = &start.body;
    assert_eq!(s["participantId"], PROVIDER_DID);
    assert_eq!(s["counterPartyId"], CONSUMER_DID);
    assert_eq!(s["processId"], pid.as_str());
    assert_eq!(s["agreementId"], agreement.as_str());
    assert_eq!(s["claims"]["MembershipCredential"], "active");
    assert_eq!(s["claims"]["BusinessPartnerNumber"], "BPNL00000000CONS");
    assert!(s.get("dataAddress").is_none());
    let started = consumer_dp.find(&format!("{id}/started")).expect("started");
    assert_eq!(started.body["dataAddress"], pull_address(&pid));
    assert!(started.body["messageId"].is_string());
    assert_eq!(
        consumer_dp.paths(),
        ["prepare".to_owned(), format!("{id}/started")]
    );
    assert_eq!(provider_dp.paths(), ["start"]);
    let snapshot = f.sb.control_plane().transfer(&id).unwrap();
    assert_eq!(snapshot.data_address, Some(pull_address(&pid)));
    assert_eq!(snapshot.data_plane_id.as_deref(), Some("consumer-dp"));

    // The provider's view.
    let pt = f.wait_transfer(PROVIDER, &pid, &["STARTED"]).await;
    assert_eq!(pt["type"], "PROVIDER");
    assert_eq!(pt["correlationId"], id.as_str());
    let (_, state) = f
        .get(
            &f.url(CONSUMER, &format!("/transferprocesses/{id}/state")),
            &f.token(CONSUMER),
        )
        .await;
    assert_eq!(
        state,
        json!({"@context": [CTX], "@type": "TransferState", "state": "STARTED"})
    );

    // Suspend from the consumer: both sides SUSPENDED, both data planes told.
    let token = f.token(CONSUMER);
    let suspend = json!({"@context": [CTX], "@type": "SuspendTransfer", "reason": "pause"});
    let (status, body) = f
        .post(
            &f.url(CONSUMER, &format!("/transferprocesses/{id}/suspend")),
            &token,
            suspend,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    f.wait_transfer(CONSUMER, &id, &["SUSPENDED"]).await;
    f.wait_transfer(PROVIDER, &pid, &["SUSPENDED"]).await;
    eventually("suspend signals", || {
        consumer_dp.find(&format!("{id}/suspend")).is_some()
            && provider_dp.find(&format!("{pid}/suspend")).is_some()
    })
    .await;
    assert_eq!(
        consumer_dp.find(&format!("{id}/suspend")).unwrap().body["reason"],
        "pause"
    );
    // Resume: provider first, then consumer.
    let (status, _) = f
        .call(
            Method::POST,
            &f.url(CONSUMER, &format!("/transferprocesses/{id}/resume")),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    f.wait_transfer(CONSUMER, &id, &["STARTED"]).await;
    eventually("resume signals", || {
        provider_dp.find(&format!("{pid}/resume")).is_some()
            && consumer_dp.find(&format!("{id}/resume")).is_some()
    })
    .await;
    // The provider's data plane completes the pull: both COMPLETED, the consumer's DP told.
    let (status, body) = callback(
        &f,
        &pid,
        "completed",
        None,
        json!({"messageId": "x", "dataFlowId": pid, "state": "COMPLETED"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.wait_transfer(CONSUMER, &id, &["COMPLETED"]).await;
    f.wait_transfer(PROVIDER, &pid, &["COMPLETED"]).await;
    eventually("completed signal", || {
        consumer_dp.find(&format!("{id}/completed")).is_some()
    })
    .await;
    assert_eq!(
        consumer_dp.find(&format!("{id}/completed")).unwrap().body,
        json!({})
    );
    // Final states refuse further actions.
    let term = json!({"@context": [CTX], "@type": "TerminateTransfer", "reason": "late"});
    assert_eq!(
        f.post(
            &f.url(CONSUMER, &format!("/transferprocesses/{id}/terminate")),
            &token,
            term
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        callback(&f, &pid, "completed", None, json!({})).await.0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn async_data_planes_wait_for_callbacks() {
    let (f, consumer_dp, provider_dp) = setup(Mode::Async).await;
    let agreement = f.agreement("data", json!({})).await;
    let id = f.start_transfer(&agreement, PULL).await;
    eventually("prepare", || consumer_dp.find("prepare").is_some()).await;
    // PREPARING: nothing moves until the consumer's data plane calls back.
    let t = f.wait_transfer(CONSUMER, &id, &["REQUESTED"]).await;
    assert_eq!(t["state"], "REQUESTED");
    assert!(provider_dp.signals().is_empty());
    let (status, _) = callback(
        &f,
        &id,
        "started",
        None,
        json!({"messageId": "m", "dataFlowId": id, "state": "STARTED"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a consumer flow cannot report started"
    );
    let (status, body) = callback(
        &f,
        &id,
        "prepared",
        None,
        json!({"messageId": "m", "dataFlowId": id, "state": "PREPARED"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = callback(
        &f,
        &id,
        "prepared",
        None,
        json!({"messageId": "m", "dataFlowId": id, "state": "PREPARED"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "duplicate prepared");
    eventually("start", || provider_dp.find("start").is_some()).await;
    let pid = provider_id(&f, &id);
    // STARTING: the consumer stays REQUESTED until the provider's data plane reports started.
    let t = f.wait_transfer(CONSUMER, &id, &["REQUESTED"]).await;
    assert_eq!(t["state"], "REQUESTED");
    let address = pull_address("async");
    let (status, _) = callback(
        &f,
        &pid,
        "started",
        None,
        json!({"messageId": "m", "dataFlowId": pid, "state": "STARTED", "dataAddress": address}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    f.wait_transfer(CONSUMER, &id, &["STARTED"]).await;
    let started = consumer_dp.find(&format!("{id}/started")).unwrap();
    assert_eq!(started.body["dataAddress"], address);
    // errored is not a transition.
    let (status, _) = callback(
        &f,
        &pid,
        "errored",
        None,
        json!({"messageId": "m", "dataFlowId": pid, "state": "STARTED", "error": "disk full"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        f.sb.control_plane().transfer(&pid).unwrap().reported_errors,
        ["disk full"]
    );
    assert_eq!(
        f.sb.control_plane().transfer(&pid).unwrap().state,
        TransferState::Started
    );
    // Unknown transfer and unknown operation.
    assert_eq!(
        callback(&f, "nope", "prepared", None, json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        callback(&f, &pid, "exploded", None, json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        callback(&f, &pid, "errored", None, json!([1])).await.0,
        StatusCode::BAD_REQUEST
    );
    // Terminate from the provider: both TERMINATED, both data planes told.
    let token = f.token(PROVIDER);
    let term = json!({"@context": [CTX], "@type": "TerminateTransfer", "reason": "contract ended"});
    let (status, body) = f
        .post(
            &f.url(PROVIDER, &format!("/transferprocesses/{pid}/terminate")),
            &token,
            term,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let t = f.wait_transfer(CONSUMER, &id, &["TERMINATED"]).await;
    assert_eq!(t["errorDetail"], "contract ended");
    eventually("terminate signals", || {
        consumer_dp.find(&format!("{id}/terminate")).is_some()
            && provider_dp.find(&format!("{pid}/terminate")).is_some()
    })
    .await;
    assert_eq!(
        provider_dp.find(&format!("{pid}/terminate")).unwrap().body["reason"],
        "contract ended"
    );
}

#[tokio::test]
async fn push_transfer_carries_the_consumer_address_to_the_provider() {
    let (f, consumer_dp, provider_dp) = setup(Mode::Sync).await;
    let agreement = f.agreement("data", json!({})).await;
    let id = f.start_transfer(&agreement, PUSH).await;
    f.wait_transfer(CONSUMER, &id, &["STARTED"]).await;
    let start = provider_dp.find("start").unwrap();
    assert_eq!(start.body["dataAddress"], push_address());
    let started = consumer_dp.find(&format!("{id}/started")).unwrap();
    assert!(
        started.body.get("dataAddress").is_none(),
        "push: no address in started"
    );
    let pid = provider_id(&f, &id);
    assert_eq!(
        f.sb.control_plane().transfer(&pid).unwrap().data_address,
        Some(push_address())
    );
    // The provider's data plane finishes pushing; the consumer's data plane gets completed.
    assert_eq!(
        callback(
            &f,
            &pid,
            "completed",
            None,
            json!({"messageId": "m", "dataFlowId": pid, "state": "COMPLETED"})
        )
        .await
        .0,
        StatusCode::OK
    );
    eventually("completed", || {
        consumer_dp.find(&format!("{id}/completed")).is_some()
    })
    .await;
}

#[tokio::test]
async fn refusals_and_failures() {
    let f = common::start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let agreement = f
        .agreement("data", json!({"dataplaneMetadata": {"profiles": [PULL]}}))
        .await;
    // No data plane at the provider: TERMINATED with the reason.
    let id = f.start_transfer(&agreement, PULL).await;
    let t = f
        .wait_transfer(CONSUMER, &id, &["TERMINATED", "STARTED"])
        .await;
    assert_eq!(t["state"], "TERMINATED");
    assert!(
        t["errorDetail"].as_str().unwrap().contains("No data plane"),
        "{t}"
    );
    // Push without a consumer data plane.
    let rejecting = fake_dataplane_with(Mode::Sync, true).await;
    f.register_dataplane(PROVIDER, json!({"dataplaneId": "bad-dp", "endpoint": rejecting.endpoint, "transferTypes": [PULL, PUSH]})).await;
    let id = f.start_transfer(&agreement, PUSH).await;
    let t = f
        .wait_transfer(CONSUMER, &id, &["TERMINATED", "STARTED"])
        .await;
    assert!(
        t["errorDetail"].as_str().unwrap().contains("consumer"),
        "{t}"
    );
    // The asset allows only pull: no provider data plane qualifies for push either way; pull is
    // refused by the provider's data plane.
    let id = f.start_transfer(&agreement, PULL).await;
    let t = f
        .wait_transfer(CONSUMER, &id, &["TERMINATED", "STARTED"])
        .await;
    assert_eq!(t["state"], "TERMINATED");
    assert!(
        t["errorDetail"].as_str().unwrap().contains("start failed"),
        "{t}"
    );
    eventually("start attempted", || rejecting.find("start").is_some()).await;
    // Unknown agreement: 400.
    let body = json!({"@context": [CTX], "@type": "TransferRequest", "counterPartyAddress": f.sb.urls().dsp_address(PROVIDER),
        "contractId": "nope", "transferType": PULL, "protocol": "dataspace-protocol-http:2025-1"});
    let (status, body) = f
        .post(
            &f.url(CONSUMER, "/transferprocesses"),
            &f.token(CONSUMER),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    common::assert_error_array(&body, Some("contractId"));
    // Actions in the wrong state, unknown actions, and another tenant.
    let token = f.token(CONSUMER);
    let url = |a: &str| f.url(CONSUMER, &format!("/transferprocesses/{id}/{a}"));
    assert_eq!(
        f.call(Method::POST, &url("suspend"), Some(&token), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        f.call(Method::POST, &url("resume"), Some(&token), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        f.call(Method::POST, &url("explode"), Some(&token), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = f
        .post(
            &url("terminate"),
            &token,
            json!({"@context": [CTX], "@type": "TerminateTransfer"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    common::assert_error_array(&body, Some("reason"));
    assert_eq!(
        f.get(
            &f.url(CONSUMER, &format!("/transferprocesses/{id}")),
            &f.token(PROVIDER)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // Queries.
    let (_, list) = f.post(&f.url(CONSUMER, "/transferprocesses/request"), &token,
        json!({"@context": [CTX], "filterExpression": [{"operandLeft": "state", "operator": "=", "operandRight": "TERMINATED"}]})).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn callbacks_are_authenticated_as_configured() {
    // Static token.
    let config = SandboxConfig {
        participants: common::participants(),
        signaling_auth: SignalingAuth::StaticToken {
            authorization: "Bearer cp-secret".into(),
        },
        dataplane_authorization: Some("Bearer dp-secret".into()),
        ..SandboxConfig::default()
    };
    let (f, consumer_dp, _) = setup_with(config, Mode::Async).await;
    let agreement = f.agreement("data", json!({})).await;
    let id = f.start_transfer(&agreement, PULL).await;
    eventually("prepare", || consumer_dp.find("prepare").is_some()).await;
    assert_eq!(
        consumer_dp
            .find("prepare")
            .unwrap()
            .authorization
            .as_deref(),
        Some("Bearer dp-secret")
    );
    assert_eq!(
        callback(&f, &id, "prepared", None, json!({})).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        callback(&f, &id, "prepared", Some("Bearer wrong"), json!({}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        callback(
            &f,
            &id,
            "prepared",
            Some("Bearer cp-secret"),
            json!({"messageId": "m", "dataFlowId": id, "state": "PREPARED"})
        )
        .await
        .0,
        StatusCode::OK
    );

    // IdP JWT whose sub is the data plane's id; the data plane's own registration asks for
    // client-credentials tokens from the sandbox's IdP.
    let config = SandboxConfig {
        participants: common::participants(),
        signaling_auth: SignalingAuth::IdpJwt,
        clients: vec![ClientSpec::service(
            "cp-client",
            "cp-secret",
            weft_sandbox::Role::Participant,
            &["data-plane:signal"],
        )],
        ..SandboxConfig::default()
    };
    let f = common::start_with(config, ApiVersion::V5beta).await;
    let consumer_dp = fake_dataplane(Mode::Async).await;
    let provider_dp = fake_dataplane(Mode::Sync).await;
    f.register_dataplane(CONSUMER, json!({"dataplaneId": "consumer-dp", "endpoint": consumer_dp.endpoint, "transferTypes": [PULL],
        "authorization": {"type": "oauth2_client_credentials", "tokenEndpoint": f.sb.urls().token, "clientId": "cp-client", "clientSecret": "cp-secret"}})).await;
    f.register_dataplane(PROVIDER, json!({"dataplaneId": "provider-dp", "endpoint": provider_dp.endpoint, "transferTypes": [PULL]})).await;
    let agreement = f.agreement("data", json!({})).await;
    let id = f.start_transfer(&agreement, PULL).await;
    eventually("prepare", || consumer_dp.find("prepare").is_some()).await;
    let auth = consumer_dp.find("prepare").unwrap().authorization.unwrap();
    let claims =
        f.sb.idp()
            .verify(auth.strip_prefix("Bearer ").unwrap())
            .unwrap();
    assert_eq!(claims.client_id(), Some("cp-client"));
    let wrong =
        f.sb.idp()
            .mint(&MintSpec {
                subject: Some("provider-dp".into()),
                ..MintSpec::default()
            })
            .unwrap();
    let right =
        f.sb.idp()
            .mint(&MintSpec {
                subject: Some("consumer-dp".into()),
                ..MintSpec::default()
            })
            .unwrap();
    assert_eq!(
        callback(
            &f,
            &id,
            "prepared",
            Some(&format!("Bearer {wrong}")),
            json!({})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        callback(&f, &id, "prepared", Some("Bearer garbage"), json!({}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        callback(
            &f,
            &id,
            "prepared",
            Some(&format!("Bearer {right}")),
            json!({"messageId": "m", "dataFlowId": id, "state": "PREPARED"})
        )
        .await
        .0,
        StatusCode::OK
    );
    f.wait_transfer(CONSUMER, &id, &["STARTED"]).await;
    // The DPS agreement endpoint, with the same authentication.
    let url = format!("{}/transfers/{id}/agreement", f.sb.urls().signaling);
    let (status, body) = common::call(&f.http, Method::GET, &url, Some(&right), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["@type"], "Agreement");
    assert_eq!(body["@id"], agreement.as_str());
    assert_eq!(body["target"], "data");
    assert_eq!(
        common::call(&f.http, Method::GET, &url, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}
