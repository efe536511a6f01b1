//! The `Runtime`: one engine and linker per process, the backends behind the imports,
//! and counters that tests and metrics read.

use crate::call::HostState;
use crate::config::RuntimeConfig;
use crate::engine::{self, EngineError};
use crate::services::Services;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Linker;

/// Counters of what the runtime did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Components compiled from Wasm (cache misses).
    pub compiles: AtomicU64,
    /// Components mapped from the precompiled cache.
    pub cache_loads: AtomicU64,
    /// Calls started.
    pub calls: AtomicU64,
    /// Calls that ended in a trap or a limit.
    pub failed_calls: AtomicU64,
}

impl Stats {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The process-wide runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    services: Services,
    stats: Stats,
    engine_hash: String,
}

impl Runtime {
    /// Builds the engine, links the imports and starts the epoch ticker.
    pub fn new(config: RuntimeConfig, services: Services) -> Result<Arc<Runtime>, EngineError> {
        let engine = engine::build_engine(&config)?;
        let linker = engine::build_linker(&engine)?;
        engine::start_ticker(&engine, Duration::from_millis(config.epoch_tick_ms.max(1)));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = format!("{:016x}", hasher.finish());
        Ok(Arc::new(Runtime {
            engine,
            linker,
            config,
            services,
            stats: Stats::default(),
            engine_hash,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Identifies the engine configuration in precompiled artifact names.
    pub fn engine_hash(&self) -> &str {
        &self.engine_hash
    }
}
