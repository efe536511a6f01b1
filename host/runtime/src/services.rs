//! What the embedder provides behind the host imports: state, the Management API bridge
//! and data flows. The runtime checks grants and limits; backends do the work.
//!
//! Backends are trait objects so the server can plug in the durable store and the real
//! control-plane bridge, while tests use [`MemoryState`] and the `Unconfigured` defaults.

use crate::bindings::management::{ProcessKind, Request as MgmtRequest, Response as MgmtResponse};
use crate::bindings::types::DataAddress;
use crate::call::CallContext;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use crate::bindings::types::Error as GuestError;

/// Most entries one `state.list-prefix` page returns, whatever the guest asks.
pub const MAX_STATE_PAGE: u32 = 1_000;

/// Largest single state value; state holds records, not payloads.
pub const MAX_STATE_VALUE_BYTES: usize = 1 << 20;

/// Largest state key.
pub const MAX_STATE_KEY_BYTES: usize = 1_024;

/// Who owns a piece of state: one plugin for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub tenant: String,
    pub plugin: String,
}

/// One page of state entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatePage {
    pub entries: Vec<(String, Vec<u8>)>,
    pub next_cursor: Option<String>,
}

/// Durable key-value state per (tenant, plugin).
#[async_trait]
pub trait StateBackend: Send + Sync + 'static {
    async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, GuestError>;
    /// Writes a value; `limit-exceeded` (and no change) when the scope's total of key and
    /// value bytes would pass `quota`.
    async fn set(
        &self,
        scope: &Scope,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), GuestError>;
    async fn delete(&self, scope: &Scope, key: &str) -> Result<bool, GuestError>;
    async fn list(
        &self,
        scope: &Scope,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<StatePage, GuestError>;
    async fn compare_and_set(
        &self,
        scope: &Scope,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        quota: u64,
    ) -> Result<bool, GuestError>;
}

/// Tenant-scoped Management API calls (the host builds URLs and tokens).
#[async_trait]
pub trait ManagementBackend: Send + Sync + 'static {
    async fn send(
        &self,
        call: &CallContext,
        request: MgmtRequest,
    ) -> Result<MgmtResponse, GuestError>;
    async fn wait_for_state(
        &self,
        call: &CallContext,
        kind: ProcessKind,
        id: &str,
        states: &[String],
        timeout: std::time::Duration,
    ) -> Result<String, GuestError>;
    async fn watch(
        &self,
        call: &CallContext,
        kind: ProcessKind,
        id: &str,
        correlation: &str,
    ) -> Result<(), GuestError>;
}

/// How to reach the counterparty of a flow; `authorization` never reaches the guest.
#[derive(Debug, Clone)]
pub struct Counterparty {
    /// The address as the guest may see it (secrets removed).
    pub public: DataAddress,
    /// Base endpoint URL requests are sent to.
    pub endpoint: String,
    /// Value of the `Authorization` header the host attaches.
    pub authorization: Option<String>,
}

/// An asynchronous outcome a plugin reports for a flow.
#[derive(Debug, Clone)]
pub enum FlowReport {
    Prepared(Option<DataAddress>),
    Started(Option<DataAddress>),
    Completed,
    Errored(String),
}

/// Data flows owned by the data-plane part of the host.
#[async_trait]
pub trait TransferBackend: Send + Sync + 'static {
    async fn counterparty(
        &self,
        call: &CallContext,
        flow_id: &str,
    ) -> Result<Option<Counterparty>, GuestError>;
    async fn report(
        &self,
        call: &CallContext,
        flow_id: &str,
        report: FlowReport,
    ) -> Result<(), GuestError>;
}

/// The backends one runtime uses.
#[derive(Clone)]
pub struct Services {
    pub state: Arc<dyn StateBackend>,
    pub management: Arc<dyn ManagementBackend>,
    pub transfer: Arc<dyn TransferBackend>,
}

impl Services {
    /// In-memory state and no control plane: for tests and embedders that add the rest.
    pub fn in_memory() -> Services {
        Services {
            state: Arc::new(MemoryState::default()),
            management: Arc::new(Unconfigured),
            transfer: Arc::new(Unconfigured),
        }
    }
}

