//! The Rust guest SDK for Weft plugins: idiomatic wrappers over the `weft:plugin` world.
//!
//! A plugin is a `cdylib` built for `wasm32-wasip2`. It implements [`Plugin`] (every hook
//! has a default, so an app only writes the ones it uses) and names its type once with
//! [`export_plugin!`]. It never names `wit-bindgen`: the raw bindings live in the hidden
//! [`wit`] module, and every import has a wrapper here.
//!
//! ```no_run
//! use weft_sdk::http::{Request, Response, Router};
//! use weft_sdk::{Plugin, Result, context, state};
//!
//! struct Counter;
//!
//! impl Plugin for Counter {
//!     fn on_enable() -> Result<()> {
//!         state::set_json("count", &0u64)
//!     }
//!
//!     fn handle_api(req: Request) -> Response {
//!         Router::new()
//!             .post("/count", |_req, _params| {
//!                 let n = state::get_json::<u64>("count")?.unwrap_or(0) + 1;
//!                 state::set_json("count", &n)?;
//!                 weft_sdk::info!("counted"; tenant = context::tenant().participant_context_id, n = n);
//!                 Ok(Response::json(200, &serde_json::json!({ "count": n })))
//!             })
//!             .handle(req)
//!     }
//! }
//!
//! weft_sdk::export_plugin!(Counter);
//! ```
//!
//! # Layout
//!
//! - [`context`]: who the call is for (tenant, config, entry point, plugin id/version).
//! - [`state`]: durable key-value state scoped to (tenant, plugin).
//! - [`management`]: tenant-scoped EDC Management API calls.
//! - [`transfer`]: reaching a flow's counterparty and reporting async flow outcomes.
//! - [`log`] and the [`info!`]/[`warn!`]/... macros: structured logs into the host's log.
//! - [`http`]: the request/response types of the HTTP entry points, streaming bodies,
//!   and a tiny [`http::Router`].
//! - [`flows`] and [`events`]: the argument types of the data-flow and event hooks.
//! - `testing` (native targets only): an in-memory stand-in for the host, so plugin logic
//!   runs in plain `cargo test`.
//!
//! # Native builds
//!
//! The crate compiles for the host target too. There the imports are served by an
//! in-memory stand-in (see `testing`), so plugin crates can unit-test their logic natively.
#![warn(missing_docs)]

mod backend;
pub mod context;
pub mod edc;
mod error;
pub mod events;
pub mod flows;
pub mod http;
pub mod log;
pub mod management;
pub mod models;
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod transfer;

#[doc(hidden)]
pub mod __export;

pub use error::{Error, Result};

/// The version of this SDK, as built into every plugin (custom section `weft-sdk-version`).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `weft:plugin` contract version this SDK targets.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Raw `wit-bindgen` bindings of the `weft:plugin/plugin` world (WASI types included).
///
/// Not part of the SDK's stable API: use the wrappers in the other modules. It is public
/// only so [`export_plugin!`] can reach it from a plugin crate.
#[doc(hidden)]
#[allow(
    unsafe_code,
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    clippy::all,
    clippy::pedantic
)]
pub mod wit {
    wit_bindgen::generate!({
        world: "weft:plugin/plugin",
        path: "../wit",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "weft_sdk::wit",
        // The vendored wasi:cli 0.2.12 world imports the unstable `wasi:clocks/timezone`;
        // this wit-parser only resolves it with the feature on. The plugin world itself
        // does not import it, so enabling the feature changes nothing in the bindings.
        features: ["clocks-timezone"],
    });
}

