//! Contract negotiations: the consumer's request, the provider's checks (offer, definition,
//! policies against the consumer's attributes) over in-process DSP, and the state machine to
//! FINALIZED with an agreement or TERMINATED with an `errorDetail`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::auth::{Access, Area};
use super::catalog::{parse_offer_id, protocol, resolve_counterparty};
use super::management::{ApiResult, body_object, json_ok, no_content, query_spec};
use super::model::{
    Agreement, Kind, Negotiation, NegotiationState, Side, Store, in_order, now_millis,
};
use super::{ControlPlane, events, id_response};
use crate::error::{ApiError, ErrorDetail};
use crate::jsonld;
use crate::policy;
use crate::query;

const AREA: Area = Area::Tenant("contractnegotiations");

fn event_names(state: NegotiationState) -> (&'static str, &'static str) {
    match state {
        NegotiationState::Requested => (
            "ContractNegotiationRequested",
            "contract.negotiation.requested",
        ),
        NegotiationState::Agreed => ("ContractNegotiationAgreed", "contract.negotiation.agreed"),
        NegotiationState::Verified => (
            "ContractNegotiationVerified",
            "contract.negotiation.verified",
        ),
        NegotiationState::Finalized => (
            "ContractNegotiationFinalized",
            "contract.negotiation.finalized",
        ),
        NegotiationState::Terminated => (
            "ContractNegotiationTerminated",
            "contract.negotiation.terminated",
        ),
    }
}

impl ControlPlane {
    /// Move a negotiation to `state` (unless it is final) and emit the event.
    fn set_negotiation_state(
        &self,
        pc: &str,
        id: &str,
        state: NegotiationState,
        error: Option<&str>,
    ) {
        let emitted = {
            let mut store = self.store();
            let Some(n) = store.negotiation_mut(pc, id) else {
                return;
            };
            if n.state.is_final() {
                return;
            }
            n.state = state;
            n.state_timestamp = now_millis();
            if let Some(e) = error {
                n.error_detail = Some(e.to_owned());
            }
            (n.callback_addresses.clone(), n.to_json())
        };
        let (event_type, dotted) = event_names(state);
        let (callbacks, mut payload) = emitted;
        payload["contractNegotiationId"] = json!(id);
        self.emit(&callbacks, event_type, dotted, payload);
    }

    /// Run the negotiation after the consumer's request was accepted.
    async fn run_negotiation(self, consumer_pc: String, id: String, offer: Value) {
        tokio::task::yield_now().await;
        // DSP ContractRequestMessage, in process: resolve the provider and record its side.
        let provider = {
            let mut store = self.store();
            let Some(n) = store.negotiation_mut(&consumer_pc, &id).cloned() else {
                return;
            };
            let assigner = offer.get("assigner").and_then(jsonld::text);
            let assigner = assigner.as_deref().or(Some(n.counter_party_id.as_str()));
            match resolve_counterparty(&store, &n.counter_party_address, assigner) {
                None => None,
                Some(provider_pc) => {
                    let consumer_did = store
                        .participants
                        .get(&consumer_pc)
                        .map(|p| p.identity.clone())
                        .unwrap_or_default();
                    let provider_id = uuid::Uuid::new_v4().to_string();
                    let seq = store.next_seq();
                    let now = now_millis();
                    store.tenant_mut(&provider_pc).negotiations.insert(
                        provider_id.clone(),
                        Negotiation {
                            id: provider_id.clone(),
                            seq,
                            side: Side::Provider,
                            state: NegotiationState::Requested,
                            state_timestamp: now,
                            created_at: now,
                            protocol: n.protocol.clone(),
                            counter_party_id: consumer_did,
                            counter_party_address: self.dsp_address(&consumer_pc),
                            callback_addresses: Vec::new(),
                            agreement_id: None,
                            error_detail: None,
                            asset_id: None,
                            correlation_id: Some(id.clone()),
                        },
                    );
                    if let Some(c) = store.negotiation_mut(&consumer_pc, &id) {
                        c.correlation_id = Some(provider_id.clone());
                    }
                    Some((provider_pc, provider_id))
                }
            }
        };
        let Some((provider_pc, provider_id)) = provider else {
            let address = self
                .store()
                .negotiation_mut(&consumer_pc, &id)
                .map(|n| n.counter_party_address.clone())
                .unwrap_or_default();
            self.set_negotiation_state(
                &consumer_pc,
                &id,
                NegotiationState::Terminated,
                Some(&format!("counter-party at {address} cannot be reached")),
            );
            return;
        };
        tokio::task::yield_now().await;
        let decision = {
            let store = self.store();
            validate_offer(&store, &provider_pc, &consumer_pc, &offer)
        };
        let (asset_id, contract_policy) = match decision {
            Ok(ok) => ok,
            Err(reason) => {
                let reason = format!("Contract offer is not valid: {reason}");
                self.set_negotiation_state(
                    &provider_pc,
                    &provider_id,
                    NegotiationState::Terminated,
                    Some(&reason),
                );
                self.set_negotiation_state(
                    &consumer_pc,
                    &id,
                    NegotiationState::Terminated,
                    Some(&reason),
                );
                return;
            }
        };
        // Provider agrees: one agreement, stored by both sides.
        let agreement_id = uuid::Uuid::new_v4().to_string();
        {
            let mut store = self.store();
            let did = |pc: &str| {
                store
                    .participants
                    .get(pc)
                    .map(|p| p.identity.clone())
                    .unwrap_or_default()
            };
            let (consumer_did, provider_did) = (did(&consumer_pc), did(&provider_pc));
            let mut agreement_policy = contract_policy.as_object().cloned().unwrap_or_default();
            agreement_policy.insert("@id".into(), json!(agreement_id));
            agreement_policy.insert("@type".into(), json!("Agreement"));
            agreement_policy.insert("assigner".into(), json!(provider_did));
            agreement_policy.insert("assignee".into(), json!(consumer_did));
            agreement_policy.insert("target".into(), json!(asset_id));
            let signing_date = now_millis() / 1000;
            for (pc, negotiation_id) in [(&consumer_pc, &id), (&provider_pc, &provider_id)] {
                let seq = store.next_seq();
                let tenant = store.tenant_mut(pc);
                tenant.agreements.insert(
                    agreement_id.clone(),
                    Agreement {
                        id: agreement_id.clone(),
                        seq,
                        asset_id: asset_id.clone(),
                        policy: Value::Object(agreement_policy.clone()),
                        signing_date,
                        consumer_id: consumer_did.clone(),
                        provider_id: provider_did.clone(),
                        consumer_pc: consumer_pc.clone(),
                        provider_pc: provider_pc.clone(),
                        negotiation_id: negotiation_id.clone(),
                    },
                );
                if let Some(n) = tenant.negotiations.get_mut(negotiation_id) {
                    n.agreement_id = Some(agreement_id.clone());
                    n.asset_id = Some(asset_id.clone());
                }
            }
        }
        for state in [
            NegotiationState::Agreed,
            NegotiationState::Verified,
            NegotiationState::Finalized,
        ] {
            tokio::task::yield_now().await;
            self.set_negotiation_state(&provider_pc, &provider_id, state, None);
            self.set_negotiation_state(&consumer_pc, &id, state, None);
        }
    }
}

