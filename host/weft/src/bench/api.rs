//! B2: a tenant API request through the whole stack (HTTP, JWT check, tenancy lookup, a
//! fresh Wasm instance answering small JSON) against a native axum handler doing the same
//! JSON work behind the same JWT check; both under the same concurrent keep-alive load.
//!
//! B5: the same load on Weft while `hello` 0.1.0 and 2.0.0 are activated alternately
//! through the admin API, against the same load without swaps.

use super::env::{self, Env, TENANT, TENANT_BPN};
use super::load::{self, Outcome, Target};
use super::measure::{CpuOf, cpu_time, fmt_dur, fmt_rate, us};
use super::{Plan, Row, Verdict};
use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weft_auth::{Authenticator, Role};
use weft_runtime::Entry;

/// B2's target: Weft's throughput relative to the native handler.
const B2_TARGET_RATIO: f64 = 0.5;

/// B5's target: p99 while swapping relative to p99 without swaps.
const B5_TARGET_P99_RATIO: f64 = 2.0;

/// The request both sides answer.
fn whoami_path() -> String {
    format!("/tenants/{TENANT}/apps/hello/whoami")
}

/// The native baseline of B2: the same route, token check and JSON as hello's `whoami`.
pub(crate) fn native_routes(auth: Authenticator) -> Router {
    Router::new()
        .route("/tenants/{ctx}/apps/hello/whoami", get(native_whoami))
        .with_state(auth)
}

async fn native_whoami(
    State(auth): State<Authenticator>,
    Path(ctx): Path<String>,
    headers: HeaderMap,
) -> Response {
    let value = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return StatusCode::UNAUTHORIZED.into_response(),
        None => None,
    };
    let principal = match auth.authenticate_header(value).await {
        Ok(p) => p,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    // Weft's tenant rule: an admin, or a participant of exactly this context with the
    // apps scope.
    let allowed = match principal.role {
        Role::Admin => true,
        Role::Provisioner => false,
        Role::Participant => {
            principal.participant_context_id.as_deref() == Some(ctx.as_str())
                && principal.has_scope(auth.apps_scope())
        }
    };
    if !allowed {
        return StatusCode::FORBIDDEN.into_response();
    }
    axum::Json(json!({
        "tenant": {
            "participantContextId": ctx,
            "did": env::did(&ctx),
            "bpn": TENANT_BPN,
        },
        "entryPoint": "api",
        "plugin": { "id": "hello", "version": "0.1.0" },
        "build": "1",
    }))
    .into_response()
}

/// One side's accumulated load results, with host CPU (process CPU minus the generator's).
#[derive(Default)]
struct Side {
    outcome: Outcome,
    host_cpu: Duration,
}

impl Side {
    fn cpu_per_request(&self) -> Duration {
        let n = (self.outcome.ok + self.outcome.failed).max(1);
        self.host_cpu / u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn summary(&mut self) -> String {
        format!(
            "{}, {} / {}",
            fmt_rate(self.outcome.rate(), "req"),
            fmt_dur(self.outcome.latencies.p50()),
            fmt_dur(self.outcome.latencies.p99())
        )
    }
}

/// One load run, with the host's share of CPU.
async fn measure(target: &Target, connections: usize, duration: Duration) -> anyhow::Result<Side> {
    let target = target.clone();
    let cpu0 = cpu_time(CpuOf::Process);
    let outcome =
        tokio::task::spawn_blocking(move || load::run(&target, connections, duration)).await??;
    let total = cpu_time(CpuOf::Process).saturating_sub(cpu0);
    Ok(Side {
        host_cpu: total.saturating_sub(outcome.generator_cpu),
        outcome,
    })
}

fn accumulate(into: &mut Side, run: Side) {
    into.host_cpu += run.host_cpu;
    into.outcome.merge(run.outcome);
}

/// Checks a target answers 200 once, returning the body.
async fn probe(env: &Env, target: &Target) -> anyhow::Result<String> {
    let resp = env
        .http
        .get(format!("http://{}{}", target.addr, target.path))
        .bearer_auth(&target.token)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!("{} answered {status}: {body}", target.addr);
    }
    Ok(body)
}

