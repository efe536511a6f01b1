//! Client mistakes get a 4xx with a JSON error and leave the stored flow unchanged:
//! duplicates, illegal transitions, unknown ids, malformed, incomplete and oversize
//! messages, missing or wrong control-plane credentials (static token and OAuth2/JWT),
//! plus control-plane registration and the legacy `transferType`/`callbackAddress`.

mod common;

use common::*;
use serde_json::{Value, json};
use weft_auth::testing::TestIssuer;
use weft_dataplane::{ControlPlaneSeed, CpAuthorization};

/// What must not change when a request is refused: state, version, history, tokens.
async fn snapshot(host: &Host, ctx: &str, id: &str) -> (String, i64, usize, u64) {
    let flow = host.dp.flow(ctx, id).await.unwrap().unwrap();
    let history = host.store.flow_history(ctx, id).await.unwrap().len();
    let tokens = host.store.count_flow_tokens(ctx, id).await.unwrap();
    (flow.state, flow.version, history, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_illegal_transitions_are_refused_without_change() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    let provider = host.client(PROVIDER);
    let consumer = host.client(CONSUMER);

    // Duplicate processId on start.
    let first = provider.start(&flow_message("dup", "a", PULL)).await;
    assert_status_message(&first, 200, "dup", "STARTED");
    let before = snapshot(&host, PROVIDER, "dup").await;
    let again = provider.start(&flow_message("dup", "a", PULL)).await;
    assert_error(&again, 409);
    assert_eq!(snapshot(&host, PROVIDER, "dup").await, before);
    assert_eq!(
        host.hooks(PROVIDER, "dup").await.len(),
        1,
        "the app was not asked again"
    );

    // Illegal transitions on a STARTED provider flow.
    for (signal, expected) in [("started", 409), ("resume", 200)] {
        let r = provider.signal("dup", signal, json!({})).await;
        assert_eq!(r.status, expected, "{signal}: {r:?}");
        assert_eq!(
            snapshot(&host, PROVIDER, "dup").await,
            before,
            "{signal} changed the flow"
        );
    }

    // A consumer flow that is PREPARED cannot be suspended or completed.
    assert_status_message(
        &consumer.prepare(&flow_message("c1", "a", PULL)).await,
        200,
        "c1",
        "PREPARED",
    );
    let before = snapshot(&host, CONSUMER, "c1").await;
    for signal in ["suspend", "resume", "completed"] {
        let r = consumer.signal("c1", signal, json!({})).await;
        assert_error(&r, 409);
        assert_eq!(
            snapshot(&host, CONSUMER, "c1").await,
            before,
            "{signal} changed the flow"
        );
    }
    // A push flow's /started must not carry an address.
    assert_status_message(
        &consumer.prepare(&flow_message("c2", "a", PUSH)).await,
        200,
        "c2",
        "PREPARED",
    );
    let before = snapshot(&host, CONSUMER, "c2").await;
    let r = consumer
        .signal(
            "c2",
            "started",
            json!({ "dataAddress": dummy_push_address() }),
        )
        .await;
    assert_error(&r, 400);
    assert_eq!(snapshot(&host, CONSUMER, "c2").await, before);

    // An async prepare that has not finished cannot be started.
    let r = consumer
        .prepare(&flow_message("c3", "async-later", PULL))
        .await;
    assert_status_message(&r, 202, "c3", "PREPARING");
    let before = snapshot(&host, CONSUMER, "c3").await;
    assert_error(&consumer.signal("c3", "started", json!({})).await, 409);
    assert_eq!(snapshot(&host, CONSUMER, "c3").await, before);

    // Terminal flows are final.
    assert_status_message(
        &provider.signal("dup", "terminate", json!({})).await,
        200,
        "dup",
        "TERMINATED",
    );
    let before = snapshot(&host, PROVIDER, "dup").await;
    for signal in ["terminate", "completed", "suspend", "resume", "started"] {
        let r = provider.signal("dup", signal, json!({})).await;
        assert_error(&r, 409);
        assert_eq!(
            snapshot(&host, PROVIDER, "dup").await,
            before,
            "{signal} changed a terminated flow"
        );
    }
    // Same-state signals are no-ops.
    assert_status_message(
        &provider.start(&flow_message("s1", "a", PULL)).await,
        200,
        "s1",
        "STARTED",
    );
    assert_status_message(
        &provider.signal("s1", "suspend", json!({})).await,
        200,
        "s1",
        "SUSPENDED",
    );
    let before = snapshot(&host, PROVIDER, "s1").await;
    assert_status_message(
        &provider.signal("s1", "suspend", json!({})).await,
        200,
        "s1",
        "SUSPENDED",
    );
    assert_eq!(snapshot(&host, PROVIDER, "s1").await, before);
    host.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_malformed_incomplete_and_oversize_messages_get_4xx() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let mut cfg = config(&cp.url);
    cfg.max_signal_body_bytes = 4096;
    let host = Host::start(&db, cfg).await;
    let dps = host.client(PROVIDER);

    // Unknown flows and contexts.
    assert_error(&dps.status("nope").await, 404);
    assert_error(&dps.signal("nope", "terminate", json!({})).await, 404);
    assert_error(
        &host
            .client("no-such-ctx")
            .start(&flow_message("x", "a", PULL))
            .await,
        404,
    );

    // Malformed JSON, wrong types, empty bodies.
    let raw = |body: &'static str| {
        dps.send(
            reqwest::Method::POST,
            "/dataflows/start",
            Some(body.as_bytes().to_vec()),
        )
    };
    assert_error(&raw("{not json").await, 400);
    assert_error(&raw("").await, 400);
    assert_error(&raw(r#"{"messageId": 5}"#).await, 400);
    assert_error(&raw("[]").await, 400);
    let r = dps
        .send(
            reqwest::Method::POST,
            "/dataflows/x/terminate",
            Some(Vec::new()),
        )
        .await;
    assert_error(&r, 400);

    // Incomplete messages name the missing field.
    for field in [
        "messageId",
        "processId",
        "agreementId",
        "datasetId",
        "profile",
        "participantId",
        "counterPartyId",
        "dataspaceContext",
    ] {
        let mut m = flow_message("inc", "a", PULL);
        m.as_object_mut().unwrap().remove(field);
        let r = dps.start(&m).await;
        assert_error(&r, 400);
        assert!(
            r.body["error"].as_str().unwrap().contains(field),
            "{field}: {r:?}"
        );
    }
    let mut m = flow_message("inc", "a", PULL);
    m["claims"] = json!("not an object");
    assert_error(&dps.start(&m).await, 400);
    assert_error(
        &dps.start(&flow_message("inc", "a", "https://example.com/profile/s3"))
            .await,
        400,
    );
    assert_error(&dps.start(&flow_message("bad/id", "a", PULL)).await, 400);
    // A pull start with an address, a push start without one.
    let mut m = flow_message("inc", "a", PULL);
    m["dataAddress"] = dummy_push_address();
    assert_error(&dps.start(&m).await, 400);
    assert_error(&dps.start(&flow_message("inc", "a", PUSH)).await, 400);
    // Signals need a messageId (except /completed).
    let r = dps.post("/dataflows/inc/terminate", &json!({})).await;
    assert_error(&r, 400);
    // No app serves this profile / this tenant has no app.
    assert_error(
        &dps.start(&flow_message(
            "inc",
            "a",
            "https://example.com/profile/ftp-pull",
        ))
        .await,
        400,
    );
    assert_error(
        &host
            .client(EMPTY)
            .start(&flow_message("inc", "a", PULL))
            .await,
        400,
    );
    // Nothing was created by any of these.
    assert!(host.dp.flow(PROVIDER, "inc").await.unwrap().is_none());
    assert_error(&dps.status("inc").await, 404);

    // The app rejects a flow: 403, and the flow does not exist afterwards.
    let r = dps.start(&flow_message("rej", "reject", PULL)).await;
    assert_error(&r, 403);
    assert!(host.dp.flow(PROVIDER, "rej").await.unwrap().is_none());

    // Oversize bodies: declared and streamed.
    assert_status_message(
        &dps.start(&flow_message("big", "a", PULL)).await,
        200,
        "big",
        "STARTED",
    );
    let mut m = flow_message("big2", "a", PULL);
    m["metadata"] = json!({ "pad": "x".repeat(10_000) });
    assert_error(&dps.start(&m).await, 413);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"{\"messageId\":\"".to_vec()), Ok(vec![b'x'; 8192])];
    let r = reqwest::Client::new()
        .post(format!("{}/dataflows/big/terminate", dps.base))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
    assert!(host.dp.flow(PROVIDER, "big2").await.unwrap().is_none());
    dps.assert_state("big", "STARTED").await;
    host.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_token_control_planes_must_authenticate() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let mut cfg = config(&cp.url);
    cfg.control_planes[0].authorization = Some(CpAuthorization::StaticToken {
        authorization: "dummy-authorization".into(),
        callback_authorization: Some("Bearer callback-secret".into()),
    });
    let host = Host::start(&db, cfg).await;
    let anonymous = host.client(PROVIDER);
    let wrong = host.client(PROVIDER).with_auth("wrong");
    let good = host.client(PROVIDER).with_auth("dummy-authorization");

    for dps in [&anonymous, &wrong] {
        let r = dps.start(&flow_message("f", "async", PULL)).await;
        assert_error(&r, 401);
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert_error(&dps.status("f").await, 401);
    }
    assert!(host.dp.flow(PROVIDER, "f").await.unwrap().is_none());
    let r = good.start(&flow_message("f", "async", PULL)).await;
    assert_status_message(&r, 202, "f", "STARTING");
    // Callbacks carry Weft's static token.
    let cb = cp.wait_for("f", "started").await;
    assert_eq!(cb.authorization.as_deref(), Some("Bearer callback-secret"));
    let before = snapshot(&host, PROVIDER, "f").await;
    for dps in [&anonymous, &wrong] {
        assert_error(&dps.signal("f", "terminate", json!({})).await, 401);
        assert_error(&dps.signal("f", "suspend", json!({})).await, 401);
    }
    assert_eq!(snapshot(&host, PROVIDER, "f").await, before);
    assert_status_message(
        &good.signal("f", "terminate", json!({})).await,
        200,
        "f",
        "TERMINATED",
    );
    host.stop().await;
    db.cleanup().await;
}

