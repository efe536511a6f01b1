//! In-memory state of the control plane: participant contexts and, per context, its assets,
//! policies, contract definitions, negotiations, agreements, transfers and data planes.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::jsonld;
use crate::policy::Attributes;

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A context's config: `entries` and `privateEntries`.
pub(crate) type ConfigEntries = (Map<String, Value>, Map<String, Value>);

/// A participant context.
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub(crate) id: String,
    pub(crate) identity: String,
    pub(crate) properties: Map<String, Value>,
    pub(crate) state: String,
    pub(crate) bpn: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) config: Option<ConfigEntries>,
}

impl Participant {
    pub(crate) fn attributes(&self) -> Attributes {
        Attributes {
            did: self.identity.clone(),
            bpn: self.bpn.clone(),
            values: self
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "@context": jsonld::context(),
            "@type": "ParticipantContext",
            "@id": self.id,
            "identity": self.identity,
            "properties": self.properties,
            "state": self.state,
            "createdAt": self.created_at,
        })
    }
}

/// The kinds of plain CRUD entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Asset,
    PolicyDefinition,
    ContractDefinition,
    CelExpression,
}

impl Kind {
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Kind::Asset => "Asset",
            Kind::PolicyDefinition => "PolicyDefinition",
            Kind::ContractDefinition => "ContractDefinition",
            Kind::CelExpression => "CelExpression",
        }
    }
}

/// A stored entity: its compacted output form without `@context`.
#[derive(Debug, Clone)]
pub(crate) struct Entity {
    pub(crate) seq: u64,
    pub(crate) body: Map<String, Value>,
}

impl Entity {
    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("@context".into(), jsonld::context());
        out.extend(self.body.clone());
        Value::Object(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Consumer,
    Provider,
}

impl Side {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Side::Consumer => "CONSUMER",
            Side::Provider => "PROVIDER",
        }
    }
}

/// Contract negotiation states (EDC names, DSP 2025-1 subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NegotiationState {
    Requested,
    Agreed,
    Verified,
    Finalized,
    Terminated,
}

impl NegotiationState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NegotiationState::Requested => "REQUESTED",
            NegotiationState::Agreed => "AGREED",
            NegotiationState::Verified => "VERIFIED",
            NegotiationState::Finalized => "FINALIZED",
            NegotiationState::Terminated => "TERMINATED",
        }
    }

    pub(crate) fn is_final(self) -> bool {
        matches!(
            self,
            NegotiationState::Finalized | NegotiationState::Terminated
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Negotiation {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) side: Side,
    pub(crate) state: NegotiationState,
    pub(crate) state_timestamp: u64,
    pub(crate) created_at: u64,
    pub(crate) protocol: String,
    pub(crate) counter_party_id: String,
    pub(crate) counter_party_address: String,
    pub(crate) callback_addresses: Vec<Value>,
    pub(crate) agreement_id: Option<String>,
    pub(crate) error_detail: Option<String>,
    pub(crate) asset_id: Option<String>,
    pub(crate) correlation_id: Option<String>,
}

impl Negotiation {
    pub(crate) fn to_json(&self) -> Value {
        let mut out = json!({
            "@context": jsonld::context(),
            "@type": "ContractNegotiation",
            "@id": self.id,
            "type": self.side.as_str(),
            "protocol": self.protocol,
            "state": self.state.as_str(),
            "stateTimestamp": self.state_timestamp,
            "counterPartyId": self.counter_party_id,
            "counterPartyAddress": self.counter_party_address,
            "callbackAddresses": self.callback_addresses,
            "createdAt": self.created_at,
        });
        if let Some(id) = &self.agreement_id {
            out["contractAgreementId"] = json!(id);
        }
        if let Some(detail) = &self.error_detail {
            out["errorDetail"] = json!(detail);
        }
        if let Some(id) = &self.correlation_id {
            out["correlationId"] = json!(id);
        }
        out
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Agreement {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) asset_id: String,
    pub(crate) policy: Value,
    pub(crate) signing_date: u64,
    pub(crate) consumer_id: String,
    pub(crate) provider_id: String,
    pub(crate) consumer_pc: String,
    pub(crate) provider_pc: String,
    pub(crate) negotiation_id: String,
}

impl Agreement {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "@context": jsonld::context(),
            "@type": "ContractAgreement",
            "@id": self.id,
            "assetId": self.asset_id,
            "policy": self.policy,
            "contractSigningDate": self.signing_date,
            "consumerId": self.consumer_id,
            "providerId": self.provider_id,
        })
    }
}

/// Transfer process states, DSP 2025-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    Requested,
    Started,
    Suspended,
    Completed,
    Terminated,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Requested => "REQUESTED",
            TransferState::Started => "STARTED",
            TransferState::Suspended => "SUSPENDED",
            TransferState::Completed => "COMPLETED",
            TransferState::Terminated => "TERMINATED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, TransferState::Completed | TransferState::Terminated)
    }
}

/// Where the data-plane side of a transfer stands (DPS data flow, as seen by the control plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowPhase {
    /// Nothing sent to a data plane yet.
    Idle,
    /// `prepare` sent; waiting for its answer or the `prepared` callback.
    Preparing,
    /// Prepared (or no consumer data plane); the provider side runs.
    Prepared,
    /// `start` sent; waiting for its answer or the `started` callback.
    Starting,
    /// The data plane reported STARTED.
    Started,
}

