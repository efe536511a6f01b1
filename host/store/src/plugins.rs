//! Plugins and their versions: immutable uploads keyed by (plugin, version) and digest, the
//! active-version pointer (activation and rollback are one update), and the CSP's grants.

use rusqlite::{OptionalExtension, named_params};

use crate::error::{Result, StoreError};
use crate::records::{PluginRecord, PluginVersionRecord, from_millis, to_millis};
use crate::{Backend, Store, validate};

#[derive(sqlx::FromRow)]
struct PluginRow {
    id: String,
    active_version: Option<String>,
    granted_json: Option<String>,
    created_at: i64,
}

impl PluginRow {
    fn into_record(self) -> Result<PluginRecord> {
        Ok(PluginRecord {
            id: self.id,
            active_version: self.active_version,
            granted_json: self.granted_json,
            created_at: from_millis(self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    plugin_id: String,
    version: String,
    digest: String,
    manifest_toml: String,
    requested_grants_json: String,
    component_path: String,
    signed_by: Option<String>,
    created_at: i64,
}

impl VersionRow {
    fn into_record(self) -> Result<PluginVersionRecord> {
        Ok(PluginVersionRecord {
            plugin_id: self.plugin_id,
            version: self.version,
            digest: self.digest,
            manifest_toml: self.manifest_toml,
            requested_grants_json: self.requested_grants_json,
            component_path: self.component_path,
            signed_by: self.signed_by,
            created_at: from_millis(self.created_at)?,
        })
    }
}

const VERSION_COLUMNS: &str = "plugin_id, version, digest, manifest_toml, requested_grants_json, \
     component_path, signed_by, created_at";

fn not_found_plugin(plugin: &str) -> StoreError {
    StoreError::NotFound(format!("plugin {plugin}"))
}

fn not_found_version(plugin: &str, version: &str) -> StoreError {
    StoreError::NotFound(format!("version {version} of plugin {plugin}"))
}

const PUT_PLUGIN: &str = "INSERT INTO plugins (id, active_version, granted_json, created_at) \
     VALUES ($1, NULL, NULL, $2) ON CONFLICT (id) DO NOTHING";
const VERSION_DIGEST: &str =
    "SELECT digest FROM plugin_versions WHERE plugin_id = $1 AND version = $2";
const ACTIVE_VERSION: &str = "SELECT active_version FROM plugins WHERE id = $1";
const PINNED_BY: &str = "SELECT tenant_id FROM enablements \
     WHERE plugin_id = $1 AND pinned_version = $2 LIMIT 1";
const DELETE_VERSION: &str = "DELETE FROM plugin_versions WHERE plugin_id = $1 AND version = $2";

/// Stores a version, nothing when (plugin, version) is taken.
fn put_version_sql() -> String {
    format!(
        "INSERT INTO plugin_versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (plugin_id, version) DO NOTHING"
    )
}

/// A version stored again must be the same component.
fn check_same_digest(record: &PluginVersionRecord, existing: &str) -> Result<()> {
    if existing != record.digest {
        return Err(StoreError::Conflict(format!(
            "version {} of plugin {} already exists with another digest",
            record.version, record.plugin_id
        )));
    }
    Ok(())
}

/// A version can go unless it is active or pinned (`active` is `None` when the plugin
/// does not exist).
fn check_deletable(
    plugin: &str,
    version: &str,
    active: Option<Option<String>>,
    pinned_by: Option<String>,
) -> Result<()> {
    let Some(active) = active else {
        return Err(not_found_plugin(plugin));
    };
    if active.as_deref() == Some(version) {
        return Err(StoreError::Conflict(format!(
            "version {version} of plugin {plugin} is active"
        )));
    }
    if let Some(tenant) = pinned_by {
        return Err(StoreError::Conflict(format!(
            "version {version} of plugin {plugin} is pinned by tenant {tenant}"
        )));
    }
    Ok(())
}

fn check_version_key(plugin: &str, version: &str) -> Result<()> {
    validate::id("plugin id", plugin)?;
    validate::id("version", version)
}

impl Store {
    /// Stores a plugin version (creating the plugin on its first version). Returns `true` when
    /// stored, `false` when the same (plugin, version, digest) was already there; a different
    /// digest under the same version is a [`StoreError::Conflict`]. Never activates.
    pub async fn put_plugin_version(&self, record: &PluginVersionRecord) -> Result<bool> {
        validate::id("plugin id", &record.plugin_id)?;
        validate::id("version", &record.version)?;
        validate::digest(&record.digest)?;
        validate::text("manifest", &record.manifest_toml)?;
        validate::json("requested grants", &record.requested_grants_json)?;
        validate::text("component path", &record.component_path)?;
        if let Some(signer) = &record.signed_by {
            validate::text("signer", signer)?;
        }
        let created_at = to_millis(record.created_at)?;
        let result = match &self.backend {
            Backend::Sqlite(sqlite) => {
                let record = record.clone();
                sqlite
                    .writer
                    .write(move |conn| {
                        conn.prepare_cached(PUT_PLUGIN)?
                            .execute(named_params! {"$1": record.plugin_id, "$2": created_at})?;
                        let inserted =
                            conn.prepare_cached(&put_version_sql())?
                                .execute(named_params! {
                                    "$1": record.plugin_id,
                                    "$2": record.version,
                                    "$3": record.digest,
                                    "$4": record.manifest_toml,
                                    "$5": record.requested_grants_json,
                                    "$6": record.component_path,
                                    "$7": record.signed_by,
                                    "$8": created_at,
                                })?
                                == 1;
                        if !inserted {
                            let existing: String = conn.prepare_cached(VERSION_DIGEST)?.query_row(
                                named_params! {"$1": record.plugin_id, "$2": record.version},
                                |r| r.get(0),
                            )?;
                            check_same_digest(&record, &existing)?;
                        }
                        Ok(inserted)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(PUT_PLUGIN)
                    .bind(&record.plugin_id)
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(&put_version_sql())
                    .bind(&record.plugin_id)
                    .bind(&record.version)
                    .bind(&record.digest)
                    .bind(&record.manifest_toml)
                    .bind(&record.requested_grants_json)
                    .bind(&record.component_path)
                    .bind(&record.signed_by)
                    .bind(created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !inserted {
                    let (existing,): (String,) = sqlx::query_as(VERSION_DIGEST)
                        .bind(&record.plugin_id)
                        .bind(&record.version)
                        .fetch_one(&mut *tx)
                        .await?;
                    check_same_digest(record, &existing)?;
                }
                tx.commit().await?;
                Ok(inserted)
            }
        };
        self.tenancy_changed();
        result
    }

    /// Every plugin, by id.
    pub async fn list_plugins(&self) -> Result<Vec<PluginRecord>> {
        with_pool!(self, |pool| {
            let rows: Vec<PluginRow> = sqlx::query_as(
                "SELECT id, active_version, granted_json, created_at FROM plugins ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(PluginRow::into_record).collect()
        })
    }

    /// One plugin.
    pub async fn get_plugin(&self, plugin: &str) -> Result<Option<PluginRecord>> {
        validate::id("plugin id", plugin)?;
        with_pool!(self, |pool| {
            let row: Option<PluginRow> = sqlx::query_as(
                "SELECT id, active_version, granted_json, created_at FROM plugins WHERE id = $1",
            )
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
            row.map(PluginRow::into_record).transpose()
        })
    }

    /// The versions of a plugin, oldest first (ties by version text).
    pub async fn list_versions(&self, plugin: &str) -> Result<Vec<PluginVersionRecord>> {
        validate::id("plugin id", plugin)?;
        with_pool!(self, |pool| {
            let rows: Vec<VersionRow> = sqlx::query_as(&format!(
                "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE plugin_id = $1 \
                 ORDER BY created_at, version"
            ))
            .bind(plugin)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(VersionRow::into_record).collect()
        })
    }

    /// One version of a plugin.
    pub async fn get_version(
        &self,
        plugin: &str,
        version: &str,
    ) -> Result<Option<PluginVersionRecord>> {
        check_version_key(plugin, version)?;
        with_pool!(self, |pool| {
            let row: Option<VersionRow> = sqlx::query_as(&format!(
                "SELECT {VERSION_COLUMNS} FROM plugin_versions \
                 WHERE plugin_id = $1 AND version = $2"
            ))
            .bind(plugin)
            .bind(version)
            .fetch_optional(pool)
            .await?;
            row.map(VersionRow::into_record).transpose()
        })
    }

    /// Deletes a version. Refused with [`StoreError::Conflict`] while it is the active version
    /// or an enablement pins it.
    pub async fn delete_version(&self, plugin: &str, version: &str) -> Result<()> {
        check_version_key(plugin, version)?;
        let result = match &self.backend {
            Backend::Sqlite(sqlite) => {
                let (plugin, version) = (plugin.to_owned(), version.to_owned());
                sqlite
                    .writer
                    .write(move |conn| {
                        let active: Option<Option<String>> = conn
                            .prepare_cached(ACTIVE_VERSION)?
                            .query_row(named_params! {"$1": plugin}, |r| r.get(0))
                            .optional()?;
                        let pinned: Option<String> = conn
                            .prepare_cached(PINNED_BY)?
                            .query_row(named_params! {"$1": plugin, "$2": version}, |r| r.get(0))
                            .optional()?;
                        check_deletable(&plugin, &version, active, pinned)?;
                        let deleted = conn
                            .prepare_cached(DELETE_VERSION)?
                            .execute(named_params! {"$1": plugin, "$2": version})?;
                        if deleted == 0 {
                            return Err(not_found_version(&plugin, &version));
                        }
                        Ok(())
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let active: Option<(Option<String>,)> = sqlx::query_as(ACTIVE_VERSION)
                    .bind(plugin)
                    .fetch_optional(&mut *tx)
                    .await?;
                let pinned: Option<(String,)> = sqlx::query_as(PINNED_BY)
                    .bind(plugin)
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
                check_deletable(plugin, version, active.map(|(a,)| a), pinned.map(|(t,)| t))?;
                let deleted = sqlx::query(DELETE_VERSION)
                    .bind(plugin)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Err(not_found_version(plugin, version));
                }
                tx.commit().await?;
                Ok(())
            }
        };
        self.tenancy_changed();
        result
    }

    /// Points the plugin at `version` (activation, rollback) or at nothing (`None`).
    pub async fn set_active_version(&self, plugin: &str, version: Option<&str>) -> Result<()> {
        validate::id("plugin id", plugin)?;
        if let Some(version) = version {
            validate::id("version", version)?;
        }
        let missing = not_found_version(plugin, version.unwrap_or_default());
        let result = self
            .execute_or(
                "UPDATE plugins SET active_version = $2 WHERE id = $1",
                args![plugin, version],
                move || missing,
            )
            .await
            .and_then(|updated| {
                if updated == 0 {
                    return Err(not_found_plugin(plugin));
                }
                Ok(())
            });
        self.tenancy_changed();
        result
    }

    /// The plugin's active version, if the plugin exists and has one.
    pub async fn get_active_version(&self, plugin: &str) -> Result<Option<PluginVersionRecord>> {
        validate::id("plugin id", plugin)?;
        with_pool!(self, |pool| {
            let row: Option<VersionRow> = sqlx::query_as(
                "SELECT v.plugin_id, v.version, v.digest, v.manifest_toml, \
                 v.requested_grants_json, v.component_path, v.signed_by, v.created_at \
                 FROM plugins p JOIN plugin_versions v \
                 ON v.plugin_id = p.id AND v.version = p.active_version \
                 WHERE p.id = $1",
            )
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
            row.map(VersionRow::into_record).transpose()
        })
    }

    /// Replaces the CSP's capability grants for a plugin (JSON text).
    pub async fn set_granted(&self, plugin: &str, grants_json: &str) -> Result<()> {
        validate::id("plugin id", plugin)?;
        validate::json("grants", grants_json)?;
        let result = self
            .execute(
                "UPDATE plugins SET granted_json = $2 WHERE id = $1",
                args![plugin, grants_json],
            )
            .await
            .and_then(|updated| {
                if updated == 0 {
                    return Err(not_found_plugin(plugin));
                }
                Ok(())
            });
        self.tenancy_changed();
        result
    }

    /// The CSP's capability grants for a plugin, if the plugin exists and grants were set.
    pub async fn get_granted(&self, plugin: &str) -> Result<Option<String>> {
        validate::id("plugin id", plugin)?;
        with_pool!(self, |pool| {
            let row: Option<(Option<String>,)> =
                sqlx::query_as("SELECT granted_json FROM plugins WHERE id = $1")
                    .bind(plugin)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.and_then(|(granted,)| granted))
        })
    }
}
