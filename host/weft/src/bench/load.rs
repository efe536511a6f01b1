//! The HTTP load generator: N keep-alive HTTP/1.1 connections (hyper's client), each
//! sending one request after the other for a fixed time, on a thread and single-threaded
//! runtime of their own so their CPU time can be read (and subtracted) separately.

use super::measure::{CpuOf, Samples, cpu_time};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where and what to request.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// Path and query.
    pub(crate) path: String,
    pub(crate) token: String,
    /// Substrings counted in response bodies (e.g. which plugin build answered).
    pub(crate) markers: Vec<&'static str>,
}

/// What one load run saw.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) latencies: Samples,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) elapsed: Duration,
    /// CPU time of the generator thread itself.
    pub(crate) generator_cpu: Duration,
    /// How many bodies contained each marker.
    pub(crate) markers: Vec<u64>,
    pub(crate) first_failure: Option<String>,
}

impl Outcome {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
        self.generator_cpu += other.generator_cpu;
        if self.markers.len() < other.markers.len() {
            self.markers.resize(other.markers.len(), 0);
        }
        for (m, o) in self.markers.iter_mut().zip(other.markers) {
            *m += o;
        }
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// Runs `connections` clients against `target` for `duration`, blocking the caller
/// (call it from `spawn_blocking`).
pub(crate) fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let target = target.clone();
    let thread = std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || -> anyhow::Result<Outcome> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let cpu0 = cpu_time(CpuOf::Thread);
            let mut outcome = rt.block_on(drive(&target, connections, duration))?;
            outcome.generator_cpu = cpu_time(CpuOf::Thread).saturating_sub(cpu0);
            Ok(outcome)
        })
        .context("starting the load thread")?;
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
}

async fn drive(target: &Target, connections: usize, duration: Duration) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let target = target.clone();
        tasks.spawn(async move { client(&target, deadline).await });
    }
    let mut outcome = Outcome {
        markers: vec![0; target.markers.len()],
        ..Outcome::default()
    };
    while let Some(joined) = tasks.join_next().await {
        outcome.merge(joined.context("load client task")??);
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One keep-alive connection sending requests until the deadline.
async fn client(target: &Target, deadline: Instant) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome {
        markers: vec![0; target.markers.len()],
        ..Outcome::default()
    };
    let host = target.addr.to_string();
    let bearer = format!("Bearer {}", target.token);
    let mut sender: Option<Sender> = None;
    while Instant::now() < deadline {
        let mut s = match sender.take() {
            Some(s) => s,
            None => connect(target.addr).await.context("connecting")?,
        };
        if s.ready().await.is_err() {
            continue;
        }
        let request = hyper::Request::get(target.path.as_str())
            .header(header::HOST, host.as_str())
            .header(header::AUTHORIZATION, bearer.as_str())
            .body(Empty::<Bytes>::new())?;
        let t0 = Instant::now();
        let result = async {
            let response = s.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        let took = t0.elapsed();
        match result {
            Ok((status, body)) if status.is_success() => {
                outcome.ok += 1;
                outcome.latencies.push(took);
                for (i, m) in target.markers.iter().enumerate() {
                    if contains(&body, m.as_bytes()) {
                        outcome.markers[i] += 1;
                    }
                }
                sender = Some(s);
            }
            Ok((status, body)) => {
                outcome.failed += 1;
                outcome
                    .first_failure
                    .get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
                sender = Some(s);
            }
            Err(e) => {
                outcome.failed += 1;
                outcome
                    .first_failure
                    .get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    Ok(outcome)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
