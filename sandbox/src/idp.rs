//! Identity provider stand-in: ES256/RS256 keys, JWKS, OIDC discovery, `client_credentials` and
//! RFC 8693 token exchange, in the claim shapes EDC-V validates (edcv.md §2, §8).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};

use crate::config::{ClaimMode, ClientSpec, Role};

/// RSA modulus size: the smallest size common JWT verifiers accept.
const RSA_KEY_BITS: usize = 2048;

/// Clock leeway when verifying tokens: none, so tests with short-lived tokens see expiry
/// exactly (EDC's `exp` rule has no leeway either).
const VERIFY_LEEWAY_SECS: u64 = 0;

/// RFC 8693 grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type of a JWT.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 token type of an access token.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/token";
/// Path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of the OIDC discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Errors of the identity provider's programmatic API.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("unknown client `{0}`")]
    UnknownClient(String),
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token is malformed: {0}")]
    Malformed(String),
    #[error("token header has no `kid`")]
    MissingKid,
    #[error("unknown `kid` `{0}`")]
    UnknownKid(String),
    #[error("token is expired")]
    Expired,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("`iat` is after `exp`")]
    IssuedAfterExpiry,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Signature algorithm of a minted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlgorithm {
    #[default]
    Es256,
    Rs256,
}

/// Construction parameters of an [`Idp`].
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// Base URL the IdP is served under (endpoint URLs in discovery derive from it).
    pub base_url: String,
    /// `iss` of issued tokens (default: `base_url`).
    pub issuer: Option<String>,
    pub claim_mode: ClaimMode,
    pub token_lifetime: Duration,
    /// `aud` of issued tokens, if any.
    pub audience: Option<String>,
}

/// What to put into a token minted by [`Idp::mint`].
#[derive(Debug, Clone, Default)]
pub struct MintSpec {
    /// The participant context (`participant_context_id`, or `sub` in subject mode).
    pub participant_context: Option<String>,
    /// `sub` when no participant context is given (subject mode), or always (participant-context
    /// mode, where the control plane ignores it).
    pub subject: Option<String>,
    /// `role` (participant-context mode only).
    pub role: Option<Role>,
    pub scopes: Vec<String>,
    /// Lifetime; `None` uses the configured one.
    pub lifetime: Option<Duration>,
    /// Claim mode; `None` uses the configured one.
    pub claim_mode: Option<ClaimMode>,
    pub algorithm: SigningAlgorithm,
    /// `client_id` claim.
    pub client_id: Option<String>,
}

impl MintSpec {
    /// A tenant token for `participant_context` with `scopes`.
    pub fn participant(participant_context: impl Into<String>, scopes: &[&str]) -> Self {
        Self {
            participant_context: Some(participant_context.into()),
            role: Some(Role::Participant),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// A service token (admin/provisioner) with `subject` and `scopes`.
    pub fn service(subject: impl Into<String>, role: Role, scopes: &[&str]) -> Self {
        Self {
            subject: Some(subject.into()),
            role: Some(role),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// Claims of a token that passed [`Idp::verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims(pub Map<String, Value>);

impl VerifiedClaims {
    fn str_claim(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
    pub fn sub(&self) -> Option<&str> {
        self.str_claim("sub")
    }
    pub fn role(&self) -> Option<&str> {
        self.str_claim("role")
    }
    pub fn participant_context_id(&self) -> Option<&str> {
        self.str_claim("participant_context_id")
    }
    pub fn client_id(&self) -> Option<&str> {
        self.str_claim("client_id")
    }
    /// The space-separated `scope` claim as a set.
    pub fn scopes(&self) -> BTreeSet<String> {
        split_scopes(self.str_claim("scope").unwrap_or_default())
    }
}

fn split_scopes(s: &str) -> BTreeSet<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

struct IdpInner {
    base_url: String,
    issuer: String,
    claim_mode: ClaimMode,
    audience: Option<String>,
    lifetime: RwLock<Duration>,
    es256: SigningKey,
    rs256: SigningKey,
    clients: RwLock<HashMap<String, ClientSpec>>,
    available: AtomicBool,
}

/// The identity provider. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Idp {
    inner: Arc<IdpInner>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.inner.issuer)
            .field("claim_mode", &self.inner.claim_mode)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn generate_es256(kid: String) -> Result<SigningKey, IdpError> {
    let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| IdpError::KeyGeneration(e.to_string()))?;
    let point = secret.public_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(IdpError::KeyGeneration(
            "P-256 point has no coordinates".into(),
        ));
    };
    let (x, y) = (b64url(x), b64url(y));
    let decoding = DecodingKey::from_ec_components(&x, &y)?;
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
    Ok(SigningKey {
        kid,
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        decoding,
        jwk,
    })
}

fn generate_rs256(kid: String) -> Result<SigningKey, IdpError> {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_KEY_BITS)
        .map_err(|e| IdpError::KeyGeneration(e.to_string()))?;
    let der = private
        .to_pkcs1_der()
        .map_err(|e| IdpError::KeyGeneration(e.to_string()))?;
    let n = b64url(&private.n().to_bytes_be());
    let e = b64url(&private.e().to_bytes_be());
    let decoding = DecodingKey::from_rsa_components(&n, &e)?;
    let jwk = json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "use": "sig", "alg": "RS256"});
    Ok(SigningKey {
        kid,
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        decoding,
        jwk,
    })
}

