//! Control-plane stand-in: the EDC-V Management API subset (edcv.md §1), in-process DSP between
//! the participant contexts it hosts, and the Data Plane Signaling side (dps.md) that drives
//! registered data planes and accepts their callbacks.

mod auth;
mod catalog;
mod events;
mod management;
mod model;
mod negotiation;
mod signaling;
mod transfer;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub use auth::ApiVersion;
pub use model::TransferState;

use crate::config::{ClaimMode, ParticipantSpec, SignalingAuth};
use crate::error::{ApiError, SandboxError};
use crate::idp::Idp;
use crate::jsonld;
use model::{Participant, Store, now_millis};

/// Largest request body the control plane accepts (EDC bodies are small JSON documents).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Requests kept for inspection; older ones are dropped first.
pub const MAX_RECORDED_REQUESTS: usize = 10_000;
/// Bytes of each recorded body kept, so the log stays small however large the requests are.
pub const MAX_RECORDED_BODY_BYTES: usize = 64 * 1024;
/// Timeout of one call to a data plane or a callback address.
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// DSP protocol string of the v4alpha era (edcv.md §1.4).
pub const DSP_PROTOCOL: &str = "dataspace-protocol-http:2025-1";
/// DSP profile id used now (edcv.md §1.4).
pub const DSP_PROFILE: &str = "http-dsp-profile-2025-1";

/// Construction parameters of a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// Management API base, e.g. `http://127.0.0.1:8081/api/mgmt`.
    pub management_url: String,
    /// DSP base, e.g. `http://127.0.0.1:8081/api/dsp` (counter-party addresses derive from it).
    pub dsp_url: String,
    /// Signaling callback base, e.g. `http://127.0.0.1:8182/api/signaling`.
    pub signaling_url: String,
    pub claim_mode: ClaimMode,
    pub signaling_auth: SignalingAuth,
    /// `Authorization` value sent to data planes registered without an `authorization` profile.
    pub dataplane_authorization: Option<String>,
    pub dataspace_context: String,
}

/// One request the control plane received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// A read-only view of a transfer process, for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferSnapshot {
    pub id: String,
    pub participant_context: String,
    /// `CONSUMER` or `PROVIDER`.
    pub kind: String,
    pub state: TransferState,
    /// The other side's transfer process id.
    pub counterpart_id: Option<String>,
    /// The data plane this side signalled, if any.
    pub data_plane_id: Option<String>,
    /// Consumer: the DataAddress received from the provider (the EDR). Provider: the push
    /// destination.
    pub data_address: Option<Value>,
    pub error_detail: Option<String>,
    /// Errors the data plane reported through the `errored` callback.
    pub reported_errors: Vec<String>,
}

struct Inner {
    config: ControlPlaneConfig,
    idp: Idp,
    store: Mutex<Store>,
    requests: Mutex<VecDeque<RecordedRequest>>,
    http: reqwest::Client,
    available: AtomicBool,
}

