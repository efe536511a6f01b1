//! Configuration of the Management API bridge (the `[management]` table of Weft's config):
//! where the control plane and the identity provider are, how tenant tokens are obtained,
//! and the limits of calls, events and data-plane registration. Every limit has a named
//! default with its reason; secrets are [`Secret`]s and never appear in `Debug` output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Default time for one HTTP attempt against the control plane: EDC answers in
/// milliseconds; ten seconds means it is stuck.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;

/// Default deadline of one `management.send` (token, attempts and back-off included). It is
/// below the runtime's default wall-clock limit per call (30 s), so the plugin gets
/// `unavailable` back instead of being killed by the wall clock.
pub const DEFAULT_DEADLINE_MS: u64 = 20_000;

/// Default extra attempts for idempotent reads after a network error or a 5xx.
pub const DEFAULT_READ_RETRIES: u32 = 2;

/// Default pause before the first read retry (doubled per retry).
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 200;

/// Default largest response body handed to a plugin: a page of EDC JSON-LD is tens of KiB;
/// 4 MiB holds a big catalog and still bounds host memory per call.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The most `max-response-bytes` may be raised to: the body is held in memory and then
/// copied into the guest.
pub const MAX_RESPONSE_BYTES_CEILING: usize = 64 << 20;

/// Default first pause of `wait-for-state` polling; a negotiation takes a few round trips.
pub const DEFAULT_WAIT_POLL_INITIAL_MS: u64 = 250;

/// Default longest pause of `wait-for-state` polling (the pause doubles up to it).
pub const DEFAULT_WAIT_POLL_MAX_MS: u64 = 2_000;

/// Default time for one token request to the identity provider.
pub const DEFAULT_IDP_TIMEOUT_MS: u64 = 5_000;

/// Default: tokens are renewed this long before `exp` (at most a quarter of their lifetime),
/// so a token never expires between the cache check and the control plane's check.
pub const DEFAULT_REFRESH_MARGIN_SECS: u64 = 30;

/// Default: after a failed token request, callers for the same token get the same error for
/// this long instead of each hitting a struggling identity provider again.
pub const DEFAULT_FAILURE_HOLD_MS: u64 = 1_000;

/// Default scopes of tokens for reads (edcv.md §7.2: only `management-api:read|write`).
pub const DEFAULT_READ_SCOPE: &str = "management-api:read";

/// Default scope added for writes. Reads and writes are both requested for writes because
/// in v4alpha the exact scope is checked (and DELETE of an asset needs only `read`).
pub const DEFAULT_WRITE_SCOPE: &str = "management-api:write";

/// Default interval of the poll fallback for negotiation and transfer events.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;

/// Default interval of the check of `management.watch` registrations.
pub const DEFAULT_WATCH_INTERVAL_MS: u64 = 2_000;

/// Default interval at which due events are looked for (new events also wake the worker).
pub const DEFAULT_DELIVERY_SCAN_MS: u64 = 1_000;

/// Default delivery attempts per event before it is given up and audited.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Default pause before the first redelivery (doubled per attempt).
pub const DEFAULT_RETRY_BASE_MS: u64 = 1_000;

/// Default longest pause between redeliveries.
pub const DEFAULT_RETRY_MAX_MS: u64 = 300_000;

/// Default lease of a claimed event: longer than the longest call (the runtime's wall-clock
/// ceiling for event calls is minutes), so no other replica delivers it meanwhile.
pub const DEFAULT_LEASE_MS: u64 = 600_000;

/// Default interval of the timer scan; timers themselves are at least
/// [`weft_runtime::grants::MIN_TIMER_SECS`] apart.
pub const DEFAULT_TIMER_SCAN_MS: u64 = 1_000;

/// Default: delivered and failed events are kept this long (so a late duplicate of the same
/// event id is recognised), and process states not seen for this long are forgotten.
pub const DEFAULT_RETENTION_SECS: u64 = 7 * 24 * 3600;

/// Default: a watch whose process never settles is given up (and audited) after a day.
pub const DEFAULT_WATCH_MAX_AGE_SECS: u64 = 24 * 3600;