impl Idp {
    /// Generates fresh ES256 and RS256 keys (with random `kid`s).
    pub fn new(config: IdpConfig) -> Result<Self, IdpError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let issuer = config.issuer.unwrap_or_else(|| base_url.clone());
        Ok(Self {
            inner: Arc::new(IdpInner {
                base_url,
                issuer,
                claim_mode: config.claim_mode,
                audience: config.audience,
                lifetime: RwLock::new(config.token_lifetime),
                es256: generate_es256(format!("es256-{}", uuid::Uuid::new_v4().simple()))?,
                rs256: generate_rs256(format!("rs256-{}", uuid::Uuid::new_v4().simple()))?,
                clients: RwLock::new(HashMap::new()),
                available: AtomicBool::new(true),
            }),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.inner.base_url)
    }
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.inner.base_url)
    }
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.inner.base_url)
    }
    pub fn claim_mode(&self) -> ClaimMode {
        self.inner.claim_mode
    }
    /// `kid` of the ES256 key.
    pub fn es256_kid(&self) -> &str {
        &self.inner.es256.kid
    }
    /// `kid` of the RS256 key.
    pub fn rs256_kid(&self) -> &str {
        &self.inner.rs256.kid
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.inner.es256.jwk.clone(), self.inner.rs256.jwk.clone()]})
    }

    /// The OIDC discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.inner.issuer,
            "token_endpoint": self.token_url(),
            "jwks_uri": self.jwks_url(),
            "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE_GRANT],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        })
    }

    /// Register (or replace) a client.
    pub fn register_client(&self, client: ClientSpec) {
        if let Ok(mut clients) = self.inner.clients.write() {
            clients.insert(client.client_id.clone(), client);
        }
    }

    /// Remove a client; tokens already issued stay valid until `exp`.
    pub fn remove_client(&self, client_id: &str) -> bool {
        self.inner
            .clients
            .write()
            .map(|mut c| c.remove(client_id).is_some())
            .unwrap_or(false)
    }

    fn client(&self, client_id: &str) -> Option<ClientSpec> {
        self.inner
            .clients
            .read()
            .ok()
            .and_then(|c| c.get(client_id).cloned())
    }

    /// Change the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        if let Ok(mut l) = self.inner.lifetime.write() {
            *l = lifetime;
        }
    }

    pub fn token_lifetime(&self) -> Duration {
        self.inner
            .lifetime
            .read()
            .map(|l| *l)
            .unwrap_or(Duration::from_secs(0))
    }

    /// Simulate an outage: while unavailable every endpoint answers 503.
    pub fn set_available(&self, available: bool) {
        self.inner.available.store(available, Ordering::SeqCst);
    }

    pub fn is_available(&self) -> bool {
        self.inner.available.load(Ordering::SeqCst)
    }

    /// The standard claims for `spec` (`iss`, `iat`, `exp`, `jti`, `scope` plus the identity
    /// claims of the claim mode), without signing them.
    pub fn claims_for(&self, spec: &MintSpec) -> Map<String, Value> {
        let now = now_secs();
        let lifetime = spec.lifetime.unwrap_or_else(|| self.token_lifetime());
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.inner.issuer));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + lifetime.as_secs()));
        claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        claims.insert("scope".into(), json!(spec.scopes.join(" ")));
        if let Some(aud) = &self.inner.audience {
            claims.insert("aud".into(), json!(aud));
        }
        if let Some(client_id) = &spec.client_id {
            claims.insert("client_id".into(), json!(client_id));
        }
        match spec.claim_mode.unwrap_or(self.inner.claim_mode) {
            ClaimMode::Subject => {
                let sub = spec
                    .participant_context
                    .clone()
                    .or_else(|| spec.subject.clone())
                    .or_else(|| spec.client_id.clone());
                if let Some(sub) = sub {
                    claims.insert("sub".into(), json!(sub));
                }
            }
            ClaimMode::ParticipantContext => {
                if let Some(sub) = spec.subject.clone().or_else(|| spec.client_id.clone()) {
                    claims.insert("sub".into(), json!(sub));
                }
                if let Some(role) = spec.role {
                    claims.insert("role".into(), json!(role.as_str()));
                }
                if let Some(pc) = &spec.participant_context {
                    claims.insert("participant_context_id".into(), json!(pc));
                }
            }
        }
        claims
    }

    /// Mint a signed token for `spec` (fixtures; the HTTP endpoint uses the same path).
    pub fn mint(&self, spec: &MintSpec) -> Result<String, IdpError> {
        let claims = Value::Object(self.claims_for(spec));
        self.sign(&claims, spec.algorithm, None)
    }

    /// Mint a token for a registered client, as `client_credentials` would.
    pub fn mint_for_client(&self, client_id: &str) -> Result<String, IdpError> {
        let client = self
            .client(client_id)
            .ok_or_else(|| IdpError::UnknownClient(client_id.into()))?;
        self.mint(&spec_for_client(&client, client.scopes.clone()))
    }

    /// Sign arbitrary claims; `kid` overrides the header's `kid` (bad-token fixtures: expired,
    /// wrong `iss`, unknown `kid`).
    pub fn sign(
        &self,
        claims: &Value,
        algorithm: SigningAlgorithm,
        kid: Option<&str>,
    ) -> Result<String, IdpError> {
        let key = match algorithm {
            SigningAlgorithm::Es256 => &self.inner.es256,
            SigningAlgorithm::Rs256 => &self.inner.rs256,
        };
        let mut header = Header::new(key.alg);
        header.typ = Some("JWT".into());
        header.kid = Some(kid.unwrap_or(&key.kid).to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// Verify a token as EDC does: `kid` lookup, signature, `iss`, `exp` required, `iat` not
    /// after `exp`, `aud` not checked.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let kid = header.kid.ok_or(VerifyError::MissingKid)?;
        let key = [&self.inner.es256, &self.inner.rs256]
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| VerifyError::UnknownKid(kid.clone()))?;
        if header.alg != key.alg {
            return Err(VerifyError::Invalid(
                "algorithm does not match the key".into(),
            ));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = VERIFY_LEEWAY_SECS;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
                _ => VerifyError::Invalid(e.to_string()),
            })?;
        let claims = data.claims;
        if let (Some(iat), Some(exp)) = (
            claims.get("iat").and_then(Value::as_u64),
            claims.get("exp").and_then(Value::as_u64),
        ) && iat > exp
        {
            return Err(VerifyError::IssuedAfterExpiry);
        }
        Ok(VerifiedClaims(claims))
    }

    /// The IdP's HTTP API: token endpoint, JWKS, discovery.
    pub fn router(&self) -> Router {
        Router::new()
            .route(TOKEN_PATH, post(token_endpoint))
            .route(JWKS_PATH, get(jwks_endpoint))
            .route(DISCOVERY_PATH, get(discovery_endpoint))
            .layer(middleware::from_fn_with_state(self.clone(), availability))
            .with_state(self.clone())
    }
}

