//! Control-plane events and timers for apps: the [`EventHub`].
//!
//! Sources, per tenant with an enabled app that asked for them:
//! - **Polling** (the fallback that always runs): `POST {kind}/request` pages of negotiations
//!   and transfers, compared with the last state stored per process.
//! - **Callbacks**: `POST /events/{ctx}?token=…` from EDC `callbackAddresses` (the client
//!   adds Weft's address to negotiations and transfers apps start). A callback is a hint:
//!   the hub re-reads the process with the tenant's token before it emits anything.
//! - **Watches** (`management.watch`): checked per process until it settles, then a
//!   `process-state-changed` event with the app's correlation.
//! - **Timers**: a tick per (tenant, app) every `timer-secs` (never below the minimum).
//!
//! Delivery goes through a durable outbox (weft-store): at-least-once, with an id that is
//! stable for the same change (callback and poll, two replicas, a restart), redelivery with
//! exponential back-off, and after the last attempt an audit entry. An event is never
//! dropped silently: an app no longer enabled gets an audit entry too.

pub mod delivery;
pub mod sources;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use weft_runtime::grants::Grants;
use weft_runtime::{CallContext, Entry, LoadedPlugin, Runtime};
use weft_store::Store;

pub use weft_runtime::bindings::events::{Event, EventKind};

pub use delivery::DeliveryReport;
pub use sources::PollReport;

use crate::client::ManagementClient;
use crate::config::EventsConfig;
use crate::error::{ManagementError, describe};
use crate::process::Process;

/// Most callbacks handled at once; more are answered 503 so EDC retries later (and the
/// poller catches up anyway).
pub const MAX_CONCURRENT_CALLBACKS: usize = 64;

/// How often delivered/failed events and stale process states are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// `actor` of the audit entries the hub writes.
pub const AUDIT_ACTOR: &str = "weft-management";

/// What an app can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    ContractNegotiation,
    TransferProcess,
    Timer,
}

impl Topic {
    fn of(process: Process) -> Topic {
        match process {
            Process::Negotiation => Topic::ContractNegotiation,
            Process::Transfer => Topic::TransferProcess,
        }
    }
}

/// An enabled (tenant, app) pair and its effective grants (manifest ∩ CSP ∩ tenant).
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub ctx: String,
    pub plugin_id: String,
    pub grants: Arc<Grants>,
}

impl Subscriber {
    /// Whether the grants cover `topic` (the hub checks again whatever the server returns).
    pub fn wants(&self, topic: Topic) -> bool {
        match topic {
            Topic::ContractNegotiation => self.grants.events.contains(Process::Negotiation.kind()),
            Topic::TransferProcess => self.grants.events.contains(Process::Transfer.kind()),
            Topic::Timer => self.grants.timer_secs.is_some(),
        }
    }
}

/// Why an event could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The app is no longer enabled for the tenant (or no longer installed).
    #[error("the app is not enabled for this tenant")]
    NotEnabled,
    /// The app's handler returned an error variant.
    #[error("the event handler returned {0}")]
    Handler(String),
    /// The call failed (trap, limit, no instance free).
    #[error("the call failed: {0}")]
    Call(String),
}

/// What the hub needs from the server, which owns tenants and enablements.
#[async_trait]
pub trait EventTargets: Send + Sync + 'static {
    /// The enabled (tenant, app) pairs whose effective grants include `topic`.
    async fn subscribers(&self, topic: Topic) -> Vec<Subscriber>;

    /// Calls the app's `events` export for the tenant, usually with [`deliver_via_runtime`]
    /// on the app version and call context the tenant's enablement resolves to now.
    async fn deliver(&self, ctx: &str, plugin_id: &str, event: Event) -> Result<(), DeliveryError>;
}

/// Calls a plugin's `events` export: the body of a typical [`EventTargets::deliver`].
pub async fn deliver_via_runtime(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    mut call: CallContext,
    event: Event,
) -> Result<(), DeliveryError> {
    call.entry = Entry::Events;
    match runtime.event(plugin, call, event).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DeliveryError::Handler(describe(&e))),
        Err(e) => Err(DeliveryError::Call(e.to_string())),
    }
}

