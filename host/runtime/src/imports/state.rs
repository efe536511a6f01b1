//! `state`: key-value state of (tenant, plugin), behind the granted quota.

use crate::bindings::weft::plugin::state::{Host, Page};
use crate::bindings::weft::plugin::types::Error;
use crate::call::HostState;
use crate::services::{MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES, Scope};

impl HostState {
    fn state_scope(&self) -> Result<(Scope, u64), Error> {
        let quota = self.call.grants.state_quota_bytes;
        if quota == 0 {
            return Err(Error::AccessDenied(
                "state is not granted to this plugin".into(),
            ));
        }
        let scope = Scope {
            tenant: self.call.tenant.participant_context_id.clone(),
            plugin: self.call.plugin_id.clone(),
        };
        Ok((scope, quota))
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_STATE_KEY_BYTES {
        return Err(Error::Invalid(format!(
            "state keys are 1 to {MAX_STATE_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_STATE_VALUE_BYTES {
        return Err(Error::LimitExceeded(format!(
            "state values are at most {MAX_STATE_VALUE_BYTES} bytes ({} given)",
            value.len()
        )));
    }
    Ok(())
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (scope, _) = match self.state_scope().and_then(|s| check_key(&key).map(|()| s)) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.services.state.get(&scope, &key).await)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let checked = self.state_scope().and_then(|s| {
            check_key(&key)
                .and_then(|()| check_value(&value))
                .map(|()| s)
        });
        let (scope, quota) = match checked {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.services.state.set(&scope, &key, &value, quota).await)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let (scope, _) = match self.state_scope().and_then(|s| check_key(&key).map(|()| s)) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.services.state.delete(&scope, &key).await)
    }

    async fn list_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Page, Error>> {
        let (scope, _) = match self.state_scope() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let page = self
            .services
            .state
            .list(&scope, &prefix, cursor.as_deref(), limit)
            .await
            .map(|p| Page {
                entries: p.entries,
                next_cursor: p.next_cursor,
            });
        Ok(page)
    }

    async fn compare_and_set(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let checked = self
            .state_scope()
            .and_then(|s| check_key(&key).and_then(|()| check_value(&new)).map(|()| s));
        let (scope, quota) = match checked {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .services
            .state
            .compare_and_set(&scope, &key, expected.as_deref(), &new, quota)
            .await)
    }
}