fn spec_for_client(client: &ClientSpec, scopes: Vec<String>) -> MintSpec {
    MintSpec {
        participant_context: client.participant_context.clone(),
        subject: client
            .subject
            .clone()
            .or_else(|| Some(client.client_id.clone())),
        role: Some(client.role),
        scopes,
        lifetime: None,
        claim_mode: None,
        algorithm: SigningAlgorithm::Es256,
        client_id: Some(client.client_id.clone()),
    }
}

async fn availability(State(idp): State<Idp>, request: Request, next: Next) -> Response {
    if idp.is_available() {
        next.run(request).await
    } else {
        oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the identity provider is unavailable",
        )
    }
}

async fn jwks_endpoint(State(idp): State<Idp>) -> Json<Value> {
    Json(idp.jwks())
}

async fn discovery_endpoint(State(idp): State<Idp>) -> Json<Value> {
    Json(idp.discovery())
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sandbox\""),
        );
    }
    response
}

/// Client credentials from HTTP Basic or the form body (RFC 6749 §2.3.1).
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = STANDARD.decode(basic.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    let id = form.get("client_id")?;
    Some((
        id.clone(),
        form.get("client_secret").cloned().unwrap_or_default(),
    ))
}

#[allow(clippy::result_large_err)]
fn authenticate(
    idp: &Idp,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Option<ClientSpec>, Response> {
    let Some((id, secret)) = client_credentials(headers, form) else {
        return Ok(None);
    };
    match idp.client(&id) {
        Some(client) if client.client_secret == secret => Ok(Some(client)),
        _ => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )),
    }
}

