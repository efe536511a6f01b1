//! Configuration of the stand-in: ports, claim mode, clients and participants to seed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default token lifetime in seconds: CONN's test IdP issues tokens valid for one hour.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;

/// Default `dataspaceContext` sent in DPS prepare/start messages when the request names none.
pub const DEFAULT_DATASPACE_CONTEXT: &str = "weft-sandbox";

/// Which claims carry the caller's identity (edcv.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimMode {
    /// v4alpha era (CONN ≤ v0.17.0): `participant_context_id` + `role` + `scope`.
    ParticipantContext,
    /// Current (CONN ≥ v0.18.0): `sub` is the participant context, access is scope-only.
    #[default]
    Subject,
}

/// Role claim of the v4alpha era (edcv.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Humans and emergencies: no scope needed, bypasses the ownership check.
    Admin,
    /// Creates participant contexts; never touches tenant resources.
    Provisioner,
    /// A tenant, limited to its own participant context.
    #[default]
    Participant,
}

impl Role {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Provisioner => "provisioner",
            Role::Participant => "participant",
        }
    }
}

/// An OAuth2 client of the identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ClientSpec {
    pub client_id: String,
    pub client_secret: String,
    /// Participant context the client acts for (`participant_context_id`, or `sub` in subject
    /// mode). Admin and provisioner clients usually have none.
    #[serde(default)]
    pub participant_context: Option<String>,
    /// `sub` for clients without a participant context (default: the client id).
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub role: Role,
    /// Scopes the client may request; a token request asking for more gets `invalid_scope`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// May this client (or a token issued to it) be exchanged under RFC 8693?
    #[serde(default)]
    pub token_exchange: bool,
    /// Participant contexts a token exchange may target (`resource`); empty means any.
    #[serde(default)]
    pub exchange_resources: Vec<String>,
}

impl ClientSpec {
    /// A tenant client: role `participant`, acting for `participant_context`.
    pub fn participant(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        participant_context: impl Into<String>,
        scopes: &[&str],
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            participant_context: Some(participant_context.into()),
            subject: None,
            role: Role::Participant,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            token_exchange: false,
            exchange_resources: Vec::new(),
        }
    }

    /// A client with no participant context (admin or provisioner).
    pub fn service(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        role: Role,
        scopes: &[&str],
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            participant_context: None,
            subject: None,
            role,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            token_exchange: false,
            exchange_resources: Vec::new(),
        }
    }

    /// Allow RFC 8693 token exchange for this client.
    pub fn with_token_exchange(mut self) -> Self {
        self.token_exchange = true;
        self
    }
}

/// A participant context seeded into the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ParticipantSpec {
    /// The participant context id (opaque; CFM uses 32 hex characters).
    pub id: String,
    /// The DSP identity, a DID.
    pub did: String,
    /// Business partner number, evaluated by `BusinessPartnerNumber` constraints.
    #[serde(default)]
    pub bpn: Option<String>,
    /// Verified attributes the stand-in presents as the participant's credentials, e.g.
    /// `{"MembershipCredential": "active"}`. Policy constraints are evaluated against these.
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
}

impl ParticipantSpec {
    pub fn new(id: impl Into<String>, did: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            did: did.into(),
            bpn: None,
            attributes: BTreeMap::new(),
        }
    }

    pub fn with_bpn(mut self, bpn: impl Into<String>) -> Self {
        self.bpn = Some(bpn.into());
        self
    }

    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// How the control plane authenticates data-plane callbacks on its signaling API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", tag = "type")]
pub enum SignalingAuth {
    /// No check.
    #[default]
    None,
    /// The `Authorization` header must equal this value exactly.
    StaticToken { authorization: String },
    /// A bearer JWT from the sandbox's identity provider whose `sub` is the dataplaneId the
    /// transfer was signalled to.
    IdpJwt,
}

/// Everything [`crate::Sandbox::start`] needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct SandboxConfig {
    /// Address every listener binds (loopback by default).
    pub bind: IpAddr,
    /// Identity provider port (0 = any free port).
    pub idp_port: u16,
    /// Management API (and DSP base address) port (0 = any free port).
    pub management_port: u16,
    /// Signaling callback API port (0 = any free port).
    pub signaling_port: u16,
    /// Claim mode of issued tokens and of the control plane's authorization.
    pub claim_mode: ClaimMode,
    /// Lifetime of issued tokens, in seconds.
    pub token_lifetime_secs: u64,
    /// `iss` of issued tokens (default: the identity provider's base URL).
    pub issuer: Option<String>,
    /// `aud` of issued tokens (not checked by the control plane, as in EDC).
    pub audience: Option<String>,
    /// Authentication required on data-plane callbacks.
    pub signaling_auth: SignalingAuth,
    /// `Authorization` value the control plane sends to data planes whose registration
    /// carries no `authorization` profile.
    pub dataplane_authorization: Option<String>,
    /// `dataspaceContext` of DPS messages.
    pub dataspace_context: String,
    /// OAuth2 clients to register at start.
    pub clients: Vec<ClientSpec>,
    /// Participant contexts to create at start.
    pub participants: Vec<ParticipantSpec>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            idp_port: 0,
            management_port: 0,
            signaling_port: 0,
            claim_mode: ClaimMode::default(),
            token_lifetime_secs: DEFAULT_TOKEN_LIFETIME_SECS,
            issuer: None,
            audience: None,
            signaling_auth: SignalingAuth::default(),
            dataplane_authorization: None,
            dataspace_context: DEFAULT_DATASPACE_CONTEXT.to_owned(),
            clients: Vec::new(),
            participants: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_deserializes_with_defaults_and_rejects_unknown_fields() {
        let config: SandboxConfig = serde_json::from_value(serde_json::json!({
            "claim_mode": "participant-context",
            "signaling_auth": {"type": "static-token", "authorization": "Bearer x"},
            "clients": [{"client_id": "c", "client_secret": "s", "participant_context": "pc",
                "scopes": ["management-api:read"]}],
            "participants": [{"id": "pc", "did": "did:web:pc", "attributes": {"MembershipCredential": "active"}}]
        }))
        .unwrap();
        assert_eq!(config.claim_mode, ClaimMode::ParticipantContext);
        assert_eq!(config.clients[0].role, Role::Participant);
        assert_eq!(config.idp_port, 0);
        assert_eq!(config.token_lifetime_secs, DEFAULT_TOKEN_LIFETIME_SECS);
        assert!(serde_json::from_value::<SandboxConfig>(serde_json::json!({"prot": 1})).is_err());
        assert!(
            serde_json::from_value::<SandboxConfig>(
                serde_json::json!({"clients": [{"client_id": "c", "client_secret": "s", "x": 1}]})
            )
            .is_err()
        );
    }
}
