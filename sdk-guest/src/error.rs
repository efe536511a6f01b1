//! The SDK's error type: the WIT `error` variant as an idiomatic Rust error.

use crate::wit::weft::plugin::types::Error as WitError;

/// A result whose error is the contract's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// An error a plugin can handle, mirroring the `weft:plugin/types.error` variant.
///
/// Imports return it, hooks return it to the host, and [`crate::http::Response::error`]
/// turns it into an HTTP answer with a matching status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The CSP did not grant the capability, or the tenant narrowed it away.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The named thing does not exist (for this tenant).
    #[error("not found: {0}")]
    NotFound(String),
    /// The input was malformed or violated a rule; the text says which.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The operation conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A dependency could not be reached in time. Retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A quota or size limit was hit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// Anything else; details belong in the log, not in answers to callers.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The WIT case name: `access-denied`, `not-found`, `invalid`, `conflict`,
    /// `unavailable`, `limit-exceeded` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::AccessDenied(_) => "access-denied",
            Error::NotFound(_) => "not-found",
            Error::Invalid(_) => "invalid",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
            Error::LimitExceeded(_) => "limit-exceeded",
            Error::Internal(_) => "internal",
        }
    }

    /// The message carried by the variant.
    pub fn message(&self) -> &str {
        match self {
            Error::AccessDenied(m)
            | Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Conflict(m)
            | Error::Unavailable(m)
            | Error::LimitExceeded(m)
            | Error::Internal(m) => m,
        }
    }

    /// The HTTP status that best answers a caller with this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::AccessDenied(_) => 403,
            Error::NotFound(_) => 404,
            Error::Invalid(_) => 400,
            Error::Conflict(_) => 409,
            Error::Unavailable(_) => 503,
            Error::LimitExceeded(_) => 413,
            Error::Internal(_) => 500,
        }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
}

/// Serialized as `{"error": "<kind>", "message": "<message>"}`.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Error", 2)?;
        s.serialize_field("error", self.kind())?;
        s.serialize_field("message", self.message())?;
        s.end()
    }
}

impl From<WitError> for Error {
    fn from(e: WitError) -> Self {
        match e {
            WitError::AccessDenied(m) => Error::AccessDenied(m),
            WitError::NotFound(m) => Error::NotFound(m),
            WitError::Invalid(m) => Error::Invalid(m),
            WitError::Conflict(m) => Error::Conflict(m),
            WitError::Unavailable(m) => Error::Unavailable(m),
            WitError::LimitExceeded(m) => Error::LimitExceeded(m),
            WitError::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<Error> for WitError {
    fn from(e: Error) -> Self {
        match e {
            Error::AccessDenied(m) => WitError::AccessDenied(m),
            Error::NotFound(m) => WitError::NotFound(m),
            Error::Invalid(m) => WitError::Invalid(m),
            Error::Conflict(m) => WitError::Conflict(m),
            Error::Unavailable(m) => WitError::Unavailable(m),
            Error::LimitExceeded(m) => WitError::LimitExceeded(m),
            Error::Internal(m) => WitError::Internal(m),
        }
    }
}

/// Malformed JSON is the caller's mistake: [`Error::Invalid`].
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        if e.is_io() {
            Error::Internal(format!("reading JSON: {e}"))
        } else {
            Error::Invalid(format!("malformed JSON: {e}"))
        }
    }
}

/// Stream failures (a body that broke off, a closed output) are [`Error::Internal`].
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("I/O: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wit_variant() {
        let all = [
            Error::AccessDenied("a".into()),
            Error::NotFound("b".into()),
            Error::Invalid("c".into()),
            Error::Conflict("d".into()),
            Error::Unavailable("e".into()),
            Error::LimitExceeded("f".into()),
            Error::Internal("g".into()),
        ];
        for e in all {
            let back = Error::from(WitError::from(e.clone()));
            assert_eq!(back, e);
        }
    }

    #[test]
    fn displays_kind_and_serializes_as_json() {
        let e = Error::AccessDenied("management-api:write".into());
        assert_eq!(e.to_string(), "access denied: management-api:write");
        assert_eq!(e.http_status(), 403);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": "access-denied", "message": "management-api:write"})
        );
    }

    #[test]
    fn malformed_json_is_invalid() {
        let e: Error = serde_json::from_str::<u32>("{").unwrap_err().into();
        assert_eq!(e.kind(), "invalid");
    }
}
