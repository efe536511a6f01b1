//! Puts one Weft together from its parts: the store, the Management API bridge with its
//! event hub, and the data plane, around the server. `serve` and `sandbox` both use it,
//! so the quickstart runs exactly what a deployment runs.

use anyhow::Context;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use weft_management::{DeliveryError, EventHub, EventTargets, ManagementClient, Subscriber, Topic};
use weft_runtime::Entry;
use weft_runtime::bindings::events::Event;
use weft_server::{Weft, WeftOptions};

/// How often data plane registrations are reconciled with the tenants' enablements. A
/// registration follows an enable or disable within this delay (and at once on start).
pub const DATAPLANE_RECONCILE_INTERVAL: Duration = Duration::from_secs(10);

/// The parts of a Weft beyond the server itself.
#[derive(Default)]
pub struct Parts {
    /// The Management API bridge and event hub (`[management]`).
    pub management: Option<weft_management::ManagementConfig>,
    /// The DPS data plane (`[data-plane]`).
    pub data_plane: Option<weft_dataplane::DataPlaneConfig>,
}

/// A running Weft with its background tasks; dropping it stops them.
pub struct Assembled {
    pub weft: Weft,
    pub management: Option<ManagementClient>,
    pub data_plane: Option<weft_dataplane::DataPlane>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _hub: Option<weft_management::HubTasks>,
    _workers: Option<weft_dataplane::Workers>,
}

impl Drop for Assembled {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Assembled {
    /// Builds the store, the bridge, the server and the event hub.
    pub async fn build(mut options: WeftOptions, parts: Parts) -> anyhow::Result<Assembled> {
        let store = match options.store.take() {
            Some(s) => s,
            None => {
                let url = options.server.effective_store_url()?;
                std::fs::create_dir_all(&options.server.data_dir).ok();
                let store = match &options.server.store_schema {
                    Some(schema) => weft_store::Store::connect_with_schema(&url, schema).await,
                    None => weft_store::Store::connect(&url).await,
                };
                store.context("opening the store")?
            }
        };
        options.store = Some(store.clone());
        let management = match parts.management {
            Some(config) => {
                let client = ManagementClient::new(config, Some(store.clone()))
                    .context("[management] configuration")?;
                options.management = Some(Arc::new(client.clone()));
                Some(client)
            }
            None => None,
        };
        let transfer = weft_dataplane::TransferHandle::new();
        if parts.data_plane.is_some() {
            options.transfer = Some(Arc::new(transfer.clone()));
        }
        let mut weft = Weft::new(options).await.context("starting Weft")?;
        let (data_plane, workers) = match parts.data_plane {
            Some(config) => {
                let directory = Arc::new(WeftDirectory { weft: weft.clone() });
                let dp = weft_dataplane::DataPlane::new(store.clone(), directory, config)
                    .context("[data-plane] configuration")?;
                transfer.bind(&dp);
                weft.merge_router(dp.router());
                let workers = dp.start_workers();
                (Some(dp), Some(workers))
            }
            None => (None, None),
        };
        let mut tasks = Vec::new();
        let mut hub_tasks = None;
        if let Some(client) = &management {
            let hub = EventHub::new(client.clone(), Arc::new(WeftTargets { weft: weft.clone() }))
                .context("starting the event hub")?;
            weft.merge_router(hub.router());
            hub_tasks = Some(hub.spawn());
            let (w, c) = (weft.clone(), client.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = reconcile_dataplanes(&w, &c).await {
                        tracing::warn!("data plane registration: {e:#}");
                    }
                    tokio::time::sleep(DATAPLANE_RECONCILE_INTERVAL).await;
                }
            }));
        }
        Ok(Assembled {
            weft,
            management,
            data_plane,
            tasks,
            _hub: hub_tasks,
            _workers: workers,
        })
    }
}

