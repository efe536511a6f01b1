//! Where the imports are served: the real host on wasm32, an in-memory stand-in natively.
//!
//! Both backends expose the same functions; the public modules call `active::*`. The wasm
//! backend is compiled on every target so native builds type-check it too.

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod native;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native as active;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm as active;