/// A Weft plugin: one static function per hook of the `weft:plugin` world.
///
/// Every call runs on a fresh instance for exactly one tenant, so there is no `self`:
/// nothing survives between calls except what is written through [`state`]. Every
/// method has a default, so an app implements only the hooks it uses:
///
/// - lifecycle hooks succeed without doing anything;
/// - `on_prepare`/`on_start` reject the flow, and the other flow hooks answer
///   [`Error::Invalid`] (the plugin serves no flows); `on_terminate`/`on_completed` succeed;
/// - `on_event` succeeds (the event is dropped);
/// - `handle_api` and `handle_data` answer 404.
///
/// ```no_run
/// use weft_sdk::flows::{DataFlow, Decision};
/// use weft_sdk::{Plugin, Result};
///
/// struct AcceptAll;
///
/// impl Plugin for AcceptAll {
///     fn on_start(_flow: DataFlow) -> Result<Decision> {
///         Ok(Decision::Accept(None))
///     }
/// }
///
/// weft_sdk::export_plugin!(AcceptAll);
/// ```
pub trait Plugin: 'static {
    /// The tenant enabled the plugin (or the host re-applies an enablement). Idempotent.
    fn on_enable() -> Result<()> {
        Ok(())
    }

    /// The tenant disabled the plugin.
    fn on_disable() -> Result<()> {
        Ok(())
    }

    /// The tenant's enablement moved to this version from `previous_version`.
    fn on_upgrade(previous_version: String) -> Result<()> {
        let _ = previous_version;
        Ok(())
    }

    /// Consumer: a transfer is about to be requested. Default: reject.
    fn on_prepare(flow: flows::DataFlow) -> Result<flows::Decision> {
        let _ = flow;
        Ok(flows::Decision::Reject(flows::NOT_SUPPORTED.to_owned()))
    }

    /// Provider: the transfer starts. Default: reject.
    fn on_start(flow: flows::DataFlow) -> Result<flows::Decision> {
        let _ = flow;
        Ok(flows::Decision::Reject(flows::NOT_SUPPORTED.to_owned()))
    }

    /// Consumer: the provider started. Default: [`Error::Invalid`].
    fn on_started(flow: flows::DataFlow) -> Result<()> {
        let _ = flow;
        Err(Error::Invalid(flows::NOT_SUPPORTED.to_owned()))
    }

    /// The flow is suspended; an error refuses the suspension. Default: [`Error::Invalid`].
    fn on_suspend(flow: flows::DataFlow, reason: Option<String>) -> Result<()> {
        let _ = (flow, reason);
        Err(Error::Invalid(flows::NOT_SUPPORTED.to_owned()))
    }

    /// The flow resumes after a suspension. Default: [`Error::Invalid`].
    fn on_resume(flow: flows::DataFlow) -> Result<()> {
        let _ = flow;
        Err(Error::Invalid(flows::NOT_SUPPORTED.to_owned()))
    }

    /// The flow is terminated (terminal). Default: succeed.
    fn on_terminate(flow: flows::DataFlow, reason: Option<String>) -> Result<()> {
        let _ = (flow, reason);
        Ok(())
    }

    /// The flow is completed (terminal). Default: succeed.
    fn on_completed(flow: flows::DataFlow) -> Result<()> {
        let _ = flow;
        Ok(())
    }

    /// One control-plane or timer event; an error makes the host retry. Default: succeed.
    fn on_event(event: events::Event) -> Result<()> {
        let _ = event;
        Ok(())
    }

    /// A tenant API request (`/tenants/{ctx}/apps/{app}/...`). Default: 404.
    fn handle_api(request: http::Request) -> http::Response {
        let _ = request;
        http::Response::not_found()
    }

    /// A data request of flow `flow_id` (a counterparty pulling or pushing). Default: 404.
    fn handle_data(flow_id: String, request: http::Request) -> http::Response {
        let _ = (flow_id, request);
        http::Response::not_found()
    }
}

/// Exports a [`Plugin`] implementation as the component's `weft:plugin/plugin` world.
///
/// Use it exactly once per plugin crate, at the top level:
///
/// ```no_run
/// struct MyPlugin;
/// impl weft_sdk::Plugin for MyPlugin {}
/// weft_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // Fails to compile, naming the trait, when the type is not a plugin.
        const _: fn() = || {
            fn implements_plugin<P: $crate::Plugin>() {}
            implements_plugin::<$plugin>();
        };

        // The exports exist only on wasm32: their names (`wasi:http/...#handle`) cannot
        // be exported from a native cdylib, and native tests call the trait directly.
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code, non_camel_case_types)]
        const _: () = {
            type __WeftPluginAdapter = $crate::__export::Adapter<$plugin>;
            $crate::wit::export!(__WeftPluginAdapter with_types_in $crate::wit);

            // Names the SDK version a plugin was built with, readable from the component
            // without running it.
            #[unsafe(link_section = "weft-sdk-version")]
            #[used]
            static __WEFT_SDK_VERSION: [u8; $crate::SDK_VERSION.len()] =
                $crate::__export::version_bytes::<{ $crate::SDK_VERSION.len() }>();
        };
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "export_plugin! takes exactly one type that implements weft_sdk::Plugin, e.g. `export_plugin!(MyPlugin);`"
        );
    };
}
