//! Management API authorization in EDC's order: JWT (401), then role and scope (403), then
//! ownership (403) and context existence (404), for both claim modes (edcv.md §2).

use std::collections::BTreeSet;

use axum::http::{HeaderMap, header};

use super::ControlPlane;
use crate::ADMIN_SCOPE;
use crate::config::ClaimMode;
use crate::error::ApiError;

/// Management API versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V4alpha,
    V5beta,
}

impl ApiVersion {
    pub fn parse(segment: &str) -> Result<Self, ApiError> {
        match segment {
            "v4alpha" => Ok(ApiVersion::V4alpha),
            "v5beta" => Ok(ApiVersion::V5beta),
            other => Err(ApiError::not_found("ApiVersion", other)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V4alpha => "v4alpha",
            ApiVersion::V5beta => "v5beta",
        }
    }
}

/// What a route touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// `/participants` and `/participants/{pc}/config` (provisioner/admin).
    Participants,
    /// `/celexpressions` (admin/provisioner).
    CelExpressions,
    /// A tenant resource under `/participants/{pc}/<resource>`; the name is the path segment.
    Tenant(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// Who passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// Bypasses ownership (admin role, provisioner role, or `management-api:admin`).
    pub elevated: bool,
    /// The participant context of the token, if any.
    pub context: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

fn level(s: &str) -> Option<u8> {
    match s {
        "read" => Some(1),
        "write" => Some(2),
        "admin" => Some(3),
        _ => None,
    }
}

/// v5beta scope matching: `management-api[:resource]:read|write|admin`, `admin ⊇ write ⊇ read`,
/// and the resource-less form covers every resource.
pub(crate) fn scope_allows(granted: &BTreeSet<String>, resource: &str, access: Access) -> bool {
    let needed = level(access.as_str()).unwrap_or(u8::MAX);
    granted.iter().any(|scope| {
        let mut parts = scope.split(':');
        if parts.next() != Some("management-api") {
            return false;
        }
        match (parts.next(), parts.next(), parts.next()) {
            (Some(l), None, None) => level(l).is_some_and(|l| l >= needed),
            (Some(r), Some(l), None) => r == resource && level(l).is_some_and(|l| l >= needed),
            _ => false,
        }
    })
}

impl ControlPlane {
    /// Run the checks for one request. `pc` is the path's participant context, if any.
    pub(crate) fn authorize(
        &self,
        headers: &HeaderMap,
        area: Area,
        access: Access,
        pc: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let token = bearer(headers)
            .ok_or_else(|| ApiError::unauthorized("missing or malformed bearer token"))?;
        let claims = self
            .inner
            .idp
            .verify(token)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))?;
        let principal = match self.inner.config.claim_mode {
            ClaimMode::ParticipantContext => {
                let context = claims.participant_context_id().map(str::to_owned);
                if let Some(ctx) = &context
                    && !self.participant_exists(ctx)
                {
                    return Err(ApiError::unauthorized(format!(
                        "participant context `{ctx}` of the token does not exist"
                    )));
                }
                let role = claims.role().unwrap_or_default();
                let roles: &[&str] = match (area, access) {
                    (Area::Participants, Access::Write) => &["provisioner"],
                    (Area::Participants, Access::Read) => &["provisioner", "admin"],
                    (Area::CelExpressions, _) => &["admin", "provisioner"],
                    (Area::Tenant("dataplanes"), _) => &["admin", "participant", "provisioner"],
                    (Area::Tenant(_), _) => &["admin", "participant"],
                };
                if !roles.contains(&role) {
                    return Err(ApiError::forbidden(format!("role `{role}` is not allowed")));
                }
                let scope = format!("management-api:{}", access.as_str());
                if role != "admin" && !claims.scopes().contains(&scope) {
                    return Err(ApiError::forbidden(format!(
                        "required scope `{scope}` is missing"
                    )));
                }
                let elevated = role == "admin" || role == "provisioner";
                if role == "participant" && context.is_none() {
                    return Err(ApiError::forbidden("token names no participant context"));
                }
                Principal { elevated, context }
            }
            ClaimMode::Subject => {
                let sub = claims
                    .sub()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| ApiError::unauthorized("token has no `sub`"))?
                    .to_owned();
                let scopes = claims.scopes();
                let elevated = scopes.contains(ADMIN_SCOPE);
                if !elevated {
                    match area {
                        Area::Participants | Area::CelExpressions => {
                            return Err(ApiError::forbidden(format!(
                                "required scope `{ADMIN_SCOPE}` is missing"
                            )));
                        }
                        Area::Tenant(resource) => {
                            if !scope_allows(&scopes, resource, access) {
                                return Err(ApiError::forbidden(format!(
                                    "required scope `management-api:{resource}:{}` is missing",
                                    access.as_str()
                                )));
                            }
                        }
                    }
                }
                Principal {
                    elevated,
                    context: Some(sub),
                }
            }
        };
        if let Some(pc) = pc {
            if !principal.elevated && principal.context.as_deref() != Some(pc) {
                return Err(ApiError::forbidden(format!(
                    "not authorized for participant context `{pc}`"
                )));
            }
            if !self.participant_exists(pc) {
                return Err(ApiError::not_found("ParticipantContext", pc));
            }
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scope_hierarchy() {
        assert!(scope_allows(
            &set(&["management-api:write"]),
            "assets",
            Access::Read
        ));
        assert!(scope_allows(
            &set(&["management-api:write"]),
            "assets",
            Access::Write
        ));
        assert!(!scope_allows(
            &set(&["management-api:read"]),
            "assets",
            Access::Write
        ));
        assert!(scope_allows(
            &set(&["management-api:assets:write"]),
            "assets",
            Access::Read
        ));
        assert!(!scope_allows(
            &set(&["management-api:assets:write"]),
            "catalog",
            Access::Read
        ));
        assert!(scope_allows(
            &set(&["management-api:assets:admin"]),
            "assets",
            Access::Write
        ));
        assert!(!scope_allows(
            &set(&["identity-api:write"]),
            "assets",
            Access::Read
        ));
        assert!(!scope_allows(&set(&[]), "assets", Access::Read));
    }
}
