//! The flow engine: signals from control planes and reports from apps move flows through
//! the DPS state machine, each move persisted (state, history, tokens, callbacks in one
//! transaction) before it is acknowledged.
//!
//! Per flow, one signal or report at a time: an in-process lock serialises them, and the
//! store's version check catches another replica. While a flow's own hook runs, reports the
//! app makes for that flow are held and applied after the hook's answer (so an app can
//! answer `pending` and report `prepared` in the same call); see [`Engine::report`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedMutexGuard};
use weft_runtime::bindings::data_flows::{DataFlow, Decision};
use weft_runtime::services::{Counterparty, FlowReport};
use weft_runtime::{
    CallContext, CallError, CallErrorKind, Entry, FlowOutcome, FlowSignal, GuestError,
};
use weft_store::flows::{ControlPlaneRecord, FlowEvent, FlowRecord, FlowUpdate, NewCallback};
use weft_store::{GenerationCache, Store, StoreError};

use crate::auth::{AuthCache, Caller, CpAuthorization, KnownControlPlane};
use crate::config::DataPlaneConfig;
use crate::directory::{AppDirectory, DirectoryError, TenantApp, select_owner};
use crate::error::DpsError;
use crate::model::{
    ControlPlaneRegistrationIn, FlowMessage, FlowState, Mode, Role, StatusMessage, WireDataAddress,
    check_id, truncate_reason,
};

/// Random bytes in a per-flow bearer token (256 bits: unguessable).
pub const TOKEN_BYTES: usize = 32;

/// Longest bearer token looked up: Weft's tokens are 43 characters; anything much longer
/// is not one of them and is refused before hashing.
pub const MAX_TOKEN_CHARS: usize = 512;

/// Reports an app may make for a flow during one of that flow's hooks.
pub const MAX_BUFFERED_REPORTS: usize = 16;

/// How long a report waits for its flow while a signal holds it (two flows' hooks
/// reporting for each other must not wait forever).
pub const REPORT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Characters escaped in a flow id used as a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A flow's key: (participant context, flow id).
pub(crate) type FlowKey = (String, String);

/// A URL path segment.
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Hex SHA-256 of a token: the only form tokens are stored in.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The first signals of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Initial {
    Prepare,
    Start,
}

impl Initial {
    fn name(self) -> &'static str {
        match self {
            Initial::Prepare => "prepare",
            Initial::Start => "start",
        }
    }

    fn role(self) -> Role {
        match self {
            Initial::Prepare => Role::Consumer,
            Initial::Start => Role::Provider,
        }
    }

    fn accepted(self) -> FlowState {
        match self {
            Initial::Prepare => FlowState::Prepared,
            Initial::Start => FlowState::Started,
        }
    }

    fn pending(self) -> FlowState {
        match self {
            Initial::Prepare => FlowState::Preparing,
            Initial::Start => FlowState::Starting,
        }
    }
}

/// Signals on an existing flow.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    Started {
        message_id: String,
        address: Option<WireDataAddress>,
    },
    Suspend {
        message_id: String,
        reason: Option<String>,
    },
    Resume {
        message_id: String,
        address: Option<WireDataAddress>,
    },
    Terminate {
        message_id: String,
        reason: Option<String>,
    },
    Completed {
        message_id: Option<String>,
    },
}

impl Signal {
    fn name(&self) -> &'static str {
        match self {
            Signal::Started { .. } => "started",
            Signal::Suspend { .. } => "suspend",
            Signal::Resume { .. } => "resume",
            Signal::Terminate { .. } => "terminate",
            Signal::Completed { .. } => "completed",
        }
    }

    fn target(&self) -> FlowState {
        match self {
            Signal::Started { .. } | Signal::Resume { .. } => FlowState::Started,
            Signal::Suspend { .. } => FlowState::Suspended,
            Signal::Terminate { .. } => FlowState::Terminated,
            Signal::Completed { .. } => FlowState::Completed,
        }
    }

    /// The states each signal may move a flow from (within what the state machine allows).
    fn allowed_from(&self, state: FlowState) -> bool {
        let allowed = match self {
            Signal::Started { .. } => state == FlowState::Prepared,
            Signal::Resume { .. } => state == FlowState::Suspended,
            Signal::Suspend { .. } | Signal::Completed { .. } => state == FlowState::Started,
            Signal::Terminate { .. } => !state.is_terminal(),
        };
        allowed && state.can_move_to(self.target())
    }

    fn message_id(&self) -> Option<&str> {
        match self {
            Signal::Started { message_id, .. }
            | Signal::Suspend { message_id, .. }
            | Signal::Resume { message_id, .. }
            | Signal::Terminate { message_id, .. } => Some(message_id),
            Signal::Completed { message_id } => message_id.as_deref(),
        }
    }

    fn reason(&self) -> Option<String> {
        match self {
            Signal::Suspend { reason, .. } | Signal::Terminate { reason, .. } => reason.clone(),
            _ => None,
        }
    }

    fn address(&self) -> Option<&WireDataAddress> {
        match self {
            Signal::Started { address, .. } | Signal::Resume { address, .. } => address.as_ref(),
            _ => None,
        }
    }
}

/// What a signal is acknowledged with.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    pub(crate) flow_id: String,
    pub(crate) state: FlowState,
    pub(crate) data_address: Option<WireDataAddress>,
}

