//! Optional ed25519 signatures over a component's digest, checked against the trusted
//! publisher keys of the configuration.

use crate::config::SignatureConfig;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a signature is required but none was given")]
    Missing,
    #[error("the signature is not a base64 ed25519 signature (64 bytes)")]
    Malformed,
    #[error("the signature does not verify with any trusted publisher key")]
    Untrusted,
    #[error("trusted key {0:?} is not a base64 ed25519 public key")]
    BadTrustedKey(String),
}

/// The message a publisher signs: the hex sha256 digest of the component, as ASCII.
pub fn signed_message(digest_hex: &str) -> Vec<u8> {
    format!("weft-plugin-v1:{digest_hex}").into_bytes()
}

/// Verifies an optional signature; returns the trusted publisher's name if signed.
pub fn verify(
    config: &SignatureConfig,
    digest_hex: &str,
    signature: Option<&[u8]>,
) -> Result<Option<String>, SignatureError> {
    let Some(sig) = signature else {
        return if config.required {
            Err(SignatureError::Missing)
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(sig).map_err(|_| SignatureError::Malformed)?;
    let raw = STANDARD
        .decode(text.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let sig = Signature::from_slice(&raw).map_err(|_| SignatureError::Malformed)?;
    let message = signed_message(digest_hex);
    for key in &config.trusted_keys {
        let bytes: [u8; 32] = STANDARD
            .decode(key.public_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SignatureError::BadTrustedKey(key.name.clone()))?;
        let vk = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| SignatureError::BadTrustedKey(key.name.clone()))?;
        if vk.verify(&message, &sig).is_ok() {
            return Ok(Some(key.name.clone()));
        }
    }
    Err(SignatureError::Untrusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrustedKey;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn config(required: bool) -> SignatureConfig {
        SignatureConfig {
            required,
            trusted_keys: vec![TrustedKey {
                name: "acme".into(),
                public_key: STANDARD.encode(key(7).verifying_key().to_bytes()),
            }],
        }
    }

    #[test]
    fn signatures_are_checked() {
        let digest = "ab".repeat(32);
        let good = STANDARD.encode(key(7).sign(&signed_message(&digest)).to_bytes());
        let other = STANDARD.encode(key(8).sign(&signed_message(&digest)).to_bytes());
        let wrong_digest = STANDARD.encode(key(7).sign(&signed_message("00")).to_bytes());
        assert_eq!(
            verify(&config(true), &digest, Some(good.as_bytes())),
            Ok(Some("acme".into()))
        );
        assert_eq!(
            verify(&config(true), &digest, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(verify(&config(false), &digest, None), Ok(None));
        assert_eq!(
            verify(&config(false), &digest, Some(other.as_bytes())),
            Err(SignatureError::Untrusted)
        );
        assert_eq!(
            verify(&config(true), &digest, Some(wrong_digest.as_bytes())),
            Err(SignatureError::Untrusted)
        );
        assert_eq!(
            verify(&config(true), &digest, Some(b"!!")),
            Err(SignatureError::Malformed)
        );
    }
}
