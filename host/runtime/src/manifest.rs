//! The plugin manifest (`weft.toml`): what a plugin is and what it asks for, parsed strictly.

use crate::config::{CallLimits, MAX_MANIFEST_BYTES};
use crate::grants::Grants;
use serde::{Deserialize, Serialize};

/// The only manifest format this host reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The contract version this host implements; plugins targeting any `0.1.x` link.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A parsed and validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Format version; must be [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// Plugin id: lowercase letters, digits and dashes.
    pub id: String,
    /// The plugin's semver version.
    pub version: semver::Version,
    /// The `weft:plugin` contract version targeted.
    pub contract: semver::Version,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// What the plugin asks the CSP to grant.
    #[serde(default)]
    pub capabilities: Grants,
    /// Per-call limits the plugin needs; missing fields take the host's defaults.
    #[serde(default)]
    pub limits: Option<RequestedLimits>,
    /// DPS profiles and datasets the plugin serves as a data plane.
    #[serde(default)]
    pub data_plane: Option<DataPlane>,
}

/// Per-call limits a manifest asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RequestedLimits {
    pub memory_bytes: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub wall_ms: Option<u64>,
}

/// The data-plane part of a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DataPlane {
    /// DPS transfer profiles (e.g. `https://w3id.org/dspace-sig/profile/http-pull`).
    pub profiles: Vec<String>,
    /// Dataset selectors: `*` (any), `prefix*`, or an exact dataset id.
    #[serde(default)]
    pub datasets: Vec<String>,
}

impl DataPlane {
    /// Whether a dataset id matches one of the selectors.
    pub fn matches_dataset(&self, dataset_id: &str) -> bool {
        self.datasets.iter().any(|sel| match sel.strip_suffix('*') {
            Some(prefix) => dataset_id.starts_with(prefix),
            None => sel == dataset_id,
        })
    }
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is {0} bytes, more than the {MAX_MANIFEST_BYTES} allowed")]
    TooLarge(usize),
    #[error("manifest is not valid TOML for format {MANIFEST_VERSION}: {0}")]
    Parse(String),
    #[error("manifest-version {0} is not supported (this host reads {MANIFEST_VERSION})")]
    UnsupportedVersion(u32),
    #[error(
        "plugin id {0:?} must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit"
    )]
    BadId(String),
    #[error(
        "contract {0} is not supported: this host implements weft:plugin@{CONTRACT_VERSION} (0.1.x)"
    )]
    UnsupportedContract(semver::Version),
    #[error("invalid capability: {0}")]
    BadCapability(String),
    #[error("invalid limit: {0}")]
    BadLimit(String),
    #[error("invalid data-plane section: {0}")]
    BadDataPlane(String),
}

impl Manifest {
    /// Parses and validates a manifest; unknown fields are refused.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(text.len()));
        }
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse(e.message().to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if self.manifest_version != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion(self.manifest_version));
        }
        if !valid_id(&self.id) {
            return Err(ManifestError::BadId(self.id.clone()));
        }
        let host =
            semver::Version::parse(CONTRACT_VERSION).unwrap_or(semver::Version::new(0, 1, 0));
        // Within 0.x, the minor version is the compatibility boundary; a plugin built
        // for a newer minor may import functions this host does not have.
        if self.contract.major != host.major
            || self.contract.minor != host.minor
            || !self.contract.pre.is_empty()
        {
            return Err(ManifestError::UnsupportedContract(self.contract.clone()));
        }
        self.capabilities
            .validate()
            .map_err(ManifestError::BadCapability)?;
        if let Some(limits) = &self.limits {
            for (name, value) in [
                ("memory-bytes", limits.memory_bytes),
                ("cpu-ms", limits.cpu_ms),
                ("wall-ms", limits.wall_ms),
            ] {
                if value == Some(0) {
                    return Err(ManifestError::BadLimit(format!("{name} must be positive")));
                }
            }
        }
        if let Some(dp) = &self.data_plane {
            if dp.profiles.is_empty() {
                return Err(ManifestError::BadDataPlane(
                    "profiles must not be empty".into(),
                ));
            }
            if let Some(p) = dp.profiles.iter().find(|p| p.trim().is_empty()) {
                return Err(ManifestError::BadDataPlane(format!("empty profile {p:?}")));
            }
            if dp
                .datasets
                .iter()
                .any(|d| d.is_empty() || d[..d.len() - 1].contains('*'))
            {
                return Err(ManifestError::BadDataPlane(
                    "dataset selectors are `*`, `prefix*` or exact ids".into(),
                ));
            }
        }
        Ok(())
    }

    /// The limits a call of this plugin runs with: what it asks, defaulted, then capped.
    pub fn effective_limits(&self, defaults: CallLimits, ceiling: CallLimits) -> CallLimits {
        let asked = self.limits.unwrap_or_default();
        CallLimits {
            memory_bytes: asked.memory_bytes.unwrap_or(defaults.memory_bytes),
            cpu_ms: asked.cpu_ms.unwrap_or(defaults.cpu_ms),
            wall_ms: asked.wall_ms.unwrap_or(defaults.wall_ms),
        }
        .min(ceiling)
    }
}

fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
manifest-version = 1
id = "hello"
version = "1.2.3"
contract = "0.1.0"

[capabilities]
management = ["management-api:read"]
state-quota-bytes = 1024
outbound-hosts = ["https://api.example.com"]

[limits]
memory-bytes = 1000000

[data-plane]
profiles = ["https://w3id.org/dspace-sig/profile/http-pull"]
datasets = ["cert-*"]
"#;

    #[test]
    fn parses_a_complete_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.id, "hello");
        assert_eq!(m.version, semver::Version::new(1, 2, 3));
        assert_eq!(m.capabilities.state_quota_bytes, 1024);
        let dp = m.data_plane.unwrap();
        assert!(dp.matches_dataset("cert-1"));
        assert!(!dp.matches_dataset("other"));
    }

    #[test]
    fn refuses_unknown_fields_everywhere() {
        let top = GOOD.replace("contract = \"0.1.0\"", "contract = \"0.1.0\"\nextra = 1");
        assert!(
            matches!(Manifest::parse(&top), Err(ManifestError::Parse(m)) if m.contains("extra"))
        );
        let nested = GOOD.replace("state-quota-bytes", "state-quota");
        assert!(matches!(
            Manifest::parse(&nested),
            Err(ManifestError::Parse(_))
        ));
    }

    #[test]
    fn refuses_bad_values() {
        assert!(matches!(
            Manifest::parse(&GOOD.replace("id = \"hello\"", "id = \"Hello World\"")),
            Err(ManifestError::BadId(_))
        ));
        assert!(matches!(
            Manifest::parse(&GOOD.replace("contract = \"0.1.0\"", "contract = \"0.2.0\"")),
            Err(ManifestError::UnsupportedContract(_))
        ));
        assert!(matches!(
            Manifest::parse(&GOOD.replace("manifest-version = 1", "manifest-version = 2")),
            Err(ManifestError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            Manifest::parse(&GOOD.replace("1000000", "0")),
            Err(ManifestError::BadLimit(_))
        ));
        assert!(matches!(
            Manifest::parse(&GOOD.replace("version = \"1.2.3\"", "version = \"one\"")),
            Err(ManifestError::Parse(_))
        ));
        assert!(matches!(
            Manifest::parse(&"#".repeat(MAX_MANIFEST_BYTES + 1)),
            Err(ManifestError::TooLarge(_))
        ));
    }

    #[test]
    fn limits_are_defaulted_and_capped() {
        let m = Manifest::parse(GOOD).unwrap();
        let defaults = CallLimits::default();
        let ceiling = CallLimits {
            memory_bytes: 500_000,
            cpu_ms: 10,
            wall_ms: 100,
        };
        let eff = m.effective_limits(defaults, ceiling);
        assert_eq!(
            eff,
            CallLimits {
                memory_bytes: 500_000,
                cpu_ms: 10,
                wall_ms: 100
            }
        );
    }
}
