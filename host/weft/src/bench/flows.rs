//! B4: DPS flows through the data plane and an app's hooks with durable SQLite, concurrency
//! 8: provider start → terminate, consumer prepare → started → terminate, sent over HTTP by
//! this benchmark as the tenants' control plane (one tenant per worker). Reports flows/s,
//! p50/p99 per signal and the host's CPU time per complete flow: the process's CPU minus
//! the load generator thread's own (`getrusage`).
//!
//! A diagnostic phase calls the same hooks directly (`Runtime::data_flow`, no signaling),
//! to show how much of a flow's cost is the hook path (a fresh instance per signal, and
//! hello recording the signal in SQLite state), and the store alone writing state the way
//! the hooks do (one durable commit per write).

use super::env::{self, Env, TENANT, dps_expect, flow_message, signal_message};
use super::measure::{CpuOf, Samples, cpu_time, fmt_dur, us};
use super::{Plan, Row, Verdict};
use anyhow::{Context, bail};
use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_runtime::bindings::data_flows::{DataFlow, Decision, FlowRole, FlowState, TransferMode};
use weft_runtime::{CallContext, Entry, FlowOutcome, FlowSignal, LoadedPlugin, Runtime};
use weft_store::WriteStats;

/// The target: host CPU per complete provider flow.
const TARGET_CPU_PER_PROVIDER_FLOW: Duration = Duration::from_micros(300);

/// Flow ids each worker cycles through: hello records each signal under `flow/{id}`, and
/// the tenant's state quota (1 MiB) must not fill up during a long run.
const IDS_PER_WORKER: u64 = 64;

/// Numbers flow ids (process ids must be unique per tenant).
static NEXT_FLOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tenant of DPS worker `i`: each worker is its own tenant (own state quota).
fn worker_tenant(i: usize) -> String {
    format!("b4-{i}")
}

/// fsync probes of the data directory, reported next to B4 (durable SQLite waits on them).
const FSYNC_PROBES: usize = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Provider,
    Consumer,
}

/// Signals of one kind of flow, in order, with their names.
fn signals(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Provider => &["start", "terminate"],
        Kind::Consumer => &["prepare", "started", "terminate"],
    }
}

fn flow(id: String, kind: Kind, state: FlowState) -> DataFlow {
    DataFlow {
        message_id: format!("{id}-msg"),
        id,
        participant_id: "did:web:localhost:bench".into(),
        counter_party_id: "did:web:localhost:other".into(),
        dataspace_context: "bench".into(),
        agreement_id: "agreement-1".into(),
        dataset_id: "dataset-1".into(),
        profile: "https://w3id.org/dspace-sig/profile/http-pull".into(),
        role: match kind {
            Kind::Provider => FlowRole::Provider,
            Kind::Consumer => FlowRole::Consumer,
        },
        mode: TransferMode::Pull,
        state,
        claims: "{}".into(),
        labels: Vec::new(),
        metadata: "{}".into(),
        data_address: None,
    }
}

/// The signal `step` of a flow of `kind`.
fn signal(kind: Kind, step: usize, id: &str) -> FlowSignal {
    let f = |state| flow(id.to_string(), kind, state);
    match (kind, step) {
        (Kind::Provider, 0) => FlowSignal::Start(f(FlowState::Initialized)),
        (Kind::Consumer, 0) => FlowSignal::Prepare(f(FlowState::Initialized)),
        (Kind::Consumer, 1) => FlowSignal::Started(f(FlowState::Prepared)),
        _ => FlowSignal::Terminate(f(FlowState::Started), None),
    }
}

fn accepted(outcome: &FlowOutcome) -> bool {
    matches!(
        outcome,
        FlowOutcome::Accepted | FlowOutcome::Decision(Decision::Accept(_))
    )
}

/// What one worker measured: latencies per signal and complete flows.
struct Worked {
    per_signal: Vec<Samples>,
    flows: u64,
}

async fn hook_worker(
    runtime: Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
    call: CallContext,
    kind: Kind,
    index: usize,
    deadline: Instant,
) -> anyhow::Result<Worked> {
    let steps = signals(kind).len();
    let mut per_signal = vec![Samples::default(); steps];
    let mut flows = 0u64;
    while Instant::now() < deadline {
        let id = format!("w{index}-{}", flows % IDS_PER_WORKER);
        for (step, samples) in per_signal.iter_mut().enumerate() {
            let t0 = Instant::now();
            let outcome = runtime
                .data_flow(&plugin, call.clone(), signal(kind, step, &id))
                .await;
            samples.push(t0.elapsed());
            match outcome {
                Ok(Ok(o)) if accepted(&o) => {}
                Ok(Ok(o)) => bail!("{} answered {o:?}", signals(kind)[step]),
                Ok(Err(guest)) => bail!("{} refused: {guest:?}", signals(kind)[step]),
                Err(e) => return Err(e.into()),
            }
        }
        flows += 1;
    }
    Ok(Worked { per_signal, flows })
}