/// The provider's checks of an incoming offer. Ok: (asset id, contract policy).
fn validate_offer(
    store: &Store,
    provider_pc: &str,
    consumer_pc: &str,
    offer: &Value,
) -> Result<(String, Value), String> {
    let offer_id = offer.get("@id").and_then(Value::as_str).unwrap_or_default();
    let (def_id, asset_id) =
        parse_offer_id(offer_id).ok_or_else(|| format!("malformed offer id '{offer_id}'"))?;
    let provider = store
        .participants
        .get(provider_pc)
        .ok_or("provider unknown")?;
    let consumer = store
        .participants
        .get(consumer_pc)
        .ok_or("consumer unknown")?;
    if let Some(assigner) = offer.get("assigner").and_then(jsonld::text)
        && assigner != provider.identity
    {
        return Err(format!(
            "assigner '{assigner}' is not the provider '{}'",
            provider.identity
        ));
    }
    if let Some(target) = offer.get("target").and_then(jsonld::text)
        && target != asset_id
    {
        return Err(format!(
            "target '{target}' does not match the offer's asset '{asset_id}'"
        ));
    }
    let tenant = store.tenant(provider_pc).ok_or("provider has no data")?;
    let def = tenant
        .entity(Kind::ContractDefinition, &def_id)
        .ok_or_else(|| format!("contract definition '{def_id}' not found"))?;
    let asset = tenant
        .entity(Kind::Asset, &asset_id)
        .ok_or_else(|| format!("asset '{asset_id}' not found"))?;
    let selector = query::parse_criteria(def.body.get("assetsSelector"), "assetsSelector")
        .map_err(|_| "contract definition has an invalid assets selector".to_owned())?;
    if !query::matches_all(&asset.to_json(), &selector) {
        return Err(format!(
            "asset '{asset_id}' is not covered by contract definition '{def_id}'"
        ));
    }
    let policy_of = |field: &str| {
        jsonld::get_str(&def.body, field)
            .and_then(|id| tenant.entity(Kind::PolicyDefinition, &id))
            .and_then(|p| p.body.get("policy").cloned())
            .ok_or_else(|| format!("policy '{field}' of contract definition '{def_id}' not found"))
    };
    let access = policy_of("accessPolicyId")?;
    let contract = policy_of("contractPolicyId")?;
    if !policy::same_rules(offer, &contract) {
        return Err("the offered policy differs from the contract definition's policy".into());
    }
    let attributes = consumer.attributes();
    policy::evaluate(&access, &attributes).map_err(|e| format!("access policy: {e}"))?;
    policy::evaluate(&contract, &attributes).map_err(|e| format!("contract policy: {e}"))?;
    Ok((asset_id, contract))
}