/// A token endpoint that hands out `token-N` and counts requests.
async fn token_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |body: String| {
            let c = c.clone();
            async move {
                assert!(body.contains("grant_type=client_credentials"), "{body}");
                assert!(body.contains("client_id=weft") && body.contains("client_secret=s3cret"), "{body}");
                let n = c.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "access_token": format!("token-{n}"), "token_type": "Bearer", "expires_in": 3600 }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_control_planes_register_and_are_verified_both_ways() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let issuer = TestIssuer::new();
    let (jwks_uri, _) = issuer.serve_jwks().await;
    let (token_url, token_requests) = token_endpoint().await;
    // A bootstrap control plane (static token) registers the OAuth2 one.
    let mut cfg = config(&cp.url);
    cfg.control_planes = vec![ControlPlaneSeed {
        id: "bootstrap".into(),
        endpoint: cp.url.clone(),
        contexts: vec![PROVIDER.into()],
        authorization: Some(CpAuthorization::StaticToken {
            authorization: "boot".into(),
            callback_authorization: None,
        }),
    }];
    let host = Host::start(&db, cfg).await;
    let aud = host.dp.dataplane_id(PROVIDER);
    assert_eq!(aud, format!("weft-{PROVIDER}"));

    let registration = json!({
        "controlplaneId": "edc-cp",
        "endpoint": cp.url,
        "authorization": {
            "type": "oauth2_client_credentials",
            "tokenEndpoint": token_url,
            "clientId": "weft",
            "clientSecret": "s3cret",
            "jwksUri": jwks_uri
        }
    });
    let put = |auth: Option<&str>, body: Value| {
        let mut c = host.client(PROVIDER);
        c.auth = auth.map(str::to_owned);
        async move {
            c.send(
                reqwest::Method::PUT,
                "/controlplanes",
                Some(body.to_string().into_bytes()),
            )
            .await
        }
    };
    assert_error(&put(None, registration.clone()).await, 401);
    assert_error(&put(Some("boot"), json!({ "endpoint": cp.url })).await, 400);
    assert_error(
        &put(
            Some("boot"),
            json!({ "controlplaneId": "x", "endpoint": "ftp://x" }),
        )
        .await,
        400,
    );
    assert_error(&put(Some("boot"), json!({ "controlplaneId": "x", "endpoint": cp.url, "authorization": { "type": "kerberos" } })).await, 400);
    assert_error(&put(Some("boot"), Value::Null).await, 400);
    let r = put(Some("boot"), registration.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");

    let jwt = |claims: Value| format!("Bearer {}", issuer.mint(claims));
    let good = host
        .client(PROVIDER)
        .with_auth(&jwt(json!({ "sub": "edc-cp", "aud": aud })));
    let bad = [
        (
            "wrong audience",
            jwt(json!({ "sub": "edc-cp", "aud": "weft-other" })),
        ),
        (
            "unknown subject",
            jwt(json!({ "sub": "someone", "aud": aud })),
        ),
        (
            "expired",
            format!(
                "Bearer {}",
                issuer.token_expired(json!({ "sub": "edc-cp", "aud": aud }))
            ),
        ),
        (
            "bad signature",
            format!(
                "Bearer {}",
                issuer.token_bad_signature(json!({ "sub": "edc-cp", "aud": aud }))
            ),
        ),
        (
            "alg none",
            format!(
                "Bearer {}",
                issuer.token_alg_none(json!({ "sub": "edc-cp", "aud": aud }))
            ),
        ),
        ("no aud", jwt(json!({ "sub": "edc-cp", "aud": null }))),
    ];
    for (what, auth) in &bad {
        let r = host
            .client(PROVIDER)
            .with_auth(auth)
            .start(&flow_message("o1", "async", PULL))
            .await;
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(r.body["error"].is_string(), "{what}");
    }
    assert!(host.dp.flow(PROVIDER, "o1").await.unwrap().is_none());

    let r = good.start(&flow_message("o1", "async", PULL)).await;
    assert_status_message(&r, 202, "o1", "STARTING");
    assert_eq!(
        host.dp
            .flow(PROVIDER, "o1")
            .await
            .unwrap()
            .unwrap()
            .control_plane_id
            .as_deref(),
        Some("edc-cp")
    );
    // The callback carries a token from the control plane's token endpoint.
    let cb = cp.wait_for("o1", "started").await;
    assert_eq!(cb.authorization.as_deref(), Some("Bearer token-0"));
    // A second callback reuses the cached token.
    assert_status_message(
        &good.start(&flow_message("o2", "async", PULL)).await,
        202,
        "o2",
        "STARTING",
    );
    assert_eq!(
        cp.wait_for("o2", "started").await.authorization.as_deref(),
        Some("Bearer token-0")
    );
    assert_eq!(token_requests.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Inline keys work as well as a jwksUri.
    let mut inline = registration.clone();
    inline["controlplaneId"] = json!("edc-inline");
    inline["authorization"]
        .as_object_mut()
        .unwrap()
        .remove("jwksUri");
    inline["authorization"]["jwks"] = issuer.jwks_json();
    assert_eq!(put(Some("boot"), inline).await.status, 200);
    let by_inline = host
        .client(PROVIDER)
        .with_auth(&jwt(json!({ "sub": "edc-inline", "aud": aud })));
    assert_status_message(
        &by_inline.start(&flow_message("o3", "a", PULL)).await,
        200,
        "o3",
        "STARTED",
    );
    let spoof = host.client(PROVIDER).with_auth(&jwt(
        json!({ "sub": "edc-inline", "aud": "weft-elsewhere" }),
    ));
    assert_error(&spoof.status("o3").await, 401);

    // A JWT-identified control plane may only (un)register itself.
    let mut other = registration.clone();
    other["controlplaneId"] = json!("edc-cp-2");
    let r = good
        .send(
            reqwest::Method::PUT,
            "/controlplanes",
            Some(other.to_string().into_bytes()),
        )
        .await;
    assert_error(&r, 403);
    assert_error(
        &good
            .send(reqwest::Method::DELETE, "/controlplanes/bootstrap", None)
            .await,
        403,
    );
    let r = good
        .send(reqwest::Method::DELETE, "/controlplanes/edc-cp", None)
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    // Deleted: its tokens no longer work, and deleting again is unknown.
    assert_error(&good.status("o1").await, 401);
    let boot = host.client(PROVIDER).with_auth("boot");
    assert_error(
        &boot
            .send(reqwest::Method::DELETE, "/controlplanes/edc-cp", None)
            .await,
        404,
    );
    host.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_routes_callbacks_and_legacy_fields_are_accepted() {
    let db = Db::new();
    let seeded = TestCp::start().await;
    let registered = TestCp::start().await;
    let legacy = TestCp::start().await;
    let host = Host::start(&db, config(&seeded.url)).await;
    let dps = host.client(CONSUMER);

    // A registered control plane takes precedence over the seeded one for new flows.
    let r = dps
        .send(
            reqwest::Method::PUT,
            "/controlplanes",
            Some(
                json!({ "controlplaneId": "cp-2", "endpoint": registered.url })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Registration is per context: the provider context still only knows the seed.
    assert!(
        host.store
            .list_control_planes(PROVIDER)
            .await
            .unwrap()
            .is_empty()
    );

    assert_status_message(
        &dps.prepare(&flow_message("r1", "async", PULL)).await,
        202,
        "r1",
        "PREPARING",
    );
    registered.wait_for("r1", "prepared").await;

    // Pre-RC3 fields: transferType instead of profile, callbackAddress for callbacks.
    let mut m = flow_message("l1", "async", PULL);
    m.as_object_mut().unwrap().remove("profile");
    m["transferType"] = json!("HttpData-PULL");
    m["callbackAddress"] = json!(legacy.url);
    let mut cfg_profile = m.clone();
    cfg_profile["transferType"] = json!(PULL);
    let r = dps.prepare(&cfg_profile).await;
    assert_status_message(&r, 202, "l1", "PREPARING");
    legacy.wait_for("l1", "prepared").await;
    assert!(registered.callbacks_of("l1").is_empty());
    assert!(seeded.received().is_empty());
    // An unknown transferType is still refused (no app serves it).
    m["processId"] = json!("l2");
    assert_error(&dps.prepare(&m).await, 400);
    host.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_callbacks_are_retried_until_acknowledged() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    cp.answer(503);
    let dps = host.client(PROVIDER);
    assert_status_message(
        &dps.start(&flow_message("retry", "async", PULL)).await,
        202,
        "retry",
        "STARTING",
    );
    cp.wait_until("three refused attempts", |cp| cp.refused() >= 3)
        .await;
    let queued = host.store.list_callbacks(PROVIDER, "retry").await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].attempts >= 2 && !queued[0].dead, "{queued:?}");
    assert!(
        queued[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503"))
    );
    cp.answer(200);
    let cb = cp.wait_for("retry", "started").await;
    assert_eq!(cb.body["state"], "STARTED");
    // Delivered once, then removed from the outbox.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !host
        .store
        .list_callbacks(PROVIDER, "retry")
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "callback never removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(cp.callbacks_of("retry").len(), 1);

    // Errored reports (from outside a hook) reach the control plane without changing state.
    let r = dps.start(&flow_message("err", "a", PULL)).await;
    assert_status_message(&r, 200, "err", "STARTED");
    let (status, v) = host
        .app_api(
            PROVIDER,
            "POST",
            "/report/err/errored",
            Some(json!({ "reason": "disk on fire" })),
        )
        .await;
    assert_eq!((status, &v["reported"]), (200, &json!(true)), "{v}");
    let cb = cp.wait_for("err", "errored").await;
    assert_eq!(cb.body["state"], "STARTED");
    assert_eq!(cb.body["error"], "disk on fire");
    dps.assert_state("err", "STARTED").await;
    // Reports that contradict the state are refused with the WIT `conflict` case.
    let (_, v) = host
        .app_api(PROVIDER, "POST", "/report/err/prepared", None)
        .await;
    assert_eq!(v["error"], "conflict", "{v}");
    let (_, v) = host
        .app_api(PROVIDER, "POST", "/report/unknown-flow/completed", None)
        .await;
    assert_eq!(v["error"], "not-found", "{v}");
    host.stop().await;
    db.cleanup().await;
}
