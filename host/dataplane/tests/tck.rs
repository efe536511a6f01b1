//! The DPS test kit's data-plane scenarios (dps-tck 1.2.0, `verification.dataplane`, see
//! `reference/dps.md` §5), rebuilt as Rust tests: Weft over HTTP on 127.0.0.1, the
//! conformance app as the tenants' data plane app, and a test control plane that records
//! callbacks. Agreement ids follow the Java SDK's test-kit setup: `async`, `complete`.

mod common;

use common::*;
use serde_json::{Value, json};

async fn setup() -> (Db, TestCp, Host) {
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    (db, cp, host)
}

async fn teardown(db: Db, host: Host) {
    host.stop().await;
    db.cleanup().await;
}

/// Checks a pull DataAddress minted by Weft for `flow`.
fn assert_pull_address(host: &Host, address: &Value, flow: &str) {
    assert_eq!(address["@type"], "DataAddress", "{address}");
    assert_eq!(address["endpointType"], PULL);
    assert_eq!(address["endpoint"], format!("{}/data/{flow}", host.url));
    assert_eq!(property(address, "authType"), Some("bearer"));
    assert!(
        property(address, "authorization").is_some_and(|t| t.len() >= 40),
        "{address}"
    );
    for p in address["endpointProperties"].as_array().unwrap() {
        assert_eq!(p["@type"], "EndpointProperty");
    }
}

async fn pull_start(host: &Host, id: &str, agreement: &str) -> Reply {
    host.client(PROVIDER)
        .start(&flow_message(id, agreement, PULL))
        .await
}