/// Registers Weft as the data plane of every tenant whose enabled apps declare DPS
/// profiles (the union of them), and removes registrations that are no longer needed.
pub async fn reconcile_dataplanes(weft: &Weft, client: &ManagementClient) -> anyhow::Result<()> {
    for tenant in weft.store().list_tenants().await? {
        let mut manifests = Vec::new();
        if tenant.active {
            for enablement in weft.store().list_enablements_for_tenant(&tenant.id).await? {
                if let Ok(resolved) = weft
                    .resolve(&tenant.id, &enablement.plugin_id, Entry::DataFlows)
                    .await
                {
                    manifests.push(resolved.plugin.manifest.clone());
                }
            }
        }
        let profiles: BTreeSet<String> = weft_management::dataplane_profiles(manifests.iter());
        client
            .sync_dataplane(&tenant.id, &profiles)
            .await
            .with_context(|| format!("tenant {}", tenant.id))?;
    }
    Ok(())
}

/// The server's tenants and enablements, as the event hub sees them.
struct WeftTargets {
    weft: Weft,
}

#[async_trait::async_trait]
impl EventTargets for WeftTargets {
    async fn subscribers(&self, topic: Topic) -> Vec<Subscriber> {
        let mut out = Vec::new();
        let Ok(tenants) = self.weft.store().list_tenants().await else {
            return out;
        };
        for tenant in tenants.into_iter().filter(|t| t.active) {
            let Ok(enablements) = self
                .weft
                .store()
                .list_enablements_for_tenant(&tenant.id)
                .await
            else {
                continue;
            };
            for e in enablements {
                let Ok(resolved) = self
                    .weft
                    .resolve(&tenant.id, &e.plugin_id, Entry::Events)
                    .await
                else {
                    continue;
                };
                let grants = resolved.call.grants.clone();
                let wanted = match topic {
                    Topic::ContractNegotiation => grants.events.contains("contract-negotiation"),
                    Topic::TransferProcess => grants.events.contains("transfer-process"),
                    Topic::Timer => grants.timer_secs.is_some(),
                };
                if wanted {
                    out.push(Subscriber {
                        ctx: tenant.id.clone(),
                        plugin_id: e.plugin_id.clone(),
                        grants,
                    });
                }
            }
        }
        out
    }

    async fn deliver(&self, ctx: &str, plugin_id: &str, event: Event) -> Result<(), DeliveryError> {
        let resolved = self
            .weft
            .resolve(ctx, plugin_id, Entry::Events)
            .await
            .map_err(|_| DeliveryError::NotEnabled)?;
        weft_management::deliver_via_runtime(
            self.weft.runtime(),
            &resolved.plugin,
            resolved.call,
            event,
        )
        .await
    }
}

/// The server's tenants and enabled apps, as the data plane sees them.
struct WeftDirectory {
    weft: Weft,
}

#[async_trait::async_trait]
impl weft_dataplane::AppDirectory for WeftDirectory {
    fn runtime(&self) -> Arc<weft_runtime::Runtime> {
        self.weft.runtime().clone()
    }

    async fn apps_for(
        &self,
        ctx: &str,
    ) -> Result<Vec<weft_dataplane::TenantApp>, weft_dataplane::DirectoryError> {
        let unavailable =
            |e: weft_store::StoreError| weft_dataplane::DirectoryError::Unavailable(e.to_string());
        let tenant_apps = self.weft.tenant_apps(ctx).await.map_err(unavailable)?;
        let Some(tenant_apps) = tenant_apps.filter(|t| t.tenant.active) else {
            return Err(weft_dataplane::DirectoryError::UnknownTenant(
                ctx.to_string(),
            ));
        };
        let mut apps = Vec::new();
        for plugin_id in &tenant_apps.plugin_ids {
            if let Ok(resolved) = self.weft.resolve(ctx, plugin_id, Entry::DataFlows).await {
                apps.push(weft_dataplane::TenantApp {
                    plugin: resolved.plugin,
                    call: resolved.call,
                });
            }
        }
        Ok(apps)
    }
}
