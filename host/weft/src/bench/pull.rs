//! B3: a provider pull of a large body through the data plane and an app's data entry:
//! the control plane (this benchmark) starts an http-pull flow over DPS, then the
//! counterparty pulls `GET /data/{flow}?bytes=N` with the flow's token (`hello` streams a
//! pattern); against native axum streaming the same bytes, produced the same way, behind a
//! token check. Throughput and peak RSS growth of each side.

use super::env::{Env, TENANT, dps_expect, flow_message, flow_message_with, signal_message};
use super::measure::{Rss, mib, reset_peak_rss, rss_of};
use super::{Plan, Row, Verdict};
use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use serde_json::json;
use std::time::{Duration, Instant};
use weft_auth::{Authenticator, Principal};
use weft_runtime::Entry;
use weft_runtime::config::CallLimits;

/// B3's target: Weft's throughput relative to native.
const TARGET_RATIO: f64 = 0.8;

/// B3's target for the peak RSS growth during one pull.
const TARGET_RSS_GROWTH: u64 = 64 << 20;

/// Chunk size of the native stream: the same as Weft's write permit on a body, so both
/// sides hand the connection equal chunks.
const NATIVE_CHUNK: usize = weft_runtime::config::OUTGOING_BODY_CHUNK_BYTES;

/// Flow id of the pull (the app only echoes it in logs).
const FLOW: &str = "bench-flow";

/// Chunk size of the native diagnostic that shows what a smaller chunk alone costs.
const SMALL_CHUNK: usize = 64 << 10;

#[derive(serde::Deserialize)]
struct PullQuery {
    bytes: u64,
    /// Chunk size of the native stream (default [`NATIVE_CHUNK`]).
    chunk: Option<usize>,
}

/// Checks the bearer JWT as both sides do.
async fn principal(auth: &Authenticator, headers: &HeaderMap) -> Result<Principal, Response> {
    let value = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Err(StatusCode::UNAUTHORIZED.into_response()),
        None => None,
    };
    auth.authenticate_header(value)
        .await
        .map_err(|_| StatusCode::UNAUTHORIZED.into_response())
}

/// Longest run [`extend_pattern`] copies at once (as hello does).
const PATTERN_RUN: usize = 4096;

