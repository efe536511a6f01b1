//! Host side of the `weft:plugin` imports, one module per interface, plus the outbound
//! HTTP policy for `wasi:http`. Grants are checked here and refused with the contract's
//! `access-denied`, never with a trap.

pub(crate) mod context;
pub(crate) mod http;
pub(crate) mod log;
pub mod management;
pub(crate) mod state;
pub(crate) mod transfer;

use crate::bindings::weft::plugin as wit;
use crate::call::HostState;
use wasmtime::component::{HasSelf, Linker};

/// Adds WASI p2, `wasi:http` and every `weft:plugin` import to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    wit::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wit::context::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wit::management::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wit::state::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wit::transfer::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    wit::log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

impl wit::types::Host for HostState {}
