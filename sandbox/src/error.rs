//! Errors: the crate-boundary error type, and the HTTP error bodies EDC returns (an array of
//! `{message, type, path?, invalidValue?}`, or `{"error": …}` for a rejected JWT).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// Errors of the crate's programmatic API.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Idp(#[from] crate::idp::IdpError),
    #[error("unknown participant context `{0}`")]
    UnknownParticipant(String),
    #[error("HTTP client setup failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// One entry of EDC's error array (`SCHEMA:api-error`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_value: Option<Value>,
}

impl ErrorDetail {
    pub fn new(message: impl Into<String>, kind: &str) -> Self {
        Self {
            message: message.into(),
            kind: kind.to_owned(),
            path: None,
            invalid_value: None,
        }
    }

    /// EDC's message for a missing mandatory field.
    pub fn missing(path: &str) -> Self {
        Self::new(
            format!("mandatory value '{path}' is missing or it is blank"),
            "ValidationFailure",
        )
        .with_path(path)
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_value(mut self, value: Value) -> Self {
        self.invalid_value = Some(value);
        self
    }
}

/// An HTTP error of the control plane.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    fn array(status: StatusCode, details: Vec<ErrorDetail>) -> Self {
        Self {
            status,
            body: json!(details),
        }
    }

    /// 400 with every validation problem found.
    pub fn validation(details: Vec<ErrorDetail>) -> Self {
        Self::array(StatusCode::BAD_REQUEST, details)
    }

    /// 400 with one `InvalidRequest` entry.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::validation(vec![ErrorDetail::new(message, "InvalidRequest")])
    }

    /// 401 for a missing, bad or expired JWT.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"error": message.into()}),
        }
    }

    /// 403 for a role, scope or ownership failure.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::array(
            StatusCode::FORBIDDEN,
            vec![ErrorDetail::new(message, "NotAuthorized")],
        )
    }

    /// 404 `ObjectNotFound`, in EDC's wording.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::array(
            StatusCode::NOT_FOUND,
            vec![ErrorDetail::new(
                format!("Object of type {kind} with ID={id} was not found"),
                "ObjectNotFound",
            )],
        )
    }

    /// 409 `ObjectConflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::array(
            StatusCode::CONFLICT,
            vec![ErrorDetail::new(message, "ObjectConflict")],
        )
    }

    /// 502 when the counter-party cannot be reached.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::array(
            StatusCode::BAD_GATEWAY,
            vec![ErrorDetail::new(message, "BadGateway")],
        )
    }

    /// 503 while the stand-in simulates an outage.
    pub fn unavailable() -> Self {
        Self::array(
            StatusCode::SERVICE_UNAVAILABLE,
            vec![ErrorDetail::new(
                "service unavailable",
                "ServiceUnavailable",
            )],
        )
    }

    /// 500 with an opaque body; the details go to the log.
    pub fn internal(context: &str) -> Self {
        tracing::error!(context, "internal error");
        Self::array(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![ErrorDetail::new("internal error", "InternalError")],
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
