//! B1: one trivial hook (`lifecycle.on-disable` of `hello`: it reads its plugin id and
//! writes one state key) on a fresh instance through `Runtime::lifecycle`, against raw
//! wasmtime: `InstancePre` + a new `Store` with a minimal `WasiCtx` + the same export,
//! with the two imports the hook uses answered by trivial host functions.
//!
//! Both sides use the runtime's own `Engine` (same pooling allocator, same compiled code),
//! so the difference is exactly what Weft adds per call: its per-call state (WASI + HTTP
//! contexts, stderr capture, resource table), limits (memory limiter, CPU meter, wall-clock
//! timeout), the call context and the state backend.

use super::measure::{Samples, fmt_dur, us};
use super::{Plan, Row, Verdict};
use anyhow::{Context, bail};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use weft_runtime::bindings::lifecycle;
use weft_runtime::bindings::types::Error as WitError;
use weft_runtime::plugin::LoadRequest;
use weft_runtime::{CallContext, Entry, LifecycleOp, LoadedPlugin, Runtime, Services, Tenant};

/// B1's absolute target for Weft's median, from the issue.
const TARGET_P50: Duration = Duration::from_micros(25);

/// B1's target for Weft's median relative to raw wasmtime.
const TARGET_RATIO: f64 = 1.5;

/// Calls per side before measuring: fills the pool's warm slots and the caches.
const WARMUP_CALLS: usize = 200;

/// Epoch deadline of the raw side: the engine has epoch interruption on, and a store's
/// default deadline would trap at once; this one never fires during a benchmark call.
const RAW_EPOCH_DEADLINE: u64 = 1 << 40;

/// The raw side's store data: only what WASI and `wasi:http` need (the world imports
/// `wasi:http/outgoing-handler`, so its linker must define it).
struct RawState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RawState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

/// Raw wasmtime: the same component pre-instantiated on a minimal linker, with the
/// lifecycle export's indices looked up once (as Weft does).
struct Raw {
    engine: wasmtime::Engine,
    pre: InstancePre<RawState>,
    lifecycle: lifecycle::GuestIndices,
}

/// A wasmtime error as an `anyhow` one (wasmtime 48 has its own error type).
fn wt<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("{e:#}"))
}

impl Raw {
    fn new(engine: &wasmtime::Engine, wasm: &[u8]) -> anyhow::Result<Raw> {
        wt(Raw::build(engine.clone(), wasm)).context("building the raw wasmtime baseline")
    }

    fn build(engine: wasmtime::Engine, wasm: &[u8]) -> wasmtime::Result<Raw> {
        let component = Component::new(&engine, wasm)?;
        let mut linker = Linker::<RawState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // The `weft:plugin` imports: the two this hook calls answer trivially, every
        // other one traps (never called by this hook).
        let imports: Vec<(String, Vec<String>)> = component
            .component_type()
            .imports(&engine)
            .filter(|(name, _)| name.starts_with("weft:plugin/"))
            .map(|(name, import)| {
                let funcs = match import.ty {
                    ComponentItem::ComponentInstance(instance) => instance
                        .exports(&engine)
                        .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(f, _)| f.to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                (name.to_string(), funcs)
            })
            .collect();
        for (name, funcs) in imports {
            let mut instance = linker.instance(&name)?;
            for func in funcs {
                match (name.as_str(), func.as_str()) {
                    ("weft:plugin/context@0.1.0", "plugin") => instance
                        .func_wrap("plugin", |_, (): ()| {
                            Ok(((String::from("hello"), String::from("0.1.0")),))
                        })?,
                    ("weft:plugin/state@0.1.0", "set") => instance
                        .func_wrap("set", |_, (_key, _value): (String, Vec<u8>)| {
                            Ok((Ok::<(), WitError>(()),))
                        })?,
                    _ => {
                        let what = format!("{name}#{func}");
                        instance.func_new(&func, move |_, _, _, _| {
                            wasmtime::bail!("{what} is not provided by the raw baseline")
                        })?
                    }
                }
            }
        }
        let pre = linker.instantiate_pre(&component)?;
        let lifecycle = lifecycle::GuestIndices::new(&pre)?;
        Ok(Raw {
            engine,
            pre,
            lifecycle,
        })
    }

    async fn call(&self) -> anyhow::Result<()> {
        match wt(self.call_raw().await)? {
            Ok(()) => Ok(()),
            Err(e) => bail!("raw on-disable answered {e:?}"),
        }
    }

    async fn call_raw(&self) -> wasmtime::Result<Result<(), WitError>> {
        let mut store = Store::new(
            &self.engine,
            RawState {
                wasi: WasiCtx::builder().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
            },
        );
        store.set_epoch_deadline(RAW_EPOCH_DEADLINE);
        let instance = self.pre.instantiate_async(&mut store).await?;
        self.lifecycle
            .load(&mut store, &instance)?
            .call_on_disable(&mut store)
            .await
    }
}

/// Weft's side: the runtime with in-memory state, and a call context like the admin API's.
struct Hosted {
    runtime: Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
    call: CallContext,
}

impl Hosted {
    async fn call(&self) -> anyhow::Result<()> {
        match self
            .runtime
            .lifecycle(&self.plugin, self.call.clone(), LifecycleOp::Disable)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(guest)) => bail!("on-disable refused: {guest:?}"),
            Err(e) => Err(e.into()),
        }
    }
}