/// Default prefix of Weft's `dataplaneId` per tenant (`weft-{ctx}`).
pub const DEFAULT_DATAPLANE_ID_PREFIX: &str = "weft-";

/// A secret value (client secret, callback key). Its `Debug` never shows it, and it cannot be
/// serialized, so it never reaches a log line, an error or a plugin.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from a file (Kubernetes secret mounts, Vault agent files); surrounding
    /// whitespace, such as a trailing newline, is removed.
    pub fn from_file(path: &std::path::Path) -> Result<Secret, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Secret(format!("{}: {e}", path.display())))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(ConfigError::Secret(format!("{} is empty", path.display())));
        }
        Ok(Secret(value.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A JSON object that may hold secrets (a data plane's `authorization` profile).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SecretJson(pub serde_json::Value);

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.0.get("type").and_then(|t| t.as_str()).unwrap_or("?");
        write!(f, "SecretJson(type={kind}, ***)")
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid management configuration: {0}")]
    Invalid(String),
    #[error("cannot read secret: {0}")]
    Secret(String),
}

/// Management API version prefix (edcv.md §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ApiVersion {
    #[serde(rename = "v4alpha")]
    V4alpha,
    #[default]
    #[serde(rename = "v5beta")]
    V5beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V4alpha => "v4alpha",
            ApiVersion::V5beta => "v5beta",
        }
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (Keycloak and jwtlet accept it).
    #[default]
    ClientSecretPost,
    /// HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
}

/// The credentials of one tenant's OAuth2 client (client-credentials mode).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantClient {
    pub participant_context: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
}

/// How tenant tokens are obtained (edcv.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Grant {
    /// OAuth2 client credentials with one client per tenant (the Keycloak era). Credentials
    /// come from `clients`, else from `{secret-dir}/{ctx}/client-id` (optional; defaults to
    /// the ctx, the CFM convention) and `{secret-dir}/{ctx}/client-secret`.
    #[serde(rename_all = "kebab-case")]
    ClientCredentials {
        #[serde(default)]
        clients: Vec<TenantClient>,
        #[serde(default)]
        secret_dir: Option<PathBuf>,
    },
    /// RFC 8693 token exchange with Weft's one client and `resource` = ctx (jwtlet). The
    /// subject token is read from `subject-token-file` (a projected service-account token)
    /// on every exchange, or else obtained by client credentials of Weft's client.
    #[serde(rename_all = "kebab-case")]
    TokenExchange {
        client_id: String,
        #[serde(default)]
        client_secret: Option<Secret>,
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
        #[serde(default)]
        subject_token_file: Option<PathBuf>,
        #[serde(default)]
        audience: Option<String>,
    },
}

/// The identity provider and how tokens are requested and cached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IdentityConfig {
    /// The token endpoint.
    pub token_url: String,
    pub grant: Grant,
    #[serde(default)]
    pub client_auth: ClientAuth,
    #[serde(default = "defaults::idp_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "defaults::refresh_margin_secs")]
    pub refresh_margin_secs: u64,
    #[serde(default = "defaults::failure_hold_ms")]
    pub failure_hold_ms: u64,
}

/// Timeouts, retries and size caps of Management API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClientLimits {
    pub request_timeout_ms: u64,
    pub deadline_ms: u64,
    pub read_retries: u32,
    pub retry_backoff_ms: u64,
    pub max_response_bytes: usize,
    pub wait_poll_initial_ms: u64,
    pub wait_poll_max_ms: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            deadline_ms: DEFAULT_DEADLINE_MS,
            read_retries: DEFAULT_READ_RETRIES,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            wait_poll_initial_ms: DEFAULT_WAIT_POLL_INITIAL_MS,
            wait_poll_max_ms: DEFAULT_WAIT_POLL_MAX_MS,
        }
    }
}

