//! The identity provider's signing keys: fetched from the JWKS URL, cached, refreshed on an
//! unknown `kid` at most once per minimum interval, with concurrent refreshes coalesced.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use tokio::time::Instant;

use crate::error::AuthError;

/// Largest JWKS document accepted: a real one is a few KiB; more is an error or an attack.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most keys taken from one JWKS: IdPs publish a handful (current, next, previous).
pub const MAX_JWKS_KEYS: usize = 64;

/// One usable verification key from the JWKS.
pub(crate) struct VerifyKey {
    pub(crate) key: DecodingKey,
    family: AlgorithmFamily,
    /// The JWK's `alg`, if it names one: then only that algorithm may use the key.
    alg: Option<Algorithm>,
    curve: Option<EllipticCurve>,
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    fn accepts(&self, alg: Algorithm) -> bool {
        if self.family != alg.family() || self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match (alg, &self.curve) {
            (Algorithm::ES256, Some(EllipticCurve::P256)) => true,
            (Algorithm::ES384, Some(EllipticCurve::P384)) => true,
            (Algorithm::EdDSA, Some(EllipticCurve::Ed25519)) => true,
            (Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA, _) => false,
            _ => true,
        }
    }
}

/// The keys of one successful fetch, by `kid`.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyKey>>>,
}

impl KeySet {
    fn lookup(&self, kid: &str, alg: Algorithm) -> Lookup {
        match self.by_kid.get(kid) {
            None => Lookup::UnknownKid,
            Some(keys) => match keys.iter().find(|k| k.accepts(alg)) {
                Some(k) => Lookup::Found(Arc::clone(k)),
                None => Lookup::Mismatch,
            },
        }
    }
}

enum Lookup {
    Found(Arc<VerifyKey>),
    UnknownKid,
    Mismatch,
}

#[derive(Default)]
struct CacheState {
    /// Keys from the last successful fetch.
    keys: Option<Arc<KeySet>>,
    /// When `keys` were fetched.
    fetched_at: Option<Instant>,
    /// When the last fetch was attempted (successful or not).
    last_attempt: Option<Instant>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
    /// Bumped by every fetch attempt; lets waiters see that a fetch happened meanwhile.
    generation: u64,
}

