//! Per-flow bearer tokens and the public data endpoint: pulls and pushes stream through the
//! owning app; a token reaches only its own tenant's flow; revoked tokens get 401; the
//! store holds only hashes and the log never shows a token. Also the consumer side:
//! `transfer.send` reaches the provider with the token the app never sees.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything logged by this test binary (all targets, TRACE).
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// Starts a provider pull flow in `ctx` and returns its token.
async fn pull_token(host: &Host, ctx: &str, id: &str) -> String {
    let r = host.client(ctx).start(&flow_message(id, "a", PULL)).await;
    assert_status_message(&r, 200, id, "STARTED");
    property(&r.body["dataAddress"], "authorization")
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_tokens_are_bound_to_their_flow_and_tenant_and_die_with_it() {
    let log = log();
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    let url = |id: &str| format!("{}/data/{id}", host.url);

    // Both tenants have a flow with the same process id, and A another one.
    let a = pull_token(&host, PROVIDER, "shared").await;
    let b = pull_token(&host, CONSUMER, "shared").await;
    let a2 = pull_token(&host, PROVIDER, "other").await;
    assert_ne!(a, b);

    let r = get(&format!("{}?bytes=30", url("shared")), Some(&a)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-weft-tenant"], PROVIDER);
    assert_eq!(r.headers()["x-weft-flow"], "shared");
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        b"abcdefghijklmnopqrstuvwxyzabcd"
    );
    let r = get(&url("shared"), Some(&b)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-weft-tenant"],
        CONSUMER,
        "B's token reaches only B's app"
    );
    assert_eq!(r.bytes().await.unwrap().len(), 1024);
    // Paths below the flow reach the app too.
    assert_eq!(
        get(&format!("{}/sub/path?bytes=3", url("shared")), Some(&a))
            .await
            .status(),
        200
    );

    // Missing, malformed and unknown tokens: 401; another flow's token: 403.
    let missing = get(&url("shared"), None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert!(missing.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(get(&url("shared"), Some("not-a-token")).await.status(), 401);
    assert_eq!(
        get(&url("shared"), Some(&"x".repeat(5000))).await.status(),
        401
    );
    let cross = get(&url("other"), Some(&a)).await;
    assert_eq!(cross.status(), 403);
    assert!(cross.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(get(&url("shared"), Some(&a2)).await.status(), 403);
    assert_eq!(get(&url("no-such-flow"), Some(&a)).await.status(), 403);

    // Suspend revokes; resume mints a new token; the old one stays dead.
    let dps = host.client(PROVIDER);
    assert_eq!(dps.signal("shared", "suspend", json!({})).await.status, 200);
    assert_eq!(get(&url("shared"), Some(&a)).await.status(), 401);
    assert_eq!(
        host.store
            .count_flow_tokens(PROVIDER, "shared")
            .await
            .unwrap(),
        0
    );
    let resumed = dps.signal("shared", "resume", json!({})).await;
    let a_new = property(&resumed.body["dataAddress"], "authorization")
        .unwrap()
        .to_owned();
    assert_eq!(get(&url("shared"), Some(&a)).await.status(), 401);
    assert_eq!(get(&url("shared"), Some(&a_new)).await.status(), 200);
    // B's flow of the same id was never touched.
    assert_eq!(get(&url("shared"), Some(&b)).await.status(), 200);

    // Terminate and complete revoke too.
    assert_eq!(
        dps.signal("shared", "terminate", json!({})).await.status,
        200
    );
    assert_eq!(get(&url("shared"), Some(&a_new)).await.status(), 401);
    assert_eq!(
        dps.post("/dataflows/other/completed", &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(get(&url("other"), Some(&a2)).await.status(), 401);

    // The database holds only hashes: no token in any column of any table.
    let dump = db.dump_text().await;
    for token in [&a, &b, &a2, &a_new] {
        assert!(!dump.contains(token.as_str()), "a token is stored in clear");
    }
    let b_hash = hex_sha256(&b);
    assert!(dump.contains(&b_hash), "the live token's hash is stored");
    // Nor does the log show one.
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(logged.contains("data flow created"), "the log was captured");
    for token in [&a, &b, &a2, &a_new] {
        assert!(!logged.contains(token.as_str()), "a token was logged");
    }
    host.stop().await;
    db.cleanup().await;
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_pull_through_transfer_send_and_providers_push_into_consumer_apps() {
    let log = log();
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    let provider = host.client(PROVIDER);
    let consumer = host.client(CONSUMER);

    // Pull: the consumer prepares, the provider starts, the consumer gets /started with the
    // provider's address (as its control plane would relay it).
    assert_status_message(
        &consumer.prepare(&flow_message("c-pull", "a", PULL)).await,
        200,
        "c-pull",
        "PREPARED",
    );
    let started = provider.start(&flow_message("p-pull", "a", PULL)).await;
    let address = started.body["dataAddress"].clone();
    let token = property(&address, "authorization").unwrap().to_owned();
    let r = consumer
        .signal("c-pull", "started", json!({ "dataAddress": address }))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // The app sees the address without its token, in the hook and through the import.
    let hooks = host.hooks(CONSUMER, "c-pull").await;
    let seen = &hooks[1]["flow"]["dataAddress"];
    assert_eq!(seen["endpoint"], format!("{}/data/p-pull", host.url));
    assert!(property(seen, "authorization").is_none(), "{seen}");
    let (status, v) = host.app_api(CONSUMER, "GET", "/address/c-pull", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["address"]["endpoint"],
        format!("{}/data/p-pull", host.url)
    );
    assert_eq!(
        property(
            &json!({ "endpointProperties": v["address"]["endpointProperties"] }),
            "authType"
        ),
        Some("bearer")
    );
    assert!(
        !v.to_string().contains(&token),
        "the token reached the app: {v}"
    );
    // transfer.send reaches the provider with the token attached by the host.
    let (status, body) = host
        .app_api_raw(CONSUMER, "GET", "/fetch/c-pull?path=/%3Fbytes%3D52", None)
        .await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(
        body.as_ref(),
        b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
    );
    // Once the provider terminates, the consumer's requests are refused by the provider.
    assert_eq!(
        provider
            .signal("p-pull", "terminate", json!({}))
            .await
            .status,
        200
    );
    let (status, _) = host
        .app_api_raw(CONSUMER, "GET", "/fetch/c-pull", None)
        .await;
    assert_eq!(status, 401);
    // And a terminated consumer flow has no counterparty for the app any more.
    assert_eq!(
        consumer
            .signal("c-pull", "terminate", json!({}))
            .await
            .status,
        200
    );
    let (_, v) = host.app_api(CONSUMER, "GET", "/address/c-pull", None).await;
    assert_eq!(v["error"], "conflict", "{v}");

    // Push: the consumer prepares (its address points at Weft), the provider starts with
    // that address, and the provider app pushes through transfer.send into the consumer app.
    let prepared = consumer.prepare(&flow_message("c-push", "a", PUSH)).await;
    assert_status_message(&prepared, 200, "c-push", "PREPARED");
    let push_address = prepared.body["dataAddress"].clone();
    let push_token = property(&push_address, "authorization").unwrap().to_owned();
    let r = provider
        .start(&push_start("p-push", "a", push_address))
        .await;
    assert_status_message(&r, 200, "p-push", "STARTED");
    let (status, v) = host
        .app_api(PROVIDER, "POST", "/push/p-push?bytes=100000", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["received"], 100_000);
    let (_, v) = host.app_api(CONSUMER, "GET", "/pushed/c-push", None).await;
    assert_eq!(v["total"], 100_000);
    // The consumer's /started comes later; pushing keeps working, until completion.
    assert_eq!(
        consumer.signal("c-push", "started", json!({})).await.status,
        200
    );
    let (_, v) = host
        .app_api(PROVIDER, "POST", "/push/p-push?bytes=10", None)
        .await;
    assert_eq!(v["total"], 100_010);
    assert_eq!(
        consumer
            .post("/dataflows/c-push/completed", &json!({}))
            .await
            .status,
        200
    );
    let (status, _) = host
        .app_api(PROVIDER, "POST", "/push/p-push?bytes=10", None)
        .await;
    assert_eq!(status, 401);
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        !logged.contains(&token) && !logged.contains(&push_token),
        "a token was logged"
    );
    host.stop().await;
    db.cleanup().await;
}

/// A refusal reaches a client that is still sending its body: the endpoint reads the body
/// (bounded) before answering, so the connection is not reset under the client's feet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_still_sending_its_body_gets_the_refusal() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    for (token, status) in [(None, 401), (Some("not-a-token"), 401)] {
        // The body's only chunk comes after the server has seen the headers.
        let late = futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789"))
        });
        let mut r = reqwest::Client::new()
            .post(format!("{}/data/some-flow/x", host.url))
            .body(reqwest::Body::wrap_stream(late));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let response = r.send().await.expect("the refusal, not a reset");
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{body}");
    }
    // On a bare connection, with the body sent after the headers were seen: the refusal
    // comes once the body is read, and the connection stays usable. (Answering before the
    // body is read would close it, and a client still writing its body could lose the
    // answer to a reset.)
    let (first, second) = late_body_then_again(
        &host,
        "POST /data/some-flow/x HTTP/1.1\r\nhost: weft\r\nauthorization: Bearer nope\r\n",
        "GET /data/some-flow/x HTTP/1.1\r\nhost: weft\r\n\r\n",
    )
    .await;
    assert!(first.starts_with("HTTP/1.1 401"), "{first}");
    assert!(second.starts_with("HTTP/1.1 401"), "{second}");
    host.stop().await;
    db.cleanup().await;
}

/// On one raw connection: sends `head` (request line and headers, without the blank line)
/// with a chunked body whose only chunk follows once the server has seen the head, reads
/// the answer, then sends `again` on the same connection and reads its answer.
async fn late_body_then_again(host: &Host, head: &str, again: &str) -> (String, String) {
    let address = host.url.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!("{head}transfer-encoding: chunked\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    conn.write_all(b"a\r\n0123456789\r\n0\r\n\r\n")
        .await
        .unwrap();
    let first = read_response(&mut conn).await;
    conn.write_all(again.as_bytes()).await.unwrap();
    let second = read_response(&mut conn).await;
    (first, second)
}

/// Reads one HTTP/1.1 response with a `content-length` body off a raw connection.
async fn read_response(conn: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        let mut chunk = [0; 1024];
        let n = conn.read(&mut chunk).await.expect("an answer, not a reset");
        assert!(n > 0, "the connection closed; read so far: {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An app that answers without reading the body (the conformance app refuses PATCH) does
/// not cost the client its connection: the host reads what the app left unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_answering_before_reading_the_body_keeps_the_connection() {
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    let token = pull_token(&host, PROVIDER, "p-unread").await;
    let head = format!(
        "PATCH /data/p-unread/x HTTP/1.1\r\nhost: weft\r\nauthorization: Bearer {token}\r\n"
    );
    let again = format!("{head}content-length: 0\r\n\r\n");
    let (first, second) = late_body_then_again(&host, &head, &again).await;
    assert!(first.starts_with("HTTP/1.1 400"), "{first}");
    assert!(second.starts_with("HTTP/1.1 400"), "{second}");
    host.stop().await;
    db.cleanup().await;
}