/// A stable event id from its parts (length-prefixed, so parts cannot run into each other).
pub(crate) fn event_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    format!("evt-{}", &hex::encode(hash.finalize())[..40])
}

struct Hub {
    client: ManagementClient,
    store: Store,
    targets: Arc<dyn EventTargets>,
    config: EventsConfig,
    deliver_wake: Notify,
    watch_wake: Arc<Notify>,
    /// Last timer slot enqueued per (tenant, app).
    timer_slots: Mutex<HashMap<(String, String), u64>>,
    callback_permits: Arc<Semaphore>,
}

/// The event pipeline. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Hub>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").finish_non_exhaustive()
    }
}

/// The hub's background tasks; dropping this stops them.
#[derive(Debug)]
pub struct HubTasks {
    handles: Vec<JoinHandle<()>>,
}

impl Drop for HubTasks {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

impl EventHub {
    /// A hub delivering to `targets`; needs a client built with a store.
    pub fn new(
        client: ManagementClient,
        targets: Arc<dyn EventTargets>,
    ) -> Result<EventHub, ManagementError> {
        let store = client.store().cloned().ok_or_else(|| {
            ManagementError::NotConfigured("the event hub needs the client's store".into())
        })?;
        let config = client.config().events.clone();
        Ok(EventHub {
            inner: Arc::new(Hub {
                watch_wake: client.wake(),
                client,
                store,
                targets,
                config,
                deliver_wake: Notify::new(),
                timer_slots: Mutex::new(HashMap::new()),
                callback_permits: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLBACKS)),
            }),
        })
    }

    pub fn client(&self) -> &ManagementClient {
        &self.inner.client
    }

    /// Starts polling, watch checks, timers, delivery and pruning in the background.
    pub fn spawn(&self) -> HubTasks {
        let ms = Duration::from_millis;
        let c = &self.inner.config;
        let (poll, watch, timer, scan) = (
            ms(c.poll_interval_ms),
            ms(c.watch_interval_ms),
            ms(c.timer_scan_ms),
            ms(c.delivery_scan_ms),
        );
        let mut handles = Vec::new();
        let hub = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                hub.poll_once().await;
                tokio::time::sleep(poll).await;
            }
        }));
        let hub = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                hub.check_watches().await;
                tokio::select! {
                    () = tokio::time::sleep(watch) => {}
                    () = hub.inner.watch_wake.notified() => {}
                }
            }
        }));
        let hub = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                hub.tick_timers().await;
                tokio::time::sleep(timer).await;
            }
        }));
        let hub = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                hub.deliver_due().await;
                tokio::select! {
                    () = tokio::time::sleep(scan) => {}
                    () = hub.inner.deliver_wake.notified() => {}
                }
            }
        }));
        let hub = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_INTERVAL).await;
                hub.prune().await;
            }
        }));
        HubTasks { handles }
    }

    /// Forgets delivered/failed events and process states older than the retention.
    pub async fn prune(&self) {
        let retention = time::Duration::seconds(
            i64::try_from(self.inner.config.retention_secs).unwrap_or(i64::MAX),
        );
        // A retention reaching before the epoch prunes nothing.
        let before = weft_store::now()
            .checked_sub(retention)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        if let Err(e) = self.inner.store.mgmt_prune_events(before).await {
            tracing::warn!("pruning delivered events failed: {e}");
        }
        if let Err(e) = self.inner.store.mgmt_prune_process_states(before).await {
            tracing::warn!("pruning process states failed: {e}");
        }
    }
}

/// [`deliver_via_runtime`] must be usable inside [`EventTargets::deliver`], whose future is
/// `Send`.
#[allow(dead_code)]
fn deliver_via_runtime_is_send(rt: &Runtime, p: &LoadedPlugin, c: CallContext, e: Event) {
    fn is_send<T: Send>(_: T) {}
    is_send(deliver_via_runtime(rt, p, c, e));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id(&["a", "b"]), event_id(&["a", "b"]));
        assert_ne!(event_id(&["ab", ""]), event_id(&["a", "b"]));
        assert!(event_id(&["x"]).starts_with("evt-"));
        assert_eq!(event_id(&["x"]).len(), 44);
    }
}
