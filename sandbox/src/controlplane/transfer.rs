//! Transfer processes (DSP 2025-1 states) and how they drive data planes under DPS 1.0-RC3:
//! consumer `prepare` → in-process TransferRequest → provider `start` → in-process TransferStart
//! → consumer `{id}/started`; suspend, resume, terminate and completion map to the data planes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::auth::{Access, Area};
use super::catalog::{asset_profiles, protocol, resolve_counterparty, supports};
use super::management::{ApiResult, body_object, json_ok, no_content, query_spec};
use super::model::{
    DataPlane, FlowPhase, Kind, Side, Store, Transfer, TransferState, in_order, now_millis,
};
use super::signaling::message_id;
use super::{ControlPlane, events, id_response};
use crate::error::{ApiError, ErrorDetail};
use crate::jsonld;
use crate::policy;

const AREA: Area = Area::Tenant("transferprocesses");

fn event_names(state: TransferState) -> (&'static str, &'static str) {
    match state {
        TransferState::Requested => ("TransferProcessRequested", "transfer.process.requested"),
        TransferState::Started => ("TransferProcessStarted", "transfer.process.started"),
        TransferState::Suspended => ("TransferProcessSuspended", "transfer.process.suspended"),
        TransferState::Completed => ("TransferProcessCompleted", "transfer.process.completed"),
        TransferState::Terminated => ("TransferProcessTerminated", "transfer.process.terminated"),
    }
}

fn select_dataplane(
    store: &Store,
    pc: &str,
    transfer_type: &str,
    profiles: &[String],
) -> Option<DataPlane> {
    store
        .tenant(pc)?
        .dataplanes
        .iter()
        .find(|d| supports(d, transfer_type, profiles))
        .cloned()
}