/// JWKS cache shared by all requests.
pub(crate) struct JwksCache {
    client: reqwest::Client,
    url: reqwest::Url,
    ttl: Duration,
    min_refresh: Duration,
    fetch_timeout: Duration,
    state: RwLock<CacheState>,
    /// Held while a fetch is in flight, so concurrent refreshes coalesce into one.
    refresh: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn new(
        client: reqwest::Client,
        url: reqwest::Url,
        ttl: Duration,
        min_refresh: Duration,
        fetch_timeout: Duration,
    ) -> Self {
        Self {
            client,
            url,
            ttl,
            min_refresh,
            fetch_timeout,
            state: RwLock::new(CacheState::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn read_state<R>(&self, f: impl FnOnce(&CacheState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Finds the key for `kid` that can verify `alg`, fetching the JWKS when the cache is
    /// cold, stale, or does not know `kid` (subject to the minimum refresh interval).
    pub(crate) async fn key_for(
        &self,
        kid: &str,
        alg: Algorithm,
    ) -> Result<Arc<VerifyKey>, AuthError> {
        let (fresh, cached, seen_generation) = self.read_state(|st| {
            let fresh = st.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
            (fresh, st.keys.clone(), st.generation)
        });
        if let Some(keys) = &cached {
            match keys.lookup(kid, alg) {
                Lookup::Found(k) if fresh => return Ok(k),
                Lookup::Mismatch => return Err(mismatch(kid, alg)),
                _ => {}
            }
        }

        // Stale cache that still knows the kid: if a refresh is already running, do not
        // wait for it; the stale key is good enough for this request.
        let guard = match self.refresh.try_lock() {
            Ok(g) => g,
            Err(_) => {
                if let Some(keys) = &cached
                    && let Lookup::Found(k) = keys.lookup(kid, alg)
                {
                    return Ok(k);
                }
                self.refresh.lock().await
            }
        };

        let may_fetch = self.read_state(|st| {
            // Someone else fetched while we waited: use that result, never fetch twice.
            st.generation == seen_generation
                && st
                    .last_attempt
                    .is_none_or(|t| t.elapsed() >= self.min_refresh)
        });
        if may_fetch {
            let result = self.fetch().await;
            let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
            st.generation += 1;
            st.last_attempt = Some(Instant::now());
            match result {
                Ok(set) => {
                    tracing::debug!(url = %self.url, keys = set.by_kid.len(), "fetched JWKS");
                    st.keys = Some(Arc::new(set));
                    st.fetched_at = st.last_attempt;
                    st.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed");
                    st.last_error = Some(e);
                }
            }
        }
        drop(guard);

        self.read_state(|st| match &st.keys {
            Some(keys) => match keys.lookup(kid, alg) {
                Lookup::Found(k) => Ok(k),
                Lookup::Mismatch => Err(mismatch(kid, alg)),
                Lookup::UnknownKid => Err(AuthError::UnknownKid(kid.to_owned())),
            },
            None => Err(AuthError::JwksUnavailable(
                st.last_error
                    .clone()
                    .unwrap_or_else(|| "no JWKS fetched yet".to_owned()),
            )),
        })
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut resp = self
            .client
            .get(self.url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .timeout(self.fetch_timeout)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("IdP answered {}", resp.status()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading body: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

fn mismatch(kid: &str, alg: Algorithm) -> AuthError {
    AuthError::KeyAlgorithmMismatch {
        kid: kid.to_owned(),
        alg: format!("{alg:?}"),
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS document, keeping only public signature keys with a `kid`. Keys this host
/// cannot use (encryption keys, symmetric keys, unknown types) are skipped, not fatal.
fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
    let mut set = KeySet::default();
    let mut taken = 0usize;
    for value in raw.keys {
        if taken >= MAX_JWKS_KEYS {
            tracing::warn!(
                max = MAX_JWKS_KEYS,
                "JWKS has too many keys; ignoring the rest"
            );
            break;
        }
        match usable_key(value) {
            Ok((kid, key)) => {
                set.by_kid.entry(kid).or_default().push(Arc::new(key));
                taken += 1;
            }
            Err(why) => tracing::debug!(why, "skipping JWKS entry"),
        }
    }
    Ok(set)
}

fn usable_key(value: serde_json::Value) -> Result<(String, VerifyKey), String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("unsupported JWK: {e}"))?;
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or("JWK without kid")?;
    if let Some(u) = &jwk.common.public_key_use
        && *u != PublicKeyUse::Signature
    {
        return Err(format!("JWK {kid} is not a signature key"));
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err(format!("JWK {kid} key_ops exclude verify"));
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => Some(
            Algorithm::from_str(&ka.to_string())
                .map_err(|_| format!("JWK {kid} is for {ka}, not a signature algorithm"))?,
        ),
    };
    let (family, curve) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
        AlgorithmParameters::EllipticCurve(p) => (AlgorithmFamily::Ec, Some(p.curve.clone())),
        AlgorithmParameters::OctetKeyPair(p) => (AlgorithmFamily::Ed, Some(p.curve.clone())),
        // A symmetric key in a public JWKS is never used: HMAC with a published secret
        // would let anyone mint tokens.
        AlgorithmParameters::OctetKey(_) => return Err(format!("JWK {kid} is symmetric")),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("JWK {kid}: {e}"))?;
    Ok((
        kid,
        VerifyKey {
            key,
            family,
            alg,
            curve,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_symmetric_encryption_and_kidless_keys() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
            {"kty": "weird", "kid": "w"},
            {"kty": "RSA", "kid": "ok", "use": "sig", "alg": "RS256", "n": "AQAB", "e": "AQAB"}
        ]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.by_kid.keys().collect::<Vec<_>>(), vec!["ok"]);
        assert!(matches!(
            set.lookup("ok", Algorithm::RS256),
            Lookup::Found(_)
        ));
        // The JWK names RS256: no other algorithm may use it.
        assert!(matches!(
            set.lookup("ok", Algorithm::PS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            set.lookup("h", Algorithm::RS256),
            Lookup::UnknownKid
        ));
    }

    #[test]
    fn rejects_non_json() {
        assert!(parse_jwks(b"<html>").is_err());
        assert!(parse_jwks(b"{}").is_err());
    }
}