pub(crate) async fn run_b2(plan: &Plan, env: &Env) -> anyhow::Result<Row> {
    let weft_target = Target {
        addr: env.weft_addr,
        path: whoami_path(),
        token: env.tenant_token.clone(),
        markers: Vec::new(),
    };
    let native_target = Target {
        addr: env.native_addr,
        ..weft_target.clone()
    };
    let weft_body = probe(env, &weft_target).await.context("Weft")?;
    let native_body = probe(env, &native_target).await.context("native")?;
    measure(&weft_target, plan.connections, plan.api_warmup).await?;
    measure(&native_target, plan.connections, plan.api_warmup).await?;

    let mut weft = Side::default();
    let mut native = Side::default();
    for round in 0..plan.api_rounds {
        for side in [round % 2, (round + 1) % 2] {
            if side == 0 {
                let run = measure(&weft_target, plan.connections, plan.api_round).await?;
                accumulate(&mut weft, run);
            } else {
                let run = measure(&native_target, plan.connections, plan.api_round).await?;
                accumulate(&mut native, run);
            }
        }
    }
    let ratio = weft.outcome.rate() / native.outcome.rate().max(1e-9);
    let verdict = Verdict::of(ratio >= B2_TARGET_RATIO && weft.outcome.failed == 0);
    let parts = breakdown(plan, env, &weft_target, &native_target).await?;
    let mut notes = vec![
        format!(
            "{} connections, {} alternating rounds of {:.1} s per side; load generator on its own thread",
            plan.connections,
            plan.api_rounds,
            plan.api_round.as_secs_f64()
        ),
        format!(
            "host CPU per request (process CPU minus the generator thread): Weft {}, native {}",
            fmt_dur(weft.cpu_per_request()),
            fmt_dur(native.cpu_per_request())
        ),
        parts.note(),
        format!("Weft answered {weft_body}"),
        format!("native answered {native_body}"),
    ];
    if let Some(f) = &weft.outcome.first_failure {
        notes.push(format!(
            "{} Weft requests failed, first: {f}",
            weft.outcome.failed
        ));
    }
    let figures = json!({
        "weft_rps": weft.outcome.rate(), "native_rps": native.outcome.rate(),
        "weft_ok": weft.outcome.ok, "weft_failed": weft.outcome.failed,
        "native_ok": native.outcome.ok, "native_failed": native.outcome.failed,
        "weft_p50_us": us(weft.outcome.latencies.p50()), "weft_p99_us": us(weft.outcome.latencies.p99()),
        "native_p50_us": us(native.outcome.latencies.p50()), "native_p99_us": us(native.outcome.latencies.p99()),
        "weft_cpu_per_request_us": us(weft.cpu_per_request()),
        "native_cpu_per_request_us": us(native.cpu_per_request()),
        "throughput_ratio": ratio,
        "breakdown_cpu_us": parts.figures(),
    });
    Ok(Row {
        id: "B2",
        scenario: "tenant API whoami under load".into(),
        weft: weft.summary(),
        baseline: native.summary(),
        ratio: format!("{ratio:.2}× req/s"),
        target: format!("≥ {B2_TARGET_RATIO}× throughput"),
        verdict,
        figures,
        notes,
    })
}

/// CPU and wall time of one operation, measured over sequential repetitions.
struct Cost {
    cpu: Duration,
    wall_p50: Duration,
}

/// Runs `op` `n` times one after the other; the process's CPU per operation (other
/// threads idle meanwhile, so it includes work handed to them, such as SQLite's).
async fn cost<F, Fut>(n: usize, mut op: F) -> anyhow::Result<Cost>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let n = n.max(1);
    let mut wall = super::measure::Samples::with_capacity(n);
    let cpu0 = cpu_time(CpuOf::Process);
    for _ in 0..n {
        let t0 = std::time::Instant::now();
        op().await?;
        wall.push(t0.elapsed());
    }
    let cpu = cpu_time(CpuOf::Process).saturating_sub(cpu0) / u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Cost {
        cpu,
        wall_p50: wall.p50(),
    })
}