pub(crate) async fn run(plan: &Plan) -> anyhow::Result<Row> {
    let runtime = Runtime::new(super::env::runtime_config(), Services::in_memory())?;
    let hello = weft_bundle::HELLO;
    let plugin = runtime.load(LoadRequest {
        wasm: hello.wasm,
        manifest: hello.manifest,
        signature: None,
    })?;
    let mut call = CallContext::new(
        Tenant {
            participant_context_id: "bench".into(),
            did: "did:web:localhost:bench".into(),
            bpn: Some("BPNL000000000001".into()),
        },
        Entry::Lifecycle,
    );
    call.grants = Arc::new(plugin.manifest.capabilities.clone());
    let hosted = Hosted {
        runtime: runtime.clone(),
        plugin,
        call,
    };
    let raw = Raw::new(runtime.engine(), hello.wasm)?;
    // Diagnostics (not part of the verdict): raw wasmtime on engines that differ from the
    // runtime's in how a pooled memory is reset after each call.
    let mut variants = Vec::new();
    for variant in Variant::ALL {
        match variant.engine().and_then(|e| Raw::new(&e, hello.wasm)) {
            Ok(raw) => variants.push((variant, raw, Samples::with_capacity(total_calls(plan)))),
            Err(e) => tracing::warn!("B1 variant {} unavailable: {e:#}", variant.label()),
        }
    }

    let warmup = WARMUP_CALLS.min(plan.hook_batch * 4);
    for _ in 0..warmup {
        hosted.call().await?;
        raw.call().await?;
        for (_, v, _) in &variants {
            v.call().await?;
        }
    }
    let total = total_calls(plan);
    let mut weft = Samples::with_capacity(total);
    let mut base = Samples::with_capacity(total);
    for round in 0..plan.hook_rounds {
        // Alternate which side goes first, so drift in machine load hits both equally.
        for side in [round % 2, (round + 1) % 2] {
            for _ in 0..plan.hook_batch {
                let t0 = Instant::now();
                if side == 0 {
                    hosted.call().await?;
                    weft.push(t0.elapsed());
                } else {
                    raw.call().await?;
                    base.push(t0.elapsed());
                }
            }
        }
        for (_, v, samples) in &mut variants {
            for _ in 0..plan.hook_batch {
                let t0 = Instant::now();
                v.call().await?;
                samples.push(t0.elapsed());
            }
        }
    }
    let (w50, w99, b50, b99) = (weft.p50(), weft.p99(), base.p50(), base.p99());
    let ratio = us(w50) / us(b50).max(1e-9);
    let failed = runtime
        .stats()
        .failed_calls
        .load(std::sync::atomic::Ordering::Relaxed);
    let verdict = Verdict::of(ratio <= TARGET_RATIO && w50 <= TARGET_P50 && failed == 0);
    let mut notes = vec![format!(
        "{} calls per side in {} alternating rounds; both sides on the runtime's engine \
         (pooling allocator); the hook reads context.plugin and writes one state key \
         (Weft: in-memory state backend; raw: no-op host functions)",
        weft.len(),
        plan.hook_rounds
    )];
    let mut variant_figures = serde_json::Map::new();
    for (variant, _, samples) in &mut variants {
        let (p50, p99) = (samples.p50(), samples.p99());
        notes.push(format!(
            "diagnostic: raw wasmtime on an engine with {}: p50 {} / p99 {} ({:.2}× the raw baseline)",
            variant.label(),
            fmt_dur(p50),
            fmt_dur(p99),
            us(p50) / us(b50).max(1e-9)
        ));
        variant_figures.insert(
            format!("{variant:?}"),
            json!({"p50_us": us(p50), "p99_us": us(p99)}),
        );
    }
    Ok(Row {
        id: "B1",
        scenario: "hook on a fresh instance (hello on-disable)".into(),
        weft: format!("{} / {}", fmt_dur(w50), fmt_dur(w99)),
        baseline: format!("{} / {}", fmt_dur(b50), fmt_dur(b99)),
        ratio: format!("{ratio:.2}× p50"),
        target: format!("p50 ≤ {TARGET_RATIO}× and ≤ {} µs", TARGET_P50.as_micros()),
        verdict,
        figures: json!({
            "calls_per_side": weft.len(),
            "weft_p50_us": us(w50), "weft_p99_us": us(w99),
            "raw_p50_us": us(b50), "raw_p99_us": us(b99),
            "ratio_p50": ratio,
            "failed_calls": failed,
            "raw_variants": variant_figures,
        }),
        notes,
    })
}

