//! Why a token was refused: one variant per failed check for the logs, one opaque message
//! for the client.

/// The only text a client ever sees for a refused token.
pub const PUBLIC_MESSAGE: &str = "invalid or missing token";

/// A token failed validation. The server answers every variant with 401 and
/// [`AuthError::public_message`]; the variant and its detail are for logs only.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no bearer token")]
    MissingToken,
    #[error("authorization header is not a bearer token")]
    NotBearer,
    #[error("token is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("token header has a crit parameter this host does not understand")]
    UnsupportedCritical,
    #[error("token header has no kid")]
    MissingKid,
    #[error("kid {0:?} is not in the identity provider's JWKS")]
    UnknownKid(String),
    #[error("key {kid:?} cannot verify {alg} tokens")]
    KeyAlgorithmMismatch { kid: String, alg: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token iss does not match the configured issuer")]
    WrongIssuer,
    #[error("token aud does not contain the configured audience")]
    WrongAudience,
    #[error("token lacks the required claim {0:?}")]
    MissingClaim(String),
    #[error("token claim {claim:?} is invalid: {reason}")]
    InvalidClaim { claim: String, reason: String },
    #[error("token role {0:?} is not admin, provisioner or participant")]
    UnknownRole(String),
    #[error("identity provider keys unavailable: {0}")]
    JwksUnavailable(String),
}

impl AuthError {
    /// Text safe to return to the client: it reveals nothing about which check failed.
    pub fn public_message(&self) -> &'static str {
        PUBLIC_MESSAGE
    }

    /// True when the token may be fine but the IdP's keys could not be fetched (worth a
    /// warning in the logs; the client still gets a plain 401).
    pub fn is_idp_unavailable(&self) -> bool {
        matches!(self, Self::JwksUnavailable(_))
    }
}
