//! Server configuration (the `[server]` table of Weft's config file): where data lives, which
//! store to use, and the caps and per-tenant limits every request is held to.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";

/// File name of the embedded SQLite store under the data directory.
pub const SQLITE_FILE_NAME: &str = "weft.db";

/// Largest tenant API request body. App APIs take JSON documents and modest uploads; bulk
/// data goes through the data plane, not the app API.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;

/// Largest total of request header names and values. Browsers and EDC clients send a few
/// KiB; 64 KiB leaves room for large tokens and cookies while bounding memory per request.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;

/// Largest plugin upload (component + manifest + signature, multipart overhead included).
/// The runtime refuses components over 32 MiB anyway; this stops bigger bodies early.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 40 << 20;

/// Concurrent tenant API calls one tenant may have in flight. The instance pool holds 256
/// by default, so several tenants at their cap still leave slots for everyone else.
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 32;

/// Sustained tenant API requests per second per tenant (the token bucket's refill rate).
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 100.0;

/// Requests a tenant may send in a burst above the sustained rate (the bucket's size).
pub const DEFAULT_BURST: u32 = 200;

/// Smallest refill rate accepted: below it a tenant would wait longer than a day for one
/// request, which is a configuration mistake rather than a limit.
pub const MIN_REQUESTS_PER_SECOND: f64 = 1.0 / 86_400.0;

/// Server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Where the SQLite store, uploaded components (`plugins/`) and the precompiled
    /// cache (`cache/`) live.
    pub data_dir: PathBuf,
    /// Store URL: `sqlite://…` or `postgres://…`. Default: `sqlite://<data-dir>/weft.db`.
    pub store_url: Option<String>,
    /// PostgreSQL only: keep Weft's tables in this schema (created if missing).
    pub store_schema: Option<String>,
    /// Largest tenant API request body in bytes (413 above).
    pub max_body_bytes: u64,
    /// Largest total of request header names and values in bytes (431 above).
    pub max_header_bytes: usize,
    /// Largest plugin upload in bytes (413 above).
    pub max_upload_bytes: u64,
    /// Limits each tenant is held to on the tenant API.
    pub tenant_limits: TenantLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            store_url: None,
            store_schema: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            tenant_limits: TenantLimits::default(),
        }
    }
}

/// Per-tenant limits on the tenant API.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantLimits {
    /// Calls one tenant may have in flight (a streaming response counts until it ends).
    pub max_concurrent_calls: u32,
    /// Sustained requests per second (may be fractional).
    pub requests_per_second: f64,
    /// Requests allowed in a burst.
    pub burst: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            burst: DEFAULT_BURST,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("server.{0} must be positive")]
    NotPositive(&'static str),
    #[error(
        "server.tenant-limits.requests-per-second must be at least {MIN_REQUESTS_PER_SECOND} (one per day)"
    )]
    RateTooLow,
    #[error("server.store-url must start with sqlite: or postgres:// (got {0:?})")]
    BadStoreUrl(String),
    #[error(
        "server.data-dir {0:?} is not valid UTF-8, so no default SQLite URL can be built; set store-url"
    )]
    DataDirNotUtf8(PathBuf),
}

impl ServerConfig {
    /// A config with every default and the given data directory.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            ..ServerConfig::default()
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("max-body-bytes", self.max_body_bytes),
            ("max-header-bytes", self.max_header_bytes as u64),
            ("max-upload-bytes", self.max_upload_bytes),
            (
                "tenant-limits.max-concurrent-calls",
                u64::from(self.tenant_limits.max_concurrent_calls),
            ),
            ("tenant-limits.burst", u64::from(self.tenant_limits.burst)),
        ] {
            if value == 0 {
                return Err(ConfigError::NotPositive(name));
            }
        }
        let rps = self.tenant_limits.requests_per_second;
        if !rps.is_finite() || rps < MIN_REQUESTS_PER_SECOND {
            return Err(ConfigError::RateTooLow);
        }
        if let Some(url) = &self.store_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::BadStoreUrl(url.clone()));
        }
        Ok(())
    }

    /// The store URL: the configured one, or the SQLite file under the data directory.
    pub fn effective_store_url(&self) -> Result<String, ConfigError> {
        match &self.store_url {
            Some(url) => Ok(url.clone()),
            None => {
                let path = self.data_dir.join(SQLITE_FILE_NAME);
                let text = path
                    .to_str()
                    .ok_or_else(|| ConfigError::DataDirNotUtf8(self.data_dir.clone()))?;
                Ok(format!("sqlite://{text}?mode=rwc"))
            }
        }
    }

    /// Where uploaded components are kept.
    pub fn plugins_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }

    /// Where the runtime keeps precompiled artifacts (unless the runtime config names one).
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// Resolves a component path stored in the store (relative to the data directory).
    pub(crate) fn resolve(&self, stored: &str) -> PathBuf {
        let p = Path::new(stored);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.data_dir.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_strictly() {
        ServerConfig::default().validate().unwrap();
        let cfg: ServerConfig = toml::from_str(
            "data-dir = \"/var/lib/weft\"\nmax-body-bytes = 10\n[tenant-limits]\nrequests-per-second = 0.5\nburst = 3\n",
        )
        .unwrap();
        assert_eq!(cfg.max_body_bytes, 10);
        assert_eq!(cfg.tenant_limits.burst, 3);
        assert_eq!(
            cfg.tenant_limits.max_concurrent_calls,
            DEFAULT_MAX_CONCURRENT_CALLS
        );
        assert_eq!(
            cfg.effective_store_url().unwrap(),
            "sqlite:///var/lib/weft/weft.db?mode=rwc"
        );
        assert!(toml::from_str::<ServerConfig>("bogus = 1").is_err());
        assert!(toml::from_str::<ServerConfig>("[tenant-limits]\nbogus = 1").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let mut cfg = ServerConfig::default();
        cfg.tenant_limits.burst = 0;
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::NotPositive("tenant-limits.burst"))
        );
        let mut cfg = ServerConfig::default();
        cfg.tenant_limits.requests_per_second = 0.0;
        assert_eq!(cfg.validate(), Err(ConfigError::RateTooLow));
        let cfg = ServerConfig {
            store_url: Some("mysql://x".into()),
            ..ServerConfig::default()
        };
        assert!(matches!(cfg.validate(), Err(ConfigError::BadStoreUrl(_))));
    }
}
