//! `context`: the tenant, the plugin's per-tenant config and the entry point of the call.

use crate::bindings::weft::plugin::context::{Entry, Host, TenantInfo};
use crate::call::{self, HostState};

impl Host for HostState {
    async fn tenant(&mut self) -> wasmtime::Result<TenantInfo> {
        let t = &self.call.tenant;
        Ok(TenantInfo {
            participant_context_id: t.participant_context_id.clone(),
            did: t.did.clone(),
            bpn: t.bpn.clone(),
        })
    }

    async fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.call.config_json.clone())
    }

    async fn entry_point(&mut self) -> wasmtime::Result<Entry> {
        Ok(match &self.call.entry {
            call::Entry::Api => Entry::Api,
            call::Entry::Data(flow) => Entry::Data(flow.clone()),
            call::Entry::Lifecycle => Entry::Lifecycle,
            call::Entry::DataFlows => Entry::DataFlows,
            call::Entry::Events => Entry::Events,
        })
    }

    async fn plugin(&mut self) -> wasmtime::Result<(String, String)> {
        Ok((
            self.call.plugin_id.clone(),
            self.call.plugin_version.clone(),
        ))
    }
}
