//! The tenancy records every request resolves (tenant, plugin, enablement), cached in
//! memory (see [`weft_store::GenerationCache`]) so a request does not cost three
//! database reads.

use std::sync::{Arc, Mutex, Weak};
use weft_runtime::LoadedPlugin;
use weft_runtime::grants::Grants;
use weft_store::{EnablementRecord, PluginRecord, TenantRecord};

/// What a tenant API request for one app needs from the store, with the stored grants
/// parsed once rather than per request.
#[derive(Debug)]
pub(crate) struct AppRecords {
    pub(crate) tenant: TenantRecord,
    pub(crate) enablement: EnablementRecord,
    /// The CSP's grants for the plugin.
    csp: Grants,
    /// The tenant's narrowing, if any.
    narrowed: Option<Grants>,
    /// Effective grants for the version last resolved (versions change rarely). Weak, so
    /// a cached record never keeps a removed version's compiled code alive; it also keeps
    /// the address from being reused while held, so pointer equality identifies the version.
    effective: Mutex<Option<(Weak<LoadedPlugin>, Arc<Grants>)>>,
}

impl AppRecords {
    pub(crate) fn new(
        tenant: TenantRecord,
        plugin: &PluginRecord,
        enablement: EnablementRecord,
    ) -> AppRecords {
        let csp = crate::app::parse_grants(plugin.granted_json.as_deref(), "CSP grants");
        let narrowed = enablement
            .narrowed_grants_json
            .as_deref()
            .map(|j| crate::app::parse_grants(Some(j), "narrowed grants"));
        AppRecords {
            tenant,
            enablement,
            csp,
            narrowed,
            effective: Mutex::new(None),
        }
    }

    /// Manifest ∩ CSP ∩ tenant for `loaded`.
    pub(crate) fn grants(&self, loaded: &Arc<LoadedPlugin>) -> Arc<Grants> {
        let mut last = self
            .effective
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((version, grants)) = &*last
            && std::ptr::eq(version.as_ptr(), Arc::as_ptr(loaded))
        {
            return Arc::clone(grants);
        }
        let grants = Arc::new(crate::app::effective_grants(
            &loaded.manifest.capabilities,
            &self.csp,
            self.narrowed.as_ref(),
        ));
        *last = Some((Arc::downgrade(loaded), Arc::clone(&grants)));
        grants
    }
}

/// A tenant and the ids of the apps enabled for it.
#[derive(Debug)]
pub struct TenantApps {
    pub tenant: TenantRecord,
    pub plugin_ids: Vec<String>,
}
