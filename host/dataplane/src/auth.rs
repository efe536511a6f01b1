//! Control-plane authentication, both ways, per control plane:
//!
//! - `none`: nothing is checked or sent (tests, a sandbox);
//! - `static_token`: the control plane sends a fixed `Authorization` value (the DPS test
//!   kit sends `dummy-authorization`), and Weft sends one on callbacks;
//! - `oauth2_client_credentials` (DPS §Authorization Profiles): Weft obtains tokens from the
//!   registration's `tokenEndpoint` with its client credentials for callbacks, and verifies
//!   the control plane's JWTs against the registration's `jwks`/`jwksUri` with `sub` =
//!   `controlplaneId`, `aud` = Weft's `dataplaneId` for the context, and `exp`.
//!
//! Secrets (static tokens, client secrets, access tokens) are never logged: the types that
//! hold them redact them in `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// Signature algorithms accepted on control-plane JWTs (asymmetric only: a shared-secret
/// algorithm would let anyone holding the JWKS forge tokens).
pub const JWT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Clock skew tolerated on `exp`/`nbf`/`iat`.
pub const JWT_LEEWAY_SECS: u64 = 60;

/// Largest `Authorization` header considered: real tokens are a few KiB.
pub const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;

/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_CACHE_TTL: Duration = Duration::from_secs(300);

/// Minimum interval between two fetches of one JWKS (an unknown `kid` triggers a refresh;
/// this bounds the load an attacker can cause).
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);

/// Largest JWKS or token-endpoint response read: real ones are a few KiB.
pub const MAX_AUTH_RESPONSE_BYTES: usize = 1 << 20;

/// Timeout of one JWKS fetch or token request.
pub const AUTH_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A cached access token is renewed this long before it expires.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// Lifetime assumed for an access token whose response has no `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// How a control plane authenticates: the `authorization` object of a
/// `ControlPlaneRegistrationMessage` (or of a configured control plane).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CpAuthorization {
    /// No authentication (tests, a local sandbox).
    #[serde(rename = "none")]
    None,
    /// A fixed `Authorization` header value, compared exactly.
    #[serde(rename = "static_token", rename_all = "camelCase")]
    StaticToken {
        /// What the control plane sends.
        authorization: String,
        /// What Weft sends on callbacks; defaults to `authorization`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_authorization: Option<String>,
    },
    /// OAuth2 client credentials with JWT verification.
    #[serde(rename = "oauth2_client_credentials", rename_all = "camelCase")]
    OAuth2ClientCredentials {
        token_endpoint: String,
        client_id: String,
        client_secret: String,
        /// Optional `scope` for the token request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// Inline keys of the control plane.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jwks: Option<Value>,
        /// Where the control plane publishes its keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jwks_uri: Option<String>,
    },
}

impl fmt::Debug for CpAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpAuthorization::None => f.write_str("None"),
            CpAuthorization::StaticToken { .. } => f.write_str("StaticToken(<redacted>)"),
            CpAuthorization::OAuth2ClientCredentials {
                token_endpoint,
                client_id,
                jwks_uri,
                ..
            } => f
                .debug_struct("OAuth2ClientCredentials")
                .field("token_endpoint", token_endpoint)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .field("jwks_uri", jwks_uri)
                .finish_non_exhaustive(),
        }
    }
}

impl CpAuthorization {
    /// Parses and checks a registration's `authorization` object (absent: `none`).
    pub fn from_registration(
        value: Option<Value>,
        allow_insecure: bool,
    ) -> Result<CpAuthorization, String> {
        let auth = match value {
            None | Some(Value::Null) => CpAuthorization::None,
            Some(v) => serde_json::from_value::<CpAuthorization>(v).map_err(|e| {
                format!("unsupported or malformed authorization ({e}); supported types: none, static_token, oauth2_client_credentials")
            })?,
        };
        auth.validate()?;
        if let CpAuthorization::OAuth2ClientCredentials {
            token_endpoint,
            jwks_uri,
            ..
        } = &auth
        {
            check_endpoint(token_endpoint, allow_insecure)
                .map_err(|e| format!("tokenEndpoint: {e}"))?;
            if let Some(uri) = jwks_uri {
                check_endpoint(uri, allow_insecure).map_err(|e| format!("jwksUri: {e}"))?;
            }
        }
        Ok(auth)
    }

