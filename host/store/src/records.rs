//! The records the store reads and writes, the limits that bound them, and the timestamp
//! representation (UTC unix milliseconds) shared by both backends.

use time::OffsetDateTime;

use crate::error::{Result, StoreError};

/// Longest id (plugin, version, tenant) accepted: ids appear in URLs and log lines.
pub const MAX_ID_BYTES: usize = 256;
/// Longest state key accepted: keys are indexed and counted against the quota.
pub const MAX_STATE_KEY_BYTES: usize = 1024;
/// Most entries one `state_list` page returns, whatever the caller asks: bounds one response.
pub const MAX_STATE_PAGE: u32 = 1000;
/// Audit records returned when the filter asks for none in particular.
pub const DEFAULT_AUDIT_PAGE: u32 = 100;
/// Most audit records one `list_audit` call returns, whatever the caller asks.
pub const MAX_AUDIT_PAGE: u32 = 1000;
/// Default largest state value (1 MiB): an app's state is small records, not blobs.
pub const DEFAULT_STATE_MAX_VALUE_BYTES: u64 = 1024 * 1024;
/// Default bytes (keys + values) one app may hold for one tenant (64 MiB).
pub const DEFAULT_STATE_MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// The current time, truncated to what the store keeps (milliseconds), so it reads back equal.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

/// A timestamp as stored: UTC unix milliseconds.
pub(crate) fn to_millis(at: OffsetDateTime) -> Result<i64> {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| StoreError::Invalid("timestamp out of range".into()))
}

/// A stored timestamp back as a UTC time.
pub(crate) fn from_millis(millis: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(StoreError::corrupt)
}

/// A plugin: its id, the version calls go to, and what the CSP granted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginRecord {
    pub id: String,
    /// The version new calls use; `None` until one is activated.
    pub active_version: Option<String>,
    /// The CSP's capability grants (JSON text the caller interprets); `None` until set.
    pub granted_json: Option<String>,
    /// When the first version of this plugin was stored.
    pub created_at: OffsetDateTime,
}

/// One uploaded version of a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersionRecord {
    pub plugin_id: String,
    pub version: String,
    /// SHA-256 of the component, 64 lowercase hex digits.
    pub digest: String,
    pub manifest_toml: String,
    /// What the manifest asks for (JSON text the caller interprets).
    pub requested_grants_json: String,
    /// Where the component is kept (the caller's path convention).
    pub component_path: String,
    /// Who signed the upload, when it was signed.
    pub signed_by: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A tenant (participant context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    /// The participant context id.
    pub id: String,
    pub did: String,
    pub bpn: Option<String>,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

/// A plugin enabled for a tenant, with the tenant's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnablementRecord {
    pub tenant_id: String,
    pub plugin_id: String,
    /// The version this tenant is pinned to; `None` follows the plugin's active version.
    pub pinned_version: Option<String>,
    /// The tenant's configuration for the app (JSON text).
    pub config_json: String,
    /// Grants the tenant narrowed (JSON text); `None` keeps the CSP's grants.
    pub narrowed_grants_json: Option<String>,
    pub enabled_at: OffsetDateTime,
}

/// Bounds on one app's key-value state for one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLimits {
    /// Largest value accepted, in bytes.
    pub max_value_bytes: u64,
    /// Most bytes (keys + values) the (tenant, plugin) scope may hold.
    pub max_total_bytes: u64,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_value_bytes: DEFAULT_STATE_MAX_VALUE_BYTES,
            max_total_bytes: DEFAULT_STATE_MAX_TOTAL_BYTES,
        }
    }
}

/// An action to record in the audit log; the store adds the id and the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who did it (token subject, "system", ...).
    pub actor: String,
    /// What was done (for example "plugin.activate").
    pub action: String,
    /// What it was done to (for example "plugin/ccm/1.2.0").
    pub target: String,
    /// Details (JSON text).
    pub detail_json: String,
}

/// One stored audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increases with every record; newer records have larger ids.
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail_json: String,
}

/// Which audit records to list (newest first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records whose target starts with this (taken literally).
    pub target_prefix: Option<String>,
    /// Most records to return; capped at [`MAX_AUDIT_PAGE`].
    pub limit: u32,
    /// Only records older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self {
            target_prefix: None,
            limit: DEFAULT_AUDIT_PAGE,
            before_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_of_now() {
        let t = now();
        assert_eq!(from_millis(to_millis(t).unwrap()).unwrap(), t);
    }

    #[test]
    fn millis_floor_before_epoch() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(to_millis(t).unwrap(), -1);
    }
}