/// The control plane. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// A control plane that verifies tokens against `idp`.
    pub fn new(config: ControlPlaneConfig, idp: Idp) -> Result<Self, SandboxError> {
        let http = reqwest::Client::builder()
            .timeout(OUTBOUND_TIMEOUT)
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                idp,
                store: Mutex::new(Store::default()),
                requests: Mutex::new(VecDeque::new()),
                http,
                available: AtomicBool::new(true),
            }),
        })
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A poisoned lock only means another request panicked; the data is still usable.
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn config(&self) -> &ControlPlaneConfig {
        &self.inner.config
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn idp(&self) -> &Idp {
        &self.inner.idp
    }

    pub(crate) fn participant_exists(&self, pc: &str) -> bool {
        self.store().participants.contains_key(pc)
    }

    /// The DSP address of a participant context (`{dsp}/{pc}/2025-1`).
    pub fn dsp_address(&self, pc: &str) -> String {
        format!("{}/{pc}/2025-1", self.inner.config.dsp_url)
    }

    /// Create (or replace) a participant context with its DID, BPN and attributes.
    pub fn register_participant(&self, spec: ParticipantSpec) {
        let properties: Map<String, Value> = spec.attributes.into_iter().collect();
        let mut store = self.store();
        let created_at = store
            .participants
            .get(&spec.id)
            .map_or_else(now_millis, |p| p.created_at);
        store.participants.insert(
            spec.id.clone(),
            Participant {
                id: spec.id.clone(),
                identity: spec.did,
                properties,
                state: "ACTIVATED".into(),
                bpn: spec.bpn,
                created_at,
                config: None,
            },
        );
        store.tenant_mut(&spec.id);
    }

    /// Set (or with `None`, remove) one attribute of a participant, e.g. revoke a credential.
    pub fn set_participant_attribute(
        &self,
        pc: &str,
        name: &str,
        value: Option<Value>,
    ) -> Result<(), SandboxError> {
        let mut store = self.store();
        let participant = store
            .participants
            .get_mut(pc)
            .ok_or_else(|| SandboxError::UnknownParticipant(pc.into()))?;
        match value {
            Some(v) => participant.properties.insert(name.into(), v),
            None => participant.properties.remove(name),
        };
        Ok(())
    }

    /// Ids of all participant contexts.
    pub fn participants(&self) -> Vec<String> {
        self.store().participants.keys().cloned().collect()
    }

    /// Every request received so far (management and signaling), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner
            .requests
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        if let Ok(mut r) = self.inner.requests.lock() {
            r.clear();
        }
    }

    /// Simulate an outage: while unavailable every endpoint answers 503.
    pub fn set_available(&self, available: bool) {
        self.inner.available.store(available, Ordering::SeqCst);
    }

    /// The state of a contract negotiation (either side), e.g. `FINALIZED`.
    pub fn negotiation_state(&self, id: &str) -> Option<String> {
        let store = self.store();
        store
            .tenants
            .values()
            .find_map(|t| t.negotiations.get(id))
            .map(|n| n.state.as_str().to_owned())
    }

    /// A view of a transfer process (either side).
    pub fn transfer(&self, id: &str) -> Option<TransferSnapshot> {
        let store = self.store();
        store.transfer(id).map(|t| TransferSnapshot {
            id: t.id.clone(),
            participant_context: t.pc.clone(),
            kind: t.side.as_str().to_owned(),
            state: t.state,
            counterpart_id: t.correlation_id.clone(),
            data_plane_id: t.data_plane_id.clone(),
            data_address: t.data_address.clone(),
            error_detail: t.error_detail.clone(),
            reported_errors: t.errored.clone(),
        })
    }

    /// Management API routes (`/api/mgmt/...`), recorded, with the body limit applied.
    pub fn management_router(&self) -> Router {
        self.wrap(management::routes())
    }

    /// Signaling callback routes (`/api/signaling/...`), recorded.
    pub fn signaling_router(&self) -> Router {
        self.wrap(signaling::routes())
    }

    fn wrap(&self, routes: Router<ControlPlane>) -> Router {
        routes
            .fallback(fallback)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(middleware::from_fn_with_state(
                self.clone(),
                record_and_gate,
            ))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    fn record(&self, request: RecordedRequest) {
        if let Ok(mut r) = self.inner.requests.lock() {
            if r.len() >= MAX_RECORDED_REQUESTS {
                r.pop_front();
            }
            r.push_back(request);
        }
    }
}

async fn fallback() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(json!([{"message": "no such endpoint", "type": "ObjectNotFound"}])),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(
            json!([{"message": "method not allowed on this endpoint", "type": "InvalidRequest"}]),
        ),
    )
        .into_response()
}

/// Record every request (body included), then answer 503 while unavailable.
async fn record_and_gate(State(cp): State<ControlPlane>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError {
                status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                body: json!([{
                    "message": format!("request body exceeds {MAX_BODY_BYTES} bytes"),
                    "type": "InvalidRequest",
                }]),
            }
            .into_response();
        }
    };
    cp.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RECORDED_BODY_BYTES)])
            .into_owned(),
    });
    if !cp.inner.available.load(Ordering::SeqCst) {
        return ApiError::unavailable().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `IdResponse` for a create (200).
pub(crate) fn id_response(id: &str, created_at: u64) -> Response {
    axum::Json(json!({
        "@context": jsonld::context(),
        "@type": "IdResponse",
        "@id": id,
        "createdAt": created_at,
    }))
    .into_response()
}
