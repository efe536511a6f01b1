//! Who a validated token speaks for: subject, participant context, role and scopes.

use std::collections::BTreeSet;

use serde::Serialize;

/// The role of a caller (EDC-V roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The CSP operator: may act for every participant context.
    Admin,
    /// Creates participant contexts; never touches a tenant's resources.
    Provisioner,
    /// A tenant, limited to its own participant context.
    Participant,
}

impl Role {
    /// The claim value (`admin`, `provisioner`, `participant`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Provisioner => "provisioner",
            Self::Participant => "participant",
        }
    }

    /// Parses the `role` claim value (exact, lowercase).
    pub fn from_claim(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Self::Admin),
            "provisioner" => Some(Self::Provisioner),
            "participant" => Some(Self::Participant),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller behind a validated token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// `sub` (participant-context mode falls back to `azp`, `client_id`, then the context id).
    pub subject: String,
    /// The tenant the token speaks for. `None` for admins and provisioners without one.
    pub participant_context_id: Option<String>,
    pub role: Role,
    /// Scopes from the `scope` claim (space-separated string or array).
    pub scopes: BTreeSet<String>,
    /// `jti`, for audit logs.
    pub token_id: Option<String>,
}

impl Principal {
    /// Whether the token carries exactly this scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may act for participant context `ctx`: admins for any, everyone
    /// else only for the context named in their token.
    pub fn can_act_for(&self, ctx: &str) -> bool {
        self.is_admin() || self.participant_context_id.as_deref() == Some(ctx)
    }
}