/// hello's pattern (`a..z` repeating) from phase 0, long enough that a run can start at
/// any phase.
static PATTERN_TABLE: [u8; PATTERN_RUN + 26] = {
    let mut table = [0u8; PATTERN_RUN + 26];
    let mut i = 0;
    while i < table.len() {
        table[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    table
};

/// The byte at `offset` of hello's pattern.
fn pattern_byte(offset: u64) -> u8 {
    PATTERN_TABLE[(offset % 26) as usize]
}

/// Appends `len` pattern bytes from `offset` on, produced as hello produces them.
fn extend_pattern(buf: &mut BytesMut, mut offset: u64, len: usize) {
    let mut left = len;
    while left > 0 {
        let phase = (offset % 26) as usize;
        let run = left.min(PATTERN_RUN);
        buf.extend_from_slice(&PATTERN_TABLE[phase..phase + run]);
        offset += run as u64;
        left -= run;
    }
}

/// The native side: the same check, then the same bytes produced the same way (GET), or
/// the received bytes counted (POST, the push diagnostic).
pub(crate) fn native_routes(auth: Authenticator) -> Router {
    Router::new()
        .route("/data/{flow}", get(native_pull).post(native_push))
        .with_state(auth)
}

async fn native_push(
    State(auth): State<Authenticator>,
    Path(flow): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = principal(&auth, &headers).await {
        return r;
    }
    let mut body = body;
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    }
    axum::Json(json!({ "received": received, "flow": flow })).into_response()
}

/// Diagnostic: pushes `bytes` (64 KiB chunks of `z`) to `url`; the time until the answer.
async fn push(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    bytes: u64,
) -> anyhow::Result<Duration> {
    let chunk = Bytes::from(vec![b'z'; NATIVE_CHUNK]);
    let chunks = bytes.div_ceil(NATIVE_CHUNK as u64);
    let body =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let t0 = Instant::now();
    let resp = http
        .post(url)
        .bearer_auth(token)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap_or_default();
    let took = t0.elapsed();
    let sent = chunks * NATIVE_CHUNK as u64;
    if !status.is_success() || answer["received"] != sent {
        bail!("push to {url}: {status} {answer} (sent {sent})");
    }
    Ok(took)
}

/// Diagnostic: a consumer http-push flow's data address (path and token).
async fn prepare_push_flow(env: &Env, id: &str) -> anyhow::Result<(String, String)> {
    let reply = dps_expect(
        &env.http,
        &env.base(),
        &env.cp_authorization,
        &format!("/dps/{TENANT}/dataflows/prepare"),
        &flow_message_with(id, weft_dataplane::HTTP_PUSH_PROFILE),
        "PREPARED",
    )
    .await?;
    address_of(env, &reply)
}

/// The data path (on Weft) and token of a status message's DataAddress.
fn address_of(env: &Env, reply: &serde_json::Value) -> anyhow::Result<(String, String)> {
    let address = &reply["dataAddress"];
    let endpoint = address["endpoint"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no endpoint in {reply}"))?;
    let path = endpoint
        .strip_prefix(&env.base())
        .ok_or_else(|| anyhow::anyhow!("endpoint {endpoint} is not on Weft"))?
        .to_string();
    let token = address["endpointProperties"]
        .as_array()
        .and_then(|props| props.iter().find(|p| p["name"] == "authorization"))
        .and_then(|p| p["value"].as_str())
        .ok_or_else(|| anyhow::anyhow!("no token in {reply}"))?
        .to_string();
    Ok((path, token))
}

async fn native_pull(
    State(auth): State<Authenticator>,
    Path(_flow): Path<String>,
    Query(q): Query<PullQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = principal(&auth, &headers).await {
        return r;
    }
    let total = q.bytes;
    let chunk = q.chunk.unwrap_or(NATIVE_CHUNK).clamp(1, NATIVE_CHUNK);
    let stream = futures::stream::unfold(0u64, move |offset| async move {
        if offset >= total {
            return None;
        }
        let len = usize::try_from(total - offset).map_or(chunk, |r| r.min(chunk));
        let mut buf = BytesMut::with_capacity(len);
        extend_pattern(&mut buf, offset, len);
        Some((
            Ok::<_, std::convert::Infallible>(buf.freeze()),
            offset + len as u64,
        ))
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, total.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// One pull: time to the last byte, bytes received, and peak RSS growth.
struct Pull {
    took: Duration,
    rss_growth: u64,
}

async fn pull(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    bytes: u64,
) -> anyhow::Result<Pull> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())?;
    let peak_reset = reset_peak_rss();
    let before: Rss = rss_of(None);
    let t0 = Instant::now();
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        bail!("{addr}{path}: {status} {}", String::from_utf8_lossy(&body));
    }
    let mut body = response.into_body();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            if received == 0
                && !data
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern_byte(i as u64))
            {
                bail!("{path}: the body does not start with the pattern");
            }
            received += data.len() as u64;
        }
    }
    let took = t0.elapsed();
    let after = rss_of(None);
    drop(sender);
    let _ = conn.await;
    if received != bytes {
        bail!("{path}: received {received} bytes, expected {bytes}");
    }
    let rss_growth = if peak_reset {
        after.peak.saturating_sub(before.now)
    } else {
        after.now.saturating_sub(before.now)
    };
    Ok(Pull { took, rss_growth })
}

fn rate_mib(bytes: u64, took: Duration) -> f64 {
    mib(bytes) / took.as_secs_f64().max(1e-9)
}

/// Diagnostic: hello streaming `bytes` through `Runtime::handle_http` (entry `data`,
/// data-call limits) into an in-process consumer: the guest and the WASI plumbing, no HTTP.
async fn runtime_only(env: &Env, flow: &str, bytes: u64) -> anyhow::Result<Duration> {
    let resolved = env
        .weft
        .resolve(TENANT, "hello", Entry::Data(flow.to_string()))
        .await
        .map_err(|e| anyhow::anyhow!("resolve: {}", e.message))?;
    let mut call = resolved.call;
    call.limits = Some(CallLimits {
        memory_bytes: resolved.plugin.limits.memory_bytes,
        cpu_ms: weft_runtime::config::MAX_CALL_CPU_MS,
        wall_ms: weft_runtime::config::MAX_CALL_WALL_MS,
    });
    let request = hyper::Request::get(format!("http://localhost/?bytes={bytes}"))
        .body(Empty::<Bytes>::new())?;
    let t0 = Instant::now();
    let response = env
        .weft
        .runtime()
        .handle_http(resolved.plugin, call, request)
        .await?;
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow::anyhow!("body: {e:?}"))?;
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
        }
    }
    let took = t0.elapsed();
    if received != bytes {
        bail!("runtime-only pull: received {received} bytes, expected {bytes}");
    }
    Ok(took)
}

