//! Tokens already verified, so a client that sends the same bearer token on every request
//! pays for one signature check, not one per request (as Envoy's `jwt_authn` cache does).
//!
//! An entry is keyed by the SHA-256 of the whole compact token (signature included), so
//! only the very same bytes hit it. It is used only while the token is still within its
//! `exp` (plus the configured leeway) and while the JWKS still hands out the very key that
//! verified it: after a JWKS refresh the token is verified again, so a key the IdP removed
//! stops working as soon as the keys are fetched anew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::jwks::VerifyKey;
use crate::principal::Principal;

/// Most verified tokens remembered. A token is 1–3 KiB but an entry holds only its hash
/// and the principal (a few hundred bytes), so the cache stays around a megabyte; past
/// this, expired entries are dropped first and the cache is emptied if that is not enough.
pub const MAX_VERIFIED_TOKENS: usize = 4096;

/// The SHA-256 of a compact token.
pub(crate) type TokenKey = [u8; 32];

struct Entry {
    principal: Principal,
    /// Unix seconds after which the token no longer passes `exp` (leeway included).
    valid_until: u64,
    key: Arc<VerifyKey>,
}

/// Verified tokens by hash.
#[derive(Default)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<TokenKey, Entry>>,
}

pub(crate) fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl VerifiedTokens {
    /// The principal of a token verified earlier by `key`, if it is still within its
    /// lifetime. The caller checks that `key` is the one the JWKS hands out now.
    pub(crate) fn get(&self, token: &TokenKey) -> Option<(Principal, Arc<VerifyKey>)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(token)?;
        (unix_now() <= entry.valid_until).then(|| (entry.principal.clone(), Arc::clone(&entry.key)))
    }

    /// Remembers a token that `key` just verified.
    pub(crate) fn insert(
        &self,
        token: TokenKey,
        principal: Principal,
        valid_until: u64,
        key: Arc<VerifyKey>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_VERIFIED_TOKENS && !entries.contains_key(&token) {
            let now = unix_now();
            entries.retain(|_, e| now <= e.valid_until);
            if entries.len() >= MAX_VERIFIED_TOKENS {
                entries.clear();
            }
        }
        entries.insert(
            token,
            Entry {
                principal,
                valid_until,
                key,
            },
        );
    }

    /// Forgets a token (its key changed).
    pub(crate) fn remove(&self, token: &TokenKey) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }
}
