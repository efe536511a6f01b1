//! Validates a bearer JWT against the IdP's JWKS and turns its claims into a [`Principal`].

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{AuthConfig, ClaimMode, ConfigError};
use crate::error::AuthError;
use crate::jwks::JwksCache;
use crate::principal::{Principal, Role};
use crate::verified::{VerifiedTokens, token_key};

/// Largest token accepted: Keycloak tokens are 1–3 KiB; anything near this is abuse.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest `kid` accepted (it ends up in logs and as a cache key).
pub const MAX_KID_BYTES: usize = 256;
/// Longest claim value quoted in an error (errors end up in logs).
const MAX_QUOTED_BYTES: usize = 64;

/// Validates bearer tokens. Cheap to clone; clones share the JWKS cache.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    algorithms: Vec<Algorithm>,
    jwks: JwksCache,
    verified: VerifiedTokens,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Checks `config` and builds an authenticator that fetches keys with `client`.
    /// No network access happens here; the JWKS is fetched on first use.
    pub fn new(config: AuthConfig, client: reqwest::Client) -> Result<Self, ConfigError> {
        let (algorithms, url) = config.validate()?;
        // Pin the RustCrypto backend: jsonwebtoken panics at verify time when feature
        // unification enables two backends and none was installed. An earlier install (by
        // us or the embedder) wins, which is fine.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        );
        let jwks = JwksCache::new(
            client,
            url,
            Duration::from_secs(config.jwks_cache_ttl_secs),
            Duration::from_secs(config.jwks_min_refresh_secs),
            Duration::from_secs(config.jwks_fetch_timeout_secs),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                algorithms,
                jwks,
                verified: VerifiedTokens::default(),
            }),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The scope that grants Weft's admin API.
    pub fn admin_scope(&self) -> &str {
        &self.inner.config.admin_scope
    }

    /// The scope that grants the tenant app API.
    pub fn apps_scope(&self) -> &str {
        &self.inner.config.apps_scope
    }

    /// Validates an `Authorization` header value (`Bearer <jwt>`).
    pub async fn authenticate_header(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, AuthError> {
        self.authenticate(bearer_token(authorization)?).await
    }

    /// Validates a compact JWT and returns who it speaks for.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let cfg = &self.inner.config;
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge {
                max: MAX_TOKEN_BYTES,
            });
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, _payload, signature] = parts.as_slice() else {
            return Err(AuthError::Malformed(format!(
                "expected 3 dot-separated parts, got {}",
                parts.len()
            )));
        };
        let header = parse_header(header_b64)?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.inner.algorithms.contains(a))
            .ok_or_else(|| AuthError::AlgorithmNotAllowed(quote(&header.alg)))?;
        if header.crit.is_some() {
            return Err(AuthError::UnsupportedCritical);
        }
        let kid = match header.kid {
            None => return Err(AuthError::MissingKid),
            Some(Value::String(k)) if k.is_empty() => return Err(AuthError::MissingKid),
            Some(Value::String(k)) if k.len() <= MAX_KID_BYTES => k,
            Some(_) => return Err(AuthError::Malformed("kid is not a short string".to_owned())),
        };
        if signature.is_empty() {
            return Err(AuthError::Malformed("empty signature".to_owned()));
        }

        let key = self.inner.jwks.key_for(&kid, alg).await?;
        let cache_key = token_key(token);
        if let Some((principal, verified_by)) = self.inner.verified.get(&cache_key) {
            if Arc::ptr_eq(&verified_by, &key) {
                return Ok(principal);
            }
            // The JWKS was fetched again since: verify anew against the current key.
            self.inner.verified.remove(&cache_key);
        }

        let mut validation = Validation::new(alg);
        validation.leeway = cfg.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[cfg.issuer.as_str()]);
        match &cfg.audience {
            Some(aud) => {
                validation.set_audience(&[aud.as_str()]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            }
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iss"]);
            }
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e, &kid, alg))?;
        let exp = number(&data.claims.exp, "exp")?;
        let principal = self.principal(data.claims)?;
        if let Some(exp) = exp.filter(|e| e.is_finite() && *e >= 0.0) {
            // `exp` passed validation, so it is a real time; floor it to stay on the safe side.
            let valid_until = (exp as u64).saturating_add(cfg.leeway_secs);
            self.inner
                .verified
                .insert(cache_key, principal.clone(), valid_until, key);
        }
        Ok(principal)
    }

    fn principal(&self, claims: RawClaims) -> Result<Principal, AuthError> {
        let cfg = &self.inner.config;
        if let (Some(iat), Some(exp)) = (number(&claims.iat, "iat")?, number(&claims.exp, "exp")?)
            && iat > exp
        {
            return Err(invalid("iat", "issued after it expires"));
        }
        let scopes = scopes(claims.scope.as_ref().or(claims.scp.as_ref()))?;
        let sub = string(&claims.sub, "sub")?;
        let token_id = string(&claims.jti, "jti")?;
        match cfg.claim_mode {
            ClaimMode::ParticipantContext => {
                let role_claim = string(&claims.role, "role")?
                    .ok_or_else(|| AuthError::MissingClaim("role".to_owned()))?;
                let role = Role::from_claim(&role_claim)
                    .ok_or_else(|| AuthError::UnknownRole(quote(&role_claim)))?;
                let pc = string(&claims.participant_context_id, "participant_context_id")?;
                if role == Role::Participant && pc.is_none() {
                    return Err(AuthError::MissingClaim("participant_context_id".to_owned()));
                }
                let subject = sub
                    .or(string(&claims.azp, "azp")?)
                    .or(string(&claims.client_id, "client_id")?)
                    .or_else(|| pc.clone())
                    .ok_or_else(|| AuthError::MissingClaim("sub".to_owned()))?;
                Ok(Principal {
                    subject,
                    participant_context_id: pc,
                    role,
                    scopes,
                    token_id,
                })
            }
            ClaimMode::Subject => {
                let subject = sub.ok_or_else(|| AuthError::MissingClaim("sub".to_owned()))?;
                let is_admin = scopes.contains(&cfg.admin_scope)
                    || cfg.extra_admin_scopes.iter().any(|s| scopes.contains(s));
                let is_provisioner = cfg
                    .provisioner_scope
                    .as_ref()
                    .is_some_and(|p| scopes.contains(p));
                let (role, pc) = if is_admin {
                    (Role::Admin, None)
                } else if is_provisioner {
                    (Role::Provisioner, None)
                } else {
                    (Role::Participant, Some(subject.clone()))
                };
                Ok(Principal {
                    subject,
                    participant_context_id: pc,
                    role,
                    scopes,
                    token_id,
                })
            }
        }
    }
}

