//! What the data plane needs to know about tenants and their apps, and how a flow finds the
//! app that owns it. The server implements [`AppDirectory`] from its tenants, enablements
//! and grants; this crate never reads those itself.

use std::sync::Arc;

use async_trait::async_trait;
use weft_runtime::{CallContext, LoadedPlugin, Runtime};

/// One app a tenant enabled, ready to call.
#[derive(Clone)]
pub struct TenantApp {
    /// The plugin version calls go to for this tenant.
    pub plugin: Arc<LoadedPlugin>,
    /// The call context for this tenant and app: tenant, config and effective grants
    /// filled in. The data plane sets `entry` and `limits` per call.
    pub call: CallContext,
}

impl std::fmt::Debug for TenantApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantApp")
            .field("plugin", &self.plugin)
            .field("tenant", &self.call.tenant.participant_context_id)
            .finish_non_exhaustive()
    }
}

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No such (active) participant context: its DPS endpoints answer 404.
    #[error("unknown participant context {0}")]
    UnknownTenant(String),
    /// The directory's own backend failed; the request is answered 503.
    #[error("the tenant directory is unavailable: {0}")]
    Unavailable(String),
}

/// Tenants and their enabled apps, as the server knows them.
#[async_trait]
pub trait AppDirectory: Send + Sync + 'static {
    /// The runtime every app runs on.
    fn runtime(&self) -> Arc<Runtime>;

    /// The apps `ctx` enabled (any order). [`DirectoryError::UnknownTenant`] when `ctx` is
    /// not an active tenant.
    async fn apps_for(&self, ctx: &str) -> Result<Vec<TenantApp>, DirectoryError>;
}

/// How specifically a selector matches a dataset: exact beats the longest prefix beats `*`.
fn specificity(selector: &str, dataset: &str) -> Option<usize> {
    match selector.strip_suffix('*') {
        Some(prefix) if dataset.starts_with(prefix) => Some(prefix.len()),
        Some(_) => None,
        None if selector == dataset => Some(usize::MAX),
        None => None,
    }
}

/// The app that owns a new flow: among the apps whose manifest `[data-plane]` lists the
/// profile, the one with the most specific dataset selector (ties: lowest plugin id).
pub fn select_owner<'a>(
    apps: &'a [TenantApp],
    profile: &str,
    dataset: &str,
) -> Option<&'a TenantApp> {
    apps.iter()
        .filter_map(|app| {
            let dp = app.plugin.manifest.data_plane.as_ref()?;
            if !dp.profiles.iter().any(|p| p == profile) {
                return None;
            }
            let best = dp
                .datasets
                .iter()
                .filter_map(|s| specificity(s, dataset))
                .max()?;
            Some((best, app))
        })
        .max_by(|(a, x), (b, y)| a.cmp(b).then_with(|| y.plugin.id().cmp(x.plugin.id())))
        .map(|(_, app)| app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_rank_exact_over_prefix_over_any() {
        assert_eq!(specificity("*", "cert-1"), Some(0));
        assert_eq!(specificity("cert-*", "cert-1"), Some(5));
        assert_eq!(specificity("cert-1", "cert-1"), Some(usize::MAX));
        assert_eq!(specificity("cert-2", "cert-1"), None);
        assert_eq!(specificity("x*", "cert-1"), None);
    }
}