fn metadata_parts(metadata: Option<&Value>) -> (Value, Value) {
    let obj = metadata.and_then(Value::as_object);
    let labels = obj
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or_else(|| json!([]));
    let properties = obj
        .and_then(|m| m.get("properties"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    (labels, properties)
}

/// A signal still to send after the state lock is released.
struct Pending {
    dataplane: DataPlane,
    path: String,
    body: Value,
}

impl ControlPlane {
    fn dataplane_of(store: &Store, t: &Transfer) -> Option<DataPlane> {
        let id = t.data_plane_id.as_ref()?;
        store
            .tenant(&t.pc)?
            .dataplanes
            .iter()
            .find(|d| &d.id == id)
            .cloned()
    }

    /// Set a transfer's state and emit its event; no-op on final transfers.
    fn set_transfer_state(&self, id: &str, state: TransferState, error: Option<&str>) -> bool {
        let emitted = {
            let mut store = self.store();
            let Some(t) = store.transfer_mut(id) else {
                return false;
            };
            if t.state.is_final() || t.state == state {
                return false;
            }
            t.set_state(state);
            if let Some(e) = error {
                t.error_detail = Some(e.to_owned());
            }
            (t.callback_addresses.clone(), t.to_json())
        };
        let (event_type, dotted) = event_names(state);
        let (callbacks, mut payload) = emitted;
        payload["transferProcessId"] = json!(id);
        self.emit(&callbacks, event_type, dotted, payload);
        true
    }

    /// Compare-and-set the data-flow phase; true if this caller moved it.
    pub(super) fn advance_flow(&self, id: &str, from: FlowPhase, to: FlowPhase) -> bool {
        let mut store = self.store();
        match store.transfer_mut(id) {
            Some(t) if t.flow == from && !t.state.is_final() => {
                t.flow = to;
                true
            }
            _ => false,
        }
    }

    /// Signals for `op` to the data planes of a transfer and its counterpart.
    fn signals_for(&self, ids: &[String], op: &str, reason: Option<&str>) -> Vec<Pending> {
        let store = self.store();
        ids.iter()
            .filter_map(|id| store.transfer(id))
            .filter(|t| t.flow != FlowPhase::Idle)
            .filter_map(|t| {
                let dataplane = Self::dataplane_of(&store, t)?;
                let mut body = json!({"messageId": message_id()});
                if let Some(reason) = reason {
                    body["reason"] = json!(reason);
                }
                if op == "completed" {
                    body = json!({});
                }
                Some(Pending {
                    dataplane,
                    path: format!("{}/{op}", t.id),
                    body,
                })
            })
            .collect()
    }

    async fn send_all(&self, pending: Vec<Pending>) {
        for p in pending {
            if let Err(error) = self.signal(&p.dataplane, &p.path, &p.body).await {
                tracing::warn!(%error, path = %p.path, "data plane signal failed");
            }
        }
    }

    /// This transfer and its counterpart.
    fn pair(&self, id: &str) -> Vec<String> {
        let store = self.store();
        let mut ids = vec![id.to_owned()];
        if let Some(other) = store.transfer(id).and_then(|t| t.correlation_id.clone()) {
            ids.push(other);
        }
        ids
    }

    /// Terminate a transfer and its counterpart, telling their data planes.
    pub(super) async fn terminate_transfer(&self, id: &str, reason: &str) {
        let ids = self.pair(id);
        let pending = self.signals_for(&ids, "terminate", Some(reason));
        for t in &ids {
            self.set_transfer_state(t, TransferState::Terminated, Some(reason));
        }
        self.send_all(pending).await;
    }

    /// A data plane reported completion: both sides COMPLETED, the other side's data plane told.
    pub(super) fn complete_transfer(&self, id: &str) {
        let ids = self.pair(id);
        let others: Vec<String> = ids.iter().filter(|t| *t != id).cloned().collect();
        let pending = self.signals_for(&others, "completed", None);
        for t in &ids {
            self.set_transfer_state(t, TransferState::Completed, None);
        }
        let cp = self.clone();
        tokio::spawn(async move { cp.send_all(pending).await });
    }

    /// Consumer side: `prepare` on the consumer's data plane, if it has one.
    async fn consumer_begin(self, id: String) {
        tokio::task::yield_now().await;
        let step = {
            let mut store = self.store();
            let Some(t) = store.transfer(&id).cloned() else {
                return;
            };
            if t.state.is_final() {
                return;
            }
            let dataplane = select_dataplane(&store, &t.pc, &t.transfer_type, &[]);
            let did = |pc: &str| {
                store
                    .participants
                    .get(pc)
                    .map(|p| p.identity.clone())
                    .unwrap_or_default()
            };
            let claims = store
                .participants
                .get(&t.counterpart_pc)
                .map(|p| p.attributes().claims())
                .unwrap_or_else(|| json!({}));
            let (labels, metadata) = metadata_parts(t.dataplane_metadata.as_ref());
            let message = json!({
                "messageId": message_id(),
                "participantId": did(&t.pc),
                "counterPartyId": t.counter_party_id,
                "dataspaceContext": self.config().dataspace_context,
                "processId": t.id,
                "agreementId": t.contract_id,
                "datasetId": t.asset_id,
                "profile": t.transfer_type,
                "claims": claims,
                "labels": labels,
                "metadata": metadata,
            });
            let push = t.is_push();
            if let Some(tm) = store.transfer_mut(&id) {
                match &dataplane {
                    Some(d) => {
                        tm.flow = FlowPhase::Preparing;
                        tm.data_plane_id = Some(d.id.clone());
                    }
                    None => tm.flow = FlowPhase::Prepared,
                }
            }
            (dataplane, message, push, t.transfer_type)
        };
        let (dataplane, message, push, transfer_type) = step;
        let Some(dataplane) = dataplane else {
            if push {
                let reason = format!(
                    "No data plane of the consumer supports transfer type '{transfer_type}'"
                );
                self.terminate_transfer(&id, &reason).await;
            } else {
                self.consumer_prepared(id, None).await;
            }
            return;
        };
        match self.signal(&dataplane, "prepare", &message).await {
            Ok(status) => {
                let state = status
                    .as_ref()
                    .and_then(|s| s.get("state"))
                    .and_then(Value::as_str);
                match state {
                    Some("PREPARED") => {
                        if self.advance_flow(&id, FlowPhase::Preparing, FlowPhase::Prepared) {
                            let address = status.and_then(|s| {
                                s.get("dataAddress").filter(|a| a.is_object()).cloned()
                            });
                            self.consumer_prepared(id, address).await;
                        }
                    }
                    Some("PREPARING") => {}
                    other => {
                        let reason = format!("prepare answered unexpected state {other:?}");
                        self.terminate_transfer(&id, &reason).await;
                    }
                }
            }
            Err(error) => {
                self.terminate_transfer(&id, &format!("prepare failed: {error}"))
                    .await
            }
        }
    }

    /// Consumer prepared: DSP TransferRequestMessage to the provider, which checks the agreement
    /// and sends `start` to its data plane.
    pub(super) async fn consumer_prepared(self, id: String, destination: Option<Value>) {
        enum Next {
            Start(String, DataPlane, Value),
            Fail(String),
            Stop,
        }
        let next = {
            let mut store = self.store();
            match self.provider_accepts(&mut store, &id, destination) {
                Ok(Some((provider_id, dataplane, message))) => {
                    Next::Start(provider_id, dataplane, message)
                }
                Ok(None) => Next::Stop,
                Err(reason) => Next::Fail(reason),
            }
        };
        match next {
            Next::Stop => {}
            Next::Fail(reason) => self.terminate_transfer(&id, &reason).await,
            Next::Start(provider_id, dataplane, message) => {
                match self.signal(&dataplane, "start", &message).await {
                    Ok(status) => {
                        let state = status
                            .as_ref()
                            .and_then(|s| s.get("state"))
                            .and_then(Value::as_str);
                        match state {
                            Some("STARTED") => {
                                if self.advance_flow(
                                    &provider_id,
                                    FlowPhase::Starting,
                                    FlowPhase::Started,
                                ) {
                                    let address = status.and_then(|s| {
                                        s.get("dataAddress").filter(|a| a.is_object()).cloned()
                                    });
                                    self.provider_started(provider_id, address).await;
                                }
                            }
                            Some("STARTING") => {}
                            other => {
                                let reason = format!("start answered unexpected state {other:?}");
                                self.terminate_transfer(&provider_id, &reason).await;
                            }
                        }
                    }
                    Err(error) => {
                        self.terminate_transfer(&provider_id, &format!("start failed: {error}"))
                            .await;
                    }
                }
            }
        }
    }

    /// The provider's side of a TransferRequestMessage. Ok(None): nothing to do (the consumer
    /// side is gone or final). Err: why the provider refuses.
    fn provider_accepts(
        &self,
        store: &mut Store,
        consumer_id: &str,
        destination: Option<Value>,
    ) -> Result<Option<(String, DataPlane, Value)>, String> {
        let Some(c) = store.transfer(consumer_id).cloned() else {
            return Ok(None);
        };
        if c.state.is_final() {
            return Ok(None);
        }
        let provider_pc =
            resolve_counterparty(store, &c.counter_party_address, Some(&c.counter_party_id))
                .ok_or_else(|| {
                    format!(
                        "counter-party at {} cannot be reached",
                        c.counter_party_address
                    )
                })?;
        let consumer = store
            .participants
            .get(&c.pc)
            .cloned()
            .ok_or("consumer context is gone")?;
        let provider = store
            .participants
            .get(&provider_pc)
            .cloned()
            .ok_or("provider context is gone")?;
        let tenant = store.tenant(&provider_pc).ok_or("provider has no data")?;
        let agreement = tenant
            .agreements
            .get(&c.contract_id)
            .filter(|a| a.consumer_id == consumer.identity)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "the provider knows no agreement '{}' with this consumer",
                    c.contract_id
                )
            })?;
        policy::evaluate(&agreement.policy, &consumer.attributes())
            .map_err(|e| format!("agreement policy no longer satisfied: {e}"))?;
        let asset = tenant
            .entity(Kind::Asset, &agreement.asset_id)
            .ok_or_else(|| format!("asset '{}' is gone", agreement.asset_id))?;
        let profiles = asset_profiles(asset);
        let asset_metadata = asset.body.get("dataplaneMetadata").cloned();
        let dataplane = select_dataplane(store, &provider_pc, &c.transfer_type, &profiles)
            .ok_or_else(|| {
                format!(
                    "No data plane of the provider supports transfer type '{}'",
                    c.transfer_type
                )
            })?;
        let push = c.is_push();
        let destination = destination.or_else(|| c.data_address.clone());
        let provider_id = uuid::Uuid::new_v4().to_string();
        let (labels, metadata) = metadata_parts(asset_metadata.as_ref());
        let mut message = json!({
            "messageId": message_id(),
            "participantId": provider.identity,
            "counterPartyId": consumer.identity,
            "dataspaceContext": self.config().dataspace_context,
            "processId": provider_id,
            "agreementId": agreement.id,
            "datasetId": agreement.asset_id,
            "profile": c.transfer_type,
            "claims": consumer.attributes().claims(),
            "labels": labels,
            "metadata": metadata,
        });
        if push && let Some(d) = &destination {
            message["dataAddress"] = d.clone();
        }
        let now = now_millis();
        let seq = store.next_seq();
        let provider_transfer = Transfer {
            id: provider_id.clone(),
            seq,
            pc: provider_pc.clone(),
            side: Side::Provider,
            state: TransferState::Requested,
            state_timestamp: now,
            created_at: now,
            asset_id: agreement.asset_id.clone(),
            contract_id: agreement.id.clone(),
            transfer_type: c.transfer_type.clone(),
            protocol: c.protocol.clone(),
            counter_party_id: consumer.identity.clone(),
            counter_party_address: self.dsp_address(&c.pc),
            counterpart_pc: c.pc.clone(),
            correlation_id: Some(c.id.clone()),
            data_plane_id: Some(dataplane.id.clone()),
            flow: FlowPhase::Starting,
            data_address: if push { destination.clone() } else { None },
            error_detail: None,
            callback_addresses: Vec::new(),
            private_properties: Map::new(),
            dataplane_metadata: asset_metadata,
            errored: Vec::new(),
        };
        store
            .tenant_mut(&provider_pc)
            .transfers
            .insert(provider_id.clone(), provider_transfer);
        if let Some(cm) = store.transfer_mut(consumer_id) {
            cm.correlation_id = Some(provider_id.clone());
            if push {
                cm.data_address = destination;
            }
        }
        Ok(Some((provider_id, dataplane, message)))
    }

    /// Provider data plane STARTED: DSP TransferStartMessage to the consumer, whose data plane
    /// gets `{id}/started` (with the DataAddress on pull).
    pub(super) async fn provider_started(self, provider_id: String, address: Option<Value>) {
        let step = {
            let mut store = self.store();
            let Some(p) = store.transfer(&provider_id).cloned() else {
                return;
            };
            let consumer = p
                .correlation_id
                .as_ref()
                .and_then(|c| store.transfer(c))
                .cloned();
            match consumer {
                Some(c) if !c.state.is_final() && !p.state.is_final() => {
                    let push = c.is_push();
                    let dataplane = Self::dataplane_of(&store, &c);
                    if !push && let Some(cm) = store.transfer_mut(&c.id) {
                        cm.data_address = address.clone();
                    }
                    let mut body = json!({"messageId": message_id()});
                    if !push && let Some(a) = &address {
                        body["dataAddress"] = a.clone();
                    }
                    Ok((c.id, dataplane, body))
                }
                _ => Err(()),
            }
        };
        let Ok((consumer_id, dataplane, body)) = step else {
            self.terminate_transfer(&provider_id, "the consumer's transfer process is gone")
                .await;
            return;
        };
        self.set_transfer_state(&provider_id, TransferState::Started, None);
        if let Some(dataplane) = dataplane {
            if let Err(error) = self
                .signal(&dataplane, &format!("{consumer_id}/started"), &body)
                .await
            {
                self.terminate_transfer(
                    &consumer_id,
                    &format!("started notification failed: {error}"),
                )
                .await;
                return;
            }
            self.advance_flow(&consumer_id, FlowPhase::Preparing, FlowPhase::Started);
            self.advance_flow(&consumer_id, FlowPhase::Prepared, FlowPhase::Started);
        }
        self.set_transfer_state(&consumer_id, TransferState::Started, None);
    }

    /// Resume a suspended transfer: provider data plane `/resume` (may return a new address),
    /// then the consumer's `/resume` with it.
    async fn resume_transfer(self, id: String) {
        let (provider, consumer) = {
            let store = self.store();
            let Some(t) = store.transfer(&id) else { return };
            let other = t.correlation_id.as_ref().and_then(|o| store.transfer(o));
            let (p, c) = match t.side {
                Side::Provider => (Some(t), other),
                Side::Consumer => (other, Some(t)),
            };
            let with_plane = |t: Option<&Transfer>| {
                t.map(|t| {
                    (
                        t.id.clone(),
                        Self::dataplane_of(&store, t).filter(|_| t.flow != FlowPhase::Idle),
                    )
                })
            };
            (with_plane(p), with_plane(c))
        };
        let mut address = None;
        if let Some((pid, Some(plane))) = &provider {
            match self
                .signal(
                    plane,
                    &format!("{pid}/resume"),
                    &json!({"messageId": message_id()}),
                )
                .await
            {
                Ok(status) => {
                    address =
                        status.and_then(|s| s.get("dataAddress").filter(|a| a.is_object()).cloned())
                }
                Err(error) => {
                    self.terminate_transfer(&id, &format!("resume failed: {error}"))
                        .await;
                    return;
                }
            }
        }
        if let Some((cid, plane)) = &consumer {
            let push = self.store().transfer(cid).is_some_and(Transfer::is_push);
            if !push
                && address.is_some()
                && let Some(c) = self.store().transfer_mut(cid)
            {
                c.data_address = address.clone();
            }
            if let Some(plane) = plane {
                let mut body = json!({"messageId": message_id()});
                if !push && let Some(a) = &address {
                    body["dataAddress"] = a.clone();
                }
                if let Err(error) = self.signal(plane, &format!("{cid}/resume"), &body).await {
                    self.terminate_transfer(&id, &format!("resume failed: {error}"))
                        .await;
                }
            }
        }
    }
}

