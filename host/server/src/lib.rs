//! Weft's HTTP server: the admin API (plugins, grants, tenants, enablements, audit) and the
//! tenant API (`/tenants/{ctx}/apps/{app}/…` into the app's `wasi:http` handler), behind
//! bearer-token auth, with per-tenant limits and the durable store restored on start.
//!
//! ```no_run
//! # async fn demo(auth: weft_auth::AuthConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use weft_server::{ServerConfig, Weft, WeftOptions, serve};
//! let options = WeftOptions::new(ServerConfig::with_data_dir("data"), auth, Default::default());
//! let weft = Weft::new(options).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, weft.router(), async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! weft.close().await;
//! # Ok(()) }
//! ```

mod admin;
mod app;
mod auth;
mod body;
pub mod config;
pub mod error;
pub mod limits;
pub mod model;
pub mod openapi;
mod routes;
pub mod state;
mod tenancy;
mod tenant;

pub use admin::{MAX_GRANTS_FIELD_BYTES, MAX_SIGNATURE_BYTES};
pub use app::{Resolved, Weft, WeftOptions, effective_grants};
pub use body::MAX_DRAIN_BYTES;
pub use config::{ServerConfig, TenantLimits};
pub use error::{ApiError, ServerError};
pub use routes::{
    BUSY_RETRY_AFTER_SECS, MAX_ADMIN_JSON_BYTES, UNAVAILABLE_RETRY_AFTER_SECS, serve,
};
pub use state::StoreState;
pub use tenancy::TenantApps;
