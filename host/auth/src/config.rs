//! Configuration of token validation: issuer, JWKS location, allowed algorithms, claim mode
//! and the scope names Weft maps to its own permissions.

use std::str::FromStr;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

/// Default clock leeway for `exp`/`nbf`: absorbs small clock drift between IdP and host.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Largest accepted leeway: more would make expiry meaningless.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Default JWKS cache lifetime; EDC caches its JWKS for 5 minutes too.
pub const DEFAULT_JWKS_CACHE_TTL_SECS: u64 = 300;
/// Default minimum interval between two JWKS fetches, so a flood of tokens with unknown
/// `kid`s (or an IdP outage) cannot turn into a flood of requests to the IdP.
pub const DEFAULT_JWKS_MIN_REFRESH_SECS: u64 = 10;
/// Default timeout of one JWKS fetch: a slow IdP must not hold requests for long.
pub const DEFAULT_JWKS_FETCH_TIMEOUT_SECS: u64 = 10;
/// Upper bound for the fetch timeout in config.
pub const MAX_JWKS_FETCH_TIMEOUT_SECS: u64 = 120;
/// Weft's default admin scope.
pub const DEFAULT_ADMIN_SCOPE: &str = "weft:admin";
/// Weft's default scope for the tenant app API.
pub const DEFAULT_APPS_SCOPE: &str = "weft:apps";
/// EDC's cross-tenant elevation scope (current EDC, subject mode).
pub const EDC_ADMIN_SCOPE: &str = "management-api:admin";

/// Which claims carry the tenant identity and the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimMode {
    /// EDC-V v4alpha era (Keycloak): `participant_context_id`, `role` and `scope` claims.
    #[default]
    ParticipantContext,
    /// Current EDC (v0.18+): `sub` is the participant context, access comes from scopes only.
    Subject,
}