/// One phase: `workers` concurrent flow loops of one kind.
struct Phase {
    per_signal: Vec<Samples>,
    flows: u64,
    elapsed: Duration,
    cpu: Duration,
    /// SQLite only: what the store's writer did during the phase.
    writes: Option<WriteStats>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.flows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// "N commits per flow (M writes per commit)", on SQLite.
    fn commits(&self) -> String {
        match self.writes {
            Some(w) if w.commits > 0 && self.flows > 0 => format!(
                "{:.2} commits per flow ({:.2} writes per commit)",
                w.commits as f64 / self.flows as f64,
                w.writes as f64 / w.commits as f64
            ),
            _ => "commits not counted".into(),
        }
    }

    fn cpu_per_flow(&self) -> Duration {
        self.cpu / u32::try_from(self.flows.max(1)).unwrap_or(u32::MAX)
    }

    fn signal_summary(&mut self, kind: Kind) -> String {
        signals(kind)
            .iter()
            .zip(self.per_signal.iter_mut())
            .map(|(name, s)| format!("{name} {} / {}", fmt_dur(s.p50()), fmt_dur(s.p99())))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

async fn hook_phase(
    duration: Duration,
    workers: usize,
    runtime: &Arc<Runtime>,
    plugin: &Arc<LoadedPlugin>,
    call: &CallContext,
    kind: Kind,
) -> anyhow::Result<Phase> {
    let handle = tokio::runtime::Handle::current();
    let cpu0 = cpu_time(CpuOf::Process);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for index in 0..workers {
        let (runtime, plugin, call, handle) = (
            runtime.clone(),
            plugin.clone(),
            call.clone(),
            handle.clone(),
        );
        // `Runtime::data_flow`'s future is not `Send`: each worker drives its own on a
        // blocking-pool thread, as the admin API does for hooks.
        tasks.push(tokio::task::spawn_blocking(move || {
            handle.block_on(hook_worker(runtime, plugin, call, kind, index, deadline))
        }));
    }
    let mut per_signal = vec![Samples::default(); signals(kind).len()];
    let mut flows = 0;
    for task in tasks {
        let worked = task.await.context("flow worker")??;
        flows += worked.flows;
        for (into, from) in per_signal.iter_mut().zip(worked.per_signal) {
            into.extend(from);
        }
    }
    Ok(Phase {
        per_signal,
        flows,
        elapsed: started.elapsed(),
        cpu: cpu_time(CpuOf::Process).saturating_sub(cpu0),
        writes: None,
    })
}

/// What the store alone costs: `workers` tasks writing state (`Store::state_set`, one
/// durable commit each, as a hook's state write makes) for a while.
struct StoreProbe {
    writes: u64,
    elapsed: Duration,
    cpu: Duration,
}

async fn store_phase(env: &Env, workers: usize, duration: Duration) -> anyhow::Result<StoreProbe> {
    let store = env.weft.store().clone();
    let cpu0 = cpu_time(CpuOf::Process);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..workers {
        let store = store.clone();
        tasks.spawn(async move {
            let tenant = worker_tenant(index);
            let mut writes = 0u64;
            while Instant::now() < deadline {
                let key = format!("store-probe/{}", writes % IDS_PER_WORKER);
                store
                    .state_set(
                        &tenant,
                        "hello",
                        &key,
                        &writes.to_be_bytes(),
                        weft_store::StateLimits::default(),
                    )
                    .await?;
                writes += 1;
            }
            anyhow::Ok(writes)
        });
    }
    let mut writes = 0;
    while let Some(done) = tasks.join_next().await {
        writes += done.context("store worker")??;
    }
    Ok(StoreProbe {
        writes,
        elapsed: started.elapsed(),
        cpu: cpu_time(CpuOf::Process).saturating_sub(cpu0),
    })
}

/// Median time of writing 4 KiB and `fdatasync` in `dir`.
fn fsync_probe(dir: &std::path::Path) -> anyhow::Result<Duration> {
    let path = dir.join(".bench-fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut samples = Samples::default();
    let block = [0u8; 4096];
    for _ in 0..FSYNC_PROBES {
        let t0 = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(t0.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(samples.p50())
}

/// One DPS worker: complete flows of `kind` for tenant `ctx` until the deadline.
async fn dps_worker(
    base: String,
    authorization: String,
    ctx: String,
    kind: Kind,
    index: usize,
    deadline: Instant,
) -> anyhow::Result<Worked> {
    let http = reqwest::Client::new();
    let steps = signals(kind);
    let mut per_signal = vec![Samples::default(); steps.len()];
    let mut flows = 0u64;
    while Instant::now() < deadline {
        let n = NEXT_FLOW.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{index}-{n}", steps[0]);
        for (step, samples) in per_signal.iter_mut().enumerate() {
            let (path, body, state) = match (kind, step) {
                (Kind::Provider, 0) => ("start".to_string(), flow_message(&id), "STARTED"),
                (Kind::Consumer, 0) => ("prepare".to_string(), flow_message(&id), "PREPARED"),
                (Kind::Consumer, 1) => (format!("{id}/started"), signal_message(), "STARTED"),
                _ => (format!("{id}/terminate"), signal_message(), "TERMINATED"),
            };
            let t0 = Instant::now();
            dps_expect(
                &http,
                &base,
                &authorization,
                &format!("/dps/{ctx}/dataflows/{path}"),
                &body,
                state,
            )
            .await?;
            samples.push(t0.elapsed());
        }
        flows += 1;
    }
    Ok(Worked { per_signal, flows })
}

/// One phase of DPS flows of `kind`, generated on a thread of its own; the host's CPU
/// is the process's minus that thread's.
async fn dps_phase(plan: &Plan, env: &Env, kind: Kind) -> anyhow::Result<Phase> {
    let (base, authorization) = (env.base(), env.cp_authorization.clone());
    let (workers, duration) = (plan.flow_workers, plan.flow_phase);
    let writes0 = env.weft.store().write_stats();
    let cpu0 = cpu_time(CpuOf::Process);
    let started = Instant::now();
    let generated =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<Samples>, u64, Duration)> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let gen0 = cpu_time(CpuOf::Thread);
            let deadline = Instant::now() + duration;
            let out = rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for index in 0..workers {
                    set.spawn(dps_worker(
                        base.clone(),
                        authorization.clone(),
                        worker_tenant(index),
                        kind,
                        index,
                        deadline,
                    ));
                }
                let mut per_signal = vec![Samples::default(); signals(kind).len()];
                let mut flows = 0;
                while let Some(done) = set.join_next().await {
                    let worked = done??;
                    flows += worked.flows;
                    for (into, from) in per_signal.iter_mut().zip(worked.per_signal) {
                        into.extend(from);
                    }
                }
                anyhow::Ok((per_signal, flows))
            })?;
            Ok((out.0, out.1, cpu_time(CpuOf::Thread).saturating_sub(gen0)))
        })
        .await
        .context("DPS load thread")??;
    let (per_signal, flows, generator_cpu) = generated;
    let total = cpu_time(CpuOf::Process).saturating_sub(cpu0);
    Ok(Phase {
        per_signal,
        flows,
        elapsed: started.elapsed(),
        cpu: total.saturating_sub(generator_cpu),
        writes: match (writes0, env.weft.store().write_stats()) {
            (Some(a), Some(b)) => Some(WriteStats {
                commits: b.commits - a.commits,
                writes: b.writes - a.writes,
            }),
            _ => None,
        },
    })
}

