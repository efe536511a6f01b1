//! `management`: tenant-scoped Management API requests. The runtime validates the path
//! and checks the granted scope before anything leaves the host; the backend adds the
//! tenant prefix, the token and the JSON-LD context.

use crate::bindings::weft::plugin::management::{Host, Method, ProcessKind, Request, Response};
use crate::bindings::weft::plugin::types::Error;
use crate::call::HostState;
use std::time::Duration;

/// Longest path a plugin may send; Management API paths are short.
pub const MAX_MANAGEMENT_PATH_BYTES: usize = 512;

/// Largest request body a plugin may send to the Management API.
pub const MAX_MANAGEMENT_BODY_BYTES: usize = 1 << 20;

/// Longest single wait for a negotiation or transfer state.
pub const MAX_WAIT_MS: u32 = 120_000;

/// `POST` endpoints that only read: EDC queries and catalog requests are POSTs that need
/// `management-api:read`.
fn is_read_post(path: &str) -> bool {
    path.ends_with("/request")
        || path == "request"
        || path.starts_with("catalog/")
        || path.ends_with("/validate")
        || path.ends_with("/evaluationplan")
}

/// Checks a relative Management API path and tells whether it needs the write scope.
pub fn classify(method: Method, path: &str) -> Result<bool, Error> {
    if path.is_empty() || path.len() > MAX_MANAGEMENT_PATH_BYTES {
        return Err(Error::Invalid(format!(
            "management path must be 1 to {MAX_MANAGEMENT_PATH_BYTES} bytes"
        )));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:@!$&'()*+,;=/".contains(c);
    if path.starts_with('/') || !path.chars().all(allowed) {
        return Err(Error::Invalid(format!(
            "management path {path:?} must be relative to the tenant scope (like `assets/my-id`), without query or escapes"
        )));
    }
    if path
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(Error::Invalid(format!(
            "management path {path:?} has an empty, `.` or `..` segment"
        )));
    }
    let first = path.split('/').next().unwrap_or_default();
    // Tenant-scoped resources only: participants, config and data plane registration
    // belong to the host and the provisioner, never to a plugin.
    const RESOURCES: [&str; 7] = [
        "assets",
        "policydefinitions",
        "contractdefinitions",
        "catalog",
        "contractnegotiations",
        "contractagreements",
        "transferprocesses",
    ];
    if !RESOURCES.contains(&first) {
        return Err(Error::AccessDenied(format!(
            "`{first}` is not a tenant resource plugins may use (allowed: {})",
            RESOURCES.join(", ")
        )));
    }
    Ok(match method {
        Method::Get => false,
        Method::Post => !is_read_post(path),
        Method::Put | Method::Patch | Method::Delete => true,
    })
}

fn process_path(kind: ProcessKind) -> &'static str {
    match kind {
        ProcessKind::ContractNegotiation => "contractnegotiations",
        ProcessKind::TransferProcess => "transferprocesses",
    }
}

impl HostState {
    fn require_management(&self, write: bool) -> Result<(), Error> {
        if self.call.grants.allows_management(write) {
            Ok(())
        } else {
            let scope = if write {
                "management-api:write"
            } else {
                "management-api:read"
            };
            Err(Error::AccessDenied(format!(
                "{scope} is not granted to this plugin for this tenant"
            )))
        }
    }
}

impl Host for HostState {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let write = match classify(request.method, &request.path) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = self.require_management(write) {
            return Ok(Err(e));
        }
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > MAX_MANAGEMENT_BODY_BYTES)
        {
            return Ok(Err(Error::LimitExceeded(format!(
                "management request bodies are at most {MAX_MANAGEMENT_BODY_BYTES} bytes"
            ))));
        }
        Ok(self.services.management.send(&self.call, request).await)
    }

    async fn wait_for_state(
        &mut self,
        kind: ProcessKind,
        id: String,
        states: Vec<String>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<String, Error>> {
        let path = format!("{}/{id}", process_path(kind));
        if let Err(e) = classify(Method::Get, &path).and_then(|_| self.require_management(false)) {
            return Ok(Err(e));
        }
        if states.is_empty() {
            return Ok(Err(Error::Invalid(
                "wait-for-state needs at least one state".into(),
            )));
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms.min(MAX_WAIT_MS)));
        Ok(self
            .services
            .management
            .wait_for_state(&self.call, kind, &id, &states, timeout)
            .await)
    }

    async fn watch(
        &mut self,
        kind: ProcessKind,
        id: String,
        correlation: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let path = format!("{}/{id}", process_path(kind));
        if let Err(e) = classify(Method::Get, &path).and_then(|_| self.require_management(false)) {
            return Ok(Err(e));
        }
        Ok(self
            .services
            .management
            .watch(&self.call, kind, &id, &correlation)
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert_eq!(classify(Method::Get, "assets/a1"), Ok(false));
        assert_eq!(classify(Method::Post, "assets/request"), Ok(false));
        assert_eq!(classify(Method::Post, "catalog/request"), Ok(false));
        assert_eq!(classify(Method::Post, "assets"), Ok(true));
        assert_eq!(classify(Method::Delete, "assets/a1"), Ok(true));
        assert_eq!(classify(Method::Put, "contractdefinitions"), Ok(true));
        assert_eq!(
            classify(Method::Post, "contractnegotiations/x/terminate"),
            Ok(true)
        );
    }

    #[test]
    fn paths_cannot_leave_the_tenant_scope() {
        for bad in [
            "/assets",
            "../other/assets",
            "assets/../../participants",
            "assets//x",
            "http://evil/assets",
            "assets?x=1",
            "assets#x",
            "assets/%2e%2e",
            "",
        ] {
            assert!(
                matches!(classify(Method::Get, bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
        for denied in ["participants", "config", "dataplanes", "celexpressions"] {
            assert!(
                matches!(classify(Method::Get, denied), Err(Error::AccessDenied(_))),
                "{denied}"
            );
        }
    }
}
