//! Tenant tokens for the Management API: OAuth2 client credentials (one client per tenant)
//! or RFC 8693 token exchange (Weft's one client, `resource` = the participant context).
//!
//! Tokens are cached per (context, scopes) until shortly before they expire. Each cache slot
//! has an async lock held while its token is fetched, so concurrent callers needing the same
//! token wait for one identity-provider request instead of each sending their own. A failure
//! is remembered for a moment so a struggling identity provider is not hammered. Every wait
//! is bounded by the caller's deadline: an identity provider that hangs gives `unavailable`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::time::Instant;
use weft_runtime::GuestError;

use crate::config::{ClientAuth, ConfigError, Grant, IdentityConfig, Secret};

/// Largest token response read: token responses are a few KiB.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 << 10;

/// Extra attempts after a transient identity-provider failure (network, 5xx, 429).
pub const IDP_RETRIES: u32 = 1;

/// Pause before retrying a token request.
pub const IDP_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Lifetime assumed for a token that states none (no `expires_in`, no readable `exp`):
/// short, so an unknown token is not trusted for long.
pub const UNKNOWN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// RFC 8693 grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 token type of a JWT subject token.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A bearer token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// The token, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

/// A cache slot: one (context, scopes) pair, or Weft's own subject token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SlotKey {
    Tenant { ctx: String, scope: String },
    Subject,
}

#[derive(Default)]
struct Slot {
    token: Option<(AccessToken, Instant)>,
    failure: Option<(Instant, GuestError)>,
}

/// Why one token request failed; transient failures are retried.
enum Failure {
    Transient(GuestError),
    Permanent(GuestError),
}

impl Failure {
    fn into_guest(self) -> GuestError {
        match self {
            Failure::Transient(e) | Failure::Permanent(e) => e,
        }
    }
}

struct Inner {
    http: reqwest::Client,
    config: IdentityConfig,
    slots: Mutex<HashMap<SlotKey, Arc<tokio::sync::Mutex<Slot>>>>,
    requests: AtomicU64,
}

/// Obtains and caches tenant tokens. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.inner.config.token_url)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The `exp` claim of a JWT, read without verifying it (only to time the refresh).
fn jwt_exp(token: &str) -> Option<f64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_f64()
}

/// When to stop using a token fetched at `fetched`: the earlier of `expires_in` and the JWT's
/// `exp`, minus the refresh margin (at most a quarter of the lifetime).
fn refresh_at(fetched: Instant, token: &str, expires_in: Option<u64>, margin: Duration) -> Instant {
    let by_exp = jwt_exp(token).map(|exp| Duration::from_secs_f64((exp - unix_now()).max(0.0)));
    let by_expires_in = expires_in.map(Duration::from_secs);
    let lifetime = match (by_exp, by_expires_in) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => UNKNOWN_TOKEN_LIFETIME,
    };
    fetched + lifetime.saturating_sub(margin.min(lifetime / 4))
}

fn unavailable(message: impl Into<String>) -> GuestError {
    GuestError::Unavailable(message.into())
}