/// Where one tenant API request's CPU goes, component by component.
struct Breakdown {
    jwt: Cost,
    resolve: Cost,
    wasm: Cost,
    weft_request: Duration,
    native_request: Duration,
}

impl Breakdown {
    fn note(&self) -> String {
        format!(
            "where a Weft request's CPU goes, each part measured alone and sequentially \
             (CPU, wall p50 in brackets; CPU includes the threads the part hands work to): \
             JWT check {} ({}), tenancy resolve (cached records; 3 store reads on a miss) {} ({}), Wasm call = fresh \
             instance + whoami + body {} ({}); a whole request over one connection {} vs native {}",
            fmt_dur(self.jwt.cpu),
            fmt_dur(self.jwt.wall_p50),
            fmt_dur(self.resolve.cpu),
            fmt_dur(self.resolve.wall_p50),
            fmt_dur(self.wasm.cpu),
            fmt_dur(self.wasm.wall_p50),
            fmt_dur(self.weft_request),
            fmt_dur(self.native_request),
        )
    }

    fn figures(&self) -> serde_json::Value {
        json!({
            "jwt": us(self.jwt.cpu), "resolve": us(self.resolve.cpu), "wasm": us(self.wasm.cpu),
            "weft_request": us(self.weft_request), "native_request": us(self.native_request),
        })
    }
}

async fn breakdown(
    plan: &Plan,
    env: &Env,
    weft_target: &Target,
    native_target: &Target,
) -> anyhow::Result<Breakdown> {
    let n = plan.breakdown_ops;
    let bearer = format!("Bearer {}", env.tenant_token);
    let auth = env.weft.authenticator();
    let jwt = cost(n, || async {
        auth.authenticate_header(Some(&bearer)).await?;
        Ok(())
    })
    .await?;
    let weft = &env.weft;
    let resolve = cost(n, || async {
        weft.resolve(TENANT, "hello", Entry::Api)
            .await
            .map_err(|e| anyhow::anyhow!("resolve: {}", e.message))?;
        Ok(())
    })
    .await?;
    let resolved = weft
        .resolve(TENANT, "hello", Entry::Api)
        .await
        .map_err(|e| anyhow::anyhow!("resolve: {}", e.message))?;
    let runtime = weft.runtime().clone();
    let wasm = cost(n, || {
        let (runtime, plugin, call) = (
            runtime.clone(),
            resolved.plugin.clone(),
            resolved.call.clone(),
        );
        async move {
            let request = hyper::Request::get("http://localhost/whoami")
                .body(http_body_util::Empty::<bytes::Bytes>::new())?;
            let response = runtime.handle_http(plugin, call, request).await?;
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .map_err(|e| anyhow::anyhow!("body: {e:?}"))?;
            if body.to_bytes().is_empty() {
                bail!("whoami answered an empty body");
            }
            Ok(())
        }
    })
    .await?;
    // Whole requests, one connection, sequential: host CPU per request.
    let window = plan.api_warmup;
    let weft_request = measure(weft_target, 1, window).await?.cpu_per_request();
    let native_request = measure(native_target, 1, window).await?.cpu_per_request();
    Ok(Breakdown {
        jwt,
        resolve,
        wasm,
        weft_request,
        native_request,
    })
}

