//! One call into a plugin: who it is for, and the per-call `Store` state with its limits.

use crate::config::{
    CallLimits, MAX_HTTP_FIELD_BYTES, MAX_RESOURCE_TABLE_ENTRIES, MAX_TABLE_ELEMENTS,
};
use crate::grants::Grants;
use crate::services::Services;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Guest stderr kept per call, so a panic message can be logged with the trap.
pub const MAX_CAPTURED_STDERR_BYTES: usize = 16 << 10;

/// The tenant a call acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub participant_context_id: String,
    pub did: String,
    pub bpn: Option<String>,
}

/// Which entry point a call serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Api,
    /// A data request of the given flow.
    Data(String),
    Lifecycle,
    DataFlows,
    Events,
}

impl Entry {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Entry::Api => "api",
            Entry::Data(_) => "data",
            Entry::Lifecycle => "lifecycle",
            Entry::DataFlows => "data-flows",
            Entry::Events => "events",
        }
    }
}

/// Everything the host knows about the call in progress; host imports read it.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub tenant: Tenant,
    /// The plugin's per-tenant configuration (JSON text).
    pub config_json: String,
    pub entry: Entry,
    /// Effective grants: manifest ∩ CSP ∩ tenant.
    pub grants: Arc<Grants>,
    /// Overrides the plugin's limits for this call (capped by the host's ceiling).
    pub limits: Option<CallLimits>,
    /// Set by the runtime from the plugin being called.
    pub plugin_id: String,
    /// Set by the runtime from the plugin version being called.
    pub plugin_version: String,
}

impl CallContext {
    /// A call context with no grants and an empty config.
    pub fn new(tenant: Tenant, entry: Entry) -> CallContext {
        CallContext {
            tenant,
            config_json: "{}".to_string(),
            entry,
            grants: Arc::new(Grants::default()),
            limits: None,
            plugin_id: String::new(),
            plugin_version: String::new(),
        }
    }

    /// The flow a data or data-flows call is about, for log fields.
    pub fn flow_id(&self) -> Option<&str> {
        match &self.entry {
            Entry::Data(id) => Some(id),
            _ => None,
        }
    }
}

/// Which limit a call hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    #[error("memory limit of {limit} bytes exceeded")]
    Memory { limit: u64 },
    #[error("CPU time limit of {limit_ms} ms exceeded")]
    Cpu { limit_ms: u64 },
    #[error("wall-clock limit of {limit_ms} ms exceeded")]
    WallClock { limit_ms: u64 },
    #[error("table limit of {limit} elements exceeded")]
    Table { limit: usize },
}

/// Caps the sum of all linear memories of one instance, which per-memory pool limits
/// cannot do (spin#3705): a component with several memories gets one budget.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    total: u64,
    peak: u64,
}

impl MemoryLimiter {
    fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            total: 0,
            peak: 0,
        }
    }

    /// Highest total linear memory seen during the call.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.total - current as u64 + desired as u64;
        if next > self.limit {
            // An error (not `Ok(false)`) traps with a typed cause instead of letting the
            // guest's allocator abort with an anonymous `unreachable`.
            return Err(LimitHit::Memory { limit: self.limit }.into());
        }
        self.total = next;
        self.peak = self.peak.max(next);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(LimitHit::Table {
                limit: MAX_TABLE_ELEMENTS,
            }
            .into());
        }
        Ok(true)
    }
}

/// The data of one `Store`: lives exactly as long as one call.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) outbound: crate::imports::http::OutboundPolicy,
    pub(crate) limiter: MemoryLimiter,
    /// Epoch ticks observed while guest code ran (the CPU meter).
    pub(crate) cpu_ticks: u64,
    pub(crate) cpu_tick_budget: u64,
    pub(crate) cpu_limit_ms: u64,
    pub(crate) call: Arc<CallContext>,
    pub(crate) services: Services,
    pub(crate) stderr: MemoryOutputPipe,
}

impl HostState {
    pub(crate) fn new(
        call: Arc<CallContext>,
        services: Services,
        limits: CallLimits,
        tick_ms: u64,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(MAX_CAPTURED_STDERR_BYTES);
        // Nothing is granted: no env, args, preopens, sockets or stdin. Stderr is kept
        // (bounded) so panics can be reported; stdout is discarded.
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HTTP_FIELD_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCE_TABLE_ENTRIES);
        HostState {
            wasi,
            http,
            table,
            outbound: crate::imports::http::OutboundPolicy::new(call.grants.clone()),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            cpu_ticks: 0,
            cpu_tick_budget: limits.cpu_ms.div_ceil(tick_ms.max(1)).max(1),
            cpu_limit_ms: limits.cpu_ms,
            call,
            services,
            stderr,
        }
    }

    /// The guest's stderr output so far (cut at [`MAX_CAPTURED_STDERR_BYTES`]).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}