/// Control-plane events for apps.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventsConfig {
    /// Key of the callback endpoint's per-tenant tokens (shared by all replicas). Without
    /// it (or `callback-secret-file`) callbacks are refused and polling alone is used.
    pub callback_secret: Option<Secret>,
    pub callback_secret_file: Option<PathBuf>,
    /// Add Weft's callback address to negotiations and transfers plugins start.
    pub inject_callbacks: bool,
    pub poll_interval_ms: u64,
    pub watch_interval_ms: u64,
    pub delivery_scan_ms: u64,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub lease_ms: u64,
    pub timer_scan_ms: u64,
    /// Shortest timer interval granted, in seconds; never below
    /// [`weft_runtime::grants::MIN_TIMER_SECS`].
    pub min_timer_secs: u64,
    pub retention_secs: u64,
    pub watch_max_age_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            callback_secret: None,
            callback_secret_file: None,
            inject_callbacks: true,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            watch_interval_ms: DEFAULT_WATCH_INTERVAL_MS,
            delivery_scan_ms: DEFAULT_DELIVERY_SCAN_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_base_ms: DEFAULT_RETRY_BASE_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            lease_ms: DEFAULT_LEASE_MS,
            timer_scan_ms: DEFAULT_TIMER_SCAN_MS,
            min_timer_secs: weft_runtime::grants::MIN_TIMER_SECS,
            retention_secs: DEFAULT_RETENTION_SECS,
            watch_max_age_secs: DEFAULT_WATCH_MAX_AGE_SECS,
        }
    }
}

/// Which registration call the control plane understands (edcv.md §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationForm {
    /// `PUT …/v5beta/participants/{ctx}/dataplanes` with a DPS `DataPlaneRegistrationMessage`
    /// (`dataplaneId`, `endpoint`, `profiles` and `transferTypes`, `labels`, `authorization`);
    /// `DELETE …/dataplanes/{id}` removes it.
    V5beta,
    /// JAD's v4alpha workaround: `POST …/v4alpha/dataplanes/{ctx}` with a plain
    /// `DataPlaneInstance{id, url, allowedSourceTypes, allowedTransferTypes}`. It has no
    /// removal endpoint.
    JadV4alpha,
}

/// Weft's registration as each tenant's data plane.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DataPlaneConfig {
    /// The registration form; by default the one of the configured API version.
    pub form: Option<RegistrationForm>,
    /// `dataplaneId` = prefix + ctx.
    pub id_prefix: String,
    /// The DPS `authorization` profile sent with the registration (e.g.
    /// `{type = "oauth2_client_credentials", …}`); none when the control plane uses its
    /// configured default.
    pub authorization: Option<SecretJson>,
    /// `labels` of the registration.
    pub labels: Vec<String>,
    /// Extra EDC transfer types per DPS profile (e.g. http-pull → `HttpData-PULL`); each
    /// profile is always sent as a transfer type too.
    pub transfer_types: BTreeMap<String, Vec<String>>,
    /// Scopes of the token used to register; by default the write scopes.
    pub scopes: Option<Vec<String>>,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            form: None,
            id_prefix: DEFAULT_DATAPLANE_ID_PREFIX.to_owned(),
            authorization: None,
            labels: Vec::new(),
            transfer_types: BTreeMap::new(),
            scopes: None,
        }
    }
}

/// The `[management]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManagementConfig {
    /// The Management API base, e.g. `http://cp:8081/api/mgmt`.
    pub base_url: String,
    #[serde(default)]
    pub version: ApiVersion,
    pub identity: IdentityConfig,
    /// Weft's externally reachable base URL: callbacks go to `{public-url}/events/{ctx}`,
    /// the data-plane endpoint is `{public-url}/dps/{ctx}/dataflows`.
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default = "defaults::read_scopes")]
    pub read_scopes: Vec<String>,
    #[serde(default = "defaults::write_scopes")]
    pub write_scopes: Vec<String>,
    #[serde(default)]
    pub limits: ClientLimits,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub dataplane: DataPlaneConfig,
}

