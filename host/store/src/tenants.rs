//! Tenants (participant contexts) and their enablements of plugins, with per-tenant config,
//! an optional pinned version and optionally narrowed grants.

use crate::error::{Result, StoreError};
use crate::records::{EnablementRecord, TenantRecord, from_millis, to_millis};
use crate::{Store, validate};

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    did: String,
    bpn: Option<String>,
    active: bool,
    created_at: i64,
}

impl TenantRow {
    fn into_record(self) -> Result<TenantRecord> {
        Ok(TenantRecord {
            id: self.id,
            did: self.did,
            bpn: self.bpn,
            active: self.active,
            created_at: from_millis(self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EnablementRow {
    tenant_id: String,
    plugin_id: String,
    pinned_version: Option<String>,
    config_json: String,
    narrowed_grants_json: Option<String>,
    enabled_at: i64,
}

impl EnablementRow {
    fn into_record(self) -> Result<EnablementRecord> {
        Ok(EnablementRecord {
            tenant_id: self.tenant_id,
            plugin_id: self.plugin_id,
            pinned_version: self.pinned_version,
            config_json: self.config_json,
            narrowed_grants_json: self.narrowed_grants_json,
            enabled_at: from_millis(self.enabled_at)?,
        })
    }
}

const TENANT_COLUMNS: &str = "id, did, bpn, active, created_at";
const ENABLEMENT_COLUMNS: &str =
    "tenant_id, plugin_id, pinned_version, config_json, narrowed_grants_json, enabled_at";

fn check_pair(tenant: &str, plugin: &str) -> Result<()> {
    validate::id("tenant id", tenant)?;
    validate::id("plugin id", plugin)
}

impl Store {
    /// Creates a tenant; [`StoreError::Conflict`] if the id is taken.
    pub async fn create_tenant(&self, record: &TenantRecord) -> Result<()> {
        validate::id("tenant id", &record.id)?;
        validate::text("DID", &record.did)?;
        if let Some(bpn) = &record.bpn {
            validate::text("BPN", bpn)?;
        }
        let created_at = to_millis(record.created_at)?;
        let result = self
            .execute(
                format!(
                    "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO NOTHING"
                ),
                args![
                    &record.id,
                    &record.did,
                    &record.bpn,
                    record.active,
                    created_at
                ],
            )
            .await
            .and_then(|inserted| {
                if inserted == 0 {
                    return Err(StoreError::Conflict(format!(
                        "tenant {} already exists",
                        record.id
                    )));
                }
                Ok(())
            });
        self.tenancy_changed();
        result
    }

    /// One tenant.
    pub async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>> {
        validate::id("tenant id", id)?;
        with_pool!(self, |pool| {
            let row: Option<TenantRow> = sqlx::query_as(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(TenantRow::into_record).transpose()
        })
    }

    /// Every tenant, by id.
    pub async fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
        with_pool!(self, |pool| {
            let rows: Vec<TenantRow> =
                sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))
                    .fetch_all(pool)
                    .await?;
            rows.into_iter().map(TenantRow::into_record).collect()
        })
    }

    /// Activates or deactivates a tenant.
    pub async fn set_tenant_active(&self, id: &str, active: bool) -> Result<()> {
        validate::id("tenant id", id)?;
        let result = self
            .execute(
                "UPDATE tenants SET active = $2 WHERE id = $1",
                args![id, active],
            )
            .await
            .and_then(|updated| {
                if updated == 0 {
                    return Err(StoreError::NotFound(format!("tenant {id}")));
                }
                Ok(())
            });
        self.tenancy_changed();
        result
    }

    /// Enables a plugin for a tenant, or replaces that enablement. The tenant, the plugin and
    /// the pinned version (if any) must exist, else [`StoreError::NotFound`].
    pub async fn put_enablement(&self, record: &EnablementRecord) -> Result<()> {
        check_pair(&record.tenant_id, &record.plugin_id)?;
        if let Some(version) = &record.pinned_version {
            validate::id("pinned version", version)?;
        }
        validate::json("config", &record.config_json)?;
        if let Some(narrowed) = &record.narrowed_grants_json {
            validate::json("narrowed grants", narrowed)?;
        }
        let enabled_at = to_millis(record.enabled_at)?;
        let missing = StoreError::NotFound(match &record.pinned_version {
            Some(v) => format!(
                "tenant {}, plugin {} or its version {v}",
                record.tenant_id, record.plugin_id
            ),
            None => format!("tenant {} or plugin {}", record.tenant_id, record.plugin_id),
        });
        let result = self
            .execute_or(
                format!(
                    "INSERT INTO enablements ({ENABLEMENT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, plugin_id) DO UPDATE SET \
                     pinned_version = excluded.pinned_version, \
                     config_json = excluded.config_json, \
                     narrowed_grants_json = excluded.narrowed_grants_json, \
                     enabled_at = excluded.enabled_at"
                ),
                args![
                    &record.tenant_id,
                    &record.plugin_id,
                    &record.pinned_version,
                    &record.config_json,
                    &record.narrowed_grants_json,
                    enabled_at,
                ],
                move || missing,
            )
            .await
            .map(|_| ());
        self.tenancy_changed();
        result
    }

    /// A tenant's enablement of a plugin.
    pub async fn get_enablement(
        &self,
        tenant: &str,
        plugin: &str,
    ) -> Result<Option<EnablementRecord>> {
        check_pair(tenant, plugin)?;
        with_pool!(self, |pool| {
            let row: Option<EnablementRow> = sqlx::query_as(&format!(
                "SELECT {ENABLEMENT_COLUMNS} FROM enablements \
                 WHERE tenant_id = $1 AND plugin_id = $2"
            ))
            .bind(tenant)
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
            row.map(EnablementRow::into_record).transpose()
        })
    }

    /// Everything a tenant enabled, by plugin id.
    pub async fn list_enablements_for_tenant(&self, tenant: &str) -> Result<Vec<EnablementRecord>> {
        validate::id("tenant id", tenant)?;
        with_pool!(self, |pool| {
            let rows: Vec<EnablementRow> = sqlx::query_as(&format!(
                "SELECT {ENABLEMENT_COLUMNS} FROM enablements WHERE tenant_id = $1 \
                 ORDER BY plugin_id"
            ))
            .bind(tenant)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(EnablementRow::into_record).collect()
        })
    }

    /// Every tenant that enabled a plugin, by tenant id.
    pub async fn list_enablements_for_plugin(&self, plugin: &str) -> Result<Vec<EnablementRecord>> {
        validate::id("plugin id", plugin)?;
        with_pool!(self, |pool| {
            let rows: Vec<EnablementRow> = sqlx::query_as(&format!(
                "SELECT {ENABLEMENT_COLUMNS} FROM enablements WHERE plugin_id = $1 \
                 ORDER BY tenant_id"
            ))
            .bind(plugin)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(EnablementRow::into_record).collect()
        })
    }

    /// Disables a plugin for a tenant (its state is kept). Returns whether it was enabled.
    pub async fn delete_enablement(&self, tenant: &str, plugin: &str) -> Result<bool> {
        check_pair(tenant, plugin)?;
        let result = self
            .execute(
                "DELETE FROM enablements WHERE tenant_id = $1 AND plugin_id = $2",
                args![tenant, plugin],
            )
            .await
            .map(|deleted| deleted > 0);
        self.tenancy_changed();
        result
    }
}
