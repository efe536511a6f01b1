//! The tenancy records every request resolves (tenant, plugin, enablement), cached in
//! memory (see [`weft_store::GenerationCache`]) so a request does not cost three
//! database reads.

use weft_store::{EnablementRecord, PluginRecord, TenantRecord};

/// What a tenant API request for one app needs from the store.
#[derive(Debug)]
pub(crate) struct AppRecords {
    pub(crate) tenant: TenantRecord,
    pub(crate) plugin: PluginRecord,
    pub(crate) enablement: EnablementRecord,
}

/// A tenant and the ids of the apps enabled for it.
#[derive(Debug)]
pub struct TenantApps {
    pub tenant: TenantRecord,
    pub plugin_ids: Vec<String>,
}