mod defaults {
    pub(super) fn idp_timeout_ms() -> u64 {
        super::DEFAULT_IDP_TIMEOUT_MS
    }
    pub(super) fn refresh_margin_secs() -> u64 {
        super::DEFAULT_REFRESH_MARGIN_SECS
    }
    pub(super) fn failure_hold_ms() -> u64 {
        super::DEFAULT_FAILURE_HOLD_MS
    }
    pub(super) fn read_scopes() -> Vec<String> {
        vec![super::DEFAULT_READ_SCOPE.to_owned()]
    }
    pub(super) fn write_scopes() -> Vec<String> {
        vec![
            super::DEFAULT_READ_SCOPE.to_owned(),
            super::DEFAULT_WRITE_SCOPE.to_owned(),
        ]
    }
}

fn http_url(what: &str, url: &str) -> Result<(), ConfigError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > "https://".len()
        && !url.contains(['?', '#', ' ']);
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{what} must be an http(s) URL without query or fragment, not {url:?}"
        )))
    }
}

fn positive(what: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::Invalid(format!("{what} must be positive")))
    } else {
        Ok(())
    }
}

fn scopes(what: &str, list: &[String]) -> Result<(), ConfigError> {
    if list.is_empty()
        || list
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        Err(ConfigError::Invalid(format!(
            "{what} must be a non-empty list of scopes without spaces"
        )))
    } else {
        Ok(())
    }
}

impl ManagementConfig {
    /// A configuration with every default, for `base_url` and an identity provider.
    pub fn new(base_url: impl Into<String>, identity: IdentityConfig) -> ManagementConfig {
        ManagementConfig {
            base_url: base_url.into(),
            version: ApiVersion::default(),
            identity,
            public_url: None,
            read_scopes: defaults::read_scopes(),
            write_scopes: defaults::write_scopes(),
            limits: ClientLimits::default(),
            events: EventsConfig::default(),
            dataplane: DataPlaneConfig::default(),
        }
    }

