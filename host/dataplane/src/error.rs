//! The data plane's error type and how it is answered over HTTP: the right status and a
//! JSON body `{"error": "<what is wrong>", "code": "<kind>"}`; 5xx bodies are opaque and
//! the details go to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use weft_store::StoreError;

/// What the public body of a 5xx says; details are logged.
pub const PUBLIC_5XX_MESSAGE: &str = "internal error; see the data plane's log";

/// Why a signal, registration or data request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DpsError {
    /// Malformed or incomplete input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Unknown flow, context or registration (404).
    #[error("{0}")]
    NotFound(String),
    /// Duplicate or illegal transition; nothing changed (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed (413).
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A dependency (store, directory, app instance pool) is unavailable; retry (503).
    #[error("{0}")]
    Unavailable(String),
    /// The owning app failed (trap, limit); details in the log (502).
    #[error("the app failed: {0}")]
    App(String),
    /// A bug or a database failure; details in the log (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl DpsError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            DpsError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DpsError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            DpsError::Forbidden(_) => StatusCode::FORBIDDEN,
            DpsError::NotFound(_) => StatusCode::NOT_FOUND,
            DpsError::Conflict(_) => StatusCode::CONFLICT,
            DpsError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            DpsError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            DpsError::App(_) => StatusCode::BAD_GATEWAY,
            DpsError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable kind.
    pub fn code(&self) -> &'static str {
        match self {
            DpsError::BadRequest(_) => "bad-request",
            DpsError::Unauthorized(_) => "unauthorized",
            DpsError::Forbidden(_) => "forbidden",
            DpsError::NotFound(_) => "not-found",
            DpsError::Conflict(_) => "conflict",
            DpsError::TooLarge(_) => "too-large",
            DpsError::Unavailable(_) => "unavailable",
            DpsError::App(_) => "app-failed",
            DpsError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for DpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => DpsError::NotFound(m),
            StoreError::Conflict(m) => DpsError::Conflict(m),
            StoreError::Invalid(m) => DpsError::BadRequest(m),
            StoreError::QuotaExceeded(m) => DpsError::Conflict(m),
            other => DpsError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for DpsError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(target: "weft::dataplane", code = self.code(), "{self}");
            PUBLIC_5XX_MESSAGE.to_owned()
        } else {
            tracing::debug!(target: "weft::dataplane", code = self.code(), status = status.as_u16(), "refused: {self}");
            self.to_string()
        };
        let body = serde_json::json!({ "error": message, "code": self.code() });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
