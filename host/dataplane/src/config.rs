//! Data plane configuration (`[data-plane]` in Weft's config file) and the limits behind it,
//! each a named constant with its reason.
//!
//! ```toml
//! [data-plane]
//! public-url = "https://weft.example.com"
//! # Only for a local sandbox: the DPS test kit below calls back over plain http.
//! allow-insecure-endpoints = true
//!
//! # The control plane every context starts with (more register through PUT /controlplanes).
//! [[data-plane.control-planes]]
//! id = "edc-v"
//! endpoint = "https://edc-v.example.com/api/signaling"
//! contexts = ["*"]
//! authorization = { type = "oauth2_client_credentials", tokenEndpoint = "https://idp.example.com/token", clientId = "weft", clientSecret = "secret", jwksUri = "https://idp.example.com/jwks" }
//!
//! # The DPS test kit, for one sandbox context: it sends `Authorization: dummy-authorization`.
//! [[data-plane.control-planes]]
//! id = "tck-control-plane"
//! endpoint = "http://localhost:8083"
//! contexts = ["tck-ctx"]
//! authorization = { type = "static_token", authorization = "dummy-authorization" }
//!
//! [data-plane.callbacks]
//! max-attempts = 200
//! ```

use crate::auth::CpAuthorization;
use serde::{Deserialize, Serialize};

/// Largest signaling request body: a DPS message is a few KiB; claims and metadata of a
/// real flow stay far below this, and the body is read whole to be validated.
pub const DEFAULT_MAX_SIGNAL_BODY_BYTES: usize = 1 << 20;

/// Prefix of the `dataplaneId` Weft uses per participant context (`weft-{ctx}`); it is the
/// `aud` a control plane's JWT must carry.
pub const DEFAULT_DATAPLANE_ID_PREFIX: &str = "weft-";

/// Timeout of one callback request: a control plane acknowledges a callback at once;
/// a slower answer is treated as a failed attempt and retried.
pub const DEFAULT_CALLBACK_TIMEOUT_MS: u64 = 10_000;

/// First retry delay of a failed callback; doubles per attempt.
pub const DEFAULT_CALLBACK_INITIAL_BACKOFF_MS: u64 = 1_000;

/// Longest delay between two callback attempts: an unreachable control plane is retried
/// at least this often, without hammering it.
pub const DEFAULT_CALLBACK_MAX_BACKOFF_MS: u64 = 300_000;

/// Attempts before a callback is given up (kept as `dead` for operators). With the default
/// backoff this is more than half a day of retrying.
pub const DEFAULT_CALLBACK_MAX_ATTEMPTS: u32 = 200;

/// How often the callback worker looks for due callbacks when nothing woke it (other
/// replicas' callbacks, retries of this one are scheduled precisely anyway).
pub const DEFAULT_CALLBACK_POLL_MS: u64 = 1_000;

/// Delay before a callback caused by a signal's own hook is first sent, so it does not
/// overtake the acknowledgement of that signal on the wire.
pub const DEFAULT_CALLBACK_SETTLE_MS: u64 = 100;

/// Callbacks taken from the outbox per round.
pub const CALLBACK_BATCH: u32 = 100;

/// Callbacks delivered at once: one slow control plane must not hold up the others.
pub const CALLBACK_CONCURRENCY: usize = 16;

/// Wall-clock time of one data request through an app: long streaming pulls are normal.
pub const DEFAULT_DATA_CALL_WALL_MS: u64 = 60 * 60_000;

/// Guest CPU time of one data request: moving a large payload through an app costs CPU
/// proportional to its size.
pub const DEFAULT_DATA_CALL_CPU_MS: u64 = 10 * 60_000;

/// Configuration of the data plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DataPlaneConfig {
    /// Public base URL of Weft as counterparties reach it; DataAddresses point at
    /// `{public-url}/data/{flowId}`.
    pub public_url: String,
    /// Prefix of the per-context `dataplaneId` (and expected JWT `aud`): `{prefix}{ctx}`.
    pub dataplane_id_prefix: String,
    /// Accept `http://` endpoints (control planes, counterparty DataAddresses, the public
    /// URL). Only for tests and a local sandbox: the spec requires HTTPS.
    pub allow_insecure_endpoints: bool,
    /// Accept `PUT /controlplanes` without credentials for a context that knows no control
    /// plane yet. Only for development: the first caller becomes the context's control plane.
    pub open_registration: bool,
    /// Control planes known from configuration (in addition to registrations).
    pub control_planes: Vec<ControlPlaneSeed>,
    /// Largest signaling request body.
    pub max_signal_body_bytes: usize,
    /// Callback delivery.
    pub callbacks: CallbackConfig,
    /// Limits of data requests through an app.
    pub data_calls: DataCallConfig,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            public_url: "https://localhost".to_owned(),
            dataplane_id_prefix: DEFAULT_DATAPLANE_ID_PREFIX.to_owned(),
            allow_insecure_endpoints: false,
            open_registration: false,
            control_planes: Vec::new(),
            max_signal_body_bytes: DEFAULT_MAX_SIGNAL_BODY_BYTES,
            callbacks: CallbackConfig::default(),
            data_calls: DataCallConfig::default(),
        }
    }
}