fn total_calls(plan: &Plan) -> usize {
    plan.hook_rounds * plan.hook_batch
}

/// Engines that differ from the runtime's only in how pooled memories are reset after a
/// call (the runtime uses `pagemap_scan(Auto)` with 2 MiB kept resident).
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// `pagemap_scan(No)`: the kept-resident region is reset with a full `memset`.
    NoPagemapScan,
    /// Nothing kept resident: memories are decommitted (`madvise`) after each call.
    NoKeepResident,
    /// No signal-based traps and no guard pages: bounds are checked in code, so a slot a
    /// previous call grew needs no `mprotect` (and no TLB shootdown) on the next one.
    ExplicitBoundsChecks,
}

impl Variant {
    const ALL: [Variant; 3] = [
        Variant::NoPagemapScan,
        Variant::NoKeepResident,
        Variant::ExplicitBoundsChecks,
    ];

    fn label(self) -> &'static str {
        match self {
            Variant::NoPagemapScan => "pagemap_scan(No) (memset of the kept-resident 2 MiB)",
            Variant::NoKeepResident => "linear_memory_keep_resident(0) (madvise)",
            Variant::ExplicitBoundsChecks => {
                "signals_based_traps(false), memory_guard_size(0) (no mprotect per call)"
            }
        }
    }

    /// The runtime's engine configuration (host/runtime/src/engine.rs) with one change.
    fn engine(self) -> anyhow::Result<wasmtime::Engine> {
        use weft_runtime::config::{
            DEFAULT_POOL_INSTANCES, DEFAULT_POOL_MAX_MEMORY_BYTES, MAX_CORE_INSTANCE_SIZE,
            MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLE_ELEMENTS,
            MAX_TABLES_PER_COMPONENT, POOL_KEEP_RESIDENT_BYTES,
        };
        let instances = DEFAULT_POOL_INSTANCES;
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances * 4)
            .total_memories(instances * 2)
            .total_tables(instances * 4)
            .total_stacks(instances)
            .max_memory_size(DEFAULT_POOL_MAX_MEMORY_BYTES as usize)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_core_instance_size(MAX_CORE_INSTANCE_SIZE)
            .max_component_instance_size(MAX_CORE_INSTANCE_SIZE)
            .table_elements(MAX_TABLE_ELEMENTS)
            .linear_memory_keep_resident(POOL_KEEP_RESIDENT_BYTES)
            .table_keep_resident(POOL_KEEP_RESIDENT_BYTES / 4)
            .max_unused_warm_slots(instances / 4 + 1)
            .pagemap_scan(wasmtime::Enabled::Auto);
        match self {
            Variant::NoPagemapScan => {
                pool.pagemap_scan(wasmtime::Enabled::No);
            }
            Variant::NoKeepResident => {
                pool.linear_memory_keep_resident(0).table_keep_resident(0);
            }
            Variant::ExplicitBoundsChecks => {}
        }
        let mut c = wasmtime::Config::new();
        if let Variant::ExplicitBoundsChecks = self {
            c.signals_based_traps(false);
            c.memory_guard_size(0);
        }
        c.strategy(wasmtime::Strategy::Cranelift);
        c.cranelift_opt_level(wasmtime::OptLevel::Speed);
        c.epoch_interruption(true);
        c.wasm_component_model(true);
        c.concurrency_support(false);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        wt(wasmtime::Engine::new(&c))
    }
}
