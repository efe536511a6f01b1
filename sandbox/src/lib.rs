//! weft-sandbox: a faithful local stand-in for the dataspace Weft talks to (an identity provider
//! plus an EDC-V control-plane subset with DPS signaling), used by tests and the quickstart.
//!
//! Start everything with [`Sandbox::start`]; the returned [`RunningSandbox`] gives the URLs,
//! the [`Idp`] (clients, fixtures, outages) and the [`ControlPlane`] (participants, recorded
//! requests, transfer inspection). The pieces can also be mounted separately through
//! [`Idp::router`], [`ControlPlane::management_router`] and [`ControlPlane::signaling_router`].

pub mod config;
pub mod controlplane;
pub mod error;
pub mod idp;
pub mod jsonld;
pub mod policy;
pub mod query;
mod sandbox;

pub use config::{ClaimMode, ClientSpec, ParticipantSpec, Role, SandboxConfig, SignalingAuth};
pub use controlplane::{
    ApiVersion, ControlPlane, ControlPlaneConfig, RecordedRequest, TransferSnapshot, TransferState,
};
pub use error::{ApiError, ErrorDetail, SandboxError};
pub use idp::{Idp, IdpConfig, MintSpec, SigningAlgorithm, VerifiedClaims, VerifyError};
pub use sandbox::{
    ADMIN_SCOPE, ADMIN_SUBJECT, RunningSandbox, SHUTDOWN_GRACE, Sandbox, SandboxUrls,
};