    /// Checks the fields every variant needs.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            CpAuthorization::None => Ok(()),
            CpAuthorization::StaticToken {
                authorization,
                callback_authorization,
            } => {
                if authorization.is_empty() || http::HeaderValue::from_str(authorization).is_err() {
                    return Err(
                        "static_token: `authorization` must be a non-empty header value".into(),
                    );
                }
                if let Some(cb) = callback_authorization
                    && http::HeaderValue::from_str(cb).is_err()
                {
                    return Err(
                        "static_token: `callbackAuthorization` must be a header value".into(),
                    );
                }
                Ok(())
            }
            CpAuthorization::OAuth2ClientCredentials {
                token_endpoint,
                client_id,
                client_secret,
                jwks,
                jwks_uri,
                ..
            } => {
                if token_endpoint.is_empty() || client_id.is_empty() || client_secret.is_empty() {
                    return Err("oauth2_client_credentials: tokenEndpoint, clientId and clientSecret are required".into());
                }
                match (jwks, jwks_uri) {
                    (Some(_), Some(_)) => Err("oauth2_client_credentials: give jwks or jwksUri, not both".into()),
                    (None, None) => Err(
                        "oauth2_client_credentials: jwks or jwksUri is required (Weft verifies control-plane tokens)".into(),
                    ),
                    (Some(keys), None) => serde_json::from_value::<JwkSet>(keys.clone())
                        .map(|_| ())
                        .map_err(|e| format!("oauth2_client_credentials: jwks is not a JWK set: {e}")),
                    (None, Some(_)) => Ok(()),
                }
            }
        }
    }
}

/// Checks an endpoint URL: absolute http(s) with a host; `http` only when allowed.
pub fn check_endpoint(endpoint: &str, allow_insecure: bool) -> Result<(), String> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|_| format!("{endpoint:?} is not an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err(format!("{endpoint:?} must be https")),
        other => return Err(format!("{endpoint:?} has unsupported scheme {other:?}")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} has no host"));
    }
    Ok(())
}

