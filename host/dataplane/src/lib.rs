//! Weft as the tenants' data plane: Data Plane Signaling 1.0-RC3 for every participant
//! context, flows routed to the app that owns them, per-flow bearer tokens and the public
//! data endpoint that streams through the app.
//!
//! # Wiring (what the server does)
//!
//! ```ignore
//! // 1. A late-bound transfer backend, because the runtime needs it before the data plane exists.
//! let transfer = weft_dataplane::TransferHandle::new();
//! let services = Services { transfer: Arc::new(transfer.clone()), ..services };
//! let runtime = Runtime::new(runtime_config, services)?;
//! // 2. The server's tenants/enablements/grants behind `AppDirectory`.
//! let directory: Arc<dyn AppDirectory> = Arc::new(ServerDirectory::new(runtime.clone(), ..));
//! let dp = DataPlane::new(store, directory, config.data_plane)?;
//! transfer.bind(&dp);
//! let _workers = dp.start_workers();          // callback outbox; keep the guard alive
//! let app = server_router.merge(dp.router()); // /dps/{ctx}/... and /data/{*path}
//! ```
//!
//! # Layout
//! - [`model`]: the wire format and the state machine.
//! - `engine`: signals and app reports through the state machine, persisted first.
//! - `signaling`: the `/dps/{ctx}/...` endpoints; `public`: the `/data/...` endpoint.
//! - [`auth`]: control-plane authentication both ways; `outbox`: the callback worker.
//! - [`directory`]: what the server provides ([`AppDirectory`]).
//! - [`config`]: [`DataPlaneConfig`] and the limits.

pub mod auth;
pub mod config;
pub mod directory;
mod engine;
pub mod error;
pub mod model;
mod outbox;
mod public;
mod signaling;

use std::sync::{Arc, PoisonError, RwLock, Weak};

use async_trait::async_trait;
use weft_runtime::CallContext;
use weft_runtime::services::{Counterparty, FlowReport, GuestError, TransferBackend};
use weft_store::Store;
use weft_store::flows::FlowRecord;

pub use auth::{Caller, CpAuthorization};
pub use config::{ConfigError, ControlPlaneSeed, DataPlaneConfig};
pub use directory::{AppDirectory, DirectoryError, TenantApp};
pub use engine::{MAX_BUFFERED_REPORTS, MAX_TOKEN_CHARS, REPORT_LOCK_WAIT, TOKEN_BYTES};
pub use error::DpsError;
pub use model::{FlowState, HTTP_PULL_PROFILE, HTTP_PUSH_PROFILE};
pub use public::MAX_IGNORED_BODY_BYTES;

use engine::Engine;

/// The data plane. Cloning is cheap (shared state).
#[derive(Clone)]
pub struct DataPlane {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("public_url", &self.engine.config.public_url)
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    /// A data plane on `store`, serving the tenants and apps of `apps`.
    pub fn new(
        store: Store,
        apps: Arc<dyn AppDirectory>,
        config: DataPlaneConfig,
    ) -> Result<DataPlane, ConfigError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::ControlPlane {
                id: "*".into(),
                reason: format!("HTTP client: {e}"),
            })?;
        Ok(DataPlane {
            engine: Arc::new(Engine::new(store, apps, config, http)),
        })
    }

    /// Both routers merged: signaling (`/dps/{ctx}/...`) and data (`/data/{*path}`).
    pub fn router(&self) -> axum::Router {
        self.signaling_router().merge(self.data_router())
    }

    /// The signaling endpoints (`/dps/{ctx}/dataflows/...`, `/dps/{ctx}/controlplanes`),
    /// for control planes.
    pub fn signaling_router(&self) -> axum::Router {
        signaling::router(self.engine.clone())
    }

    /// The public data endpoint (`ANY /data/{*path}`), for counterparties.
    pub fn data_router(&self) -> axum::Router {
        public::router(self.engine.clone())
    }

    /// Starts the callback worker; it stops when the returned guard is dropped.
    pub fn start_workers(&self) -> Workers {
        let engine = self.engine.clone();
        Workers {
            handles: vec![tokio::spawn(outbox::run(engine))],
        }
    }

    /// Weft's `dataplaneId` for a participant context (the `aud` its control planes'
    /// JWTs must carry, and the id to register with them).
    pub fn dataplane_id(&self, ctx: &str) -> String {
        self.engine.config.dataplane_id(ctx)
    }

    /// The configuration in use.
    pub fn config(&self) -> &DataPlaneConfig {
        &self.engine.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.engine.store
    }

    /// A stored flow (for admin views and tests).
    pub async fn flow(&self, ctx: &str, flow_id: &str) -> Result<Option<FlowRecord>, DpsError> {
        Ok(self.engine.store.get_flow(ctx, flow_id).await?)
    }
}

/// Background tasks of a data plane; dropping this stops them.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

/// The runtime's [`TransferBackend`], bound to a [`DataPlane`] once it exists (the runtime
/// is built first). Holds no strong reference: a dropped data plane answers `unavailable`.
#[derive(Clone, Default)]
pub struct TransferHandle {
    target: Arc<RwLock<Weak<Engine>>>,
}

impl std::fmt::Debug for TransferHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferHandle")
            .field("bound", &self.engine().is_some())
            .finish()
    }
}

impl TransferHandle {
    /// An unbound handle.
    pub fn new() -> TransferHandle {
        TransferHandle::default()
    }

    /// Routes the runtime's transfer calls to `data_plane` (replacing an earlier binding).
    pub fn bind(&self, data_plane: &DataPlane) {
        *self.target.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::downgrade(&data_plane.engine);
    }

    fn engine(&self) -> Option<Arc<Engine>> {
        self.target
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade()
    }

    fn bound(&self) -> Result<Arc<Engine>, GuestError> {
        self.engine()
            .ok_or_else(|| GuestError::Unavailable("the data plane is not running".into()))
    }
}

#[async_trait]
impl TransferBackend for TransferHandle {
    async fn counterparty(
        &self,
        call: &CallContext,
        flow_id: &str,
    ) -> Result<Option<Counterparty>, GuestError> {
        self.bound()?.counterparty(call, flow_id).await
    }

    async fn report(
        &self,
        call: &CallContext,
        flow_id: &str,
        report: FlowReport,
    ) -> Result<(), GuestError> {
        self.bound()?.report(call, flow_id, report).await
    }
}
