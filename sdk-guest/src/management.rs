//! Tenant-scoped calls to the EDC Management API: the `weft:plugin/management` import.
//!
//! Paths are relative to the tenant's scope (`assets`, `assets/{id}`,
//! `catalog/request`); the host adds the prefix, the token and the JSON-LD context, and
//! enforces the scopes the CSP granted. Non-2xx answers come back as a [`Response`] too.
//!
//! ```no_run
//! use std::time::Duration;
//! use weft_sdk::management::{self, Method, ProcessKind};
//!
//! let asset = serde_json::json!({"@id": "asset-1", "properties": {"name": "demo"}});
//! let created = management::send(Method::Post, "assets", Some(&asset))?;
//! if created.status == 409 {
//!     weft_sdk::info!("asset exists already");
//! }
//! let state = management::wait_for_state(
//!     ProcessKind::TransferProcess,
//!     "tp-1",
//!     &["STARTED", "TERMINATED"],
//!     Duration::from_secs(30),
//! )?;
//! # let _ = state;
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, backend};

/// The HTTP method of a Management API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a method name, ignoring case.
impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            "DELETE" => Ok(Method::Delete),
            _ => Err(Error::Invalid(format!(
                "unsupported Management API method `{s}` (GET, POST, PUT, PATCH, DELETE)"
            ))),
        }
    }
}

/// A request relative to the tenant's Management API scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// A path relative to the tenant scope, without a leading `/`.
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// A JSON body (compacted JSON-LD), if any.
    pub body: Option<String>,
}

impl Request {
    /// A request without query or body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sets the JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let text = serde_json::to_string(body)
            .map_err(|e| Error::Internal(format!("serializing Management API body: {e}")))?;
        self.body = Some(text);
        Ok(self)
    }

    /// Sends the request as the tenant.
    pub fn send(&self) -> Result<Response> {
        backend::active::management_send(self)
    }
}

/// The control plane's answer (non-2xx included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, possibly empty.
    pub body: String,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body deserialized as `T`; [`Error::Invalid`] when it is not one.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::Invalid(format!(
                "Management API answered {} with unexpected JSON: {e}",
                self.status
            ))
        })
    }

    /// The body as a JSON value (`null` when empty).
    pub fn json_value(&self) -> Result<serde_json::Value> {
        if self.body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        self.json()
    }
}

/// Kinds of long-running control-plane processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessKind {
    /// A contract negotiation.
    ContractNegotiation,
    /// A transfer process.
    TransferProcess,
}

/// Sends one Management API request as the tenant.
///
/// Errors: [`Error::AccessDenied`] without the scope, [`Error::Invalid`] for a path outside
/// the tenant scope, [`Error::Unavailable`] when the control plane cannot be reached,
/// [`Error::LimitExceeded`] when the answer is too large.
pub fn send(method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<Response> {
    let mut request = Request::new(method, path);
    if let Some(body) = body {
        request = request.json(body)?;
    }
    request.send()
}

/// `GET path`.
pub fn get(path: &str) -> Result<Response> {
    send(Method::Get, path, None)
}

/// `POST path` with a JSON body.
pub fn post(path: &str, body: &serde_json::Value) -> Result<Response> {
    send(Method::Post, path, Some(body))
}

/// Waits (without burning CPU) until a process reaches one of `states`; returns the
/// state reached. [`Error::Unavailable`] when `timeout` or the call's deadline ends first.
/// Timeouts above `u32::MAX` milliseconds are capped.
pub fn wait_for_state(
    kind: ProcessKind,
    id: &str,
    states: &[&str],
    timeout: Duration,
) -> Result<String> {
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    backend::active::management_wait_for_state(kind, id, states, timeout_ms)
}

/// Asks the host to deliver a `process-state-changed` event carrying `correlation` when
/// the process reaches a final state.
pub fn watch(kind: ProcessKind, id: &str, correlation: &str) -> Result<()> {
    backend::active::management_watch(kind, id, correlation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_parses_ignoring_case_and_rejects_others() {
        assert_eq!("post".parse::<Method>().unwrap(), Method::Post);
        assert_eq!("DELETE".parse::<Method>().unwrap(), Method::Delete);
        assert_eq!("TRACE".parse::<Method>().unwrap_err().kind(), "invalid");
    }

    #[test]
    fn empty_body_is_null() {
        let r = Response {
            status: 204,
            body: String::new(),
        };
        assert!(r.is_success());
        assert_eq!(r.json_value().unwrap(), serde_json::Value::Null);
    }
}
