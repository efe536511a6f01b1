//! Validates the bearer JWTs of the CSP's identity provider (EDC-V style) for Weft's admin
//! and tenant APIs, and says who a token speaks for. No HTTP serving here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weft_auth::{AuthConfig, Authenticator};
//! let cfg = AuthConfig::new("https://idp.example/realms/edcv", "https://idp.example/certs");
//! let auth = Authenticator::new(cfg, reqwest::Client::new())?;
//! let principal = auth.authenticate_header(Some("Bearer eyJ...")).await?;
//! assert!(principal.can_act_for("pc-1"));
//! # Ok(()) }
//! ```

mod authenticator;
mod config;
mod error;
mod jwks;
mod principal;
mod verified;

#[cfg(feature = "testing")]
pub mod testing;

pub use authenticator::{Authenticator, MAX_KID_BYTES, MAX_TOKEN_BYTES, bearer_token};
pub use config::{
    AuthConfig, ClaimMode, ConfigError, DEFAULT_ADMIN_SCOPE, DEFAULT_APPS_SCOPE,
    DEFAULT_JWKS_CACHE_TTL_SECS, DEFAULT_JWKS_FETCH_TIMEOUT_SECS, DEFAULT_JWKS_MIN_REFRESH_SECS,
    DEFAULT_LEEWAY_SECS, EDC_ADMIN_SCOPE, MAX_JWKS_FETCH_TIMEOUT_SECS, MAX_LEEWAY_SECS,
};
pub use error::{AuthError, PUBLIC_MESSAGE};
pub use jwks::{MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use principal::{Principal, Role};
pub use verified::MAX_VERIFIED_TOKENS;
