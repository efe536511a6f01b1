//! A host that dies between acknowledging a signal and delivering its callback: after a
//! restart on the same database the flow is in the state that was acknowledged (plus what
//! the app reported during it), and the callback is delivered.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_signals_survive_a_restart_and_their_callbacks_are_delivered() {
    let db = Db::new();
    let cp = TestCp::start().await;
    // The control plane is down: callbacks queue up.
    cp.answer(503);
    let host = Host::start(&db, config(&cp.url)).await;
    let provider = host.client(PROVIDER);
    let consumer = host.client(CONSUMER);

    // Async start: acknowledged STARTING; the app reported `started` during its hook.
    let r = provider
        .start(&flow_message("async-start", "async", PULL))
        .await;
    assert_status_message(&r, 202, "async-start", "STARTING");
    // Sync consumer pull that completes on its own: /started acknowledged, `completed` queued.
    assert_status_message(
        &consumer
            .prepare(&flow_message("self-done", "complete", PULL))
            .await,
        200,
        "self-done",
        "PREPARED",
    );
    assert_eq!(
        consumer
            .signal("self-done", "started", json!({}))
            .await
            .status,
        200
    );
    // Async report from outside a hook, after the acknowledgement.
    let r = provider
        .start(&flow_message("later", "async-later", PULL))
        .await;
    assert_status_message(&r, 202, "later", "STARTING");
    let (status, v) = host
        .app_api(PROVIDER, "POST", "/report/later/started", None)
        .await;
    assert_eq!((status, &v["reported"]), (200, &json!(true)), "{v}");

    cp.wait_until("attempts for every callback", |cp| cp.refused() >= 3)
        .await;
    assert!(cp.received().is_empty());
    // Crash.
    let old_url = host.url.clone();
    host.stop().await;

    // The control plane recovers; a new host opens the same database.
    cp.answer(200);
    let host = Host::start(&db, config(&cp.url)).await;
    let provider = host.client(PROVIDER);
    let consumer = host.client(CONSUMER);
    provider.assert_state("async-start", "STARTED").await;
    consumer.assert_state("self-done", "COMPLETED").await;
    provider.assert_state("later", "STARTED").await;
    let history: Vec<String> = host
        .store
        .flow_history(CONSUMER, "self-done")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event)
        .collect();
    assert_eq!(
        history,
        ["prepare", "accepted", "started", "report:completed"]
    );

    let started = cp.wait_for("async-start", "started").await;
    assert_eq!(started.body["state"], "STARTED");
    cp.wait_for("self-done", "completed").await;
    let later = cp.wait_for("later", "started").await;
    // The address minted before the crash still works on the new host (same store).
    let token = property(&later.body["dataAddress"], "authorization").unwrap();
    assert!(
        later.body["dataAddress"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&old_url)
    );
    let r = reqwest::Client::new()
        .get(format!("{}/data/later?bytes=4", host.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"abcd");
    // Each callback was delivered exactly once.
    for id in ["async-start", "self-done", "later"] {
        assert_eq!(
            cp.callbacks_of(id).len(),
            1,
            "{id}: {:?}",
            cp.callbacks_of(id)
        );
    }
    host.stop().await;
    db.cleanup().await;
}