/// Diagnostic: producing `bytes` of the pattern natively, nothing else.
fn generation_only(bytes: u64) -> Duration {
    let t0 = Instant::now();
    let mut offset = 0u64;
    while offset < bytes {
        let len = usize::try_from(bytes - offset).map_or(NATIVE_CHUNK, |r| r.min(NATIVE_CHUNK));
        let mut buf = BytesMut::with_capacity(len);
        extend_pattern(&mut buf, offset, len);
        std::hint::black_box(buf.freeze());
        offset += len as u64;
    }
    t0.elapsed()
}

/// Starts a provider http-pull flow over DPS; returns its data path and token.
async fn start_flow(env: &Env, id: &str) -> anyhow::Result<(String, String)> {
    let reply = dps_expect(
        &env.http,
        &env.base(),
        &env.cp_authorization,
        &format!("/dps/{TENANT}/dataflows/start"),
        &flow_message(id),
        "STARTED",
    )
    .await?;
    address_of(env, &reply)
}

pub(crate) async fn run(plan: &Plan, env: &Env) -> anyhow::Result<Row> {
    let bytes = plan.pull_bytes;
    let flow = format!("b3-{}", std::process::id());
    let (data_path, flow_token) = start_flow(env, &flow).await.context("starting the flow")?;
    let weft_path = format!("{data_path}?bytes={bytes}");
    let native_path = format!("/data/{FLOW}?bytes={bytes}");
    let native_small_path = format!("/data/{FLOW}?bytes={bytes}&chunk={SMALL_CHUNK}");
    let jwt = env.tenant_token.as_str();
    // A small warm-up of each side (JWKS fetch, first instance, connection setup).
    pull(
        env.weft_addr,
        &format!("{data_path}?bytes=65536"),
        &flow_token,
        65_536,
    )
    .await
    .context("Weft warm-up pull")?;
    pull(
        env.native_addr,
        &format!("/data/{FLOW}?bytes=65536"),
        jwt,
        65_536,
    )
    .await
    .context("native warm-up pull")?;
    let mut weft = Vec::new();
    let mut native = Vec::new();
    let mut native_small = Vec::new();
    for round in 0..plan.pull_rounds {
        for side in [round % 2, (round + 1) % 2] {
            if side == 0 {
                weft.push(
                    pull(env.weft_addr, &weft_path, &flow_token, bytes)
                        .await
                        .context("Weft pull")?,
                );
            } else {
                native.push(
                    pull(env.native_addr, &native_path, jwt, bytes)
                        .await
                        .context("native pull")?,
                );
            }
        }
        native_small.push(
            pull(env.native_addr, &native_small_path, jwt, bytes)
                .await
                .context("native small-chunk pull")?,
        );
    }
    let runtime_only = runtime_only(env, &flow, bytes)
        .await
        .context("runtime-only pull")?;
    let generation_only = generation_only(bytes);
    // Push diagnostic: the other direction, where the app only counts bytes.
    let sink = format!("{flow}-push");
    let (push_path, push_token) = prepare_push_flow(env, &sink).await.context("push flow")?;
    let weft_push = push(
        &env.http,
        &format!("{}{push_path}", env.base()),
        &push_token,
        bytes,
    )
    .await
    .context("Weft push")?;
    let native_push = push(
        &env.http,
        &format!("http://{}/data/{FLOW}", env.native_addr),
        jwt,
        bytes,
    )
    .await
    .context("native push")?;
    dps_expect(
        &env.http,
        &env.base(),
        &env.cp_authorization,
        &format!("/dps/{TENANT}/dataflows/{flow}/terminate"),
        &signal_message(),
        "TERMINATED",
    )
    .await
    .context("terminating the flow")?;

    let median_rate = |pulls: &[Pull]| {
        let mut rates: Vec<f64> = pulls.iter().map(|p| rate_mib(bytes, p.took)).collect();
        rates.sort_by(f64::total_cmp);
        (rates[rates.len() / 2], rates[0])
    };
    let peak = |pulls: &[Pull]| pulls.iter().map(|p| p.rss_growth).max().unwrap_or(0);
    let (w_rate, w_min) = median_rate(&weft);
    let (n_rate, n_min) = median_rate(&native);
    let (small_rate, _) = median_rate(&native_small);
    let (w_rss, n_rss) = (peak(&weft), peak(&native));
    let ratio = w_rate / n_rate.max(1e-9);
    let verdict = Verdict::of(ratio >= TARGET_RATIO && w_rss <= TARGET_RSS_GROWTH);
    let size = if bytes >= 1 << 30 {
        format!("{:.0} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", mib(bytes))
    };
    let notes = vec![
        "Weft: DPS start (http-pull, provider) by this benchmark as control plane, then \
         GET /data/{flow} with the flow's token through the data plane into hello's data \
         entry; native: the same pattern from an axum handler behind a JWT check"
            .to_string(),
        format!(
            "{size} per pull{}, {} pulls per side alternating; rates are median (slowest); \
             hello writes up to {} KiB per host call (Weft's check-write permit on a body \
             and the SDK's MAX_WRITE_CHUNK), native {} KiB chunks",
            if plan.full {
                ""
            } else {
                " (default run; --full pulls 1 GiB)"
            },
            plan.pull_rounds,
            weft_runtime::config::OUTGOING_BODY_CHUNK_BYTES >> 10,
            NATIVE_CHUNK >> 10
        ),
        format!(
            "diagnostic: native writing {} KiB chunks (chunk size alone): {small_rate:.0} MiB/s ({:.2}× native)",
            SMALL_CHUNK >> 10,
            small_rate / n_rate.max(1e-9)
        ),
        format!(
            "diagnostic: hello streaming through Runtime::handle_http into this process (no HTTP): \
             {:.0} MiB/s; the native pattern loop alone: {:.0} MiB/s",
            rate_mib(bytes, runtime_only),
            rate_mib(bytes, generation_only)
        ),
        format!(
            "diagnostic: push of {size} into a consumer flow (hello only counts the bytes; \
             64 KiB chunks from the client): Weft {:.0} MiB/s, native {:.0} MiB/s ({:.2}×)",
            rate_mib(bytes, weft_push),
            rate_mib(bytes, native_push),
            native_push.as_secs_f64() / weft_push.as_secs_f64().max(1e-9)
        ),
        format!(
            "peak RSS growth of the whole process (server and client) during a pull: Weft {:.1} MiB, native {:.1} MiB",
            mib(w_rss),
            mib(n_rss)
        ),
    ];
    Ok(Row {
        id: "B3",
        scenario: format!("provider pull {size} through the data plane"),
        weft: format!("{w_rate:.0} MiB/s ({w_min:.0}), RSS +{:.1} MiB", mib(w_rss)),
        baseline: format!("{n_rate:.0} MiB/s ({n_min:.0}), RSS +{:.1} MiB", mib(n_rss)),
        ratio: format!("{ratio:.2}× MiB/s"),
        target: format!(
            "≥ {TARGET_RATIO}× throughput; RSS ≤ +{} MiB",
            TARGET_RSS_GROWTH >> 20
        ),
        verdict,
        figures: json!({
            "bytes": bytes,
            "weft_mib_s": w_rate, "weft_min_mib_s": w_min,
            "native_mib_s": n_rate, "native_min_mib_s": n_min,
            "native_small_chunk_mib_s": small_rate,
            "runtime_only_mib_s": rate_mib(bytes, runtime_only),
            "generation_only_mib_s": rate_mib(bytes, generation_only),
            "weft_push_mib_s": rate_mib(bytes, weft_push),
            "native_push_mib_s": rate_mib(bytes, native_push),
            "weft_rss_growth_bytes": w_rss, "native_rss_growth_bytes": n_rss,
            "ratio": ratio,
        }),
        notes,
    })
}
