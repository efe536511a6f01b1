//! Weft's Wasm runtime: one engine, a registry of plugin versions that can be swapped
//! atomically, and calls that each run on a fresh, limited instance for one tenant.
//!
//! # Layout
//! - [`engine`]: the process-wide `Engine`, pooling allocator and epoch ticker.
//! - [`plugin`]: loading a component + manifest into a ready-to-call [`plugin::Plugin`].
//! - [`registry`]: versions side by side, atomic activation, hot-load from a directory.
//! - [`invoke`]: calling a plugin's exports on a fresh `Store`, with typed limit errors.
//! - [`services`]: the backends an embedder plugs in behind the host imports.
//! - [`unread`]: reading request bodies nobody reads, so answers are not lost to resets.
//! - `imports`: the host side of every `weft:plugin` import.

pub mod bindings;
pub mod call;
pub mod config;
pub mod engine;
pub mod grants;
pub mod imports;
pub mod invoke;
pub mod manifest;
pub mod plugin;
pub mod registry;
pub mod runtime;
pub mod services;
pub mod signature;
pub mod unread;
pub mod watch;

pub use imports::management::classify as classify_management_path;

pub use call::{CallContext, Entry, LimitHit, Tenant};
pub use invoke::{CallError, CallErrorKind, FlowOutcome, FlowSignal, LifecycleOp};
pub use plugin::{LoadError, LoadedPlugin};
pub use registry::{Registry, RegistryError};
pub use runtime::Runtime;
pub use services::{GuestError, Services};
