//! Large payloads stream through the host and the app with bounded memory: a pull of
//! [`PULL_BYTES`] (1 GiB) from the conformance app and a push of [`PUSH_BYTES`] into it,
//! checking the pattern throughout while the peak RSS of this process grows far less than
//! the payload. This binary holds only this test, so the peak RSS is its own.

mod common;

use common::*;
use futures::StreamExt;

/// The pull.
const PULL_BYTES: u64 = 1 << 30;

/// The push.
const PUSH_BYTES: u64 = 64 << 20;

/// Peak RSS growth allowed while moving a payload: far below any payload here, yet room
/// for the instance's linear memory, buffers and allocator slack.
const MAX_RSS_GROWTH: u64 = 48 << 20;

/// Peak resident set size of this process (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Pulls `bytes` through the provider app, checking the pattern on the fly.
async fn pull(host: &Host, token: &str, id: &str, bytes: u64) -> u64 {
    let response = reqwest::Client::new()
        .get(format!("{}/data/{id}?bytes={bytes}", host.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut offset: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        // Every 61st byte (coprime to the pattern's 26) plus each chunk's last byte: the
        // pattern is checked everywhere in the stream without a debug-build crawl.
        for i in (0..chunk.len())
            .step_by(61)
            .chain(chunk.len().checked_sub(1))
        {
            let expected = b'a' + ((offset + i as u64) % 26) as u8;
            assert_eq!(chunk[i], expected, "byte {}", offset + i as u64);
        }
        offset += chunk.len() as u64;
    }
    offset
}

async fn started_token(host: &Host, id: &str) -> String {
    let r = host
        .client(PROVIDER)
        .start(&flow_message(id, "a", PULL))
        .await;
    assert_status_message(&r, 200, id, "STARTED");
    property(&r.body["dataAddress"], "authorization")
        .unwrap()
        .to_owned()
}

async fn large_pull(bytes: u64) {
    let db = Db::new();
    let cp = TestCp::start().await;
    let host = Host::start(&db, config(&cp.url)).await;
    let token = started_token(&host, "big").await;
    // Warm up: instance, connection pools, allocator arenas.
    assert_eq!(pull(&host, &token, "big", 8 << 20).await, 8 << 20);
    let before = peak_rss();
    assert_eq!(pull(&host, &token, "big", bytes).await, bytes);
    let growth = peak_rss().saturating_sub(before);
    eprintln!("pull of {bytes} bytes: peak RSS grew by {growth} bytes");
    assert!(
        growth < MAX_RSS_GROWTH,
        "peak RSS grew by {growth} bytes for a {bytes}-byte pull"
    );

    // Push into a consumer app, streamed from a generator.
    let r = host
        .client(CONSUMER)
        .prepare(&flow_message("sink", "a", PUSH))
        .await;
    let push_token = property(&r.body["dataAddress"], "authorization")
        .unwrap()
        .to_owned();
    let chunk = bytes::Bytes::from(vec![b'z'; 64 << 10]);
    let chunks = PUSH_BYTES / chunk.len() as u64;
    let body =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let before = peak_rss();
    let response = reqwest::Client::new()
        .post(format!("{}/data/sink", host.url))
        .bearer_auth(&push_token)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let v: serde_json::Value = response.json().await.unwrap();
    assert_eq!(v["received"], PUSH_BYTES);
    let growth = peak_rss().saturating_sub(before);
    eprintln!("push of {PUSH_BYTES} bytes: peak RSS grew by {growth} bytes");
    assert!(
        growth < MAX_RSS_GROWTH,
        "peak RSS grew by {growth} bytes for a {PUSH_BYTES}-byte push"
    );
    host.stop().await;
    db.cleanup().await;
}

/// ~20 s in a debug build: the guest writes 4 KiB per host call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_pull_and_a_64_mib_push_stream_with_bounded_memory() {
    large_pull(PULL_BYTES).await;
}
