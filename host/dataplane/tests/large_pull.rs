//! Large payloads stream through the host and the app with bounded memory: a pull of
//! [`PULL_BYTES`] from the conformance app and a push of [`PUSH_BYTES`] into it, checking
//! every byte while the peak RSS of this process grows far less than the payload.
//! (A 1 GiB pull runs with `--ignored`.) This binary holds only these tests, so the peak
//! RSS is theirs.

mod common;

use common::*;
use futures::StreamExt;

/// The pull that must always run.
const PULL_BYTES: u64 = 256 << 20;

/// The push that must always run.
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
        for (i, b) in chunk.iter().enumerate() {
            let expected = b'a' + ((offset + i as u64) % 26) as u8;
            assert_eq!(*b, expected, "byte {}", offset + i as u64);
        }
        offset += chunk.len() as u64;
    }
    offset
}

async fn started_token(host: &Host, id: &str) -> String {
    let r = host.client(PROVIDER).start(&flow_message(id, "a", PULL)).await;
    assert_status_message(&r, 200, id, "STARTED");
    property(&r.body["dataAddress"], "authorization").unwrap().to_owned()
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
    assert!(growth < MAX_RSS_GROWTH, "peak RSS grew by {growth} bytes for a {bytes}-byte pull");

    // Push into a consumer app, streamed from a generator.
    let r = host.client(CONSUMER).prepare(&flow_message("sink", "a", PUSH)).await;
    let push_token = property(&r.body["dataAddress"], "authorization").unwrap().to_owned();
    let chunk = bytes::Bytes::from(vec![b'z'; 64 << 10]);
    let chunks = PUSH_BYTES / chunk.len() as u64;
    let body = futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
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
    assert!(growth < MAX_RSS_GROWTH, "peak RSS grew by {growth} bytes for a {PUSH_BYTES}-byte push");
    host.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_pull_and_a_64_mib_push_stream_with_bounded_memory() {
    large_pull(PULL_BYTES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB through a debug build takes minutes; run with --ignored"]
async fn a_1_gib_pull_streams_with_bounded_memory() {
    large_pull(1 << 30).await;
}