/// Percent-encodes for `application/x-www-form-urlencoded` (RFC 6749 §2.3.1 Basic auth).
fn form_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl TokenProvider {
    /// A provider for `config`; configuration errors are found by
    /// [`crate::ManagementConfig::validate`].
    pub fn new(config: IdentityConfig) -> Result<TokenProvider, ConfigError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| {
                ConfigError::Invalid(format!("HTTP client for the identity provider: {e}"))
            })?;
        Ok(TokenProvider {
            inner: Arc::new(Inner {
                http,
                config,
                slots: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
            }),
        })
    }

    /// How many token requests were sent to the identity provider.
    pub fn idp_requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    fn slot(&self, key: SlotKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// A token for `ctx` with `scopes`, from the cache or the identity provider, before
    /// `deadline`.
    pub async fn token(
        &self,
        ctx: &str,
        scopes: &[String],
        deadline: Instant,
    ) -> Result<AccessToken, GuestError> {
        let scope = scopes.join(" ");
        let key = SlotKey::Tenant {
            ctx: ctx.to_owned(),
            scope: scope.clone(),
        };
        self.cached(key, deadline, || self.fetch_tenant(ctx, &scope, deadline))
            .await
    }

    /// Drops the cached token for (ctx, scopes) if it is `rejected` (the control plane
    /// answered 401), so the next [`TokenProvider::token`] fetches a new one. A newer token
    /// another caller already fetched is kept.
    pub async fn invalidate(&self, ctx: &str, scopes: &[String], rejected: &AccessToken) {
        let key = SlotKey::Tenant {
            ctx: ctx.to_owned(),
            scope: scopes.join(" "),
        };
        self.invalidate_slot(key, rejected).await;
    }

    async fn invalidate_slot(&self, key: SlotKey, rejected: &AccessToken) {
        let slot = self.slot(key);
        // Waits for a fetch in progress (its token is new, so it is kept).
        let mut slot = slot.lock().await;
        if slot.token.as_ref().is_some_and(|(t, _)| t == rejected) {
            slot.token = None;
        }
    }

    async fn cached<F, Fut>(
        &self,
        key: SlotKey,
        deadline: Instant,
        fetch: F,
    ) -> Result<AccessToken, GuestError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(AccessToken, Instant), GuestError>>,
    {
        let slot = self.slot(key);
        let hold = Duration::from_millis(self.inner.config.failure_hold_ms);
        let work = async {
            let mut slot = slot.lock().await;
            let now = Instant::now();
            if let Some((token, until)) = &slot.token
                && now < *until
            {
                return Ok(token.clone());
            }
            if let Some((at, error)) = &slot.failure
                && now.duration_since(*at) < hold
            {
                return Err(error.clone());
            }
            match fetch().await {
                Ok((token, until)) => {
                    slot.token = Some((token.clone(), until));
                    slot.failure = None;
                    Ok(token)
                }
                Err(error) => {
                    slot.token = None;
                    slot.failure = Some((Instant::now(), error.clone()));
                    Err(error)
                }
            }
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(
                "the identity provider did not issue a token before the deadline",
            )),
        }
    }

    async fn fetch_tenant(
        &self,
        ctx: &str,
        scope: &str,
        deadline: Instant,
    ) -> Result<(AccessToken, Instant), GuestError> {
        match &self.inner.config.grant {
            Grant::ClientCredentials {
                clients,
                secret_dir,
            } => {
                let (client_id, secret) = tenant_credentials(clients, secret_dir.as_deref(), ctx)?;
                let form = vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("scope", scope.to_owned()),
                ];
                self.request(
                    &client_id,
                    &secret,
                    form,
                    deadline,
                    &format!("participant context {ctx}"),
                )
                .await
            }
            Grant::TokenExchange {
                client_id,
                client_secret,
                client_secret_file,
                subject_token_file,
                audience,
            } => {
                let secret =
                    client_secret_of(client_secret.as_ref(), client_secret_file.as_deref())?;
                let subject = match subject_token_file {
                    Some(path) => AccessToken(Arc::from(read_subject_token(path)?.as_str())),
                    None => {
                        self.cached(SlotKey::Subject, deadline, || {
                            let form = vec![("grant_type", "client_credentials".to_owned())];
                            self.request(client_id, &secret, form, deadline, "Weft's own client")
                        })
                        .await?
                    }
                };
                let mut form = vec![
                    ("grant_type", TOKEN_EXCHANGE_GRANT.to_owned()),
                    ("subject_token", subject.secret().to_owned()),
                    ("subject_token_type", TOKEN_TYPE_JWT.to_owned()),
                    ("resource", ctx.to_owned()),
                    ("scope", scope.to_owned()),
                ];
                if let Some(audience) = audience {
                    form.push(("audience", audience.clone()));
                }
                let result = self
                    .request(
                        client_id,
                        &secret,
                        form,
                        deadline,
                        &format!("participant context {ctx}"),
                    )
                    .await;
                if result.is_err() && subject_token_file.is_none() {
                    // The subject token may be what was refused (expired, revoked).
                    self.invalidate_slot(SlotKey::Subject, &subject).await;
                }
                result
            }
        }
    }

    /// One token request with retries of transient failures, before `deadline`.
    async fn request(
        &self,
        client_id: &str,
        secret: &Secret,
        form: Vec<(&'static str, String)>,
        deadline: Instant,
        whom: &str,
    ) -> Result<(AccessToken, Instant), GuestError> {
        let mut attempt = 0;
        loop {
            match self
                .request_once(client_id, secret, &form, deadline, whom)
                .await
            {
                Ok(token) => return Ok(token),
                Err(Failure::Transient(e))
                    if attempt < IDP_RETRIES && Instant::now() + IDP_RETRY_PAUSE < deadline =>
                {
                    attempt += 1;
                    tracing::debug!("token request for {whom} failed, retrying: {e:?}");
                    tokio::time::sleep(IDP_RETRY_PAUSE).await;
                }
                Err(failure) => return Err(failure.into_guest()),
            }
        }
    }

    async fn request_once(
        &self,
        client_id: &str,
        secret: &Secret,
        form: &[(&'static str, String)],
        deadline: Instant,
        whom: &str,
    ) -> Result<(AccessToken, Instant), Failure> {
        let config = &self.inner.config;
        let mut fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut builder = self.inner.http.post(&config.token_url);
        match config.client_auth {
            ClientAuth::ClientSecretPost => {
                fields.push(("client_id", client_id));
                fields.push(("client_secret", secret.expose()));
            }
            ClientAuth::ClientSecretBasic => {
                builder =
                    builder.basic_auth(form_encode(client_id), Some(form_encode(secret.expose())));
            }
        }
        let builder = builder.form(&fields).header("accept", "application/json");
        let fetched = Instant::now();
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            let response = builder.send().await?;
            let status = response.status();
            let body = read_capped(response, MAX_TOKEN_RESPONSE_BYTES).await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => {
                tracing::warn!("identity provider did not answer for {whom} before the deadline");
                return Err(Failure::Permanent(unavailable(
                    "the identity provider did not answer before the deadline",
                )));
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    "identity provider unreachable for {whom}: {}",
                    e.without_url()
                );
                return Err(Failure::Transient(unavailable(
                    "the identity provider cannot be reached",
                )));
            }
            Ok(Ok(answer)) => answer,
        };
        let json: Option<serde_json::Value> =
            body.as_deref().and_then(|b| serde_json::from_slice(b).ok());
        if status.is_success() {
            let token = json
                .as_ref()
                .and_then(|j| j.get("access_token"))
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty());
            let Some(token) = token else {
                tracing::warn!(
                    "identity provider answered {status} without an access_token for {whom}"
                );
                return Err(Failure::Permanent(unavailable(
                    "the identity provider answered without an access token",
                )));
            };
            let expires_in = json
                .as_ref()
                .and_then(|j| j.get("expires_in"))
                .and_then(|e| e.as_u64());
            let margin = Duration::from_secs(config.refresh_margin_secs);
            let until = refresh_at(fetched, token, expires_in, margin);
            return Ok((AccessToken(Arc::from(token)), until));
        }
        let code = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str())
            .unwrap_or("no error code")
            .chars()
            .take(64)
            .collect::<String>();
        tracing::warn!("identity provider refused a token for {whom}: {status} {code}");
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Failure::Transient(unavailable(format!(
                "the identity provider is unavailable ({})",
                status.as_u16()
            ))))
        } else {
            Err(Failure::Permanent(GuestError::AccessDenied(format!(
                "the identity provider refused a token for this tenant ({code})"
            ))))
        }
    }
}

