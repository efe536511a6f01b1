//! Runtime configuration: engine pool sizes and per-call limits, each with its reason.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest component file accepted. Real plugins are a few MiB; a bigger upload is far
/// more likely a mistake or an attempt to exhaust the compiler's memory.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// Largest manifest accepted; manifests are a few hundred bytes of TOML.
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;

/// How often the epoch ticker advances. 10 ms is Spin's choice: CPU deadlines are honoured
/// within about one tick, at a cost too small to measure.
pub const DEFAULT_EPOCH_TICK_MS: u64 = 10;

/// Default linear-memory budget of one call, summed over all memories of the instance.
/// Enough for JSON-heavy business logic; data is streamed, never held whole.
pub const DEFAULT_CALL_MEMORY_BYTES: u64 = 64 << 20;

/// Default guest CPU time of one call. Business logic answers in microseconds to
/// milliseconds; a second means a loop that will not end.
pub const DEFAULT_CALL_CPU_MS: u64 = 1_000;

/// Default wall-clock time of one call, host calls included. It bounds how long a tenant
/// request can hold an instance while waiting on the control plane.
pub const DEFAULT_CALL_WALL_MS: u64 = 30_000;

/// Largest memory budget a manifest may ask for per call.
pub const MAX_CALL_MEMORY_BYTES: u64 = 1 << 30;

/// Largest guest CPU time a manifest may ask for per call.
pub const MAX_CALL_CPU_MS: u64 = 10 * 60_000;

/// Largest wall-clock time a manifest may ask for per call (long streaming pulls).
pub const MAX_CALL_WALL_MS: u64 = 60 * 60_000;

/// Most instances alive at once in the process. Each pooled slot reserves address space
/// (not memory): 256 slots fit comfortably in 47-bit address space.
pub const DEFAULT_POOL_INSTANCES: u32 = 256;

/// Largest single linear memory in the pool; also an upper bound for `memory-bytes`.
pub const DEFAULT_POOL_MAX_MEMORY_BYTES: u64 = 1 << 30;

/// Most linear memories one component may define (Rust components use one or two).
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;

/// Most tables one component may define (wit-component adds a few shim tables).
pub const MAX_TABLES_PER_COMPONENT: u32 = 16;

/// Most elements of one table.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Most core instances one component may contain (Rust components have 2-4).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 16;

/// Largest instance metadata per core instance (Spin uses 10 MiB).
pub const MAX_CORE_INSTANCE_SIZE: usize = 10 << 20;

/// Memory kept resident in a warm pool slot after a call, so the next call does not
/// page-fault it back in (Spin: 2 MiB).
pub const POOL_KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Most resources a guest may hold in its table during one call.
pub const MAX_RESOURCE_TABLE_ENTRIES: usize = 10_000;

/// Largest total of HTTP header names and values a guest may create (wasi-http default).
pub const MAX_HTTP_FIELD_BYTES: usize = 128 << 10;

/// Largest single write a guest may make to an outgoing HTTP body (its `check-write`
/// permit): big enough that streaming a large payload costs few host calls and task
/// hand-offs (256 KiB streams a pull about 1.4× as fast as 64 KiB without HTTP, B3),
/// small enough that the buffered chunks below stay a small, fixed amount of host memory
/// per body.
pub const OUTGOING_BODY_CHUNK_BYTES: usize = 256 << 10;

/// Chunks of an outgoing HTTP body buffered between the guest and the connection: the
/// guest keeps producing while the socket drains (wasi-http's default of one makes the
/// two take turns). Host memory per streaming body is at most this times the chunk size.
pub const OUTGOING_BODY_BUFFER_CHUNKS: usize = 2;

/// Largest log message kept from a guest; the rest is cut.
pub const MAX_LOG_MESSAGE_BYTES: usize = 8 << 10;

/// Most log fields kept from one guest log record.
pub const MAX_LOG_FIELDS: usize = 32;

/// Runtime configuration (the `[runtime]` table of Weft's config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeConfig {
    /// Directory for precompiled artifacts, keyed by component digest and engine hash.
    pub cache_dir: Option<PathBuf>,
    /// Epoch tick in milliseconds.
    pub epoch_tick_ms: u64,
    /// Pooling allocator sizes.
    pub pool: PoolConfig,
    /// Limits applied when a manifest asks for none.
    pub default_limits: CallLimits,
    /// Ceiling for what any manifest may ask.
    pub max_limits: CallLimits,
    /// Trusted publisher keys and whether a signature is required.
    pub signatures: SignatureConfig,
    /// Write `/tmp/perf-<pid>.map` so `perf` can name the functions of compiled plugins
    /// (profiling only; `WEFT__RUNTIME__PERF_MAP=true`).
    pub perf_map: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            epoch_tick_ms: DEFAULT_EPOCH_TICK_MS,
            pool: PoolConfig::default(),
            default_limits: CallLimits::default(),
            max_limits: CallLimits {
                memory_bytes: MAX_CALL_MEMORY_BYTES,
                cpu_ms: MAX_CALL_CPU_MS,
                wall_ms: MAX_CALL_WALL_MS,
            },
            signatures: SignatureConfig::default(),
            perf_map: false,
        }
    }
}

/// Pooling allocator sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoolConfig {
    /// Use the pooling allocator (on by default; off trades speed for address space).
    pub enabled: bool,
    /// Most component instances alive at once.
    pub instances: u32,
    /// Largest single linear memory.
    pub max_memory_bytes: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            instances: DEFAULT_POOL_INSTANCES,
            max_memory_bytes: DEFAULT_POOL_MAX_MEMORY_BYTES,
        }
    }
}

/// Limits of one call into a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CallLimits {
    /// Linear memory, summed over all memories of the instance.
    pub memory_bytes: u64,
    /// Guest CPU time (time spent in Wasm code, host calls excluded).
    pub cpu_ms: u64,
    /// Wall-clock time of the whole call, host calls included.
    pub wall_ms: u64,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_CALL_MEMORY_BYTES,
            cpu_ms: DEFAULT_CALL_CPU_MS,
            wall_ms: DEFAULT_CALL_WALL_MS,
        }
    }
}

impl CallLimits {
    /// Each field the smaller of the two.
    pub fn min(self, other: CallLimits) -> CallLimits {
        CallLimits {
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            cpu_ms: self.cpu_ms.min(other.cpu_ms),
            wall_ms: self.wall_ms.min(other.wall_ms),
        }
    }
}

/// Plugin signature policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignatureConfig {
    /// Refuse plugins without a valid signature by a trusted key.
    pub required: bool,
    /// Trusted publishers: name and base64 ed25519 public key (32 bytes).
    pub trusted_keys: Vec<TrustedKey>,
}

/// One trusted publisher key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrustedKey {
    /// Publisher name, recorded with each plugin it signed.
    pub name: String,
    /// Base64 of the 32-byte ed25519 public key.
    pub public_key: String,
}