/// Extracts the token from an `Authorization` header value. The scheme is matched
/// case-insensitively (RFC 7235).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(AuthError::MissingToken)?;
    if value.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

/// The header fields this host looks at, read before any key is touched.
struct RawHeader {
    alg: String,
    kid: Option<Value>,
    crit: Option<Value>,
}

fn parse_header(b64: &str) -> Result<RawHeader, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| AuthError::Malformed(format!("header is not base64url: {e}")))?;
    let Value::Object(mut map) = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| AuthError::Malformed(format!("header is not JSON: {e}")))?
    else {
        return Err(AuthError::Malformed(
            "header is not a JSON object".to_owned(),
        ));
    };
    let alg = match map.remove("alg") {
        Some(Value::String(a)) => a,
        _ => return Err(AuthError::Malformed("header has no alg string".to_owned())),
    };
    Ok(RawHeader {
        alg,
        kid: map.remove("kid"),
        crit: map.remove("crit"),
    })
}

/// The claims this host reads; types are checked by hand for precise errors.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    jti: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    role: Option<Value>,
    #[serde(default)]
    participant_context_id: Option<Value>,
    #[serde(default)]
    azp: Option<Value>,
    #[serde(default)]
    client_id: Option<Value>,
}

fn invalid(claim: &str, reason: &str) -> AuthError {
    AuthError::InvalidClaim {
        claim: claim.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A string claim: absent or null is `None`; empty or another type is an error.
fn string(v: &Option<Value>, claim: &str) -> Result<Option<String>, AuthError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(invalid(claim, "empty string")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(claim, "not a string")),
    }
}

fn number(v: &Option<Value>, claim: &str) -> Result<Option<f64>, AuthError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(invalid(claim, "not a number")),
    }
}

/// `scope` as a space-separated string (OAuth 2) or an array of strings.
fn scopes(v: Option<&Value>) -> Result<BTreeSet<String>, AuthError> {
    match v {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(invalid("scope", "array holds a non-string or empty value")),
            })
            .collect(),
        Some(_) => Err(invalid("scope", "neither a string nor an array")),
    }
}

/// Shortens attacker-controlled text before it goes into an error (and from there a log).
fn quote(s: &str) -> String {
    if s.len() <= MAX_QUOTED_BYTES {
        return s.to_owned();
    }
    let mut end = MAX_QUOTED_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn map_jwt_error(e: jsonwebtoken::errors::Error, kid: &str, alg: Algorithm) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        ErrorKind::InvalidClaimFormat(c) => invalid(c, "wrong type"),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::KeyAlgorithmMismatch {
            kid: kid.to_owned(),
            alg: format!("{alg:?}"),
        },
        _ => AuthError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("  ")), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("Bearer ")), Err(AuthError::MissingToken));
        assert_eq!(
            bearer_token(Some("Basic dXNlcjpwYXNz")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(bearer_token(Some("abc")), Err(AuthError::NotBearer));
    }

    #[test]
    fn scope_forms() {
        let s = scopes(Some(&serde_json::json!("a  b\tc"))).unwrap();
        assert_eq!(s.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        let s = scopes(Some(&serde_json::json!(["x", "y"]))).unwrap();
        assert_eq!(s.len(), 2);
        assert!(scopes(Some(&serde_json::json!(7))).is_err());
        assert!(scopes(Some(&serde_json::json!([1]))).is_err());
        assert!(scopes(None).unwrap().is_empty());
    }

    #[test]
    fn quote_truncates_on_char_boundary() {
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.len() <= MAX_QUOTED_BYTES + '…'.len_utf8());
        assert_eq!(quote("short"), "short");
    }
}
