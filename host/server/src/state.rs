//! The `state` import on the durable store: key-value state of (tenant, plugin) in
//! `weft-store`, with the quota the runtime passes (the effective `state-quota-bytes`).

use async_trait::async_trait;
use weft_runtime::GuestError;
use weft_runtime::services::{
    MAX_STATE_PAGE, MAX_STATE_VALUE_BYTES, Scope, StateBackend, StatePage,
};
use weft_store::{StateLimits, Store, StoreError};

/// State kept in Weft's store.
#[derive(Debug, Clone)]
pub struct StoreState {
    store: Store,
}

impl StoreState {
    pub fn new(store: Store) -> StoreState {
        StoreState { store }
    }
}

fn limits(quota: u64) -> StateLimits {
    StateLimits {
        max_value_bytes: MAX_STATE_VALUE_BYTES as u64,
        max_total_bytes: quota,
    }
}

/// Store errors as the guest sees them; database failures stay opaque.
fn guest(err: StoreError) -> GuestError {
    match err {
        StoreError::NotFound(what) => GuestError::NotFound(what),
        StoreError::Conflict(what) => GuestError::Conflict(what),
        StoreError::QuotaExceeded(what) => GuestError::LimitExceeded(what),
        StoreError::Invalid(what) => GuestError::Invalid(what),
        StoreError::Database(e) => {
            tracing::error!("state store failed: {e}");
            GuestError::Unavailable("the state store is unavailable".into())
        }
    }
}

#[async_trait]
impl StateBackend for StoreState {
    async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, GuestError> {
        self.store
            .state_get(&scope.tenant, &scope.plugin, key)
            .await
            .map_err(guest)
    }

    async fn set(
        &self,
        scope: &Scope,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), GuestError> {
        self.store
            .state_set(&scope.tenant, &scope.plugin, key, value, limits(quota))
            .await
            .map_err(guest)
    }

    async fn delete(&self, scope: &Scope, key: &str) -> Result<bool, GuestError> {
        self.store
            .state_delete(&scope.tenant, &scope.plugin, key)
            .await
            .map_err(guest)
    }

    async fn list(
        &self,
        scope: &Scope,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<StatePage, GuestError> {
        let limit = limit.clamp(1, MAX_STATE_PAGE);
        let (entries, next_cursor) = self
            .store
            .state_list(
                &scope.tenant,
                &scope.plugin,
                prefix,
                cursor.map(str::to_string),
                limit,
            )
            .await
            .map_err(guest)?;
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
        self.store
            .state_compare_and_set(
                &scope.tenant,
                &scope.plugin,
                key,
                expected,
                new,
                limits(quota),
            )
            .await
            .map_err(guest)
    }
}
