//! The JSON documents of the admin and tenant APIs (requests strict, responses stable), and
//! the checks of identifiers clients send.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use weft_runtime::grants::Grants;

/// Longest participant context id accepted (CFM uses 32 hex characters; UUIDs are 36).
pub const MAX_TENANT_ID_BYTES: usize = 128;

/// Longest DID accepted; real `did:web` identifiers are well below.
pub const MAX_DID_BYTES: usize = 2048;

/// Longest BPN accepted (a BPNL is 16 characters).
pub const MAX_BPN_BYTES: usize = 64;

/// Formats a store timestamp.
pub(crate) fn ts(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// A participant context id: it appears in URL paths and logs, so it is plain.
pub(crate) fn check_tenant_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_TENANT_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid-tenant",
            format!(
                "participant context id must be 1 to {MAX_TENANT_ID_BYTES} of [A-Za-z0-9._-], not starting with `.`"
            ),
        ))
    }
}

pub(crate) fn check_did(did: &str) -> Result<(), ApiError> {
    let ok = did.starts_with("did:")
        && did.len() > 4
        && did.len() <= MAX_DID_BYTES
        && !did.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid-tenant",
            format!(
                "did must be a DID (`did:method:...`) of at most {MAX_DID_BYTES} bytes without spaces"
            ),
        ))
    }
}

pub(crate) fn check_bpn(bpn: &str) -> Result<(), ApiError> {
    if !bpn.is_empty()
        && bpn.len() <= MAX_BPN_BYTES
        && bpn.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid-tenant",
            format!("bpn must be 1 to {MAX_BPN_BYTES} letters or digits"),
        ))
    }
}

/// Grants sent by a client: parsed strictly and checked.
pub(crate) fn check_grants(grants: &Grants, what: &str) -> Result<(), ApiError> {
    grants
        .validate()
        .map_err(|e| ApiError::unprocessable("invalid-grants", format!("{what}: {e}")))
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not-found`, `grants-missing`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// The multipart form of a plugin upload.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct UploadForm {
    /// The WebAssembly component (`weft:plugin` world).
    #[schema(value_type = String, format = Binary)]
    pub component: Vec<u8>,
    /// The manifest (`weft.toml`).
    pub manifest: String,
    /// Optional base64 ed25519 signature over `weft-plugin-v1:<sha256 hex>`.
    pub signature: Option<String>,
    /// Optional CSP grants (JSON, same shape as the manifest's `[capabilities]`), set for
    /// the plugin before deciding activation.
    #[schema(value_type = Option<Object>)]
    pub grants: Option<String>,
}

/// Query of a plugin upload.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Activate the version if the CSP's grants cover it (default true).
    pub activate: Option<bool>,
}

/// The result of an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    pub plugin: String,
    pub version: String,
    pub digest: String,
    /// Whether this upload made the version active.
    pub activated: bool,
    /// What the manifest asks beyond the CSP's grants; non-empty means not activated.
    pub missing_grants: Vec<String>,
    /// Tenants whose `on-upgrade` hook failed after the activation.
    pub upgrade_failures: Vec<HookFailure>,
}

/// A lifecycle hook that failed for one tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HookFailure {
    pub tenant: String,
    pub error: String,
}

/// One plugin with its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginView {
    pub id: String,
    pub active_version: Option<String>,
    /// The CSP's grants (`null` until set).
    #[schema(value_type = Option<Object>)]
    pub granted: Option<Grants>,
    pub created_at: String,
    pub versions: Vec<VersionView>,
}

/// One stored version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: String,
    pub digest: String,
    pub signed_by: Option<String>,
    pub created_at: String,
    pub active: bool,
    /// Loaded in this process and ready to run.
    pub loaded: bool,
    /// What the manifest asks (`[capabilities]`).
    #[schema(value_type = Object)]
    pub asks: Grants,
    /// What it asks beyond the CSP's grants (it cannot be activated while non-empty).
    pub missing_grants: Vec<String>,
    /// The manifest text (only on the single-version endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// Result of an activation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationView {
    pub plugin: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub upgrade_failures: Vec<HookFailure>,
}

/// The CSP's grants for a plugin, and how they cover each version.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantsView {
    pub plugin: String,
    #[schema(value_type = Object)]
    pub granted: Grants,
    pub versions: Vec<VersionCoverage>,
}

/// Whether the grants cover one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionCoverage {
    pub version: String,
    pub missing_grants: Vec<String>,
}

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The participant context id.
    pub id: String,
    /// The tenant's DID.
    pub did: String,
    /// The tenant's BPN (Catena-X), if any.
    pub bpn: Option<String>,
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub did: String,
    pub bpn: Option<String>,
    pub active: bool,
    pub created_at: String,
    /// The apps it enabled (on single-tenant answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<EnablementView>>,
}

/// Enabling an app for a tenant.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    /// The app's configuration for this tenant (any JSON; default `{}`).
    pub config: Option<Value>,
    /// Run this version for the tenant instead of the active one.
    pub pinned_version: Option<String>,
    /// Narrow the CSP's grants for this tenant (never widens).
    #[schema(value_type = Option<Object>)]
    pub grants: Option<Grants>,
}

/// Query of a disable.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DisableQuery {
    /// Disable even if the `on-disable` hook fails or cannot run.
    pub force: Option<bool>,
}

/// An app enabled for a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnablementView {
    pub app: String,
    /// The version calls run on now (`null` when none is available).
    pub version: Option<String>,
    pub pinned_version: Option<String>,
    pub config: Value,
    /// The tenant's narrowing, if any.
    #[schema(value_type = Option<Object>)]
    pub narrowed_grants: Option<Grants>,
    /// What calls run with: manifest ∩ CSP ∩ narrowing.
    #[schema(value_type = Option<Object>)]
    pub effective_grants: Option<Grants>,
    pub enabled_at: String,
}

/// Query of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records whose target starts with this (e.g. `plugin/hello`).
    pub target_prefix: Option<String>,
    /// Most records (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Only records older than this id (paging).
    pub before_id: Option<i64>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(check_tenant_id("3f0e7b8c2a9d4e6f8a1b2c3d4e5f6a7b").is_ok());
        assert!(check_tenant_id("tenant-a_1.x").is_ok());
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a b",
            "a%2Fb",
            &"x".repeat(MAX_TENANT_ID_BYTES + 1),
        ] {
            assert!(check_tenant_id(bad).is_err(), "{bad}");
        }
        assert!(check_did("did:web:example.com").is_ok());
        assert!(check_did("web:example.com").is_err());
        assert!(check_did("did:web:a b").is_err());
        assert!(check_bpn("BPNL000000000001").is_ok());
        assert!(check_bpn("BPN-1").is_err());
    }
}