pub(super) async fn initiate(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Write, Some(&pc))?;
    let obj = body_object(&body)?;
    let mut errors = jsonld::check_envelope(&obj, "ContractRequest");
    let address = jsonld::require_str(&obj, "counterPartyAddress", &mut errors);
    let protocol = protocol(&obj, &mut errors);
    let offer = jsonld::object_field(&obj, "policy", true, &mut errors);
    if let Some(offer) = &offer
        && offer
            .get("@id")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
    {
        errors.push(ErrorDetail::missing("policy.@id"));
    }
    let callbacks = events::parse_callbacks(jsonld::get(&obj, "callbackAddresses"), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let offer = Value::Object(offer.unwrap_or_default());
    let counter_party_id = offer
        .get("assigner")
        .and_then(jsonld::text)
        .or_else(|| jsonld::get_str(&obj, "counterPartyId"))
        .unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_millis();
    let negotiation = Negotiation {
        id: id.clone(),
        seq: 0,
        side: Side::Consumer,
        state: NegotiationState::Requested,
        state_timestamp: now,
        created_at: now,
        protocol,
        counter_party_id,
        counter_party_address: address,
        callback_addresses: callbacks,
        agreement_id: None,
        error_detail: None,
        asset_id: None,
        correlation_id: None,
    };
    let (callbacks, payload) = (
        negotiation.callback_addresses.clone(),
        negotiation.to_json(),
    );
    {
        let mut store = cp.store();
        let seq = store.next_seq();
        store
            .tenant_mut(&pc)
            .negotiations
            .insert(id.clone(), Negotiation { seq, ..negotiation });
    }
    let (event_type, dotted) = event_names(NegotiationState::Requested);
    cp.emit(&callbacks, event_type, dotted, payload);
    tokio::spawn(cp.clone().run_negotiation(pc, id.clone(), offer));
    Ok(id_response(&id, now))
}

fn find(cp: &ControlPlane, pc: &str, id: &str) -> Result<Negotiation, ApiError> {
    cp.store()
        .tenant(pc)
        .and_then(|t| t.negotiations.get(id).cloned())
        .ok_or_else(|| ApiError::not_found("ContractNegotiation", id))
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
    let n = find(&cp, &pc, &id)?;
    Ok(json_ok(json!({
        "@context": jsonld::context(),
        "@type": "NegotiationState",
        "state": n.state.as_str(),
    })))
}

pub(super) async fn get_agreement(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Read, Some(&pc))?;
    let n = find(&cp, &pc, &id)?;
    let agreement_id = n
        .agreement_id
        .ok_or_else(|| ApiError::not_found("ContractAgreement", &id))?;
    let store = cp.store();
    let agreement = store
        .tenant(&pc)
        .and_then(|t| t.agreements.get(&agreement_id))
        .ok_or_else(|| ApiError::not_found("ContractAgreement", &agreement_id))?;
    Ok(json_ok(agreement.to_json()))
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
            in_order(t.negotiations.values().map(|n| (n.seq, n)))
                .into_iter()
                .map(Negotiation::to_json)
                .collect()
        })
        .unwrap_or_default();
    Ok(json_ok(Value::Array(spec.apply(items))))
}

pub(super) async fn terminate(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Write, Some(&pc))?;
    let obj = body_object(&body)?;
    let mut errors = jsonld::check_envelope(&obj, "TerminateNegotiation");
    let reason = jsonld::require_str(&obj, "reason", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let n = find(&cp, &pc, &id)?;
    if n.state.is_final() {
        return Err(ApiError::conflict(format!(
            "ContractNegotiation {id} is {} and cannot be terminated",
            n.state.as_str()
        )));
    }
    cp.set_negotiation_state(&pc, &id, NegotiationState::Terminated, Some(&reason));
    if let Some(other) = &n.correlation_id {
        let other_pc = {
            let store = cp.store();
            store
                .tenants
                .iter()
                .find(|(_, t)| t.negotiations.contains_key(other))
                .map(|(pc, _)| pc.clone())
        };
        if let Some(other_pc) = other_pc {
            cp.set_negotiation_state(
                &other_pc,
                other,
                NegotiationState::Terminated,
                Some(&reason),
            );
        }
    }
    Ok(no_content())
}

pub(super) async fn delete(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, AREA, Access::Write, Some(&pc))?;
    let n = find(&cp, &pc, &id)?;
    if n.state != NegotiationState::Terminated {
        return Err(ApiError::conflict(format!(
            "ContractNegotiation {id} is {}; only TERMINATED negotiations can be deleted",
            n.state.as_str()
        )));
    }
    cp.store().tenant_mut(&pc).negotiations.remove(&id);
    Ok(no_content())
}