pub(super) async fn initiate(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Write, Some(&pc))?;
    let obj = body_object(&body)?;
    let mut errors = jsonld::check_envelope(&obj, "TransferRequest");
    let address = jsonld::require_str(&obj, "counterPartyAddress", &mut errors);
    let contract_id = jsonld::require_str(&obj, "contractId", &mut errors);
    let transfer_type = jsonld::require_str(&obj, "transferType", &mut errors);
    let protocol = protocol(&obj, &mut errors);
    let metadata = jsonld::object_field(&obj, "dataplaneMetadata", false, &mut errors);
    let private = jsonld::object_field(&obj, "privateProperties", false, &mut errors);
    let callbacks = events::parse_callbacks(jsonld::get(&obj, "callbackAddresses"), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_millis();
    let payload = {
        let mut store = cp.store();
        let agreement = store
            .tenant(&pc)
            .and_then(|t| t.agreements.get(&contract_id))
            .filter(|a| a.consumer_pc == pc)
            .cloned()
            .ok_or_else(|| {
                ApiError::validation(vec![
                    ErrorDetail::new(
                        format!("Contract agreement with id {contract_id} not found"),
                        "InvalidRequest",
                    )
                    .with_path("contractId"),
                ])
            })?;
        let seq = store.next_seq();
        let transfer = Transfer {
            id: id.clone(),
            seq,
            pc: pc.clone(),
            side: Side::Consumer,
            state: TransferState::Requested,
            state_timestamp: now,
            created_at: now,
            asset_id: agreement.asset_id.clone(),
            contract_id,
            transfer_type,
            protocol,
            counter_party_id: agreement.provider_id.clone(),
            counter_party_address: address,
            counterpart_pc: agreement.provider_pc.clone(),
            correlation_id: None,
            data_plane_id: None,
            flow: FlowPhase::Idle,
            data_address: None,
            error_detail: None,
            callback_addresses: callbacks.clone(),
            private_properties: private.unwrap_or_default(),
            dataplane_metadata: metadata.map(Value::Object),
            errored: Vec::new(),
        };
        let payload = transfer.to_json();
        store.tenant_mut(&pc).transfers.insert(id.clone(), transfer);
        payload
    };
    let (event_type, dotted) = event_names(TransferState::Requested);
    cp.emit(&callbacks, event_type, dotted, payload);
    tokio::spawn(cp.clone().consumer_begin(id.clone()));
    Ok(id_response(&id, now))
}

