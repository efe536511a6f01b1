//! Test identity provider for this crate's and other crates' tests: ES256 and RS256 signing
//! keys, a JWKS served on 127.0.0.1:0 with a fetch counter, token minting and bad-token
//! fixtures. Behind the `testing` feature; never used in production.
//!
//! Helpers here panic on internal failure: they only run inside tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::rand_core::OsRng;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

use crate::{AuthConfig, Authenticator, ClaimMode};

/// Default issuer of a [`TestIssuer`].
pub const TEST_ISSUER: &str = "https://idp.weft.test/realms/weft";
/// Lifetime of minted tokens.
pub const TEST_TOKEN_LIFETIME_SECS: u64 = 300;
/// How far in the past/future the expired / not-yet-valid fixtures lie: far beyond any
/// allowed leeway (`MAX_LEEWAY_SECS`).
pub const TEST_CLOCK_SKEW_SECS: u64 = 3600;
/// Size of the test RSA key.
const RSA_BITS: usize = 2048;

/// Fetch counter of a served JWKS.
pub type FetchCounter = Arc<AtomicUsize>;

/// A signing key of the test IdP.
pub struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    public_jwk: Value,
    /// SPKI PEM of the public key (what an HS256 key-confusion attacker would use).
    public_pem: String,
}

impl TestKey {
    fn es256(kid: String) -> Self {
        let secret = p256::SecretKey::random(&mut OsRng);
        let der = secret.to_pkcs8_der().expect("pkcs8 der");
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let public_pem = secret
            .public_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("public pem");
        Self::finish(kid, Algorithm::ES256, encoding, public_pem)
    }

    fn rs256(kid: String) -> Self {
        let private = shared_rsa_key();
        let der = private.to_pkcs1_der().expect("pkcs1 der");
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public pem");
        Self::finish(kid, Algorithm::RS256, encoding, public_pem)
    }

    fn finish(kid: String, alg: Algorithm, encoding: EncodingKey, public_pem: String) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("jwk");
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let public_jwk = serde_json::to_value(&jwk).expect("jwk json");
        Self {
            kid,
            alg,
            encoding,
            public_jwk,
            public_pem,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK (with `kid`, `use`, `alg`).
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The public key as SPKI PEM.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Signs `claims` as they are (no defaults added) with `header`.
    pub fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("sign")
    }

    /// Signs an arbitrary header object and raw payload bytes with this key's algorithm:
    /// for fixtures whose header or payload no well-behaved encoder would produce.
    pub fn sign_compact(&self, header: &Value, payload: &[u8]) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg).expect("sign");
        format!("{message}.{signature}")
    }

    fn header(&self) -> Header {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        h
    }
}

/// RSA key generation is slow; one key per test process is enough.
fn shared_rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).expect("rsa keygen")
    })
}

fn new_kid(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Default)]
struct Shared {
    keys: Mutex<HashMap<String, Arc<TestKey>>>,
    /// Kids in the served JWKS, in order.
    published: Mutex<Vec<String>>,
    /// When set, the JWKS endpoint answers 503 (an IdP outage).
    failing: AtomicBool,
}

impl Shared {
    fn jwks(&self) -> Value {
        let keys = self.keys.lock().expect("keys lock");
        let published = self.published.lock().expect("published lock");
        let list: Vec<Value> = published
            .iter()
            .filter_map(|kid| keys.get(kid))
            .map(|k| k.public_jwk.clone())
            .collect();
        json!({ "keys": list })
    }
}

/// A fake identity provider: an ES256 and an RS256 key (both published), token minting,
/// and a JWKS endpoint.
pub struct TestIssuer {
    issuer: String,
    es256: Arc<TestKey>,
    rs256: Arc<TestKey>,
    shared: Arc<Shared>,
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// An issuer named [`TEST_ISSUER`].
    pub fn new() -> Self {
        Self::with_issuer(TEST_ISSUER)
    }

