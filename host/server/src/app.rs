//! The [`Weft`] application: opens the store, builds the runtime and registry on it, restores
//! every published plugin version and activation, and serves the admin and tenant APIs.

use crate::config::ServerConfig;
use crate::error::{ApiError, ServerError};
use crate::limits::TenantLimiter;
use crate::state::StoreState;
use crate::tenancy::{AppRecords, TenantApps};
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;
use weft_auth::{AuthConfig, Authenticator};
use weft_runtime::config::RuntimeConfig;
use weft_runtime::grants::Grants;
use weft_runtime::services::{ManagementBackend, Services, TransferBackend};
use weft_runtime::{CallContext, Entry, LoadedPlugin, Registry, Runtime, Tenant};
use weft_store::{GenerationCache, PluginVersionRecord, Store, StoreError, StoreOptions};

/// Everything a [`Weft`] is built from. Only the three configs are required; the rest lets
/// other crates plug in (the Management API bridge, the data plane and its routes).
pub struct WeftOptions {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub runtime: RuntimeConfig,
    /// An already opened store (for example shared with the data plane); otherwise the
    /// server config's store is opened.
    pub store: Option<Store>,
    /// Backend of the `management` import (default: not configured).
    pub management: Option<Arc<dyn ManagementBackend>>,
    /// Backend of the `transfer` import (default: not configured).
    pub transfer: Option<Arc<dyn TransferBackend>>,
    /// Routes merged into [`Weft::router`] *outside* Weft's bearer-token check (they bring
    /// their own authentication, like DPS signaling and the public data endpoint).
    pub router: Option<Router>,
    /// HTTP client for fetching the identity provider's JWKS.
    pub http_client: Option<reqwest::Client>,
}

impl WeftOptions {
    pub fn new(server: ServerConfig, auth: AuthConfig, runtime: RuntimeConfig) -> WeftOptions {
        WeftOptions {
            server,
            auth,
            runtime,
            store: None,
            management: None,
            transfer: None,
            router: None,
            http_client: None,
        }
    }
}

/// The running application; cheap to clone.
#[derive(Clone)]
pub struct Weft {
    pub(crate) inner: Arc<Inner>,
    extra: Option<Router>,
}

pub(crate) struct Inner {
    pub(crate) config: ServerConfig,
    pub(crate) store: Store,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) auth: Authenticator,
    pub(crate) limiter: TenantLimiter,
    /// Serialises admin changes so the store and the registry move together.
    pub(crate) admin: tokio::sync::Mutex<()>,
    /// Tenancy records by (tenant, app), for request resolution.
    pub(crate) app_records: GenerationCache<(String, String), AppRecords>,
    /// Enabled apps by tenant, for the data plane's directory.
    pub(crate) tenant_apps: GenerationCache<String, TenantApps>,
}

/// A plugin version resolved for one tenant, ready to call.
pub struct Resolved {
    pub plugin: Arc<LoadedPlugin>,
    pub call: CallContext,
}

/// Effective grants: what the manifest asks ∩ what the CSP granted ∩ the tenant's narrowing.
pub fn effective_grants(asked: &Grants, csp: &Grants, narrowed: Option<&Grants>) -> Grants {
    let both = asked.intersect(csp);
    match narrowed {
        Some(n) => both.intersect(n),
        None => both,
    }
}

/// Parses stored grants JSON; a corrupt row grants nothing (and is logged).
pub(crate) fn parse_grants(json: Option<&str>, what: &str) -> Grants {
    match json {
        None => Grants::default(),
        Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
            tracing::error!("stored {what} are not valid grants ({e}); treating them as none");
            Grants::default()
        }),
    }
}

impl Weft {
    /// Opens the store, starts the runtime and restores every stored plugin version.
    pub async fn new(options: WeftOptions) -> Result<Weft, ServerError> {
        let WeftOptions {
            server,
            auth,
            mut runtime,
            store,
            management,
            transfer,
            router,
            http_client,
        } = options;
        server.validate()?;
        std::fs::create_dir_all(&server.data_dir).map_err(|source| ServerError::DataDir {
            path: server.data_dir.clone(),
            source,
        })?;
        std::fs::create_dir_all(server.plugins_dir()).map_err(|source| ServerError::DataDir {
            path: server.plugins_dir(),
            source,
        })?;
        let authenticator = Authenticator::new(auth, http_client.unwrap_or_default())?;
        let store = match store {
            Some(store) => store,
            None => {
                let url = server.effective_store_url()?;
                let options = StoreOptions {
                    schema: server.store_schema.clone(),
                    ..StoreOptions::default()
                };
                Store::connect_with(&url, options).await?
            }
        };
        if runtime.cache_dir.is_none() {
            runtime.cache_dir = Some(server.cache_dir());
        }
        let mut services = Services::in_memory();
        services.state = Arc::new(StoreState::new(store.clone()));
        if let Some(m) = management {
            services.management = m;
        }
        if let Some(t) = transfer {
            services.transfer = t;
        }
        let runtime = Runtime::new(runtime, services)?;
        let registry = Arc::new(Registry::new(runtime.clone()));
        let limiter = TenantLimiter::new(server.tenant_limits);
        let inner = Arc::new(Inner {
            config: server,
            store,
            runtime,
            registry,
            auth: authenticator,
            limiter,
            admin: tokio::sync::Mutex::new(()),
            app_records: GenerationCache::default(),
            tenant_apps: GenerationCache::default(),
        });
        inner.restore().await?;
        Ok(Weft {
            inner,
            extra: router,
        })
    }