/// Reads a response body, or `None` when it is larger than `cap`.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn client_secret_of(secret: Option<&Secret>, file: Option<&Path>) -> Result<Secret, GuestError> {
    match (secret, file) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(path)) => Secret::from_file(path).map_err(|e| {
            tracing::error!("{e}");
            unavailable("Weft's identity-provider credentials cannot be read")
        }),
        (None, None) => Err(unavailable("Weft has no client secret configured")),
    }
}

fn read_subject_token(path: &Path) -> Result<String, GuestError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        tracing::error!("cannot read the subject token {}: {e}", path.display());
        unavailable("Weft's subject token cannot be read")
    })?;
    Ok(text.trim().to_owned())
}

/// Whether `ctx` can name a directory entry under the secret directory.
fn safe_file_name(ctx: &str) -> bool {
    !ctx.is_empty()
        && ctx != "."
        && ctx != ".."
        && ctx
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

/// The client id and secret of a tenant: configured inline, else read from the secret dir.
fn tenant_credentials(
    clients: &[crate::config::TenantClient],
    secret_dir: Option<&Path>,
    ctx: &str,
) -> Result<(String, Secret), GuestError> {
    if let Some(client) = clients.iter().find(|c| c.participant_context == ctx) {
        let secret = client_secret_of(
            client.client_secret.as_ref(),
            client.client_secret_file.as_deref(),
        )?;
        return Ok((client.client_id.clone(), secret));
    }
    let missing = || unavailable("no Management API credentials are configured for this tenant");
    let dir = secret_dir.ok_or_else(missing)?;
    if !safe_file_name(ctx) {
        return Err(missing());
    }
    let tenant_dir: PathBuf = dir.join(ctx);
    let secret_path = tenant_dir.join("client-secret");
    if !secret_path.is_file() {
        return Err(missing());
    }
    let secret = Secret::from_file(&secret_path).map_err(|e| {
        tracing::error!("{e}");
        missing()
    })?;
    let id_path = tenant_dir.join("client-id");
    let client_id = if id_path.is_file() {
        Secret::from_file(&id_path)
            .map_err(|e| {
                tracing::error!("{e}");
                missing()
            })?
            .expose()
            .to_owned()
    } else {
        ctx.to_owned()
    };
    Ok((client_id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: f64) -> String {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "none"})),
            enc(serde_json::json!({"exp": exp}))
        )
    }

    #[test]
    fn refresh_time_uses_the_earlier_expiry_and_a_bounded_margin() {
        let now = Instant::now();
        let margin = Duration::from_secs(30);
        // expires_in 3600, exp in 100 s: exp wins, minus 25 s (a quarter).
        let t = jwt(unix_now() + 100.0);
        let until = refresh_at(now, &t, Some(3600), margin);
        let left = until.duration_since(now).as_secs_f64();
        assert!((70.0..=76.0).contains(&left), "{left}");
        // A two-second token is used for 1.5 s, not zero.
        let until = refresh_at(now, "opaque", Some(2), margin);
        assert_eq!(until.duration_since(now), Duration::from_millis(1500));
        // Nothing known: a short assumed lifetime.
        let until = refresh_at(now, "opaque", None, margin);
        assert!(until.duration_since(now) <= UNKNOWN_TOKEN_LIFETIME);
        // Already expired: immediately stale.
        let until = refresh_at(now, &jwt(unix_now() - 10.0), Some(3600), margin);
        assert_eq!(until, now);
    }

    #[test]
    fn secret_dir_names_cannot_escape() {
        assert!(safe_file_name("0123abcd"));
        assert!(safe_file_name("did:web:x"));
        for bad in ["", ".", "..", "a/b", "a\\b", "a b"] {
            assert!(!safe_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn credentials_from_the_secret_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pc1")).unwrap();
        std::fs::write(dir.path().join("pc1/client-secret"), "s1\n").unwrap();
        let (id, secret) = tenant_credentials(&[], Some(dir.path()), "pc1").unwrap();
        assert_eq!((id.as_str(), secret.expose()), ("pc1", "s1"));
        std::fs::write(dir.path().join("pc1/client-id"), "client-1").unwrap();
        let (id, _) = tenant_credentials(&[], Some(dir.path()), "pc1").unwrap();
        assert_eq!(id, "client-1");
        assert!(matches!(
            tenant_credentials(&[], Some(dir.path()), "pc2"),
            Err(GuestError::Unavailable(_))
        ));
        assert!(tenant_credentials(&[], Some(dir.path()), "..").is_err());
        assert!(tenant_credentials(&[], None, "pc1").is_err());
    }

    #[test]
    fn debug_hides_tokens() {
        let t = AccessToken(Arc::from("eyJ.secret.sig"));
        assert_eq!(format!("{t:?}"), "AccessToken(***)");
    }
}
