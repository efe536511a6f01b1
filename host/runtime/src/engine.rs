//! The process-wide wasmtime `Engine`: Cranelift, pooling allocator, epoch interruption
//! with one ticker thread, and the linker holding every host import.

use crate::call::HostState;
use crate::config::{
    MAX_CORE_INSTANCE_SIZE, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT,
    MAX_TABLE_ELEMENTS, MAX_TABLES_PER_COMPONENT, POOL_KEEP_RESIDENT_BYTES, RuntimeConfig,
};
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not create the wasmtime engine (pool of {instances} instances): {source}")]
    Create {
        instances: u32,
        source: wasmtime::Error,
    },
    #[error("could not link host imports: {0}")]
    Link(wasmtime::Error),
}

/// Builds the engine for a runtime configuration.
pub(crate) fn build_engine(config: &RuntimeConfig) -> Result<Engine, EngineError> {
    let mut c = Config::new();
    c.strategy(wasmtime::Strategy::Cranelift);
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    // Plugins are WASIp2 components: the component-model-async machinery would add
    // per-store state nobody uses.
    c.concurrency_support(false);
    if config.perf_map {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if config.pool.enabled {
        let instances = config.pool.instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances * 4)
            .total_memories(instances * 2)
            .total_tables(instances * 4)
            .total_stacks(instances)
            .max_memory_size(config.pool.max_memory_bytes as usize)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_core_instance_size(MAX_CORE_INSTANCE_SIZE)
            .max_component_instance_size(MAX_CORE_INSTANCE_SIZE)
            .table_elements(MAX_TABLE_ELEMENTS)
            .linear_memory_keep_resident(POOL_KEEP_RESIDENT_BYTES)
            .table_keep_resident(POOL_KEEP_RESIDENT_BYTES / 4)
            .max_unused_warm_slots(instances / 4 + 1)
            // Reset only the pages a call touched (Linux 6.7+, ignored elsewhere): the
            // `weft bench` B1 diagnostic measured fresh-instance calls at about half the
            // time of the madvise path on this kind of machine.
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&c).map_err(|source| EngineError::Create {
        instances: config.pool.instances,
        source,
    })
}

/// Builds the linker with WASI p2 (nothing granted by default), `wasi:http` and the
/// `weft:plugin` imports.
pub(crate) fn build_linker(engine: &Engine) -> Result<Linker<HostState>, EngineError> {
    let mut linker = Linker::new(engine);
    crate::imports::add_to_linker(&mut linker).map_err(EngineError::Link)?;
    Ok(linker)
}

/// Advances the engine's epoch on a fixed tick until the engine is dropped.
pub(crate) fn start_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the epoch ticker, CPU deadlines will not fire: {e}");
    }
}