    /// The whole HTTP API: `/healthz`, `/openapi.json`, `/admin/…`, `/tenants/…`, plus the
    /// extra router given in [`WeftOptions::router`].
    pub fn router(&self) -> Router {
        let router = crate::routes::router(self.inner.clone());
        match &self.extra {
            Some(extra) => router.merge(extra.clone()),
            None => router,
        }
    }

    /// Adds routes merged into [`Weft::router`] outside Weft's bearer-token check, for
    /// crates that need the built application (its store, registry, [`Weft::resolve`])
    /// before they can build their routes.
    pub fn merge_router(&mut self, router: Router) {
        self.extra = Some(match self.extra.take() {
            Some(existing) => existing.merge(router),
            None => router,
        });
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.runtime
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// Resolves the version `app` runs for tenant `ctx` (its pin, else the active version)
    /// with the tenant's config and effective grants, for the given entry point. Used by the
    /// tenant API and by other crates (data plane, events).
    pub async fn resolve(&self, ctx: &str, app: &str, entry: Entry) -> Result<Resolved, ApiError> {
        self.inner.resolve(ctx, app, entry).await
    }

    /// A tenant and the apps enabled for it (cached like [`Weft::resolve`]'s records);
    /// `None` for an unknown tenant.
    pub async fn tenant_apps(&self, ctx: &str) -> Result<Option<Arc<TenantApps>>, StoreError> {
        let inner = &self.inner;
        let generation = inner.store.tenancy_generation();
        let key = ctx.to_owned();
        if let Some(hit) = inner.tenant_apps.get(&key, generation) {
            return Ok(Some(hit));
        }
        let Some(tenant) = inner.store.get_tenant(ctx).await? else {
            return Ok(None);
        };
        let plugin_ids = inner
            .store
            .list_enablements_for_tenant(ctx)
            .await?
            .into_iter()
            .map(|e| e.plugin_id)
            .collect();
        let apps = Arc::new(TenantApps { tenant, plugin_ids });
        inner.tenant_apps.insert(key, generation, Arc::clone(&apps));
        Ok(Some(apps))
    }

    /// Closes the store's connections (after the server stopped).
    pub async fn close(&self) {
        self.inner.store.close().await;
    }
}

impl Inner {
    /// Loads every stored version into the registry and re-activates the active ones. A
    /// version that cannot be loaded is logged and left out (its calls answer 503).
    async fn restore(&self) -> Result<(), ServerError> {
        let plugins = self.store.list_plugins().await?;
        for plugin in plugins {
            for version in self.store.list_versions(&plugin.id).await? {
                if let Err(e) = self.load_stored(&version).await {
                    tracing::error!(plugin = %version.plugin_id, version = %version.version, "could not restore plugin version: {}", e.message);
                }
            }
            if let Some(active) = &plugin.active_version {
                match self.registry.activate(&plugin.id, active) {
                    Ok(_) => {
                        tracing::info!(plugin = %plugin.id, version = %active, "restored active version")
                    }
                    Err(e) => {
                        tracing::error!(plugin = %plugin.id, version = %active, "could not re-activate: {e}")
                    }
                }
            }
        }
        Ok(())
    }

    /// Where a component of this digest is kept, relative to the data directory.
    pub(crate) fn component_rel_path(digest: &str) -> String {
        format!("plugins/{digest}.wasm")
    }

    pub(crate) fn signature_path(&self, digest: &str) -> PathBuf {
        self.config.plugins_dir().join(format!("{digest}.sig"))
    }

