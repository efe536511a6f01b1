//! Errors at the crate boundary for host-side operations (data-plane registration, starting
//! the event hub), and a readable form of the contract's error variant for logs and audits.

use weft_runtime::GuestError;

/// Why a host-side Management API operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// Something this operation needs is not configured (public URL, store, ...).
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// The request could not be made or was refused before a response (token, network,
    /// deadline, size cap); the text says which.
    #[error("{0}")]
    Request(String),
    /// The control plane answered with a non-2xx status.
    #[error("the control plane answered {status}: {detail}")]
    Rejected { status: u16, detail: String },
    #[error(transparent)]
    Store(#[from] weft_store::StoreError),
}

impl From<GuestError> for ManagementError {
    fn from(e: GuestError) -> Self {
        ManagementError::Request(describe(&e))
    }
}

/// `kind: message` of a contract error, e.g. `unavailable: the control plane cannot be reached`.
pub fn describe(error: &GuestError) -> String {
    let (kind, message) = match error {
        GuestError::AccessDenied(m) => ("access-denied", m),
        GuestError::NotFound(m) => ("not-found", m),
        GuestError::Invalid(m) => ("invalid", m),
        GuestError::Conflict(m) => ("conflict", m),
        GuestError::Unavailable(m) => ("unavailable", m),
        GuestError::LimitExceeded(m) => ("limit-exceeded", m),
        GuestError::Internal(m) => ("internal", m),
    };
    format!("{kind}: {message}")
}