/// Token validation settings (`[auth]` in the server config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthConfig {
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// Where the IdP publishes its signing keys (JWKS).
    pub jwks_url: String,
    /// Allow a plain-http `jwks_url` on a non-loopback host (keys could be swapped in transit).
    #[serde(default)]
    pub allow_insecure_jwks_url: bool,
    /// Allowed signature algorithms (asymmetric only). Tokens with any other `alg` fail.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Expected `aud`; when absent the audience is not checked (as in EDC).
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock leeway for `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Which claims carry identity and role.
    #[serde(default)]
    pub claim_mode: ClaimMode,
    /// How long a fetched JWKS is used before it is fetched again.
    #[serde(default = "default_ttl")]
    pub jwks_cache_ttl_secs: u64,
    /// Minimum interval between two JWKS fetches (bounds the load an attacker can cause).
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// Timeout of one JWKS fetch.
    #[serde(default = "default_fetch_timeout")]
    pub jwks_fetch_timeout_secs: u64,
    /// Scope that grants Weft's admin API (subject mode: also makes the token an admin).
    #[serde(default = "default_admin_scope")]
    pub admin_scope: String,
    /// Scope that grants the tenant app API.
    #[serde(default = "default_apps_scope")]
    pub apps_scope: String,
    /// Subject mode only: further scopes that make a token an admin (EDC's elevation scope by
    /// default; set `[]` to accept only `admin_scope`).
    #[serde(default = "default_extra_admin_scopes")]
    pub extra_admin_scopes: Vec<String>,
    /// Subject mode only: scope that makes a token a provisioner (none by default).
    #[serde(default)]
    pub provisioner_scope: Option<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_owned(), "ES256".to_owned()]
}
fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}
fn default_ttl() -> u64 {
    DEFAULT_JWKS_CACHE_TTL_SECS
}
fn default_min_refresh() -> u64 {
    DEFAULT_JWKS_MIN_REFRESH_SECS
}
fn default_fetch_timeout() -> u64 {
    DEFAULT_JWKS_FETCH_TIMEOUT_SECS
}
fn default_admin_scope() -> String {
    DEFAULT_ADMIN_SCOPE.to_owned()
}
fn default_apps_scope() -> String {
    DEFAULT_APPS_SCOPE.to_owned()
}
fn default_extra_admin_scopes() -> Vec<String> {
    vec![EDC_ADMIN_SCOPE.to_owned()]
}

impl AuthConfig {
    /// A config with the given issuer and JWKS URL and every other field at its default.
    pub fn new(issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_url: jwks_url.into(),
            allow_insecure_jwks_url: false,
            algorithms: default_algorithms(),
            audience: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            claim_mode: ClaimMode::default(),
            jwks_cache_ttl_secs: DEFAULT_JWKS_CACHE_TTL_SECS,
            jwks_min_refresh_secs: DEFAULT_JWKS_MIN_REFRESH_SECS,
            jwks_fetch_timeout_secs: DEFAULT_JWKS_FETCH_TIMEOUT_SECS,
            admin_scope: default_admin_scope(),
            apps_scope: default_apps_scope(),
            extra_admin_scopes: default_extra_admin_scopes(),
            provisioner_scope: None,
        }
    }

    /// Checks the config and returns the parsed algorithm list and JWKS URL.
    pub(crate) fn validate(&self) -> Result<(Vec<Algorithm>, reqwest::Url), ConfigError> {
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        let url = reqwest::Url::parse(&self.jwks_url)
            .map_err(|e| ConfigError::InvalidJwksUrl(format!("{}: {e}", self.jwks_url)))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_jwks_url || is_loopback(&url) => {}
            "http" => return Err(ConfigError::InsecureJwksUrl(self.jwks_url.clone())),
            other => {
                return Err(ConfigError::InvalidJwksUrl(format!(
                    "{}: unsupported scheme {other:?}",
                    self.jwks_url
                )));
            }
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        let mut algorithms = Vec::with_capacity(self.algorithms.len());
        for name in &self.algorithms {
            let alg = parse_asymmetric_algorithm(name)?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(ConfigError::LeewayTooLarge {
                got: self.leeway_secs,
                max: MAX_LEEWAY_SECS,
            });
        }
        if self.jwks_fetch_timeout_secs == 0
            || self.jwks_fetch_timeout_secs > MAX_JWKS_FETCH_TIMEOUT_SECS
        {
            return Err(ConfigError::InvalidFetchTimeout {
                got: self.jwks_fetch_timeout_secs,
                max: MAX_JWKS_FETCH_TIMEOUT_SECS,
            });
        }
        if let Some(aud) = &self.audience
            && aud.trim().is_empty()
        {
            return Err(ConfigError::EmptyValue("audience"));
        }
        if self.admin_scope.trim().is_empty() {
            return Err(ConfigError::EmptyValue("admin_scope"));
        }
        if self.apps_scope.trim().is_empty() {
            return Err(ConfigError::EmptyValue("apps_scope"));
        }
        if self.extra_admin_scopes.iter().any(|s| s.trim().is_empty()) {
            return Err(ConfigError::EmptyValue("extra_admin_scopes"));
        }
        if let Some(p) = &self.provisioner_scope
            && p.trim().is_empty()
        {
            return Err(ConfigError::EmptyValue("provisioner_scope"));
        }
        Ok((algorithms, url))
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses an algorithm name from config, accepting only asymmetric signature algorithms.
fn parse_asymmetric_algorithm(name: &str) -> Result<Algorithm, ConfigError> {
    if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") {
        return Err(ConfigError::ForbiddenAlgorithm(name.to_owned()));
    }
    let alg =
        Algorithm::from_str(name).map_err(|_| ConfigError::UnknownAlgorithm(name.to_owned()))?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            Err(ConfigError::ForbiddenAlgorithm(name.to_owned()))
        }
        Algorithm::ES256
        | Algorithm::ES384
        | Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512
        | Algorithm::EdDSA => Ok(alg),
    }
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("auth.issuer must not be empty")]
    EmptyIssuer,
    #[error("auth.jwks_url is not a valid http(s) URL: {0}")]
    InvalidJwksUrl(String),
    #[error(
        "auth.jwks_url {0} uses plain http on a non-loopback host; use https or set \
         allow_insecure_jwks_url = true"
    )]
    InsecureJwksUrl(String),
    #[error("auth.algorithms must list at least one algorithm")]
    NoAlgorithms,
    #[error(
        "auth.algorithms: unknown algorithm {0:?} (use ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512 or EdDSA)"
    )]
    UnknownAlgorithm(String),
    #[error(
        "auth.algorithms: {0:?} is not allowed (only asymmetric signature algorithms; never none or HS*)"
    )]
    ForbiddenAlgorithm(String),
    #[error("auth.leeway_secs is {got}, at most {max} is allowed")]
    LeewayTooLarge { got: u64, max: u64 },
    #[error("auth.jwks_fetch_timeout_secs is {got}, must be between 1 and {max}")]
    InvalidFetchTimeout { got: u64, max: u64 },
    #[error("auth.{0} must not be empty")]
    EmptyValue(&'static str),
}