/// A backend for capabilities this deployment has not configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unconfigured;

fn unconfigured(what: &str) -> GuestError {
    GuestError::Unavailable(format!("{what} is not configured on this host"))
}

#[async_trait]
impl ManagementBackend for Unconfigured {
    async fn send(&self, _: &CallContext, _: MgmtRequest) -> Result<MgmtResponse, GuestError> {
        Err(unconfigured("the Management API"))
    }
    async fn wait_for_state(
        &self,
        _: &CallContext,
        _: ProcessKind,
        _: &str,
        _: &[String],
        _: std::time::Duration,
    ) -> Result<String, GuestError> {
        Err(unconfigured("the Management API"))
    }
    async fn watch(
        &self,
        _: &CallContext,
        _: ProcessKind,
        _: &str,
        _: &str,
    ) -> Result<(), GuestError> {
        Err(unconfigured("the Management API"))
    }
}

#[async_trait]
impl TransferBackend for Unconfigured {
    async fn counterparty(
        &self,
        _: &CallContext,
        flow_id: &str,
    ) -> Result<Option<Counterparty>, GuestError> {
        Err(GuestError::NotFound(format!("data flow {flow_id}")))
    }
    async fn report(
        &self,
        _: &CallContext,
        flow_id: &str,
        _: FlowReport,
    ) -> Result<(), GuestError> {
        Err(GuestError::NotFound(format!("data flow {flow_id}")))
    }
}

/// State kept in process memory (tests, and hosts without a store).
#[derive(Debug, Default)]
pub struct MemoryState {
    scopes: Mutex<BTreeMap<Scope, BTreeMap<String, Vec<u8>>>>,
}

impl MemoryState {
    fn usage(map: &BTreeMap<String, Vec<u8>>) -> u64 {
        map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }

    fn write(
        map: &mut BTreeMap<String, Vec<u8>>,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), GuestError> {
        let old = map.get(key).map_or(0, |v| (key.len() + v.len()) as u64);
        let new_total = Self::usage(map) - old + (key.len() + value.len()) as u64;
        if new_total > quota {
            return Err(GuestError::LimitExceeded(format!(
                "state quota of {quota} bytes exceeded ({new_total} needed)"
            )));
        }
        map.insert(key.to_string(), value.to_vec());
        Ok(())
    }
}

#[async_trait]
impl StateBackend for MemoryState {
    async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, GuestError> {
        let scopes = self
            .scopes
            .lock()
            .map_err(|_| GuestError::Internal("state lock".into()))?;
        Ok(scopes.get(scope).and_then(|m| m.get(key).cloned()))
    }

    async fn set(
        &self,
        scope: &Scope,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), GuestError> {
        let mut scopes = self
            .scopes
            .lock()
            .map_err(|_| GuestError::Internal("state lock".into()))?;
        Self::write(scopes.entry(scope.clone()).or_default(), key, value, quota)
    }

    async fn delete(&self, scope: &Scope, key: &str) -> Result<bool, GuestError> {
        let mut scopes = self
            .scopes
            .lock()
            .map_err(|_| GuestError::Internal("state lock".into()))?;
        Ok(scopes.get_mut(scope).and_then(|m| m.remove(key)).is_some())
    }

    async fn list(
        &self,
        scope: &Scope,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<StatePage, GuestError> {
        let scopes = self
            .scopes
            .lock()
            .map_err(|_| GuestError::Internal("state lock".into()))?;
        let Some(map) = scopes.get(scope) else {
            return Ok(StatePage::default());
        };
        let limit = limit.clamp(1, MAX_STATE_PAGE) as usize;
        let mut entries: Vec<(String, Vec<u8>)> = map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| cursor.is_none_or(|c| k.as_str() > c))
            .take(limit + 1)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let next_cursor = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(StatePage {
            entries,
            next_cursor,
        })
    }

    async fn compare_and_set(
        &self,
        scope: &Scope,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        quota: u64,
    ) -> Result<bool, GuestError> {
        let mut scopes = self
            .scopes
            .lock()
            .map_err(|_| GuestError::Internal("state lock".into()))?;
        let map = scopes.entry(scope.clone()).or_default();
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        Self::write(map, key, new, quota)?;
        Ok(true)
    }
}