/// Activates hello 2.0.0 and 0.1.0 alternately until told to stop; ends on 0.1.0.
async fn swapper(
    http: reqwest::Client,
    base: String,
    token: String,
    interval: Duration,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
) -> Option<String> {
    let mut first_failure = None;
    let mut next = "2.0.0";
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && next == "2.0.0" {
            break;
        }
        match env::activate(&http, &base, &token, "hello", next).await {
            Ok(_) => {
                swaps.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                failures.fetch_add(1, Ordering::Relaxed);
                first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
        next = if next == "2.0.0" { "0.1.0" } else { "2.0.0" };
        if !stopping {
            tokio::time::sleep(interval).await;
        }
    }
    first_failure
}

pub(crate) async fn run_b5(plan: &Plan, env: &Env) -> anyhow::Result<Row> {
    let target = Target {
        addr: env.weft_addr,
        path: whoami_path(),
        token: env.tenant_token.clone(),
        markers: vec![r#""build":"1""#, r#""build":"2""#],
    };
    probe(env, &target).await?;
    measure(&target, plan.connections, plan.api_warmup).await?;
    let swaps = Arc::new(AtomicU64::new(0));
    let swap_failures = Arc::new(AtomicU64::new(0));
    let mut swap_failure = None;
    let mut steady = Side::default();
    let mut swapping = Side::default();
    for round in 0..plan.api_rounds {
        for side in [round % 2, (round + 1) % 2] {
            if side == 0 {
                let run = measure(&target, plan.connections, plan.api_round).await?;
                accumulate(&mut steady, run);
                continue;
            }
            let stop = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn(swapper(
                env.http.clone(),
                env.base(),
                env.admin_token.clone(),
                plan.swap_interval,
                stop.clone(),
                swaps.clone(),
                swap_failures.clone(),
            ));
            let run = measure(&target, plan.connections, plan.api_round).await;
            stop.store(true, Ordering::Relaxed);
            let failure = task.await.context("swapper task")?;
            if swap_failure.is_none() {
                swap_failure = failure;
            }
            accumulate(&mut swapping, run?);
        }
    }
    let (s99, w99) = (
        steady.outcome.latencies.p99(),
        swapping.outcome.latencies.p99(),
    );
    let ratio = us(w99) / us(s99).max(1e-9);
    let swaps = swaps.load(Ordering::Relaxed);
    let swap_failed = swap_failures.load(Ordering::Relaxed);
    let failed = steady.outcome.failed + swapping.outcome.failed;
    let both_builds = swapping.outcome.markers.iter().all(|n| *n > 0);
    let verdict =
        Verdict::of(failed == 0 && swap_failed == 0 && swaps > 0 && ratio <= B5_TARGET_P99_RATIO);
    let mut notes = vec![
        format!(
            "{swaps} activations ({swap_failed} failed), one every {} ms while swapping; \
             answers while swapping: {} from build 1, {} from build 2{}",
            plan.swap_interval.as_millis(),
            swapping.outcome.markers.first().copied().unwrap_or(0),
            swapping.outcome.markers.get(1).copied().unwrap_or(0),
            if both_builds {
                ""
            } else {
                " (only one build answered: swaps not seen)"
            }
        ),
        format!(
            "failed requests: {} while swapping, {} steady",
            swapping.outcome.failed, steady.outcome.failed
        ),
    ];
    for f in [
        &swapping.outcome.first_failure,
        &steady.outcome.first_failure,
        &swap_failure,
    ]
    .into_iter()
    .flatten()
    {
        notes.push(format!("first failure: {f}"));
    }
    let figures = json!({
        "swaps": swaps, "swap_failed": swap_failed,
        "swapping_failed": swapping.outcome.failed, "steady_failed": steady.outcome.failed,
        "swapping_ok": swapping.outcome.ok, "steady_ok": steady.outcome.ok,
        "swapping_rps": swapping.outcome.rate(), "steady_rps": steady.outcome.rate(),
        "swapping_p50_us": us(swapping.outcome.latencies.p50()), "swapping_p99_us": us(w99),
        "steady_p50_us": us(steady.outcome.latencies.p50()), "steady_p99_us": us(s99),
        "build_1_answers": swapping.outcome.markers.first(), "build_2_answers": swapping.outcome.markers.get(1),
        "p99_ratio": ratio,
    });
    Ok(Row {
        id: "B5",
        scenario: "version swaps under B2 load (weft = swapping)".into(),
        weft: swapping.summary(),
        baseline: steady.summary(),
        ratio: format!("{ratio:.2}× p99"),
        target: format!("0 failed; p99 ≤ {B5_TARGET_P99_RATIO}× steady"),
        verdict,
        figures,
        notes,
    })
}