    pub fn with_issuer(issuer: &str) -> Self {
        let es256 = Arc::new(TestKey::es256(new_kid("es256")));
        let rs256 = Arc::new(TestKey::rs256(new_kid("rs256")));
        let shared = Arc::new(Shared::default());
        {
            let mut keys = shared.keys.lock().expect("keys lock");
            keys.insert(es256.kid.clone(), Arc::clone(&es256));
            keys.insert(rs256.kid.clone(), Arc::clone(&rs256));
            let mut published = shared.published.lock().expect("published lock");
            published.push(es256.kid.clone());
            published.push(rs256.kid.clone());
        }
        Self {
            issuer: issuer.to_owned(),
            es256,
            rs256,
            shared,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn es256_kid(&self) -> &str {
        &self.es256.kid
    }

    pub fn rs256_kid(&self) -> &str {
        &self.rs256.kid
    }

    pub fn es256_key(&self) -> &TestKey {
        &self.es256
    }

    pub fn rs256_key(&self) -> &TestKey {
        &self.rs256
    }

    /// The JWKS document as currently published.
    pub fn jwks_json(&self) -> Value {
        self.shared.jwks()
    }

    /// Serves the JWKS on `http://127.0.0.1:<port>/jwks` (a background task on the current
    /// Tokio runtime) and returns its URL and a counter of fetches. The document follows
    /// later [`Self::rotate`] / [`Self::publish_key`] calls.
    pub async fn serve_jwks(&self) -> (String, FetchCounter) {
        use axum::extract::State;
        use axum::http::StatusCode;
        use axum::response::{IntoResponse, Response};

        type AppState = (Arc<Shared>, FetchCounter);
        async fn jwks(State((shared, count)): State<AppState>) -> Response {
            count.fetch_add(1, Ordering::SeqCst);
            if shared.failing.load(Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            axum::Json(shared.jwks()).into_response()
        }

        let counter: FetchCounter = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(jwks))
            .with_state((Arc::clone(&self.shared), Arc::clone(&counter)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/jwks"), counter)
    }

    /// Makes the served JWKS endpoint fail with 503 (or recover).
    pub fn set_jwks_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// A config for this issuer: ES256 and RS256 allowed, participant-context claim mode,
    /// no minimum refresh interval (tests see rotations at once).
    pub fn config(&self, jwks_url: &str) -> AuthConfig {
        let mut cfg = AuthConfig::new(self.issuer.clone(), jwks_url);
        cfg.algorithms = vec!["ES256".to_owned(), "RS256".to_owned()];
        cfg.claim_mode = ClaimMode::ParticipantContext;
        cfg.jwks_min_refresh_secs = 0;
        cfg
    }

    /// Serves the JWKS and builds an [`Authenticator`] for it from [`Self::config`], after
    /// `tweak` adjusts the config.
    pub async fn authenticator_with(
        &self,
        tweak: impl FnOnce(&mut AuthConfig),
    ) -> (Authenticator, FetchCounter) {
        let (url, counter) = self.serve_jwks().await;
        let mut cfg = self.config(&url);
        tweak(&mut cfg);
        let auth = Authenticator::new(cfg, reqwest::Client::new()).expect("valid test config");
        (auth, counter)
    }

    /// [`Self::authenticator_with`] without changes.
    pub async fn authenticator(&self) -> (Authenticator, FetchCounter) {
        self.authenticator_with(|_| {}).await
    }

    /// Adds a new ES256 key to the published JWKS and returns its kid.
    pub fn rotate(&self) -> String {
        let kid = self.new_key();
        self.publish_key(&kid);
        kid
    }

    /// Creates an ES256 key that is not yet published; sign with [`Self::mint_with_kid`].
    pub fn new_key(&self) -> String {
        let key = Arc::new(TestKey::es256(new_kid("es256")));
        let kid = key.kid.clone();
        self.shared
            .keys
            .lock()
            .expect("keys lock")
            .insert(kid.clone(), key);
        kid
    }

    /// Adds a key made by [`Self::new_key`] to the JWKS.
    pub fn publish_key(&self, kid: &str) {
        let mut published = self.shared.published.lock().expect("published lock");
        if !published.iter().any(|k| k == kid) {
            published.push(kid.to_owned());
        }
    }

    /// Removes a key from the JWKS (it can still sign).
    pub fn unpublish_key(&self, kid: &str) {
        self.shared
            .published
            .lock()
            .expect("published lock")
            .retain(|k| k != kid);
    }

    fn key(&self, kid: &str) -> Arc<TestKey> {
        Arc::clone(
            self.shared
                .keys
                .lock()
                .expect("keys lock")
                .get(kid)
                .expect("known test kid"),
        )
    }

    /// Fills in `iss`, `iat`, `exp` (+5 min) and `jti` when absent; removes keys whose
    /// value is `null` (so `{"exp": null}` yields a token without `exp`).
    pub fn complete_claims(&self, claims: Value) -> Value {
        let Value::Object(mut map) = claims else {
            panic!("claims must be a JSON object");
        };
        let now = now_secs();
        map.entry("iss").or_insert_with(|| json!(self.issuer));
        map.entry("iat").or_insert_with(|| json!(now));
        map.entry("exp")
            .or_insert_with(|| json!(now + TEST_TOKEN_LIFETIME_SECS));
        map.entry("jti")
            .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
        map.retain(|_, v| !v.is_null());
        Value::Object(map)
    }

    /// A valid ES256 token with `claims` (completed by [`Self::complete_claims`]).
    pub fn mint(&self, claims: Value) -> String {
        self.es256
            .sign(&self.es256.header(), &self.complete_claims(claims))
    }

    /// A valid RS256 token.
    pub fn mint_rs256(&self, claims: Value) -> String {
        self.rs256
            .sign(&self.rs256.header(), &self.complete_claims(claims))
    }

    /// A token signed by the key `kid` (made by [`Self::new_key`] or [`Self::rotate`]).
    pub fn mint_with_kid(&self, kid: &str, claims: Value) -> String {
        let key = self.key(kid);
        key.sign(&key.header(), &self.complete_claims(claims))
    }

    /// A token with `alg: none` and an empty signature.
    pub fn token_alg_none(&self, claims: Value) -> String {
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.es256.kid});
        let payload = self.complete_claims(claims);
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    /// The key-confusion attack: HS256 with the RS256 public key's PEM bytes as HMAC secret,
    /// and the RS256 key's kid.
    pub fn token_hs256_with_public_key(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.rs256.kid.clone());
        let key = EncodingKey::from_secret(self.rs256.public_pem.as_bytes());
        jsonwebtoken::encode(&header, &self.complete_claims(claims), &key).expect("sign")
    }

    /// Signed by a key whose kid is not in the JWKS.
    pub fn token_unknown_kid(&self, claims: Value) -> String {
        let key = TestKey::es256(new_kid("unknown"));
        key.sign(&key.header(), &self.complete_claims(claims))
    }

    /// Carries the published ES256 kid but is signed by another key.
    pub fn token_bad_signature(&self, claims: Value) -> String {
        let other = TestKey::es256(self.es256.kid.clone());
        other.sign(&other.header(), &self.complete_claims(claims))
    }

    /// A valid signature, but the header has no kid.
    pub fn token_without_kid(&self, claims: Value) -> String {
        self.es256.sign(
            &Header::new(Algorithm::ES256),
            &self.complete_claims(claims),
        )
    }

    /// Expired an hour ago.
    pub fn token_expired(&self, claims: Value) -> String {
        let now = now_secs();
        let mut claims = claims;
        claims["iat"] = json!(now - 2 * TEST_CLOCK_SKEW_SECS);
        claims["exp"] = json!(now - TEST_CLOCK_SKEW_SECS);
        self.mint(claims)
    }

    /// `nbf` an hour from now.
    pub fn token_not_yet_valid(&self, claims: Value) -> String {
        let mut claims = claims;
        claims["nbf"] = json!(now_secs() + TEST_CLOCK_SKEW_SECS);
        self.mint(claims)
    }

    /// Validly signed, but `iss` is another issuer.
    pub fn token_wrong_issuer(&self, claims: Value) -> String {
        let mut claims = claims;
        claims["iss"] = json!(format!("{}-evil", self.issuer));
        self.mint(claims)
    }
}

/// Claims of a v4alpha participant token: `participant_context_id`, `role=participant`,
/// `scope`, and `sub` = the Keycloak client (same as the context, as CFM sets it up).
pub fn participant_claims(participant_context_id: &str, scopes: &[&str]) -> Value {
    json!({
        "sub": participant_context_id,
        "participant_context_id": participant_context_id,
        "role": "participant",
        "scope": scopes.join(" "),
    })
}

/// Claims of a v4alpha admin token (role admin, scope `weft:admin`).
pub fn admin_claims() -> Value {
    json!({ "sub": "admin", "role": "admin", "scope": crate::config::DEFAULT_ADMIN_SCOPE })
}

/// Claims of a current-EDC token: `sub` plus `scope`.
pub fn subject_claims(sub: &str, scopes: &[&str]) -> Value {
    json!({ "sub": sub, "scope": scopes.join(" ") })
}