// ---- DP_P_PULL: provider, pull ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_pull_01_01_start_then_completed() {
    let (db, _cp, host) = setup().await;
    let dps = host.client(PROVIDER);
    let r = pull_start(&host, "p-pull-0101", "agreement-1").await;
    assert_status_message(&r, 200, "p-pull-0101", "STARTED");
    assert_pull_address(&host, &r.body["dataAddress"], "p-pull-0101");
    // The test kit sends `{}` on /completed.
    let r = dps
        .post("/dataflows/p-pull-0101/completed", &json!({}))
        .await;
    assert_status_message(&r, 200, "p-pull-0101", "COMPLETED");
    dps.assert_state("p-pull-0101", "COMPLETED").await;
    let hooks = host.hooks(PROVIDER, "p-pull-0101").await;
    let names: Vec<&str> = hooks.iter().map(|h| h["hook"].as_str().unwrap()).collect();
    assert_eq!(names, ["start", "completed"]);
    // The app saw the flow as the signal described it.
    let flow = &hooks[0]["flow"];
    assert_eq!(flow["role"], "provider");
    assert_eq!(flow["mode"], "pull");
    assert_eq!(flow["state"], "INITIALIZED");
    assert_eq!(flow["agreementId"], "agreement-1");
    assert_eq!(flow["datasetId"], "dataset-1");
    assert_eq!(flow["counterPartyId"], "tck-counterparty");
    assert_eq!(flow["claims"], "{}");
    assert_eq!(flow["labels"], json!(["l1"]));
    assert_eq!(flow["metadata"], r#"{"m":1}"#);
    assert_eq!(hooks[1]["flow"]["state"], "STARTED");
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_pull_01_02_start_then_terminate() {
    let (db, _cp, host) = setup().await;
    let dps = host.client(PROVIDER);
    assert_status_message(
        &pull_start(&host, "p-pull-0102", "a").await,
        200,
        "p-pull-0102",
        "STARTED",
    );
    let r = dps
        .signal("p-pull-0102", "terminate", json!({ "reason": "done" }))
        .await;
    assert_status_message(&r, 200, "p-pull-0102", "TERMINATED");
    dps.assert_state("p-pull-0102", "TERMINATED").await;
    let hooks = host.hooks(PROVIDER, "p-pull-0102").await;
    assert_eq!(hooks[1]["hook"], "terminate");
    assert_eq!(hooks[1]["extra"]["reason"], "done");
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_pull_02_01_suspend_then_resume() {
    let (db, _cp, host) = setup().await;
    let dps = host.client(PROVIDER);
    let first = pull_start(&host, "p-pull-0201", "a").await;
    assert_status_message(&first, 200, "p-pull-0201", "STARTED");
    let r = dps
        .signal("p-pull-0201", "suspend", json!({ "reason": "pause" }))
        .await;
    assert_status_message(&r, 200, "p-pull-0201", "SUSPENDED");
    dps.assert_state("p-pull-0201", "SUSPENDED").await;
    let r = dps.signal("p-pull-0201", "resume", json!({})).await;
    assert_status_message(&r, 200, "p-pull-0201", "STARTED");
    // Resuming a pull re-issues the address with a new token.
    assert_pull_address(&host, &r.body["dataAddress"], "p-pull-0201");
    assert_ne!(
        property(&r.body["dataAddress"], "authorization"),
        property(&first.body["dataAddress"], "authorization")
    );
    dps.assert_state("p-pull-0201", "STARTED").await;
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_pull_02_02_suspend_then_terminate() {
    let (db, _cp, host) = setup().await;
    let dps = host.client(PROVIDER);
    pull_start(&host, "p-pull-0202", "a").await;
    assert_status_message(
        &dps.signal("p-pull-0202", "suspend", json!({})).await,
        200,
        "p-pull-0202",
        "SUSPENDED",
    );
    assert_status_message(
        &dps.signal("p-pull-0202", "terminate", json!({})).await,
        200,
        "p-pull-0202",
        "TERMINATED",
    );
    dps.assert_state("p-pull-0202", "TERMINATED").await;
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_pull_04_01_async_start_calls_back_started() {
    let (db, cp, host) = setup().await;
    let dps = host.client(PROVIDER);
    let r = pull_start(&host, "p-pull-0401", "async").await;
    assert_status_message(&r, 202, "p-pull-0401", "STARTING");
    let location = r.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/dps/{PROVIDER}/dataflows/p-pull-0401/status")
    );
    let cb = cp.wait_for("p-pull-0401", "started").await;
    assert_eq!(cb.body["dataFlowId"], "p-pull-0401");
    assert_eq!(cb.body["state"], "STARTED");
    assert!(cb.body["messageId"].as_str().is_some_and(|m| !m.is_empty()));
    assert_pull_address(&host, &cb.body["dataAddress"], "p-pull-0401");
    // The Location answers the status.
    let s = reqwest::get(format!("{}{location}", host.url))
        .await
        .unwrap();
    assert_eq!(s.status(), 200);
    assert_eq!(s.json::<Value>().await.unwrap()["state"], "STARTED");
    dps.assert_state("p-pull-0401", "STARTED").await;
    // The token of the callback's address works.
    let token = property(&cb.body["dataAddress"], "authorization").unwrap();
    let data = reqwest::Client::new()
        .get(format!("{}/data/p-pull-0401?bytes=5", host.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(data.status(), 200);
    assert_eq!(data.bytes().await.unwrap().as_ref(), b"abcde");
    teardown(db, host).await;
}

// ---- DP_C_PULL: consumer, pull ----

async fn c_pull_prepared(host: &Host, id: &str, agreement: &str) -> Dps {
    let dps = host.client(CONSUMER);
    let r = dps.prepare(&flow_message(id, agreement, PULL)).await;
    assert_status_message(&r, 200, id, "PREPARED");
    assert!(
        r.body.get("dataAddress").is_none_or(Value::is_null),
        "a pull prepare has no address: {r:?}"
    );
    // The test kit's /started carries no dataAddress.
    let r = dps.signal(id, "started", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    dps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_pull_01_01_started_then_terminate() {
    let (db, _cp, host) = setup().await;
    let dps = c_pull_prepared(&host, "c-pull-0101", "a").await;
    dps.assert_state("c-pull-0101", "STARTED").await;
    assert_status_message(
        &dps.signal("c-pull-0101", "terminate", json!({})).await,
        200,
        "c-pull-0101",
        "TERMINATED",
    );
    dps.assert_state("c-pull-0101", "TERMINATED").await;
    let names: Vec<String> = host
        .hooks(CONSUMER, "c-pull-0101")
        .await
        .iter()
        .map(|h| h["hook"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["prepare", "started", "terminate"]);
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_pull_01_02_started_then_completed() {
    let (db, _cp, host) = setup().await;
    let dps = c_pull_prepared(&host, "c-pull-0102", "a").await;
    assert_status_message(
        &dps.post("/dataflows/c-pull-0102/completed", &json!({}))
            .await,
        200,
        "c-pull-0102",
        "COMPLETED",
    );
    dps.assert_state("c-pull-0102", "COMPLETED").await;
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_pull_02_01_suspend_then_resume() {
    let (db, _cp, host) = setup().await;
    let dps = c_pull_prepared(&host, "c-pull-0201", "a").await;
    assert_status_message(
        &dps.signal("c-pull-0201", "suspend", json!({})).await,
        200,
        "c-pull-0201",
        "SUSPENDED",
    );
    let r = dps.signal("c-pull-0201", "resume", json!({})).await;
    assert_status_message(&r, 200, "c-pull-0201", "STARTED");
    dps.assert_state("c-pull-0201", "STARTED").await;
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_pull_02_02_suspend_then_terminate() {
    let (db, _cp, host) = setup().await;
    let dps = c_pull_prepared(&host, "c-pull-0202", "a").await;
    assert_status_message(
        &dps.signal("c-pull-0202", "suspend", json!({})).await,
        200,
        "c-pull-0202",
        "SUSPENDED",
    );
    assert_status_message(
        &dps.signal("c-pull-0202", "terminate", json!({})).await,
        200,
        "c-pull-0202",
        "TERMINATED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_pull_03_01_completes_on_its_own() {
    let (db, cp, host) = setup().await;
    let dps = c_pull_prepared(&host, "c-pull-0301", "complete").await;
    let cb = cp.wait_for("c-pull-0301", "completed").await;
    assert_eq!(cb.body["state"], "COMPLETED");
    assert_eq!(cb.body["dataFlowId"], "c-pull-0301");
    dps.assert_state("c-pull-0301", "COMPLETED").await;
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_pull_04_01_async_prepare_calls_back_prepared() {
    let (db, cp, host) = setup().await;
    let dps = host.client(CONSUMER);
    let r = dps
        .prepare(&flow_message("c-pull-0401", "async", PULL))
        .await;
    assert_status_message(&r, 202, "c-pull-0401", "PREPARING");
    assert_eq!(
        r.headers["location"],
        format!("/dps/{CONSUMER}/dataflows/c-pull-0401/status").as_str()
    );
    let cb = cp.wait_for("c-pull-0401", "prepared").await;
    assert_eq!(cb.body["state"], "PREPARED");
    assert!(
        cb.body.get("dataAddress").is_none(),
        "pull prepared has no address: {:?}",
        cb.body
    );
    dps.assert_state("c-pull-0401", "PREPARED").await;
    // And the flow goes on as usual.
    assert_eq!(
        dps.signal("c-pull-0401", "started", json!({})).await.status,
        200
    );
    dps.assert_state("c-pull-0401", "STARTED").await;
    teardown(db, host).await;
}

// ---- DP_P_PUSH: provider, push ----

async fn p_push_started(host: &Host, id: &str, agreement: &str) -> (Dps, Reply) {
    let dps = host.client(PROVIDER);
    let r = dps
        .start(&push_start(id, agreement, dummy_push_address()))
        .await;
    (dps, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_push_01_01_start_then_completed() {
    let (db, _cp, host) = setup().await;
    let (dps, r) = p_push_started(&host, "p-push-0101", "a").await;
    assert_status_message(&r, 200, "p-push-0101", "STARTED");
    assert!(
        r.body.get("dataAddress").is_none(),
        "a push start answers no address: {r:?}"
    );
    // The app saw the consumer's address without its secret.
    let hooks = host.hooks(PROVIDER, "p-push-0101").await;
    let seen = &hooks[0]["flow"]["dataAddress"];
    assert_eq!(seen["endpoint"], "http://127.0.0.1:9/push");
    assert!(property(seen, "authorization").is_none(), "{seen}");
    assert_eq!(property(seen, "authType"), Some("bearer"));
    assert_status_message(
        &dps.post("/dataflows/p-push-0101/completed", &json!({}))
            .await,
        200,
        "p-push-0101",
        "COMPLETED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_push_01_02_start_then_terminate() {
    let (db, _cp, host) = setup().await;
    let (dps, r) = p_push_started(&host, "p-push-0102", "a").await;
    assert_status_message(&r, 200, "p-push-0102", "STARTED");
    assert_status_message(
        &dps.signal("p-push-0102", "terminate", json!({})).await,
        200,
        "p-push-0102",
        "TERMINATED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_push_02_01_suspend_then_resume() {
    let (db, _cp, host) = setup().await;
    let (dps, _) = p_push_started(&host, "p-push-0201", "a").await;
    assert_status_message(
        &dps.signal("p-push-0201", "suspend", json!({})).await,
        200,
        "p-push-0201",
        "SUSPENDED",
    );
    let r = dps.signal("p-push-0201", "resume", json!({})).await;
    assert_status_message(&r, 200, "p-push-0201", "STARTED");
    assert!(r.body.get("dataAddress").is_none());
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_push_02_02_suspend_then_terminate() {
    let (db, _cp, host) = setup().await;
    let (dps, _) = p_push_started(&host, "p-push-0202", "a").await;
    assert_status_message(
        &dps.signal("p-push-0202", "suspend", json!({})).await,
        200,
        "p-push-0202",
        "SUSPENDED",
    );
    assert_status_message(
        &dps.signal("p-push-0202", "terminate", json!({})).await,
        200,
        "p-push-0202",
        "TERMINATED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_push_03_01_completes_on_its_own() {
    let (db, cp, host) = setup().await;
    let (dps, r) = p_push_started(&host, "p-push-0301", "complete").await;
    assert_status_message(&r, 200, "p-push-0301", "STARTED");
    let cb = cp.wait_for("p-push-0301", "completed").await;
    assert_eq!(cb.body["state"], "COMPLETED");
    dps.assert_state("p-push-0301", "COMPLETED").await;
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_p_push_04_01_async_start_calls_back_started() {
    let (db, cp, host) = setup().await;
    let (dps, r) = p_push_started(&host, "p-push-0401", "async").await;
    assert_status_message(&r, 202, "p-push-0401", "STARTING");
    let cb = cp.wait_for("p-push-0401", "started").await;
    assert_eq!(cb.body["state"], "STARTED");
    assert!(
        cb.body.get("dataAddress").is_none(),
        "push started has no address: {:?}",
        cb.body
    );
    dps.assert_state("p-push-0401", "STARTED").await;
    teardown(db, host).await;
}

// ---- DP_C_PUSH: consumer, push ----

/// Checks a push DataAddress minted by Weft for `flow`.
fn assert_push_address(host: &Host, address: &Value, flow: &str) {
    assert_eq!(address["@type"], "DataAddress", "{address}");
    assert_eq!(address["endpointType"], PUSH);
    assert_eq!(address["endpoint"], format!("{}/data/{flow}", host.url));
    assert_eq!(property(address, "authType"), Some("bearer"));
    assert!(property(address, "authorization").is_some());
}

async fn c_push_prepared(host: &Host, id: &str, agreement: &str) -> (Dps, Reply) {
    let dps = host.client(CONSUMER);
    let r = dps.prepare(&flow_message(id, agreement, PUSH)).await;
    (dps, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_push_01_01_prepare_started_completed() {
    let (db, _cp, host) = setup().await;
    let (dps, r) = c_push_prepared(&host, "c-push-0101", "a").await;
    assert_status_message(&r, 200, "c-push-0101", "PREPARED");
    assert_push_address(&host, &r.body["dataAddress"], "c-push-0101");
    let started = dps.signal("c-push-0101", "started", json!({})).await;
    assert_eq!(started.status, 200, "{started:?}");
    dps.assert_state("c-push-0101", "STARTED").await;
    assert_status_message(
        &dps.post("/dataflows/c-push-0101/completed", &json!({}))
            .await,
        200,
        "c-push-0101",
        "COMPLETED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_push_01_02_prepare_started_terminate() {
    let (db, _cp, host) = setup().await;
    let (dps, _) = c_push_prepared(&host, "c-push-0102", "a").await;
    assert_eq!(
        dps.signal("c-push-0102", "started", json!({})).await.status,
        200
    );
    assert_status_message(
        &dps.signal("c-push-0102", "terminate", json!({})).await,
        200,
        "c-push-0102",
        "TERMINATED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_push_02_01_suspend_then_resume() {
    let (db, _cp, host) = setup().await;
    let (dps, first) = c_push_prepared(&host, "c-push-0201", "a").await;
    assert_eq!(
        dps.signal("c-push-0201", "started", json!({})).await.status,
        200
    );
    assert_status_message(
        &dps.signal("c-push-0201", "suspend", json!({})).await,
        200,
        "c-push-0201",
        "SUSPENDED",
    );
    let r = dps.signal("c-push-0201", "resume", json!({})).await;
    assert_status_message(&r, 200, "c-push-0201", "STARTED");
    // The push endpoint is re-issued with a new token.
    assert_push_address(&host, &r.body["dataAddress"], "c-push-0201");
    assert_ne!(
        property(&r.body["dataAddress"], "authorization"),
        property(&first.body["dataAddress"], "authorization")
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_push_02_02_suspend_then_terminate() {
    let (db, _cp, host) = setup().await;
    let (dps, _) = c_push_prepared(&host, "c-push-0202", "a").await;
    assert_eq!(
        dps.signal("c-push-0202", "started", json!({})).await.status,
        200
    );
    assert_status_message(
        &dps.signal("c-push-0202", "suspend", json!({})).await,
        200,
        "c-push-0202",
        "SUSPENDED",
    );
    assert_status_message(
        &dps.signal("c-push-0202", "terminate", json!({})).await,
        200,
        "c-push-0202",
        "TERMINATED",
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_push_03_01_completed_by_the_control_plane() {
    let (db, cp, host) = setup().await;
    let (dps, r) = c_push_prepared(&host, "c-push-0301", "a").await;
    assert_status_message(&r, 200, "c-push-0301", "PREPARED");
    assert_eq!(
        dps.signal("c-push-0301", "started", json!({})).await.status,
        200
    );
    let r = dps
        .post("/dataflows/c-push-0301/completed", &json!({}))
        .await;
    assert_status_message(&r, 200, "c-push-0301", "COMPLETED");
    dps.assert_state("c-push-0301", "COMPLETED").await;
    // Completion came from the control plane: no callback goes back to it, and a second
    // /completed finds a final flow.
    assert_error(
        &dps.post("/dataflows/c-push-0301/completed", &json!({}))
            .await,
        409,
    );
    assert!(cp.callbacks_of("c-push-0301").is_empty());
    assert!(
        host.store
            .list_callbacks(CONSUMER, "c-push-0301")
            .await
            .unwrap()
            .is_empty()
    );
    teardown(db, host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dp_c_push_04_01_async_prepare_calls_back_prepared_with_address() {
    let (db, cp, host) = setup().await;
    let (dps, r) = c_push_prepared(&host, "c-push-0401", "async").await;
    assert_status_message(&r, 202, "c-push-0401", "PREPARING");
    assert!(r.body.get("dataAddress").is_none());
    let cb = cp.wait_for("c-push-0401", "prepared").await;
    assert_eq!(cb.body["state"], "PREPARED");
    assert_push_address(&host, &cb.body["dataAddress"], "c-push-0401");
    dps.assert_state("c-push-0401", "PREPARED").await;
    // The address works: the provider may push before /started.
    let token = property(&cb.body["dataAddress"], "authorization").unwrap();
    let pushed = reqwest::Client::new()
        .post(format!("{}/data/c-push-0401", host.url))
        .bearer_auth(token)
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    assert_eq!(pushed.json::<Value>().await.unwrap()["received"], 1000);
    teardown(db, host).await;
}
