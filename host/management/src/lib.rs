//! weft-management: Weft's bridge to the EDC Management API, acting for one tenant
//! (participant context) at a time, and the control-plane events apps react to.
//!
//! # Parts
//! - [`TokenProvider`]: tenant tokens by OAuth2 client credentials (one client per tenant)
//!   or RFC 8693 token exchange (Weft's client, `resource` = ctx); cached per (ctx, scopes)
//!   until shortly before `exp`, concurrent requests coalesced, renewed once on a 401.
//!   Credentials come from config or files and never reach a log line or a plugin.
//! - [`ManagementClient`]: the runtime's [`weft_runtime::services::ManagementBackend`].
//!   Paths are relative to `{base}/{version}/participants/{ctx}/`, object bodies get the
//!   JSON-LD management context, reads are retried and writes are not, responses are capped.
//!   4xx answers go back to the plugin as responses (409 = "exists"); what it cannot act on
//!   becomes `unavailable`, `limit-exceeded`, `access-denied`, …
//! - [`EventHub`]: negotiation and transfer events (poll fallback + authenticated EDC
//!   callbacks), `management.watch` continuations and timer ticks, delivered at-least-once
//!   through a durable outbox to the app's `events` export; failures end in the audit log.
//!   The server provides tenants and enablements through [`EventTargets`].
//! - Data-plane registration ([`ManagementClient::sync_dataplane`]): Weft registers itself as
//!   each tenant's DPS data plane with the union of its enabled apps' profiles.
//!
//! # Long waits do not spin an instance
//! `management.wait-for-state` is an async host function: the guest's call is suspended on
//! a host future that polls `{kind}/{id}/state` with exponential back-off (from
//! `limits.wait-poll-initial-ms` to `limits.wait-poll-max-ms`) until a wanted state or the
//! deadline (the plugin's `timeout-ms`, at most the runtime's `MAX_WAIT_MS`, and always within
//! the call's wall-clock limit). While it waits the instance uses no CPU (epoch ticks are
//! only charged while guest code runs) and no thread; it only keeps its memory. For waits
//! longer than a request should last, an app calls `management.watch` instead and returns:
//! the [`EventHub`] checks the process and, once it settles (negotiation FINALIZED or
//! TERMINATED; transfer STARTED, COMPLETED, TERMINATED or DEPROVISIONED), delivers a
//! `process-state-changed` event with the app's correlation to a fresh instance.
//!
//! # Wiring (server)
//! ```text
//! let client = ManagementClient::new(config.management, Some(store.clone()))?;
//! let services = Services { management: Arc::new(client.clone()), .. };
//! let runtime = Runtime::new(runtime_config, services)?;
//! let hub = EventHub::new(client.clone(), Arc::new(ServerTargets { .. }))?; // impl EventTargets
//! let _tasks = hub.spawn();
//! public_router = public_router.merge(hub.router());                        // POST /events/{ctx}
//! client.sync_dataplane(ctx, &dataplane_profiles(enabled_manifests)).await?; // on enablement change
//! ```

mod callback;
pub mod client;
pub mod config;
pub mod dataplane;
pub mod error;
pub mod events;
pub mod process;
pub mod token;

pub use client::{MANAGEMENT_CONTEXT, ManagementClient};
pub use config::{
    ApiVersion, ClientAuth, ConfigError, DataPlaneConfig, EventsConfig, Grant, IdentityConfig,
    ManagementConfig, RegistrationForm, Secret, TenantClient,
};
pub use dataplane::{Registration, SyncOutcome, dataplane_profiles};
pub use error::{ManagementError, describe};
pub use events::{
    DeliveryError, DeliveryReport, Event, EventHub, EventKind, EventTargets, HubTasks, PollReport,
    Subscriber, Topic, deliver_via_runtime,
};
pub use process::Process;
pub use token::{AccessToken, TokenProvider};
