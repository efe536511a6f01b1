//! The `weft serve` configuration file: versioned, strict, with environment overrides.

use crate::logging::LogConfig;
use crate::overrides;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use weft_auth::AuthConfig;
use weft_runtime::config::RuntimeConfig;
use weft_server::ServerConfig;

/// The only config format this binary reads.
pub const CONFIG_VERSION: u32 = 1;

/// Default listen address: loopback, so a first run exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WeftConfig {
    /// Must be [`CONFIG_VERSION`].
    pub config_version: u32,
    /// Address of the HTTP listener (admin, tenant, DPS and data endpoints).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub server: ServerConfig,
    /// The CSP's identity provider.
    pub auth: AuthConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// The EDC Management API bridge (tokens per tenant, events, data plane
    /// registration); absent = apps get `unavailable` from the `management` import.
    #[serde(default, skip_serializing)]
    pub management: Option<weft_management::ManagementConfig>,
    /// The DPS data plane; absent = no `/dps` or `/data` endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_plane: Option<weft_dataplane::DataPlaneConfig>,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)))
}

impl WeftConfig {
    /// Parses config text, applying `WEFT__…` overrides from `vars` first.
    pub fn parse(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<WeftConfig> {
        let mut doc: toml::Value = toml::from_str(text).context("config is not valid TOML")?;
        overrides::apply(&mut doc, vars)?;
        let version = doc.get("config-version").and_then(toml::Value::as_integer);
        if version != Some(i64::from(CONFIG_VERSION)) {
            bail!("config-version must be {CONFIG_VERSION} (found {version:?})");
        }
        let config: WeftConfig = doc.try_into().context("invalid configuration")?;
        config
            .server
            .validate()
            .context("invalid [server] section")?;
        Ok(config)
    }

    /// Reads and parses a config file with the process environment's overrides.
    pub fn load(path: &Path) -> anyhow::Result<WeftConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        WeftConfig::parse(&text, std::env::vars()).with_context(|| format!("in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
config-version = 1
[auth]
issuer = "https://idp.example.com"
jwks-url = "https://idp.example.com/jwks"
"#;

    #[test]
    fn minimal_config_has_defaults() {
        let c = WeftConfig::parse(MINIMAL, []).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            c.runtime.epoch_tick_ms,
            weft_runtime::config::DEFAULT_EPOCH_TICK_MS
        );
    }

    #[test]
    fn unknown_keys_and_versions_are_refused() {
        assert!(WeftConfig::parse(&format!("{MINIMAL}\nsurprise = 1"), []).is_err());
        assert!(
            WeftConfig::parse(
                &MINIMAL.replace("config-version = 1", "config-version = 2"),
                []
            )
            .is_err()
        );
        let typo = [("WEFT__RUNTIME__EPOCH_TICK".to_string(), "5".to_string())];
        assert!(
            WeftConfig::parse(MINIMAL, typo).is_err(),
            "a typo'd override is refused"
        );
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../weft.example.toml");
        let c = WeftConfig::parse(text, []).expect("weft.example.toml is valid");
        assert!(c.management.is_some() && c.data_plane.is_some());
        assert_eq!(c.auth.claim_mode, weft_auth::ClaimMode::ParticipantContext);
    }

    #[test]
    fn environment_overrides_apply() {
        let vars = [
            ("WEFT__LISTEN".to_string(), "127.0.0.1:9999".to_string()),
            ("WEFT__RUNTIME__EPOCH_TICK_MS".to_string(), "5".to_string()),
        ];
        let c = WeftConfig::parse(MINIMAL, vars).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.runtime.epoch_tick_ms, 5);
    }
}