/// A control plane known for a context: registered through `PUT /controlplanes` or
/// configured.
#[derive(Debug, Clone)]
pub struct KnownControlPlane {
    pub id: String,
    pub endpoint: String,
    pub authorization: CpAuthorization,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Equality of secrets without an early exit on the first differing byte.
fn secret_eq(a: &str, b: &str) -> bool {
    let (x, y) = (sha256(a.as_bytes()), sha256(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// The keys of one JWKS fetch.
struct CachedKeys {
    keys: Arc<JwkSet>,
    fetched: Instant,
}

/// An access token Weft obtained for callbacks.
struct CachedToken {
    value: String,
    expires: Instant,
}

/// Caches of fetched JWKS and obtained access tokens, shared by all requests.
pub(crate) struct AuthCache {
    client: reqwest::Client,
    jwks: Mutex<HashMap<String, CachedKeys>>,
    tokens: Mutex<HashMap<(String, String, String), CachedToken>>,
}

/// Which control plane a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The control plane, when one matched (`None`: open registration).
    pub control_plane: Option<String>,
    /// Whether the identity was proven by a verified JWT (`sub`), not just a shared secret.
    pub verified: bool,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AuthCache {
    pub(crate) fn new(client: reqwest::Client) -> Self {
        AuthCache {
            client,
            jwks: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates a control-plane request for a context. `Err` is the reason for a 401.
    pub(crate) async fn authenticate(
        &self,
        header: Option<&str>,
        control_planes: &[KnownControlPlane],
        audience: &str,
    ) -> Result<Caller, String> {
        if let Some(h) = header
            && h.len() > MAX_AUTHORIZATION_BYTES
        {
            return Err("the Authorization header is too large".into());
        }
        // A shared secret first: cheap, and a JWT never equals one by accident.
        if let Some(h) = header {
            for cp in control_planes {
                if let CpAuthorization::StaticToken { authorization, .. } = &cp.authorization
                    && secret_eq(h, authorization)
                {
                    return Ok(Caller {
                        control_plane: Some(cp.id.clone()),
                        verified: false,
                    });
                }
            }
        }
        let jwt = header
            .and_then(bearer)
            .filter(|t| t.split('.').count() == 3);
        let mut jwt_error = None;
        if let Some(token) = jwt {
            match self.verify_jwt(token, control_planes, audience).await {
                Ok(id) => {
                    return Ok(Caller {
                        control_plane: Some(id),
                        verified: true,
                    });
                }
                Err(e) => jwt_error = Some(e),
            }
        }
        if let Some(cp) = control_planes
            .iter()
            .find(|cp| cp.authorization == CpAuthorization::None)
        {
            return Ok(Caller {
                control_plane: Some(cp.id.clone()),
                verified: false,
            });
        }
        Err(match (header, jwt_error) {
            (_, Some(e)) => format!("invalid control-plane token: {e}"),
            (None, None) => "control-plane credentials are required".to_owned(),
            (Some(_), None) => {
                "control-plane credentials are not valid for this participant context".to_owned()
            }
        })
    }

    /// Verifies a JWT from the control plane named by its `sub`.
    async fn verify_jwt(
        &self,
        token: &str,
        control_planes: &[KnownControlPlane],
        audience: &str,
    ) -> Result<String, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed header: {e}"))?;
        if !JWT_ALGORITHMS.contains(&header.alg) {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
            .map_err(|e| format!("malformed token: {e}"))?;
        let sub = unverified
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or("the token has no `sub`")?
            .to_owned();
        let (jwks, jwks_uri) = control_planes
            .iter()
            .find_map(|cp| match &cp.authorization {
                CpAuthorization::OAuth2ClientCredentials { jwks, jwks_uri, .. } if cp.id == sub => {
                    Some((jwks.clone(), jwks_uri.clone()))
                }
                _ => None,
            })
            .ok_or_else(|| {
                format!("no control plane {sub:?} with oauth2 is known for this context")
            })?;
        let key_set = match (jwks, jwks_uri) {
            (Some(inline), _) => Arc::new(
                serde_json::from_value::<JwkSet>(inline).map_err(|e| format!("bad jwks: {e}"))?,
            ),
            (None, Some(uri)) => self.keys(&uri, header.kid.as_deref()).await?,
            (None, None) => return Err("no keys to verify the token".into()),
        };
        let jwk = select_key(&key_set, header.kid.as_deref(), header.alg)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        validation.sub = Some(sub.clone());
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| format!("{e}"))?;
        Ok(sub)
    }

    /// The keys at `uri`, fetched when missing, stale, or lacking `kid`.
    async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, String> {
        let mut cache = self.jwks.lock().await;
        if let Some(c) = cache.get(uri) {
            let fresh = c.fetched.elapsed() < JWKS_CACHE_TTL;
            let knows = kid.is_none_or(|k| c.keys.find(k).is_some());
            if (fresh && knows) || c.fetched.elapsed() < JWKS_MIN_REFRESH {
                return Ok(c.keys.clone());
            }
        }
        let fetched = self.fetch_jwks(uri).await;
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                cache.insert(
                    uri.to_owned(),
                    CachedKeys {
                        keys: keys.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(keys)
            }
            Err(e) => match cache.get(uri) {
                Some(c) => {
                    tracing::warn!(target: "weft::dataplane", jwks_uri = uri, "JWKS refresh failed, using cached keys: {e}");
                    Ok(c.keys.clone())
                }
                None => Err(format!("could not fetch the control plane's keys: {e}")),
            },
        }
    }

    async fn fetch_jwks(&self, uri: &str) -> Result<JwkSet, String> {
        let response = self
            .client
            .get(uri)
            .timeout(AUTH_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{uri} answered {}", response.status()));
        }
        let body = read_capped(response).await?;
        serde_json::from_slice(&body).map_err(|e| format!("not a JWK set: {e}"))
    }

    /// The `Authorization` value for a callback to this control plane, if any.
    pub(crate) async fn callback_authorization(
        &self,
        tenant: &str,
        cp: &KnownControlPlane,
    ) -> Result<Option<String>, String> {
        match &cp.authorization {
            CpAuthorization::None => Ok(None),
            CpAuthorization::StaticToken {
                authorization,
                callback_authorization,
            } => Ok(Some(
                callback_authorization
                    .clone()
                    .unwrap_or_else(|| authorization.clone()),
            )),
            CpAuthorization::OAuth2ClientCredentials {
                token_endpoint,
                client_id,
                client_secret,
                scope,
                ..
            } => {
                let key = (tenant.to_owned(), cp.id.clone(), client_id.clone());
                let mut tokens = self.tokens.lock().await;
                if let Some(t) = tokens.get(&key)
                    && t.expires > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                ];
                if let Some(s) = scope {
                    form.push(("scope", s.as_str()));
                }
                let body = encode_form(&form);
                let response = self
                    .client
                    .post(token_endpoint)
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
                    .timeout(AUTH_FETCH_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| format!("token endpoint: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("token endpoint answered {}", response.status()));
                }
                let parsed: TokenResponse = serde_json::from_slice(&read_capped(response).await?)
                    .map_err(|e| format!("token endpoint answer: {e}"))?;
                let lifetime = parsed
                    .expires_in
                    .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
                let expires = Instant::now() + lifetime.saturating_sub(TOKEN_REFRESH_MARGIN);
                let header = format!("Bearer {}", parsed.access_token);
                tokens.insert(
                    key,
                    CachedToken {
                        value: parsed.access_token,
                        expires,
                    },
                );
                Ok(Some(header))
            }
        }
    }

    /// Forgets the access token of a control plane (it was refused).
    pub(crate) async fn forget_token(&self, tenant: &str, cp: &KnownControlPlane) {
        if let CpAuthorization::OAuth2ClientCredentials { client_id, .. } = &cp.authorization {
            self.tokens
                .lock()
                .await
                .remove(&(tenant.to_owned(), cp.id.clone(), client_id.clone()));
        }
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Reads a response body up to [`MAX_AUTH_RESPONSE_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_AUTH_RESPONSE_BYTES {
            return Err(format!(
                "response is larger than {MAX_AUTH_RESPONSE_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The token of a `Bearer` header (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The key for `kid` (or the only signing key when the token names none) usable with `alg`.
fn select_key<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Result<&'a Jwk, String> {
    let usable = |k: &&Jwk| {
        !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption))
            && k.common
                .key_algorithm
                .is_none_or(|ka| Algorithm::from_str(&format!("{ka:?}")).is_ok_and(|a| a == alg))
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid))
            .find(usable)
            .ok_or_else(|| format!("no usable key {kid:?} in the control plane's JWKS")),
        None => {
            let mut candidates = set.keys.iter().filter(usable);
            match (candidates.next(), candidates.next()) {
                (Some(k), None) => Ok(k),
                (None, _) => Err("the control plane's JWKS has no usable key".into()),
                (Some(_), Some(_)) => {
                    Err("the token has no `kid` and the JWKS has several keys".into())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registrations_parse_and_are_checked() {
        assert_eq!(
            CpAuthorization::from_registration(None, false).unwrap(),
            CpAuthorization::None
        );
        let s = CpAuthorization::from_registration(
            Some(json!({"type": "static_token", "authorization": "x"})),
            false,
        )
        .unwrap();
        assert!(matches!(s, CpAuthorization::StaticToken { .. }));
        assert!(!format!("{s:?}").contains('x'), "secrets are redacted");
        assert!(
            CpAuthorization::from_registration(Some(json!({"type": "kerberos"})), false).is_err()
        );
        let no_keys = json!({"type": "oauth2_client_credentials", "tokenEndpoint": "https://idp/t", "clientId": "c", "clientSecret": "s"});
        assert!(CpAuthorization::from_registration(Some(no_keys), false).is_err());
        let insecure = json!({"type": "oauth2_client_credentials", "tokenEndpoint": "http://idp/t", "clientId": "c",
            "clientSecret": "s", "jwksUri": "https://idp/k"});
        assert!(CpAuthorization::from_registration(Some(insecure.clone()), false).is_err());
        assert!(CpAuthorization::from_registration(Some(insecure), true).is_ok());
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(check_endpoint("https://cp.example/api", false).is_ok());
        assert!(check_endpoint("http://cp.example/api", false).is_err());
        assert!(check_endpoint("http://127.0.0.1:1/api", true).is_ok());
        assert!(check_endpoint("ftp://cp.example", true).is_err());
        assert!(check_endpoint("/relative", true).is_err());
    }

    #[test]
    fn bearer_and_secret_compare() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert!(secret_eq("a", "a"));
        assert!(!secret_eq("a", "b"));
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            encode_form(&[("grant_type", "b c"), ("x", "&=")]),
            "grant_type=b+c&x=%26%3D"
        );
    }
}