/// A control plane known from configuration, for some or all contexts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControlPlaneSeed {
    /// The `controlplaneId`.
    pub id: String,
    /// The callback base URL (`{endpoint}/transfers/{id}/dataflow/...`).
    pub endpoint: String,
    /// Participant contexts it serves; `*` for all.
    #[serde(default = "all_contexts")]
    pub contexts: Vec<String>,
    /// How it authenticates (the DPS registration `authorization` object); none if absent.
    #[serde(default)]
    pub authorization: Option<CpAuthorization>,
}

fn all_contexts() -> Vec<String> {
    vec!["*".to_owned()]
}

impl ControlPlaneSeed {
    /// Whether this seed serves `ctx`.
    pub fn serves(&self, ctx: &str) -> bool {
        self.contexts.iter().any(|c| c == "*" || c == ctx)
    }
}

/// Callback delivery settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CallbackConfig {
    pub timeout_ms: u64,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub max_attempts: u32,
    pub poll_ms: u64,
    pub settle_ms: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            timeout_ms: DEFAULT_CALLBACK_TIMEOUT_MS,
            initial_backoff_ms: DEFAULT_CALLBACK_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_CALLBACK_MAX_BACKOFF_MS,
            max_attempts: DEFAULT_CALLBACK_MAX_ATTEMPTS,
            poll_ms: DEFAULT_CALLBACK_POLL_MS,
            settle_ms: DEFAULT_CALLBACK_SETTLE_MS,
        }
    }
}

impl CallbackConfig {
    /// Delay before attempt `attempts + 1`, after `attempts` failures (at least one).
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let shift = attempts.saturating_sub(1).min(30);
        self.initial_backoff_ms
            .max(1)
            .saturating_mul(1u64 << shift)
            .min(self.max_backoff_ms.max(1))
    }
}

/// Limits of data requests (pulls and pushes) through an app.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DataCallConfig {
    pub wall_ms: u64,
    pub cpu_ms: u64,
}

impl Default for DataCallConfig {
    fn default() -> Self {
        DataCallConfig {
            wall_ms: DEFAULT_DATA_CALL_WALL_MS,
            cpu_ms: DEFAULT_DATA_CALL_CPU_MS,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("public-url {0:?} is not an absolute http(s) URL without query")]
    PublicUrl(String),
    #[error("public-url must be https (set allow-insecure-endpoints for tests)")]
    InsecurePublicUrl,
    #[error("control plane {id}: {reason}")]
    ControlPlane { id: String, reason: String },
    #[error("{0} must be positive")]
    Zero(&'static str),
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

impl DataPlaneConfig {
    /// Checks the configuration; [`crate::DataPlane::new`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.public_url)
            .map_err(|_| ConfigError::PublicUrl(self.public_url.clone()))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
        {
            return Err(ConfigError::PublicUrl(self.public_url.clone()));
        }
        if url.scheme() == "http" && !self.allow_insecure_endpoints {
            return Err(ConfigError::InsecurePublicUrl);
        }
        for seed in &self.control_planes {
            crate::auth::check_endpoint(&seed.endpoint, self.allow_insecure_endpoints)
                .and_then(|()| {
                    seed.authorization
                        .as_ref()
                        .map_or(Ok(()), CpAuthorization::validate)
                })
                .map_err(|reason| ConfigError::ControlPlane {
                    id: seed.id.clone(),
                    reason,
                })?;
        }
        for (name, value) in [
            ("max-signal-body-bytes", self.max_signal_body_bytes as u64),
            ("callbacks.timeout-ms", self.callbacks.timeout_ms),
            ("callbacks.poll-ms", self.callbacks.poll_ms),
            (
                "callbacks.max-attempts",
                u64::from(self.callbacks.max_attempts),
            ),
            ("data-calls.wall-ms", self.data_calls.wall_ms),
            ("data-calls.cpu-ms", self.data_calls.cpu_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }

    /// The `dataplaneId` of Weft for one participant context.
    pub fn dataplane_id(&self, ctx: &str) -> String {
        format!("{}{ctx}", self.dataplane_id_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = CallbackConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..CallbackConfig::default()
        };
        assert_eq!(c.backoff_ms(1), 100);
        assert_eq!(c.backoff_ms(2), 200);
        assert_eq!(c.backoff_ms(4), 800);
        assert_eq!(c.backoff_ms(5), 1_000);
        assert_eq!(c.backoff_ms(u32::MAX), 1_000);
    }

    #[test]
    fn config_is_validated() {
        let mut c = DataPlaneConfig {
            public_url: "http://127.0.0.1:1".into(),
            ..DataPlaneConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::InsecurePublicUrl)));
        c.allow_insecure_endpoints = true;
        c.validate().unwrap();
        c.public_url = "not a url".into();
        assert!(matches!(c.validate(), Err(ConfigError::PublicUrl(_))));
        let parsed: Result<DataPlaneConfig, _> = serde_json::from_str(r#"{"public-urll": "x"}"#);
        assert!(parsed.is_err(), "unknown fields are refused");
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start_matches(' ')))
            .collect();
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case")]
        struct File {
            data_plane: DataPlaneConfig,
        }
        let file: File = toml::from_str(&example).unwrap();
        let c = file.data_plane;
        c.validate().unwrap();
        assert_eq!(c.control_planes.len(), 2);
        assert!(matches!(
            c.control_planes[0].authorization,
            Some(CpAuthorization::OAuth2ClientCredentials { .. })
        ));
        assert!(c.control_planes[1].serves("tck-ctx") && !c.control_planes[1].serves("other"));
        assert_eq!(c.callbacks.max_attempts, 200);
    }
}