/// Requested scopes must be a subset of the client's; no `scope` means all of them.
#[allow(clippy::result_large_err)]
fn granted_scopes(
    client: &ClientSpec,
    requested: Option<&String>,
) -> Result<Vec<String>, Response> {
    let allowed: BTreeSet<String> = client.scopes.iter().cloned().collect();
    match requested.map(|s| split_scopes(s)).filter(|s| !s.is_empty()) {
        None => Ok(client.scopes.clone()),
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !allowed.contains(*s)) {
                Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("scope `{extra}` is not granted to this client"),
                ))
            } else {
                Ok(requested.into_iter().collect())
            }
        }
    }
}

fn token_response(idp: &Idp, spec: &MintSpec, exchange: bool) -> Response {
    match idp.mint(spec) {
        Ok(token) => {
            let lifetime = spec
                .lifetime
                .unwrap_or_else(|| idp.token_lifetime())
                .as_secs();
            let mut body = json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": spec.scopes.join(" "),
            });
            if exchange {
                body["issued_token_type"] = json!(TOKEN_TYPE_ACCESS_TOKEN);
            }
            let mut response = Json(body).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "minting a token failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
    }
}

async fn token_endpoint(
    State(idp): State<Idp>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &rejection.body_text(),
            );
        }
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => client_credentials_grant(&idp, &headers, &form),
        Some(TOKEN_EXCHANGE_GRANT) => token_exchange_grant(&idp, &headers, &form),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant type `{other}` is not supported"),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`grant_type` is missing",
        ),
    }
}

fn client_credentials_grant(
    idp: &Idp,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let client = match authenticate(idp, headers, form) {
        Ok(Some(client)) => client,
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client credentials are missing",
            );
        }
        Err(response) => return response,
    };
    let scopes = match granted_scopes(&client, form.get("scope")) {
        Ok(scopes) => scopes,
        Err(response) => return response,
    };
    token_response(idp, &spec_for_client(&client, scopes), false)
}

fn token_exchange_grant(
    idp: &Idp,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let authenticated = match authenticate(idp, headers, form) {
        Ok(client) => client,
        Err(response) => return response,
    };
    let Some(subject_token) = form.get("subject_token").filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`subject_token` is missing",
        );
    };
    if let Some(kind) = form.get("subject_token_type")
        && kind != TOKEN_TYPE_JWT
        && kind != TOKEN_TYPE_ACCESS_TOKEN
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("unsupported `subject_token_type` `{kind}`"),
        );
    }
    let Some(resource) = form.get("resource").filter(|r| !r.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`resource` is missing",
        );
    };
    let subject = match idp.verify(subject_token) {
        Ok(claims) => claims,
        Err(error) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                &format!("subject token rejected: {error}"),
            );
        }
    };
    // The acting party: the authenticated client, else the client the subject token was issued to.
    let actor = match authenticated {
        Some(client) => Some(client),
        None => subject.client_id().and_then(|id| idp.client(id)),
    };
    let Some(actor) = actor.filter(|c| c.token_exchange) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use token exchange",
        );
    };
    if !actor.exchange_resources.is_empty() && !actor.exchange_resources.contains(resource) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            &format!("resource `{resource}` is not allowed for this client"),
        );
    }
    let scopes = match granted_scopes(&actor, form.get("scope")) {
        Ok(scopes) => scopes,
        Err(response) => return response,
    };
    let spec = MintSpec {
        participant_context: Some(resource.clone()),
        subject: Some(resource.clone()),
        role: Some(Role::Participant),
        scopes,
        lifetime: None,
        claim_mode: None,
        algorithm: SigningAlgorithm::Es256,
        client_id: Some(actor.client_id.clone()),
    };
    token_response(idp, &spec, true)
}