/// A hook in progress: reports the app makes for its flow meanwhile, and the counterparty
/// address the signal brought (not yet stored).
struct InFlight {
    plugin_id: String,
    counterparty: Option<WireDataAddress>,
    reports: Vec<FlowReport>,
}

/// The shared state behind a [`crate::DataPlane`].
pub(crate) struct Engine {
    pub(crate) store: Store,
    pub(crate) apps: Arc<dyn AppDirectory>,
    pub(crate) config: DataPlaneConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) auth: AuthCache,
    /// Wakes the callback worker when callbacks were queued.
    pub(crate) wake: Notify,
    public_base: String,
    inflight: StdMutex<HashMap<FlowKey, InFlight>>,
    locks: StdMutex<HashMap<FlowKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Control planes by context: every signal authenticates against them.
    control_planes: GenerationCache<String, Vec<KnownControlPlane>>,
}

/// Holds a flow's in-process lock; removes the lock's entry when nobody else wants it.
pub(crate) struct FlowLock<'a> {
    engine: &'a Engine,
    key: FlowKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for FlowLock<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self
            .engine
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

/// Registers a hook in progress; unregisters it when dropped.
struct InFlightGuard<'a> {
    engine: &'a Engine,
    key: FlowKey,
}

impl InFlightGuard<'_> {
    fn take_reports(self) -> Vec<FlowReport> {
        let mut inflight = self
            .engine
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inflight
            .remove(&self.key)
            .map(|f| f.reports)
            .unwrap_or_default()
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.engine
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// The changes one transition makes, applied by [`Store::update_flow`].
struct Change {
    flow: FlowRecord,
    events: Vec<FlowEvent>,
    revoke: bool,
    token_hash: Option<String>,
    callbacks: Vec<NewCallback>,
    dirty: bool,
}

impl Change {
    fn new(flow: FlowRecord) -> Self {
        Change {
            flow,
            events: Vec::new(),
            revoke: false,
            token_hash: None,
            callbacks: Vec::new(),
            dirty: false,
        }
    }

    fn state(&self) -> FlowState {
        FlowState::parse(&self.flow.state).unwrap_or(FlowState::Terminated)
    }

    fn role(&self) -> Role {
        Role::parse(&self.flow.role).unwrap_or(Role::Provider)
    }

    fn mode(&self) -> Mode {
        Mode::parse(&self.flow.mode).unwrap_or(Mode::Pull)
    }

    /// Records an event moving the flow to `to` (or leaving it, when `to` is the state).
    fn record(&mut self, to: FlowState, event: &str, message_id: Option<&str>, detail: Value) {
        self.events.push(FlowEvent {
            from_state: Some(self.flow.state.clone()),
            to_state: to.as_str().to_owned(),
            event: event.to_owned(),
            message_id: message_id.map(str::to_owned),
            detail_json: detail.to_string(),
        });
        self.flow.state = to.as_str().to_owned();
        self.dirty = true;
    }

    /// Revokes every token of the flow, including one minted earlier in this change.
    fn revoke_all(&mut self) {
        self.revoke = true;
        self.token_hash = None;
        self.dirty = true;
    }

    fn callback(&mut self, kind: &str, message: &StatusMessage, not_before: OffsetDateTime) {
        self.callbacks.push(NewCallback {
            kind: kind.to_owned(),
            body_json: serde_json::to_string(message).unwrap_or_else(|_| "{}".to_owned()),
            not_before,
        });
        self.dirty = true;
    }

    fn into_update(self) -> FlowUpdate {
        FlowUpdate {
            flow: self.flow,
            events: self.events,
            revoke_tokens: self.revoke,
            add_token_hash: self.token_hash,
            callbacks: self.callbacks,
        }
    }
}

/// Whether this side hands out an address counterparties use: the provider of a pull
/// (where to fetch) and the consumer of a push (where to push).
fn hands_out(role: Role, mode: Mode) -> bool {
    matches!(
        (role, mode),
        (Role::Provider, Mode::Pull) | (Role::Consumer, Mode::Push)
    )
}

/// The states in which a flow's data endpoint accepts requests.
pub(crate) fn data_allowed(role: Role, mode: Mode, state: FlowState) -> bool {
    match (role, mode) {
        (Role::Provider, Mode::Pull) => state == FlowState::Started,
        // The provider may push as soon as the consumer answered prepare (SPEC §Started).
        (Role::Consumer, Mode::Push) => {
            matches!(
                state,
                FlowState::Prepared | FlowState::Starting | FlowState::Started
            )
        }
        _ => false,
    }
}

/// The app's refusal of a signal, as an answer to the control plane.
fn refusal(e: GuestError, what: &str) -> DpsError {
    match e {
        GuestError::Invalid(m) => DpsError::BadRequest(format!("the app refused {what}: {m}")),
        GuestError::AccessDenied(m) => DpsError::Forbidden(format!("the app refused {what}: {m}")),
        GuestError::NotFound(m) => DpsError::NotFound(format!("the app refused {what}: {m}")),
        GuestError::Conflict(m) | GuestError::LimitExceeded(m) => {
            DpsError::Conflict(format!("the app refused {what}: {m}"))
        }
        GuestError::Unavailable(m) => {
            DpsError::Unavailable(format!("the app cannot take {what} now: {m}"))
        }
        GuestError::Internal(m) => DpsError::App(format!("{what}: {m}")),
    }
}

/// A failed call into the app.
pub(crate) fn call_failure(e: CallError) -> DpsError {
    match e.kind {
        CallErrorKind::Busy => {
            DpsError::Unavailable("no app instance is free; retry shortly".into())
        }
        _ => DpsError::App(e.to_string()),
    }
}

fn directory_error(e: DirectoryError) -> DpsError {
    match e {
        DirectoryError::UnknownTenant(ctx) => {
            DpsError::NotFound(format!("unknown participant context {ctx}"))
        }
        DirectoryError::Unavailable(m) => DpsError::Unavailable(m),
    }
}

fn guest_store_error(e: StoreError) -> GuestError {
    match e {
        StoreError::NotFound(m) => GuestError::NotFound(m),
        StoreError::Conflict(m) => GuestError::Conflict(m),
        StoreError::Invalid(m) => GuestError::Invalid(m),
        other => {
            tracing::error!(target: "weft::dataplane", "store failed during a transfer report: {other}");
            GuestError::Unavailable("the data plane's store is unavailable".into())
        }
    }
}

fn parse_address(json: Option<&str>) -> Option<WireDataAddress> {
    json.and_then(|j| serde_json::from_str(j).ok())
}

/// Checks an address an app handed over.
fn app_address(a: &weft_runtime::bindings::types::DataAddress) -> Result<WireDataAddress, String> {
    let wire = WireDataAddress::from_wit(a);
    if wire.endpoint.trim().is_empty() || wire.endpoint_type.trim().is_empty() {
        return Err("the app's DataAddress needs an endpointType and an endpoint".into());
    }
    Ok(wire)
}

impl Engine {
    pub(crate) fn new(
        store: Store,
        apps: Arc<dyn AppDirectory>,
        config: DataPlaneConfig,
        http: reqwest::Client,
    ) -> Self {
        let public_base = config.public_url.trim_end_matches('/').to_owned();
        Engine {
            store,
            apps,
            auth: AuthCache::new(http.clone()),
            http,
            config,
            wake: Notify::new(),
            public_base,
            inflight: StdMutex::new(HashMap::new()),
            locks: StdMutex::new(HashMap::new()),
            control_planes: GenerationCache::default(),
        }
    }

    async fn lock(&self, key: &FlowKey) -> FlowLock<'_> {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.clone()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        FlowLock {
            engine: self,
            key: key.clone(),
            guard: Some(guard),
        }
    }

    fn register_inflight(
        &self,
        key: &FlowKey,
        plugin_id: &str,
        counterparty: Option<WireDataAddress>,
    ) -> InFlightGuard<'_> {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key.clone(),
                InFlight {
                    plugin_id: plugin_id.to_owned(),
                    counterparty,
                    reports: Vec::new(),
                },
            );
        InFlightGuard {
            engine: self,
            key: key.clone(),
        }
    }

    /// The public data endpoint of a flow.
    pub(crate) fn data_endpoint(&self, flow_id: &str) -> String {
        format!("{}/data/{}", self.public_base, segment(flow_id))
    }

    fn settle(&self) -> OffsetDateTime {
        weft_store::now() + Duration::from_millis(self.config.callbacks.settle_ms)
    }

    pub(crate) async fn apps_for(&self, ctx: &str) -> Result<Vec<TenantApp>, DpsError> {
        self.apps.apps_for(ctx).await.map_err(directory_error)
    }

    async fn owning_app(&self, ctx: &str, plugin_id: &str) -> Result<Option<TenantApp>, DpsError> {
        Ok(self
            .apps_for(ctx)
            .await?
            .into_iter()
            .find(|a| a.plugin.id() == plugin_id))
    }

    /// The app that owns a new flow: the app that created the asset, if it serves the
    /// profile; otherwise the one the manifests' dataset selectors pick. The creator is
    /// looked up only when it could change the answer, i.e. unless exactly one enabled app
    /// serves the profile and its selectors take the dataset.
    async fn flow_owner<'a>(
        &self,
        ctx: &str,
        apps: &'a [TenantApp],
        profile: &str,
        dataset: &str,
    ) -> Result<&'a TenantApp, DpsError> {
        let serves = |a: &TenantApp| {
            a.plugin
                .manifest
                .data_plane
                .as_ref()
                .is_some_and(|dp| dp.profiles.iter().any(|p| p == profile))
        };
        let by_selectors = select_owner(apps, profile, dataset);
        let serving = apps.iter().filter(|a| serves(a)).count();
        let creator = if serving > 1 || (serving == 1 && by_selectors.is_none()) {
            match self.store.asset_owner(ctx, dataset).await {
                Ok(owner) => owner,
                Err(e) => {
                    tracing::warn!(
                        tenant = ctx,
                        "asset owner lookup failed, using selectors: {e}"
                    );
                    None
                }
            }
        } else {
            None
        };
        let created_by =
            creator.and_then(|owner| apps.iter().find(|a| a.plugin.id() == owner && serves(a)));
        created_by.or(by_selectors).ok_or_else(|| {
            DpsError::BadRequest(format!(
                "no app enabled for participant context {ctx} serves profile {profile:?} for dataset {dataset:?}"
            ))
        })
    }

    /// Mints a token for the flow and returns the address handing it out; the change
    /// stores only its hash (and the address without it).
    fn mint_address(&self, change: &mut Change) -> WireDataAddress {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        change.revoke = true;
        change.token_hash = Some(token_hash(&token));
        change.dirty = true;
        let endpoint = self.data_endpoint(&change.flow.id);
        let address = WireDataAddress::new(
            change.mode().endpoint_type(),
            &endpoint,
            &[("authType", "bearer"), ("authorization", &token)],
        );
        change.flow.own_address_json = serde_json::to_string(&address.without_secrets()).ok();
        address
    }

    /// Uses an address the app supplied instead of minting one.
    fn use_app_address(change: &mut Change, address: WireDataAddress) -> WireDataAddress {
        change.flow.own_address_json = serde_json::to_string(&address).ok();
        change.dirty = true;
        address
    }

    /// The address to hand out again on resume: a fresh token for Weft's endpoint, or the
    /// app's own address as it gave it.
    fn reissue_address(&self, change: &mut Change) -> WireDataAddress {
        match parse_address(change.flow.own_address_json.as_deref()) {
            Some(own) if own.endpoint != self.data_endpoint(&change.flow.id) => own,
            _ => self.mint_address(change),
        }
    }

    /// Calls a `data-flows` hook with the flow registered as in flight.
    async fn call_hook(
        &self,
        app: &TenantApp,
        key: &FlowKey,
        signal: FlowSignal,
        counterparty: Option<WireDataAddress>,
    ) -> (
        Result<Result<FlowOutcome, GuestError>, CallError>,
        Vec<FlowReport>,
    ) {
        let registration = self.register_inflight(key, app.plugin.id(), counterparty);
        let mut call = app.call.clone();
        call.entry = Entry::DataFlows;
        call.limits = None;
        let runtime = self.apps.runtime();
        let result = runtime.data_flow(&app.plugin, call, signal).await;
        (result, registration.take_reports())
    }

    fn wit_flow(
        flow: &FlowRecord,
        state: FlowState,
        message_id: &str,
        address: Option<&WireDataAddress>,
    ) -> DataFlow {
        use weft_runtime::bindings::data_flows::{FlowRole, TransferMode};
        DataFlow {
            id: flow.id.clone(),
            message_id: message_id.to_owned(),
            participant_id: flow.participant_id.clone(),
            counter_party_id: flow.counter_party_id.clone(),
            dataspace_context: flow.dataspace_context.clone(),
            agreement_id: flow.agreement_id.clone(),
            dataset_id: flow.dataset_id.clone(),
            profile: flow.profile.clone(),
            role: match Role::parse(&flow.role) {
                Some(Role::Consumer) => FlowRole::Consumer,
                _ => FlowRole::Provider,
            },
            mode: match Mode::parse(&flow.mode) {
                Some(Mode::Push) => TransferMode::Push,
                _ => TransferMode::Pull,
            },
            state: state.to_wit(),
            claims: flow.claims_json.clone(),
            labels: serde_json::from_str(&flow.labels_json).unwrap_or_default(),
            metadata: flow.metadata_json.clone(),
            data_address: address.map(WireDataAddress::to_wit_public),
        }
    }

    /// Writes a change and wakes the callback worker when it queued callbacks.
    async fn commit(&self, change: Change) -> Result<FlowRecord, StoreError> {
        let queued = !change.callbacks.is_empty();
        let stored = self.store.update_flow(change.into_update()).await?;
        if queued {
            self.wake.notify_one();
        }
        Ok(stored)
    }

    /// `prepare` (consumer) or `start` (provider): creates the flow, asks its owner.
    pub(crate) async fn initial(
        &self,
        ctx: &str,
        caller: &Caller,
        kind: Initial,
        msg: FlowMessage,
    ) -> Result<Ack, DpsError> {
        let data_address = match (kind, msg.mode, msg.data_address) {
            (Initial::Start, Mode::Pull, Some(_)) => {
                return Err(DpsError::BadRequest(
                    "a pull start must not carry a dataAddress".into(),
                ));
            }
            (Initial::Start, Mode::Push, None) => {
                return Err(DpsError::BadRequest(
                    "a push start needs the consumer's dataAddress".into(),
                ));
            }
            (Initial::Start, Mode::Push, Some(a)) => Some(a),
            // A prepare carries no address (RC3); one sent anyway is ignored.
            _ => None,
        };
        let apps = self.apps_for(ctx).await?;
        let owner = self
            .flow_owner(ctx, &apps, &msg.profile, &msg.dataset_id)
            .await?
            .clone();
        let key: FlowKey = (ctx.to_owned(), msg.process_id.clone());
        let _lock = self.lock(&key).await;

        if let Some(existing) = self.store.get_flow(ctx, &msg.process_id).await? {
            let stale_after = Duration::from_millis(owner.plugin.limits.wall_ms.saturating_mul(2));
            let abandoned = existing.state == FlowState::Initialized.as_str()
                && weft_store::now() - existing.updated_at > stale_after;
            if !abandoned {
                return Err(DpsError::Conflict(format!(
                    "a data flow with processId {} exists (state {})",
                    msg.process_id, existing.state
                )));
            }
            // A first signal that crashed mid-hook was never acknowledged: start over.
            self.store
                .delete_flow(ctx, &existing.id, existing.version)
                .await?;
        }

        let now = weft_store::now();
        // Stored only with the hook's answer, in one transaction: a flow the app refuses
        // (or whose hook fails) leaves nothing behind, and one that crashes mid-hook was
        // never acknowledged, so the control plane's retry starts afresh.
        let flow = FlowRecord {
            tenant_id: ctx.to_owned(),
            id: msg.process_id.clone(),
            plugin_id: owner.plugin.id().to_owned(),
            role: kind.role().as_str().to_owned(),
            mode: msg.mode.as_str().to_owned(),
            state: FlowState::Initialized.as_str().to_owned(),
            profile: msg.profile.clone(),
            message_id: msg.message_id.clone(),
            participant_id: msg.participant_id.clone(),
            counter_party_id: msg.counter_party_id.clone(),
            dataspace_context: msg.dataspace_context.clone(),
            agreement_id: msg.agreement_id.clone(),
            dataset_id: msg.dataset_id.clone(),
            claims_json: Value::Object(msg.claims.clone()).to_string(),
            labels_json: json!(msg.labels).to_string(),
            metadata_json: Value::Object(msg.metadata.clone()).to_string(),
            control_plane_id: caller.control_plane.clone(),
            callback_address: msg.callback_address.clone(),
            counterparty_address_json: data_address
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok()),
            own_address_json: None,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let event = FlowEvent {
            from_state: None,
            to_state: FlowState::Initialized.as_str().to_owned(),
            event: kind.name().to_owned(),
            message_id: Some(msg.message_id.clone()),
            detail_json: json!({ "plugin": owner.plugin.id(), "version": owner.plugin.version() })
                .to_string(),
        };
        let wit = Self::wit_flow(
            &flow,
            FlowState::Initialized,
            &msg.message_id,
            data_address.as_ref(),
        );
        let signal = match kind {
            Initial::Prepare => FlowSignal::Prepare(wit),
            Initial::Start => FlowSignal::Start(wit),
        };
        let (result, reports) = self.call_hook(&owner, &key, signal, None).await;
        let decision = match result {
            Ok(Ok(FlowOutcome::Decision(d))) => d,
            Ok(Ok(FlowOutcome::Accepted)) => {
                return Err(DpsError::Internal(
                    "the runtime answered a decision hook without a decision".into(),
                ));
            }
            Ok(Err(e)) => {
                return Err(refusal(e, kind.name()));
            }
            Err(e) => {
                return Err(call_failure(e));
            }
        };

        let mut change = Change::new(flow);
        change.events.push(event);
        let address = match decision {
            Decision::Reject(reason) => {
                return Err(DpsError::Forbidden(format!(
                    "the app refused the flow: {}",
                    truncate_reason(&reason)
                )));
            }
            Decision::Pending => {
                change.record(
                    kind.pending(),
                    "accepted:pending",
                    Some(&msg.message_id),
                    json!({}),
                );
                None
            }
            Decision::Accept(offered) => {
                change.record(
                    kind.accepted(),
                    "accepted",
                    Some(&msg.message_id),
                    json!({}),
                );
                if hands_out(kind.role(), msg.mode) {
                    Some(match offered.as_ref().map(app_address) {
                        Some(Ok(a)) => Self::use_app_address(&mut change, a),
                        Some(Err(e)) => {
                            return Err(DpsError::App(e));
                        }
                        None => self.mint_address(&mut change),
                    })
                } else {
                    None
                }
            }
        };
        let acknowledged = change.state();
        self.apply_buffered(&mut change, reports);
        self.commit(change).await?;
        tracing::info!(target: "weft::dataplane", tenant = ctx, flow = %msg.process_id, plugin = owner.plugin.id(),
            signal = kind.name(), state = %acknowledged, "data flow created");
        Ok(Ack {
            flow_id: msg.process_id,
            state: acknowledged,
            data_address: address,
        })
    }

    /// Applies reports made during a flow's own hook, after the hook's answer.
    fn apply_buffered(&self, change: &mut Change, reports: Vec<FlowReport>) {
        for report in reports {
            if let Err(e) = self.apply_report(change, report, true) {
                tracing::warn!(target: "weft::dataplane", tenant = %change.flow.tenant_id, flow = %change.flow.id,
                    "ignored a report made during the flow's hook: {e}");
            }
        }
    }

    /// Applies an app's report to a change: state, tokens, the callback.
    fn apply_report(
        &self,
        change: &mut Change,
        report: FlowReport,
        settle: bool,
    ) -> Result<(), GuestError> {
        let state = change.state();
        let role = change.role();
        let mode = change.mode();
        let not_before = if settle {
            self.settle()
        } else {
            weft_store::now()
        };
        let flow_id = change.flow.id.clone();
        let report_kind = match &report {
            FlowReport::Prepared(_) => ReportKind::Prepared,
            _ => ReportKind::Other,
        };
        match report {
            FlowReport::Prepared(offered) | FlowReport::Started(offered) => {
                // The asynchronous end of `prepare` (consumer) or `start` (provider): the
                // two differ only in role, states, the mode that carries an address, and
                // the callback's name.
                let (needed_role, from, to, address_mode, name) =
                    if matches!(report_kind, ReportKind::Prepared) {
                        (
                            Role::Consumer,
                            FlowState::Preparing,
                            FlowState::Prepared,
                            Mode::Push,
                            "prepared",
                        )
                    } else {
                        (
                            Role::Provider,
                            FlowState::Starting,
                            FlowState::Started,
                            Mode::Pull,
                            "started",
                        )
                    };
                if role != needed_role {
                    let side = if needed_role == Role::Consumer {
                        "consumer"
                    } else {
                        "provider"
                    };
                    return Err(GuestError::Conflict(format!(
                        "`{name}` is reported for {side} flows"
                    )));
                }
                if state == to {
                    return Ok(());
                }
                if state != from {
                    return Err(GuestError::Conflict(format!(
                        "data flow {flow_id} is {state}, not {from}"
                    )));
                }
                change.record(to, &format!("report:{name}"), None, json!({}));
                let address = if mode == address_mode {
                    Some(match offered.as_ref().map(app_address) {
                        Some(Ok(a)) => Self::use_app_address(change, a),
                        Some(Err(e)) => return Err(GuestError::Invalid(e)),
                        None => self.mint_address(change),
                    })
                } else {
                    None
                };
                let mut message = StatusMessage::new(&flow_id, to);
                message.data_address = address;
                change.callback(name, &message, not_before);
            }
            FlowReport::Completed => {
                if state == FlowState::Completed {
                    return Ok(());
                }
                if state != FlowState::Started {
                    return Err(GuestError::Conflict(format!(
                        "data flow {flow_id} is {state}, not STARTED"
                    )));
                }
                change.record(FlowState::Completed, "report:completed", None, json!({}));
                change.revoke_all();
                change.callback(
                    "completed",
                    &StatusMessage::new(&flow_id, FlowState::Completed),
                    not_before,
                );
            }
            FlowReport::Errored(reason) => {
                if state.is_terminal() {
                    return Err(GuestError::Conflict(format!(
                        "data flow {flow_id} is {state}, which is final"
                    )));
                }
                let reason = truncate_reason(&reason);
                change.record(state, "report:errored", None, json!({ "reason": reason }));
                let mut message = StatusMessage::new(&flow_id, state);
                message.error = Some(reason);
                change.callback("errored", &message, not_before);
            }
        }
        Ok(())
    }

    /// `started`, `suspend`, `resume`, `terminate`, `completed` on an existing flow.
    pub(crate) async fn signal(
        &self,
        ctx: &str,
        flow_id: &str,
        signal: Signal,
    ) -> Result<Ack, DpsError> {
        check_id("dataFlowId", flow_id)?;
        let key: FlowKey = (ctx.to_owned(), flow_id.to_owned());
        let _lock = self.lock(&key).await;
        let flow = self
            .store
            .get_flow(ctx, flow_id)
            .await?
            .ok_or_else(|| DpsError::NotFound(format!("no data flow {flow_id}")))?;
        let state = FlowState::parse(&flow.state).ok_or_else(|| {
            DpsError::Internal(format!("flow {flow_id} has unknown state {:?}", flow.state))
        })?;
        let role = Role::parse(&flow.role).unwrap_or(Role::Provider);
        let mode = Mode::parse(&flow.mode).unwrap_or(Mode::Pull);
        let name = signal.name();
        let target = signal.target();
        if state.is_terminal() {
            return Err(DpsError::Conflict(format!(
                "data flow {flow_id} is {state}, which is final"
            )));
        }
        if let Signal::Started { address, .. } = &signal {
            if role != Role::Consumer {
                return Err(DpsError::Conflict(
                    "`started` is sent to the consumer's data plane; this flow is a provider flow"
                        .into(),
                ));
            }
            if mode == Mode::Push && address.is_some() {
                return Err(DpsError::BadRequest(
                    "a push flow's started notification must not carry a dataAddress".into(),
                ));
            }
        }
        if let Some(a) = signal.address() {
            a.check(self.config.allow_insecure_endpoints)
                .map_err(DpsError::BadRequest)?;
        }
        if state == target {
            // Same-state signals are no-ops (as in the reference SDKs).
            return Ok(Ack {
                flow_id: flow_id.to_owned(),
                state,
                data_address: None,
            });
        }
        if !signal.allowed_from(state) {
            return Err(DpsError::Conflict(format!(
                "cannot {name} data flow {flow_id} in state {state}"
            )));
        }

        let terminal = target.is_terminal();
        let message_id = signal.message_id().map(str::to_owned);
        let counterparty = signal.address().cloned();
        let hook_address = counterparty
            .clone()
            .or_else(|| parse_address(flow.counterparty_address_json.as_deref()));
        let wit = Self::wit_flow(
            &flow,
            state,
            message_id.as_deref().unwrap_or(""),
            hook_address.as_ref(),
        );
        let hook = match &signal {
            Signal::Started { .. } => FlowSignal::Started(wit),
            Signal::Suspend { reason, .. } => FlowSignal::Suspend(wit, reason.clone()),
            Signal::Resume { .. } => FlowSignal::Resume(wit),
            Signal::Terminate { reason, .. } => FlowSignal::Terminate(wit, reason.clone()),
            Signal::Completed { .. } => FlowSignal::Completed(wit),
        };
        let reports = match self.owning_app(ctx, &flow.plugin_id).await? {
            None if terminal => {
                tracing::warn!(target: "weft::dataplane", tenant = ctx, flow = flow_id, plugin = %flow.plugin_id,
                    "the owning app is not enabled; {name} proceeds without its hook");
                Vec::new()
            }
            None => {
                return Err(DpsError::Conflict(format!(
                    "the app owning data flow {flow_id} ({}) is not enabled for this participant context",
                    flow.plugin_id
                )));
            }
            Some(app) => {
                let (result, reports) =
                    self.call_hook(&app, &key, hook, counterparty.clone()).await;
                match result {
                    Ok(Ok(_)) => reports,
                    // Terminal signals cannot be refused: the hook's failure is logged.
                    Ok(Err(e)) if terminal => {
                        tracing::warn!(target: "weft::dataplane", tenant = ctx, flow = flow_id, "{name} hook answered {e:?}; proceeding");
                        reports
                    }
                    Err(e) if terminal => {
                        tracing::warn!(target: "weft::dataplane", tenant = ctx, flow = flow_id, "{name} hook failed: {e}; proceeding");
                        Vec::new()
                    }
                    Ok(Err(e)) => return Err(refusal(e, name)),
                    Err(e) => return Err(call_failure(e)),
                }
            }
        };

        let mut change = Change::new(flow);
        if let Some(m) = &message_id {
            change.flow.message_id.clone_from(m);
        }
        let detail = match signal.reason() {
            Some(r) => json!({ "reason": r }),
            None => json!({}),
        };
        change.record(target, name, message_id.as_deref(), detail);
        if let Some(a) = &counterparty {
            change.flow.counterparty_address_json = serde_json::to_string(a).ok();
        }
        let mut address = None;
        match signal {
            Signal::Suspend { .. } | Signal::Terminate { .. } | Signal::Completed { .. } => {
                change.revoke_all()
            }
            Signal::Resume { .. } if hands_out(role, mode) => {
                address = Some(self.reissue_address(&mut change))
            }
            Signal::Resume { .. } | Signal::Started { .. } => {}
        }
        let acknowledged = change.state();
        self.apply_buffered(&mut change, reports);
        self.commit(change).await?;
        tracing::info!(target: "weft::dataplane", tenant = ctx, flow = flow_id, signal = name, state = %acknowledged, "data flow signal applied");
        Ok(Ack {
            flow_id: flow_id.to_owned(),
            state: acknowledged,
            data_address: address,
        })
    }

    /// The stored state of a flow.
    pub(crate) async fn status(&self, ctx: &str, flow_id: &str) -> Result<FlowState, DpsError> {
        check_id("dataFlowId", flow_id)?;
        let flow = self
            .store
            .get_flow(ctx, flow_id)
            .await?
            .ok_or_else(|| DpsError::NotFound(format!("no data flow {flow_id}")))?;
        FlowState::parse(&flow.state)
            .ok_or_else(|| DpsError::Internal(format!("flow {flow_id} has unknown state")))
    }

    /// An app's report (the `transfer` import): held while the flow's own hook runs,
    /// applied at once otherwise.
    pub(crate) async fn report(
        &self,
        call: &CallContext,
        flow_id: &str,
        report: FlowReport,
    ) -> Result<(), GuestError> {
        let tenant = &call.tenant.participant_context_id;
        let key: FlowKey = (tenant.clone(), flow_id.to_owned());
        if call.entry == Entry::DataFlows {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(f) = inflight.get_mut(&key)
                && f.plugin_id == call.plugin_id
            {
                if f.reports.len() >= MAX_BUFFERED_REPORTS {
                    return Err(GuestError::LimitExceeded(format!(
                        "at most {MAX_BUFFERED_REPORTS} reports per flow during one hook"
                    )));
                }
                f.reports.push(report);
                return Ok(());
            }
        }
        let _lock = tokio::time::timeout(REPORT_LOCK_WAIT, self.lock(&key))
            .await
            .map_err(|_| {
                GuestError::Unavailable(format!("data flow {flow_id} is busy with a signal; retry"))
            })?;
        let flow = self
            .store
            .get_flow(tenant, flow_id)
            .await
            .map_err(guest_store_error)?
            .filter(|f| f.plugin_id == call.plugin_id)
            .ok_or_else(|| GuestError::NotFound(format!("data flow {flow_id}")))?;
        let mut change = Change::new(flow);
        self.apply_report(&mut change, report, false)?;
        if change.dirty {
            self.commit(change).await.map_err(guest_store_error)?;
        }
        Ok(())
    }

    /// The counterparty of a flow for `transfer.send` / `counterparty-address`.
    pub(crate) async fn counterparty(
        &self,
        call: &CallContext,
        flow_id: &str,
    ) -> Result<Option<Counterparty>, GuestError> {
        let tenant = &call.tenant.participant_context_id;
        let key: FlowKey = (tenant.clone(), flow_id.to_owned());
        let held = {
            let inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            inflight
                .get(&key)
                .filter(|f| f.plugin_id == call.plugin_id)
                .and_then(|f| f.counterparty.clone())
        };
        let address = match held {
            Some(a) => Some(a),
            None => {
                let flow = self
                    .store
                    .get_flow(tenant, flow_id)
                    .await
                    .map_err(guest_store_error)?
                    .filter(|f| f.plugin_id == call.plugin_id)
                    .ok_or_else(|| GuestError::NotFound(format!("data flow {flow_id}")))?;
                let state = FlowState::parse(&flow.state).unwrap_or(FlowState::Terminated);
                if state.is_terminal() || state == FlowState::Suspended {
                    return Err(GuestError::Conflict(format!(
                        "data flow {flow_id} is {state}"
                    )));
                }
                parse_address(flow.counterparty_address_json.as_deref())
            }
        };
        Ok(address.map(|a| Counterparty {
            public: a.to_wit_public(),
            endpoint: a.endpoint.clone(),
            authorization: a.authorization_header(),
        }))
    }

    /// The control planes known for a context: registrations (most recent first), then
    /// configured ones not overridden by a registration.
    pub(crate) async fn control_planes(
        &self,
        ctx: &str,
    ) -> Result<Arc<Vec<KnownControlPlane>>, DpsError> {
        let generation = self.store.tenancy_generation();
        let key = ctx.to_owned();
        if let Some(hit) = self.control_planes.get(&key, generation) {
            return Ok(hit);
        }
        let mut out: Vec<KnownControlPlane> = Vec::new();
        for r in self.store.list_control_planes(ctx).await? {
            let authorization = match r
                .authorization_json
                .as_deref()
                .map(serde_json::from_str::<CpAuthorization>)
            {
                None => CpAuthorization::None,
                Some(Ok(a)) => a,
                Some(Err(e)) => {
                    tracing::error!(target: "weft::dataplane", tenant = ctx, control_plane = %r.id, "unreadable registration skipped: {e}");
                    continue;
                }
            };
            out.push(KnownControlPlane {
                id: r.id,
                endpoint: r.endpoint,
                authorization,
            });
        }
        for seed in self.config.control_planes.iter().filter(|s| s.serves(ctx)) {
            if !out.iter().any(|c| c.id == seed.id) {
                out.push(KnownControlPlane {
                    id: seed.id.clone(),
                    endpoint: seed.endpoint.clone(),
                    authorization: seed.authorization.clone().unwrap_or(CpAuthorization::None),
                });
            }
        }
        let out = Arc::new(out);
        self.control_planes
            .insert(key, generation, Arc::clone(&out));
        Ok(out)
    }

    /// Authenticates a control-plane request for `ctx`.
    pub(crate) async fn authenticate(
        &self,
        ctx: &str,
        authorization: Option<&str>,
    ) -> Result<Caller, DpsError> {
        check_id("participant context", ctx)?;
        let known = self.control_planes(ctx).await?;
        if known.is_empty() {
            if self.config.open_registration {
                return Ok(Caller {
                    control_plane: None,
                    verified: false,
                });
            }
            return Err(DpsError::Unauthorized(
                "no control plane is registered for this participant context".into(),
            ));
        }
        self.auth
            .authenticate(authorization, &known, &self.config.dataplane_id(ctx))
            .await
            .map_err(DpsError::Unauthorized)
    }

    /// `PUT /controlplanes`: registers or replaces; `true` when new.
    pub(crate) async fn register_control_plane(
        &self,
        ctx: &str,
        caller: &Caller,
        msg: ControlPlaneRegistrationIn,
    ) -> Result<bool, DpsError> {
        self.apps_for(ctx).await?;
        let id = msg
            .controlplane_id
            .ok_or_else(|| DpsError::BadRequest("`controlplaneId` is required".into()))?;
        check_id("controlplaneId", &id)?;
        let endpoint = msg
            .endpoint
            .ok_or_else(|| DpsError::BadRequest("`endpoint` is required".into()))?;
        crate::auth::check_endpoint(&endpoint, self.config.allow_insecure_endpoints)
            .map_err(|e| DpsError::BadRequest(format!("endpoint: {e}")))?;
        let authorization = CpAuthorization::from_registration(
            msg.authorization,
            self.config.allow_insecure_endpoints,
        )
        .map_err(DpsError::BadRequest)?;
        if caller.verified && caller.control_plane.as_deref() != Some(id.as_str()) {
            return Err(DpsError::Forbidden(
                "a control plane may only register itself".into(),
            ));
        }
        let now = weft_store::now();
        let record = ControlPlaneRecord {
            tenant_id: ctx.to_owned(),
            id: id.clone(),
            endpoint,
            authorization_json: Some(
                serde_json::to_string(&authorization)
                    .map_err(|e| DpsError::Internal(e.to_string()))?,
            ),
            created_at: now,
            updated_at: now,
        };
        let created = self.store.put_control_plane(&record).await?;
        // Callbacks that waited for a control plane can go now.
        self.wake.notify_one();
        tracing::info!(target: "weft::dataplane", tenant = ctx, control_plane = %id, created, "control plane registered");
        Ok(created)
    }

    /// `DELETE /controlplanes/{id}`.
    pub(crate) async fn delete_control_plane(
        &self,
        ctx: &str,
        caller: &Caller,
        id: &str,
    ) -> Result<(), DpsError> {
        check_id("controlplaneId", id)?;
        if caller.verified && caller.control_plane.as_deref() != Some(id) {
            return Err(DpsError::Forbidden(
                "a control plane may only unregister itself".into(),
            ));
        }
        if self.store.delete_control_plane(ctx, id).await? {
            Ok(())
        } else {
            Err(DpsError::NotFound(format!(
                "no registered control plane {id}"
            )))
        }
    }
}

/// Which asynchronous report a [`FlowReport`] is, once its payload is moved out.
#[derive(Clone, Copy)]
enum ReportKind {
    Prepared,
    Other,
}