    /// Checks every value; secrets in files are read later, when first needed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        http_url("base-url", &self.base_url)?;
        http_url("identity.token-url", &self.identity.token_url)?;
        if let Some(public) = &self.public_url {
            http_url("public-url", public)?;
        }
        positive("identity.timeout-ms", self.identity.timeout_ms)?;
        scopes("read-scopes", &self.read_scopes)?;
        scopes("write-scopes", &self.write_scopes)?;
        if let Some(s) = &self.dataplane.scopes {
            scopes("dataplane.scopes", s)?;
        }
        let l = &self.limits;
        positive("limits.request-timeout-ms", l.request_timeout_ms)?;
        positive("limits.deadline-ms", l.deadline_ms)?;
        positive("limits.wait-poll-initial-ms", l.wait_poll_initial_ms)?;
        positive("limits.wait-poll-max-ms", l.wait_poll_max_ms)?;
        if l.max_response_bytes == 0 || l.max_response_bytes > MAX_RESPONSE_BYTES_CEILING {
            return Err(ConfigError::Invalid(format!(
                "limits.max-response-bytes must be 1 to {MAX_RESPONSE_BYTES_CEILING}"
            )));
        }
        let e = &self.events;
        positive("events.poll-interval-ms", e.poll_interval_ms)?;
        positive("events.watch-interval-ms", e.watch_interval_ms)?;
        positive("events.delivery-scan-ms", e.delivery_scan_ms)?;
        positive("events.max-attempts", u64::from(e.max_attempts))?;
        positive("events.lease-ms", e.lease_ms)?;
        positive("events.timer-scan-ms", e.timer_scan_ms)?;
        positive("events.retention-secs", e.retention_secs)?;
        positive("events.watch-max-age-secs", e.watch_max_age_secs)?;
        match &self.identity.grant {
            Grant::ClientCredentials { clients, .. } => {
                for c in clients {
                    if c.participant_context.is_empty() || c.client_id.is_empty() {
                        return Err(ConfigError::Invalid(
                            "identity.grant.clients entries need participant-context and client-id"
                                .into(),
                        ));
                    }
                    if c.client_secret.is_some() == c.client_secret_file.is_some() {
                        return Err(ConfigError::Invalid(format!(
                            "client {} needs exactly one of client-secret and client-secret-file",
                            c.client_id
                        )));
                    }
                }
            }
            Grant::TokenExchange {
                client_id,
                client_secret,
                client_secret_file,
                ..
            } => {
                if client_id.is_empty() {
                    return Err(ConfigError::Invalid(
                        "identity.grant.client-id is empty".into(),
                    ));
                }
                if client_secret.is_some() && client_secret_file.is_some() {
                    return Err(ConfigError::Invalid(
                        "identity.grant: give client-secret or client-secret-file, not both".into(),
                    ));
                }
            }
        }
        if let Some(auth) = &self.dataplane.authorization
            && auth.0.get("type").and_then(|t| t.as_str()).is_none()
        {
            return Err(ConfigError::Invalid(
                "dataplane.authorization must be an object with a `type`".into(),
            ));
        }
        Ok(())
    }

    /// The registration form in effect.
    pub fn registration_form(&self) -> RegistrationForm {
        self.dataplane.form.unwrap_or(match self.version {
            ApiVersion::V4alpha => RegistrationForm::JadV4alpha,
            ApiVersion::V5beta => RegistrationForm::V5beta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
base-url = "http://cp:8081/api/mgmt"
version = "v4alpha"
public-url = "https://weft.example"

[identity]
token-url = "http://idp/token"
client-auth = "client-secret-basic"
[identity.grant]
type = "client-credentials"
secret-dir = "/run/secrets/tenants"
clients = [{ participant-context = "pc1", client-id = "pc1", client-secret = "s3cr3t" }]

[limits]
read-retries = 1

[events]
callback-secret = "k3y"
poll-interval-ms = 100

[dataplane]
authorization = { type = "static-token", token = "t0k3n" }
transfer-types = { "https://w3id.org/dspace-sig/profile/http-pull" = ["HttpData-PULL"] }
"#;

    #[test]
    fn parses_and_validates_a_full_config() {
        let c: ManagementConfig = toml::from_str(FULL).unwrap();
        c.validate().unwrap();
        assert_eq!(c.version, ApiVersion::V4alpha);
        assert_eq!(c.limits.read_retries, 1);
        assert_eq!(c.limits.deadline_ms, DEFAULT_DEADLINE_MS);
        assert_eq!(c.registration_form(), RegistrationForm::JadV4alpha);
        assert_eq!(
            c.write_scopes,
            ["management-api:read", "management-api:write"]
        );
        // Secrets never show in Debug output.
        let debug = format!("{c:?}");
        for secret in ["s3cr3t", "k3y", "t0k3n"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    #[test]
    fn token_exchange_and_unknown_fields() {
        let c: ManagementConfig = toml::from_str(
            r#"
base-url = "http://cp/api/mgmt"
[identity]
token-url = "http://jwtlet/token"
grant = { type = "token-exchange", client-id = "weft", client-secret-file = "/s", audience = "edcv" }
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.registration_form(), RegistrationForm::V5beta);
        assert!(
            toml::from_str::<ManagementConfig>(&FULL.replace("read-retries", "read-retry"))
                .is_err()
        );
        assert!(
            toml::from_str::<ManagementConfig>(&FULL.replace("secret-dir", "secret-directory"))
                .is_err()
        );
    }

    #[test]
    fn refuses_bad_values() {
        let good: ManagementConfig = toml::from_str(FULL).unwrap();
        let mut c = good.clone();
        c.base_url = "ftp://x".into();
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.limits.max_response_bytes = MAX_RESPONSE_BYTES_CEILING + 1;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.read_scopes = vec!["a b".into()];
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.events.max_attempts = 0;
        assert!(c.validate().is_err());
        let mut c = good;
        c.identity.grant = Grant::ClientCredentials {
            clients: vec![TenantClient {
                participant_context: "pc".into(),
                client_id: "c".into(),
                client_secret: None,
                client_secret_file: None,
            }],
            secret_dir: None,
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn secrets_from_files_are_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "abc");
        std::fs::write(&path, "\n").unwrap();
        assert!(Secret::from_file(&path).is_err());
        assert!(Secret::from_file(&dir.path().join("missing")).is_err());
    }
}