pub(crate) async fn run(plan: &Plan, env: &Env) -> anyhow::Result<Row> {
    // One tenant per worker, with hello enabled.
    let base = env.base();
    for i in 0..plan.flow_workers {
        let ctx = worker_tenant(i);
        env::create_tenant(&env.http, &base, &env.admin_token, &ctx, None).await?;
        env::enable(&env.http, &base, &env.admin_token, &ctx, "hello").await?;
    }
    // Warm-up: one flow of each kind per worker tenant's first flow path.
    let warm = Plan {
        flow_phase: Duration::from_millis(300),
        ..plan.clone()
    };
    dps_phase(&warm, env, Kind::Provider)
        .await
        .context("warm-up")?;
    let mut provider = dps_phase(plan, env, Kind::Provider)
        .await
        .context("provider flows")?;
    let mut consumer = dps_phase(plan, env, Kind::Consumer)
        .await
        .context("consumer flows")?;

    // Diagnostic: the same hooks without signaling.
    let resolved = env
        .weft
        .resolve(TENANT, "hello", Entry::DataFlows)
        .await
        .map_err(|e| anyhow::anyhow!("resolving hello for {TENANT}: {}", e.message))?;
    let runtime = env.weft.runtime().clone();
    let (plugin, call) = (resolved.plugin, resolved.call);
    let hooks_time = plan.flow_phase / 2;
    let hooks = hook_phase(
        hooks_time,
        plan.flow_workers,
        &runtime,
        &plugin,
        &call,
        Kind::Provider,
    )
    .await?;
    let store = store_phase(env, plan.flow_workers, hooks_time).await?;
    let fsync = fsync_probe(&env.weft.config().data_dir).ok();
    let store_cpu = store.cpu / u32::try_from(store.writes.max(1)).unwrap_or(u32::MAX);

    let cpu_provider = provider.cpu_per_flow();
    let provider_signals = provider.signal_summary(Kind::Provider);
    let consumer_signals = consumer.signal_summary(Kind::Consumer);
    let verdict = Verdict::of(cpu_provider <= TARGET_CPU_PER_PROVIDER_FLOW);
    let notes = vec![
        format!(
            "this benchmark is the control plane (static token), {} workers each a tenant with hello; \
             every signal runs hello's hook on a fresh instance and hello records it in its state; \
             the data plane persists each flow; store: {}",
            plan.flow_workers,
            match &plan.store_url {
                None =>
                    "SQLite in process (WAL, synchronous=FULL: every commit is fsynced in this process)",
                Some(_) =>
                    "PostgreSQL (its work happens in the server's processes, not counted here)",
            }
        ),
        format!(
            "provider: {} flows in {:.1} s, per signal p50 / p99: {provider_signals}",
            provider.flows,
            provider.elapsed.as_secs_f64(),
        ),
        format!(
            "consumer: {} flows in {:.1} s, per signal p50 / p99: {consumer_signals}",
            consumer.flows,
            consumer.elapsed.as_secs_f64(),
        ),
        format!(
            "host CPU per flow (process minus the generator thread): provider {}, consumer {}; \
             store: provider {}, consumer {}",
            fmt_dur(cpu_provider),
            fmt_dur(consumer.cpu_per_flow()),
            provider.commits(),
            consumer.commits(),
        ),
        format!(
            "diagnostic: the provider hooks alone (Runtime::data_flow start + terminate, no \
             signaling, {} workers): {:.0} flows/s, {} CPU per flow",
            plan.flow_workers,
            hooks.rate(),
            fmt_dur(hooks.cpu_per_flow())
        ),
        format!(
            "diagnostic: the store alone ({} tasks writing state as the hooks do, each \
             acknowledged once durable; concurrent writes share commits): {:.0} writes/s, {} CPU \
             per write",
            plan.flow_workers,
            store.writes as f64 / store.elapsed.as_secs_f64().max(1e-9),
            fmt_dur(store_cpu)
        ),
        match fsync {
            Some(d) => format!(
                "fsync (4 KiB write + fdatasync) in the data directory: p50 {}",
                fmt_dur(d)
            ),
            None => "fsync probe failed".to_string(),
        },
    ];
    let figures = json!({
        "provider_flows": provider.flows, "consumer_flows": consumer.flows,
        "provider_flows_per_s": provider.rate(), "consumer_flows_per_s": consumer.rate(),
        "provider_cpu_per_flow_us": us(cpu_provider),
        "consumer_cpu_per_flow_us": us(consumer.cpu_per_flow()),
        "provider_signals_us": signals(Kind::Provider).iter().zip(provider.per_signal.iter_mut())
            .map(|(n, s)| json!({"signal": n, "p50": us(s.p50()), "p99": us(s.p99())})).collect::<Vec<_>>(),
        "consumer_signals_us": signals(Kind::Consumer).iter().zip(consumer.per_signal.iter_mut())
            .map(|(n, s)| json!({"signal": n, "p50": us(s.p50()), "p99": us(s.p99())})).collect::<Vec<_>>(),
        "hooks_only_provider_cpu_per_flow_us": us(hooks.cpu_per_flow()),
        "hooks_only_provider_flows_per_s": hooks.rate(),
        "store_alone_cpu_per_write_us": us(store_cpu),
        "fsync_p50_us": fsync.map(us),
    });
    Ok(Row {
        id: "B4",
        scenario: format!(
            "DPS flows, {}, conc {}",
            if plan.store_url.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            plan.flow_workers
        ),
        weft: format!(
            "prov {:.0} flows/s, {} CPU/flow; cons {:.0} flows/s, {} CPU/flow",
            provider.rate(),
            fmt_dur(cpu_provider),
            consumer.rate(),
            fmt_dur(consumer.cpu_per_flow())
        ),
        baseline: "—".into(),
        ratio: "—".into(),
        target: format!(
            "host CPU ≤ {} ms / provider flow",
            TARGET_CPU_PER_PROVIDER_FLOW.as_secs_f64() * 1e3
        ),
        verdict,
        figures,
        notes,
    })
}