    /// Loads a stored version from its component file (a deserialize when the precompiled
    /// cache has it) and inserts it into the registry.
    pub(crate) async fn load_stored(
        &self,
        record: &PluginVersionRecord,
    ) -> Result<Arc<LoadedPlugin>, ApiError> {
        if let Some(p) = self.registry.version(&record.plugin_id, &record.version) {
            return Ok(p);
        }
        let path = self.config.resolve(&record.component_path);
        let wasm = tokio::fs::read(&path)
            .await
            .map_err(|e| ApiError::internal(format!("component file {}: {e}", path.display())))?;
        let signature = tokio::fs::read(self.signature_path(&record.digest))
            .await
            .ok();
        let plugin = self
            .runtime
            .load_async(wasm, record.manifest_toml.clone(), signature)
            .await
            .map_err(|e| {
                ApiError::internal(format!(
                    "loading stored {}@{}: {e}",
                    record.plugin_id, record.version
                ))
            })?;
        if plugin.digest != record.digest {
            return Err(ApiError::internal(format!(
                "component file {} has digest {}, the store says {}",
                path.display(),
                plugin.digest,
                record.digest
            )));
        }
        self.registry
            .insert(plugin)
            .map_err(|e| ApiError::internal(format!("registry insert: {e}")))
    }

    /// The CSP's grants for a plugin.
    pub(crate) async fn csp_grants(&self, plugin: &str) -> Result<Grants, ApiError> {
        Ok(parse_grants(
            self.store.get_granted(plugin).await?.as_deref(),
            "CSP grants",
        ))
    }

    /// The tenant, plugin and enablement records of a request, from the cache when the
    /// tenancy has not changed since they were read.
    async fn app_records(&self, ctx: &str, app: &str) -> Result<Arc<AppRecords>, ApiError> {
        let generation = self.store.tenancy_generation();
        let key = (ctx.to_owned(), app.to_owned());
        if let Some(hit) = self.app_records.get(&key, generation) {
            return Ok(hit);
        }
        let tenant = self
            .store
            .get_tenant(ctx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("unknown participant context {ctx}")))?;
        let plugin = self
            .store
            .get_plugin(app)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("unknown app {app}")))?;
        let enablement = self.store.get_enablement(ctx, app).await?.ok_or_else(|| {
            ApiError::forbidden(format!(
                "app {app} is not enabled for this participant context"
            ))
        })?;
        let records = Arc::new(AppRecords::new(tenant, &plugin, enablement));
        self.app_records
            .insert(key, generation, Arc::clone(&records));
        Ok(records)
    }

    pub(crate) async fn resolve(
        &self,
        ctx: &str,
        app: &str,
        entry: Entry,
    ) -> Result<Resolved, ApiError> {
        let records = self.app_records(ctx, app).await?;
        let (tenant, enablement) = (&records.tenant, &records.enablement);
        if !tenant.active {
            return Err(ApiError::forbidden(format!(
                "participant context {ctx} is deactivated"
            )));
        }
        let loaded = match &enablement.pinned_version {
            Some(v) => self.registry.version(app, v),
            None => self.registry.active(app),
        };
        let Some(loaded) = loaded else {
            tracing::error!(app, pinned = ?enablement.pinned_version, "enabled app has no loaded version to run");
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "app-unavailable",
                format!("app {app} has no version available to run"),
            )
            .with_retry_after(crate::routes::UNAVAILABLE_RETRY_AFTER_SECS));
        };
        let grants = records.grants(&loaded);
        let mut call = CallContext::new(
            Tenant {
                participant_context_id: tenant.id.clone(),
                did: tenant.did.clone(),
                bpn: tenant.bpn.clone(),
            },
            entry,
        );
        call.config_json = enablement.config_json.clone();
        call.grants = grants;
        Ok(Resolved {
            plugin: loaded,
            call,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(hosts: &[&str], quota: u64, mgmt: &[&str]) -> Grants {
        Grants {
            outbound_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            state_quota_bytes: quota,
            management: mgmt.iter().map(|s| s.to_string()).collect(),
            ..Grants::default()
        }
    }

    #[test]
    fn narrowing_never_widens() {
        let asked = grants(
            &["https://a.example", "https://b.example"],
            1000,
            &["management-api:read"],
        );
        let csp = grants(
            &["https://a.example"],
            500,
            &["management-api:read", "management-api:write"],
        );
        let wide = grants(
            &[
                "https://a.example",
                "https://b.example",
                "https://c.example",
            ],
            10_000,
            &["management-api:write", "management-api:read"],
        );
        let eff = effective_grants(&asked, &csp, Some(&wide));
        assert_eq!(
            eff,
            grants(&["https://a.example"], 500, &["management-api:read"])
        );
        let narrow = grants(&[], 100, &[]);
        assert_eq!(
            effective_grants(&asked, &csp, Some(&narrow)),
            grants(&[], 100, &[])
        );
        assert_eq!(effective_grants(&asked, &csp, None), eff);
    }
}