fn find(cp: &ControlPlane, pc: &str, id: &str) -> Result<Transfer, ApiError> {
    cp.store()
        .tenant(pc)
        .and_then(|t| t.transfers.get(id).cloned())
        .ok_or_else(|| ApiError::not_found("TransferProcess", id))
}

pub(super) async fn get_one(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Read, Some(&pc))?;
    Ok(json_ok(find(&cp, &pc, &id)?.to_json()))
}

pub(super) async fn get_state(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Read, Some(&pc))?;
    let t = find(&cp, &pc, &id)?;
    Ok(json_ok(json!({
        "@context": jsonld::context(),
        "@type": "TransferState",
        "state": t.state.as_str(),
    })))
}

pub(super) async fn query(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Read, Some(&pc))?;
    let spec = query_spec(&body)?;
    let store = cp.store();
    let items: Vec<Value> = store
        .tenant(&pc)
        .map(|t| {
            in_order(t.transfers.values().map(|x| (x.seq, x)))
                .into_iter()
                .map(Transfer::to_json)
                .collect()
        })
        .unwrap_or_default();
    Ok(json_ok(Value::Array(spec.apply(items))))
}

/// Optional body of suspend/resume; required `TerminateTransfer` body with `reason`.
fn action_reason(action: &str, body: &[u8]) -> Result<Option<String>, ApiError> {
    let (type_name, reason_required) = match action {
        "terminate" => ("TerminateTransfer", true),
        "suspend" => ("SuspendTransfer", false),
        _ => ("ResumeTransfer", false),
    };
    if !reason_required && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let obj = body_object(body)?;
    let mut errors = jsonld::check_envelope(&obj, type_name);
    let reason = if reason_required {
        Some(jsonld::require_str(&obj, "reason", &mut errors))
    } else {
        jsonld::get_str(&obj, "reason")
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(reason)
}

pub(super) async fn action(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id, action)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if !matches!(action.as_str(), "terminate" | "suspend" | "resume") {
        crate::controlplane::auth::ApiVersion::parse(&ver)?;
        return Err(ApiError::not_found("TransferProcessAction", &action));
    }
    cp.guard(&headers, &ver, AREA, Access::Write, Some(&pc))?;
    let reason = action_reason(&action, &body)?;
    let t = find(&cp, &pc, &id)?;
    let refuse = |what: &str| {
        Err(ApiError::conflict(format!(
            "TransferProcess {id} is {} and cannot be {what}",
            t.state.as_str()
        )))
    };
    match action.as_str() {
        "terminate" => {
            if t.state.is_final() {
                return refuse("terminated");
            }
            let reason = reason.unwrap_or_default();
            // Mark final now so pollers see it; signal the data planes in the background.
            let ids = cp.pair(&id);
            let pending = cp.signals_for(&ids, "terminate", Some(&reason));
            for x in &ids {
                cp.set_transfer_state(x, TransferState::Terminated, Some(&reason));
            }
            let cp2 = cp.clone();
            tokio::spawn(async move { cp2.send_all(pending).await });
        }
        "suspend" => {
            if t.state != TransferState::Started {
                return refuse("suspended");
            }
            let ids = cp.pair(&id);
            let pending = cp.signals_for(&ids, "suspend", reason.as_deref());
            for x in &ids {
                cp.set_transfer_state(x, TransferState::Suspended, None);
            }
            let cp2 = cp.clone();
            tokio::spawn(async move { cp2.send_all(pending).await });
        }
        _ => {
            if t.state != TransferState::Suspended {
                return refuse("resumed");
            }
            for x in cp.pair(&id) {
                cp.set_transfer_state(&x, TransferState::Started, None);
            }
            tokio::spawn(cp.clone().resume_transfer(id.clone()));
        }
    }
    Ok(no_content())
}
