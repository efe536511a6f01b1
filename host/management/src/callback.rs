//! Authentication of the event callback endpoint: each tenant's callback URL carries
//! `HMAC-SHA256(deployment key, ctx)`, so a URL (or a leaked token) is good for one tenant
//! only, every replica can check it without shared state, and no per-tenant secret is stored.
//!
//! A callback is only a hint: the hub re-reads the process from the control plane with the
//! tenant's own token before it emits anything, so even a forged callback cannot invent an
//! event.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::client::segment;
use crate::config::{ConfigError, ManagementConfig, Secret};

/// Shortest accepted callback key: HMAC-SHA256 keys below 128 bits weaken it.
pub(crate) const MIN_CALLBACK_KEY_BYTES: usize = 16;

/// Domain separation of the callback tokens from any other use of the key.
const TOKEN_CONTEXT: &[u8] = b"weft-events/v1\0";

type HmacSha256 = Hmac<Sha256>;

/// The deployment's callback key and Weft's public URL.
#[derive(Clone)]
pub(crate) struct CallbackAuth {
    /// The keyed MAC, cloned for each token (the key itself is not kept elsewhere).
    keyed: HmacSha256,
    /// `{public-url}/events/`.
    prefix: String,
}

impl std::fmt::Debug for CallbackAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackAuth")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl CallbackAuth {
    /// `None` when callbacks are not configured (no key or no public URL).
    pub(crate) fn from_config(
        config: &ManagementConfig,
    ) -> Result<Option<CallbackAuth>, ConfigError> {
        let events = &config.events;
        let key = match (&events.callback_secret, &events.callback_secret_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "events: give callback-secret or callback-secret-file, not both".into(),
                ));
            }
            (Some(key), None) => key.clone(),
            (None, Some(path)) => Secret::from_file(path)?,
            (None, None) => return Ok(None),
        };
        if key.expose().len() < MIN_CALLBACK_KEY_BYTES {
            return Err(ConfigError::Invalid(format!(
                "events.callback-secret must be at least {MIN_CALLBACK_KEY_BYTES} bytes"
            )));
        }
        let Some(public) = &config.public_url else {
            return Err(ConfigError::Invalid(
                "events.callback-secret needs public-url (where the control plane reaches Weft)"
                    .into(),
            ));
        };
        let keyed = <HmacSha256 as Mac>::new_from_slice(key.expose().as_bytes()).map_err(|_| {
            ConfigError::Invalid("events.callback-secret is not a usable key".into())
        })?;
        Ok(Some(CallbackAuth {
            keyed,
            prefix: format!("{}/events/", public.trim_end_matches('/')),
        }))
    }

    fn mac(&self, ctx: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(TOKEN_CONTEXT);
        mac.update(ctx.as_bytes());
        mac
    }

    /// The callback token of `ctx`.
    pub(crate) fn token(&self, ctx: &str) -> String {
        hex::encode(self.mac(ctx).finalize().into_bytes())
    }

    /// Whether `presented` is `ctx`'s token (constant-time comparison).
    pub(crate) fn verify(&self, ctx: &str, presented: &str) -> bool {
        match hex::decode(presented) {
            Ok(bytes) => self.mac(ctx).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    /// `{public-url}/events/` (how Weft's own callback addresses are recognised).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The callback URL of `ctx`.
    pub(crate) fn url(&self, ctx: &str) -> String {
        format!("{}{}?token={}", self.prefix, segment(ctx), self.token(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Grant, IdentityConfig};

    fn config(secret: Option<&str>) -> ManagementConfig {
        let mut c = ManagementConfig::new(
            "http://cp/api/mgmt",
            IdentityConfig {
                token_url: "http://idp/token".into(),
                grant: Grant::ClientCredentials {
                    clients: vec![],
                    secret_dir: None,
                },
                client_auth: Default::default(),
                timeout_ms: 1000,
                refresh_margin_secs: 0,
                failure_hold_ms: 0,
            },
        );
        c.public_url = Some("https://weft.example/".into());
        c.events.callback_secret = secret.map(Secret::new);
        c
    }

    #[test]
    fn tokens_are_per_tenant() {
        let auth = CallbackAuth::from_config(&config(Some("0123456789abcdef0123")))
            .unwrap()
            .unwrap();
        let a = auth.token("pc-a");
        assert!(auth.verify("pc-a", &a));
        assert!(!auth.verify("pc-b", &a));
        assert!(!auth.verify("pc-a", "zz"));
        assert!(!auth.verify("pc-a", ""));
        assert_eq!(
            auth.url("pc-a"),
            format!("https://weft.example/events/pc-a?token={a}")
        );
        let other = CallbackAuth::from_config(&config(Some("another-key-of-20-bytes")))
            .unwrap()
            .unwrap();
        assert!(!other.verify("pc-a", &a));
    }

    #[test]
    fn configuration_is_checked() {
        assert!(CallbackAuth::from_config(&config(None)).unwrap().is_none());
        assert!(CallbackAuth::from_config(&config(Some("short"))).is_err());
        let mut c = config(Some("0123456789abcdef0123"));
        c.public_url = None;
        assert!(CallbackAuth::from_config(&c).is_err());
    }
}