#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) pc: String,
    pub(crate) side: Side,
    pub(crate) state: TransferState,
    pub(crate) state_timestamp: u64,
    pub(crate) created_at: u64,
    pub(crate) asset_id: String,
    pub(crate) contract_id: String,
    pub(crate) transfer_type: String,
    pub(crate) protocol: String,
    pub(crate) counter_party_id: String,
    pub(crate) counter_party_address: String,
    pub(crate) counterpart_pc: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) data_plane_id: Option<String>,
    pub(crate) flow: FlowPhase,
    pub(crate) data_address: Option<Value>,
    pub(crate) error_detail: Option<String>,
    pub(crate) callback_addresses: Vec<Value>,
    pub(crate) private_properties: Map<String, Value>,
    pub(crate) dataplane_metadata: Option<Value>,
    pub(crate) errored: Vec<String>,
}

impl Transfer {
    pub(crate) fn to_json(&self) -> Value {
        let mut out = json!({
            "@context": jsonld::context(),
            "@type": "TransferProcess",
            "@id": self.id,
            "type": self.side.as_str(),
            "state": self.state.as_str(),
            "stateTimestamp": self.state_timestamp,
            "assetId": self.asset_id,
            "contractId": self.contract_id,
            "transferType": self.transfer_type,
            "protocol": self.protocol,
            "counterPartyId": self.counter_party_id,
            "counterPartyAddress": self.counter_party_address,
            "callbackAddresses": self.callback_addresses,
            "privateProperties": self.private_properties,
            "createdAt": self.created_at,
        });
        if let Some(id) = &self.correlation_id {
            out["correlationId"] = json!(id);
        }
        if let Some(detail) = &self.error_detail {
            out["errorDetail"] = json!(detail);
        }
        if let Some(meta) = &self.dataplane_metadata {
            out["dataplaneMetadata"] = meta.clone();
        }
        out
    }

    pub(crate) fn is_push(&self) -> bool {
        is_push(&self.transfer_type)
    }

    pub(crate) fn set_state(&mut self, state: TransferState) {
        self.state = state;
        self.state_timestamp = now_millis();
    }
}

/// Push or pull is the text after the last `-` of the transfer type (`HttpData-PUSH`,
/// `…/http-push`), as the DPS Java SDK decides it.
pub(crate) fn is_push(transfer_type: &str) -> bool {
    transfer_type
        .rsplit('-')
        .next()
        .is_some_and(|s| s.eq_ignore_ascii_case("push"))
}

/// A registered data plane.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataPlane {
    pub(crate) id: String,
    pub(crate) endpoint: String,
    pub(crate) transfer_types: Vec<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) authorization: Option<Value>,
}

/// Everything one participant context owns.
#[derive(Debug, Default)]
pub(crate) struct Tenant {
    pub(crate) entities: HashMap<Kind, BTreeMap<String, Entity>>,
    pub(crate) negotiations: BTreeMap<String, Negotiation>,
    pub(crate) agreements: BTreeMap<String, Agreement>,
    pub(crate) transfers: BTreeMap<String, Transfer>,
    pub(crate) dataplanes: Vec<DataPlane>,
}

impl Tenant {
    pub(crate) fn entities(&self, kind: Kind) -> impl Iterator<Item = &Entity> {
        self.entities
            .get(&kind)
            .into_iter()
            .flat_map(|m| m.values())
    }

    pub(crate) fn entity(&self, kind: Kind, id: &str) -> Option<&Entity> {
        self.entities.get(&kind).and_then(|m| m.get(id))
    }

    pub(crate) fn entities_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, Entity> {
        self.entities.entry(kind).or_default()
    }
}

/// The whole control-plane state.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) participants: BTreeMap<String, Participant>,
    pub(crate) tenants: HashMap<String, Tenant>,
    /// Global entities (CEL expressions).
    pub(crate) global: BTreeMap<String, Entity>,
    seq: u64,
}

impl Store {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn tenant(&self, pc: &str) -> Option<&Tenant> {
        self.tenants.get(pc)
    }

    pub(crate) fn tenant_mut(&mut self, pc: &str) -> &mut Tenant {
        self.tenants.entry(pc.to_owned()).or_default()
    }

    pub(crate) fn participant_by_did(&self, did: &str) -> Option<&Participant> {
        self.participants.values().find(|p| p.identity == did)
    }

    /// Find a transfer by id across all contexts.
    pub(crate) fn transfer(&self, id: &str) -> Option<&Transfer> {
        self.tenants.values().find_map(|t| t.transfers.get(id))
    }

    pub(crate) fn transfer_mut(&mut self, id: &str) -> Option<&mut Transfer> {
        self.tenants
            .values_mut()
            .find_map(|t| t.transfers.get_mut(id))
    }

    pub(crate) fn negotiation_mut(&mut self, pc: &str, id: &str) -> Option<&mut Negotiation> {
        self.tenants
            .get_mut(pc)
            .and_then(|t| t.negotiations.get_mut(id))
    }
}

/// Sort by insertion order.
pub(crate) fn in_order<'a, T: 'a>(items: impl Iterator<Item = (u64, &'a T)>) -> Vec<&'a T> {
    let mut v: Vec<(u64, &T)> = items.collect();
    v.sort_by_key(|(seq, _)| *seq);
    v.into_iter().map(|(_, t)| t).collect()
}
