//! Host bindings of the `weft:plugin` world, generated once here.
//!
//! WASI and wasi:http types come from the wasmtime crates (`with`), so the host reuses
//! their resource implementations. Imports are async (host calls may wait on the network
//! without blocking a thread) and trappable (the outer `Result` is a trap, the inner one
//! the contract's `error` variant).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "weft:plugin/plugin",
    imports: { default: async | trappable | tracing },
    exports: { default: async },
    require_store_data_send: true,
    additional_derives: [PartialEq, Eq],
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
        "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

pub use exports::weft::plugin::{data_flows, events, lifecycle};
pub use weft::plugin::{context, log, management, state, transfer, types};
