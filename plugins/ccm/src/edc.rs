//! The connector as CCM uses it: Management API calls (create-or-exists, catalog, contract
//! negotiation, transfer) and calls to a partner through a transfer's data address.
//!
//! All I/O goes through the [`Connector`] trait: [`Host`] uses the `weft:plugin` imports;
//! native tests script a fake dataspace.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};
use weft_sdk::http::{ClientRequest, ClientResponse};
use weft_sdk::management::{self, Method, ProcessKind};
use weft_sdk::{Error, Result};

use crate::config::{PartnerConfig, Settings};
use crate::policy::{self, management_context};
use crate::store::{self, AgreementRecord, PartnerRecord};
use crate::{check, vocab};

/// Most datasets asked for in one catalog request: a partner offers one asset per
/// certificate, and a filtered catalog is small.
pub const CATALOG_LIMIT: u32 = 100;
/// Longest control-plane error text carried into an error message.
pub const MAX_ERROR_DETAIL_CHARS: usize = 500;

/// The connector operations CCM needs.
pub trait Connector {
    /// One Management API request as the tenant.
    fn management(&self, request: &management::Request) -> Result<management::Response>;
    /// Waits until a process reaches one of `states`.
    fn wait_for_state(
        &self,
        kind: ProcessKind,
        id: &str,
        states: &[&str],
        timeout: Duration,
    ) -> Result<String>;
    /// Asks for a `process-state-changed` event when the process ends.
    fn watch(&self, kind: ProcessKind, id: &str, correlation: &str) -> Result<()>;
    /// A request to the counterparty endpoint of a flow.
    fn send(&self, flow_id: &str, request: ClientRequest) -> Result<ClientResponse>;
}

/// The real connector: the host's `management` and `transfer` imports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host;

impl Connector for Host {
    fn management(&self, request: &management::Request) -> Result<management::Response> {
        request.send()
    }

    fn wait_for_state(
        &self,
        kind: ProcessKind,
        id: &str,
        states: &[&str],
        timeout: Duration,
    ) -> Result<String> {
        management::wait_for_state(kind, id, states, timeout)
    }

    fn watch(&self, kind: ProcessKind, id: &str, correlation: &str) -> Result<()> {
        management::watch(kind, id, correlation)
    }

    fn send(&self, flow_id: &str, request: ClientRequest) -> Result<ClientResponse> {
        weft_sdk::transfer::send(flow_id, request)
    }
}

/// The text of a control plane's error answer (EDC's `[{message}]` array or anything else).
pub fn error_detail(body: &str) -> String {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.get("message").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
        Ok(Value::Object(o)) => o
            .get("message")
            .or_else(|| o.get("error"))
            .and_then(Value::as_str)
            .unwrap_or(body)
            .to_owned(),
        _ => body.to_owned(),
    };
    text.chars().take(MAX_ERROR_DETAIL_CHARS).collect()
}

/// An error for an unexpected Management API answer to `what`.
pub fn unexpected(what: &str, response: &management::Response) -> Error {
    let detail = error_detail(&response.body);
    let message = format!(
        "{what}: the control plane answered {}: {detail}",
        response.status
    );
    match response.status {
        401 | 403 => Error::AccessDenied(message),
        404 => Error::NotFound(message),
        409 => Error::Conflict(message),
        500..=599 => Error::Unavailable(message),
        _ => Error::Internal(message),
    }
}

fn call(
    c: &dyn Connector,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<management::Response> {
    let mut request = management::Request::new(method, path);
    if let Some(b) = body {
        request = request.json(b)?;
    }
    c.management(&request)
}

/// What a create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The resource was created.
    Created,
    /// It existed already (409), nothing changed.
    Exists,
    /// It existed and was replaced with the wanted content.
    Updated,
}

/// `POST path` a resource; 409 means it exists.
pub fn create(c: &dyn Connector, path: &str, body: &Value) -> Result<Outcome> {
    let r = call(c, Method::Post, path, Some(body))?;
    match r.status {
        200..=299 => Ok(Outcome::Created),
        409 => Ok(Outcome::Exists),
        _ => Err(unexpected(&format!("creating {path}"), &r)),
    }
}

/// `PUT path` a resource.
pub fn put(c: &dyn Connector, path: &str, body: &Value) -> Result<()> {
    let r = call(c, Method::Put, path, Some(body))?;
    if r.is_success() {
        Ok(())
    } else {
        Err(unexpected(&format!("updating {path}"), &r))
    }
}

/// `DELETE path`; whether it existed. 409 (still referenced) is an error.
pub fn delete(c: &dyn Connector, path: &str) -> Result<bool> {
    let r = call(c, Method::Delete, path, None)?;
    match r.status {
        200..=299 => Ok(true),
        404 => Ok(false),
        _ => Err(unexpected(&format!("deleting {path}"), &r)),
    }
}

/// `GET path` as JSON.
pub fn get_json(c: &dyn Connector, path: &str) -> Result<Value> {
    let r = call(c, Method::Get, path, None)?;
    if r.is_success() {
        r.json_value()
    } else {
        Err(unexpected(&format!("reading {path}"), &r))
    }
}

/// A field of compacted output under its short, `edc:` or full IRI name.
pub fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| obj.get(format!("edc:{name}")))
        .or_else(|| obj.get(format!("{}{name}", vocab::EDC_NS)))
}

/// A field as text.
pub fn field_str(obj: &Value, name: &str) -> Option<String> {
    policy::values(field(obj, name))
        .into_iter()
        .next()
        .filter(|s| !s.is_empty())
}

/// The connector of a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    pub bpn: String,
    pub dsp_address: String,
    pub did: String,
}

/// Finds a partner: an explicit address, then the configuration, then what its own messages
/// taught (a push's `senderFeedbackUrl` and the flow's counterparty id).
pub fn partner(s: &Settings, bpn: &str, explicit: Option<PartnerConfig>) -> Result<Partner> {
    if !check::is_bpnl(bpn) {
        return Err(Error::Invalid(format!("`{bpn}` is not a BPNL")));
    }
    let found = match explicit {
        Some(p) => Some(p),
        None => match s.partners.get(bpn) {
            Some(p) => Some(p.clone()),
            None => store::get::<PartnerRecord>(&PartnerRecord::key(bpn))?.map(|p| PartnerConfig {
                dsp_address: p.dsp_address,
                did: p.did,
            }),
        },
    };
    let p = found.ok_or_else(|| {
        Error::Invalid(format!(
            "no connector address for partner {bpn}: configure partners.{bpn} (dspAddress, did) or give dspAddress and did"
        ))
    })?;
    if !check::is_http_url(&p.dsp_address) || p.did.trim().is_empty() {
        return Err(Error::Invalid(format!(
            "partner {bpn}: dspAddress must be an http(s) URL and did must be set"
        )));
    }
    Ok(Partner {
        bpn: bpn.to_owned(),
        dsp_address: p.dsp_address,
        did: p.did,
    })
}

fn counterparty_request(s: &Settings, partner: &Partner, type_name: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("@context".into(), management_context());
    body.insert("@type".into(), json!(type_name));
    body.insert("counterPartyAddress".into(), json!(partner.dsp_address));
    body.insert("counterPartyId".into(), json!(partner.did));
    body.insert(s.protocol.0.into(), json!(s.protocol.1));
    body
}

/// A dataset of a partner's catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub id: String,
    pub raw: Map<String, Value>,
    pub offers: Vec<Value>,
}

impl Dataset {
    fn prop(&self, iri: &str) -> Vec<String> {
        policy::values(policy::property(&self.raw, iri))
    }

    /// The `cx-taxo:` local names of a property.
    fn taxo(&self, iri: &str) -> Vec<String> {
        self.prop(iri)
            .into_iter()
            .map(|v| {
                v.strip_prefix(vocab::CX_TAXO_NS)
                    .map(str::to_owned)
                    .unwrap_or(v)
            })
            .collect()
    }

    /// The CCM notification API, version 3.0 (either `dct:type` spelling, §4.1).
    pub fn is_notification_api(&self) -> bool {
        let types = self.prop(vocab::DCT_TYPE);
        self.prop(vocab::DCT_SUBJECT)
            .iter()
            .any(|s| s == vocab::TAXO_NOTIFICATION_API)
            && self
                .prop(vocab::CX_VERSION)
                .iter()
                .any(|v| v == vocab::ASSET_VERSION)
            && (types.is_empty()
                || types
                    .iter()
                    .any(|t| t == vocab::TAXO_CCMAPI || t == vocab::TAXO_NOTIFICATION_API))
    }

    /// A certificate asset: subject CompanyCertificate, type Submodel or (as the reference app
    /// writes) CompanyCertificate (§4.2).
    pub fn is_certificate(&self) -> bool {
        self.prop(vocab::DCT_SUBJECT)
            .iter()
            .any(|s| s == vocab::TAXO_COMPANY_CERTIFICATE)
            && self
                .prop(vocab::DCT_TYPE)
                .iter()
                .any(|t| t == vocab::TAXO_SUBMODEL || t == vocab::TAXO_COMPANY_CERTIFICATE)
    }

    /// The normalised certificate type code.
    pub fn certificate_type(&self) -> Option<String> {
        self.taxo(vocab::DCT_CERTIFICATE_TYPE)
            .first()
            .and_then(|t| check::normalize_type_code(t).ok())
    }

    /// The enclosed site and address BPNs.
    pub fn sites(&self) -> Vec<String> {
        self.taxo(vocab::DCT_ENCLOSED_SITES)
    }
}

fn list_of<'a>(obj: &'a Value, names: &[&str]) -> Vec<&'a Value> {
    match names.iter().find_map(|n| obj.get(*n)) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// Parses a DSP catalog: its datasets and the provider's participant id.
pub fn parse_catalog(catalog: &Value) -> (Vec<Dataset>, Option<String>) {
    let participant = catalog.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| vocab::local_name(k) == "participantId")
            .and_then(|(_, v)| policy::values(Some(v)).into_iter().next())
    });
    let datasets = list_of(
        catalog,
        &[
            "dataset",
            "dcat:dataset",
            "http://www.w3.org/ns/dcat#dataset",
        ],
    )
    .into_iter()
    .filter_map(|d| {
        let raw = d.as_object()?.clone();
        let id = raw
            .get("@id")
            .or_else(|| raw.get("id"))
            .and_then(Value::as_str)?
            .to_owned();
        let offers = list_of(
            d,
            &[
                "hasPolicy",
                "odrl:hasPolicy",
                "http://www.w3.org/ns/odrl/2/hasPolicy",
            ],
        )
        .into_iter()
        .cloned()
        .collect();
        Some(Dataset { id, raw, offers })
    })
    .collect();
    (datasets, participant)
}

/// `POST catalog/request` to `partner` with filter criteria.
pub fn catalog(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    filter: Vec<Value>,
) -> Result<(Vec<Dataset>, Option<String>)> {
    let mut body = counterparty_request(s, partner, "CatalogRequest");
    body.insert(
        "querySpec".into(),
        json!({"offset": 0, "limit": CATALOG_LIMIT, "filterExpression": filter}),
    );
    let r = call(
        c,
        Method::Post,
        "catalog/request",
        Some(&Value::Object(body)),
    )?;
    if !r.is_success() {
        return Err(match r.status {
            // The control plane could not reach the partner.
            502..=504 => Error::Unavailable(format!(
                "the catalog of {} could not be read: {} {}",
                partner.bpn,
                r.status,
                error_detail(&r.body)
            )),
            _ => unexpected(&format!("the catalog of {}", partner.bpn), &r),
        });
    }
    Ok(parse_catalog(&r.json_value()?))
}

/// The first offer of `dataset` whose policy is exactly the CCM usage policy; `Err` (409)
/// explains why none is.
pub fn ccm_offer(dataset: &Dataset) -> Result<&Value> {
    let mut reasons = Vec::new();
    for offer in &dataset.offers {
        match policy::offer_has_ccm_usage(offer) {
            Ok(()) => return Ok(offer),
            Err(e) => reasons.push(e),
        }
    }
    if reasons.is_empty() {
        reasons.push("it has no offer".to_owned());
    }
    Err(Error::Conflict(format!(
        "dataset {} is not offered under the CCM usage policy: {}",
        dataset.id,
        reasons.join("; ")
    )))
}

/// Negotiates `dataset` (after checking its offer is the CCM one) and returns the agreement
/// id. A TERMINATED negotiation is [`Error::AccessDenied`] with the control plane's reason.
pub fn negotiate(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    dataset: &Dataset,
    assigner: Option<&str>,
) -> Result<String> {
    let id = start_negotiation(c, s, partner, dataset, assigner)?;
    let state = c.wait_for_state(
        ProcessKind::ContractNegotiation,
        &id,
        &["FINALIZED", "TERMINATED"],
        s.negotiation_timeout,
    )?;
    finish_negotiation(c, &id, &state)
}

/// Starts negotiating `dataset` (after checking its offer is the CCM one) without waiting;
/// returns the negotiation id.
pub fn start_negotiation(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    dataset: &Dataset,
    assigner: Option<&str>,
) -> Result<String> {
    let mut offer = ccm_offer(dataset)?.clone();
    if let Some(o) = offer.as_object_mut() {
        if !o.contains_key("assigner") && !o.contains_key("odrl:assigner") {
            o.insert("assigner".into(), json!(assigner.unwrap_or(&partner.did)));
        }
        if !o.contains_key("target") && !o.contains_key("odrl:target") {
            o.insert("target".into(), json!(dataset.id));
        }
    }
    let mut body = counterparty_request(s, partner, "ContractRequest");
    body.insert("policy".into(), offer);
    let r = call(
        c,
        Method::Post,
        "contractnegotiations",
        Some(&Value::Object(body)),
    )?;
    if !r.is_success() {
        return Err(unexpected("starting a contract negotiation", &r));
    }
    field_str(&r.json_value()?, "@id")
        .ok_or_else(|| Error::Internal("negotiation answer without @id".to_owned()))
}

/// The agreement of a finished negotiation (FINALIZED), or why it failed.
pub fn finish_negotiation(c: &dyn Connector, id: &str, state: &str) -> Result<String> {
    let n = get_json(c, &format!("contractnegotiations/{id}"))?;
    if state != "FINALIZED" {
        let detail = field_str(&n, "errorDetail").unwrap_or_else(|| state.to_owned());
        return Err(Error::AccessDenied(format!(
            "the contract negotiation {id} ended {state}: {detail}"
        )));
    }
    if let Some(a) = field_str(&n, "contractAgreementId") {
        return Ok(a);
    }
    let agreement = get_json(c, &format!("contractnegotiations/{id}/agreement"))?;
    field_str(&agreement, "@id")
        .ok_or_else(|| Error::Internal(format!("negotiation {id} has no agreement id")))
}

/// Starts an HTTP pull transfer under `agreement_id` and waits until it is STARTED. A
/// transfer that ends otherwise is [`Error::Conflict`] (a stale agreement, for example).
pub fn start_transfer(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    agreement_id: &str,
) -> Result<String> {
    let mut body = counterparty_request(s, partner, "TransferRequest");
    body.insert("contractId".into(), json!(agreement_id));
    body.insert("transferType".into(), json!(s.transfer_type));
    let r = call(
        c,
        Method::Post,
        "transferprocesses",
        Some(&Value::Object(body)),
    )?;
    if !r.is_success() {
        return Err(match r.status {
            400 | 404 | 409 => Error::Conflict(format!(
                "the transfer under agreement {agreement_id} was refused: {}",
                error_detail(&r.body)
            )),
            _ => unexpected("starting a transfer", &r),
        });
    }
    let id = field_str(&r.json_value()?, "@id")
        .ok_or_else(|| Error::Internal("transfer answer without @id".to_owned()))?;
    let state = c.wait_for_state(
        ProcessKind::TransferProcess,
        &id,
        &["STARTED", "TERMINATED", "COMPLETED", "SUSPENDED"],
        s.transfer_timeout,
    )?;
    if state != "STARTED" {
        let detail = get_json(c, &format!("transferprocesses/{id}"))
            .ok()
            .and_then(|t| field_str(&t, "errorDetail"))
            .unwrap_or_default();
        return Err(Error::Conflict(format!(
            "the transfer {id} ended {state} instead of starting: {detail}"
        )));
    }
    Ok(id)
}

/// Terminates a transfer; failures are logged, not returned (the exchange already happened).
pub fn terminate_transfer(c: &dyn Connector, id: &str, reason: &str) {
    let body =
        json!({"@context": management_context(), "@type": "TerminateTransfer", "reason": reason});
    match call(
        c,
        Method::Post,
        &format!("transferprocesses/{id}/terminate"),
        Some(&body),
    ) {
        Ok(r) if r.is_success() || r.status == 409 => {}
        Ok(r) => {
            weft_sdk::warn!("terminating transfer failed"; transfer = id, status = r.status, detail = error_detail(&r.body))
        }
        Err(e) => weft_sdk::warn!("terminating transfer failed"; transfer = id, error = e),
    }
}

/// Runs `f` with the flow id of a started transfer, then terminates the transfer.
pub fn with_transfer<T>(
    c: &dyn Connector,
    s: &Settings,
    partner: &Partner,
    agreement_id: &str,
    f: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let flow = start_transfer(c, s, partner, agreement_id)?;
    let out = f(&flow);
    terminate_transfer(c, &flow, "ccm: exchange finished");
    out
}

/// A cached agreement with `partner` for `key` (an asset id, or [`NOTIFICATION_API_KEY`]).
pub fn cached_agreement(bpn: &str, key: &str) -> Result<Option<AgreementRecord>> {
    store::get(&AgreementRecord::key(bpn, key))
}

/// Remembers an agreement.
pub fn cache_agreement(bpn: &str, key: &str, asset_id: &str, agreement_id: &str) -> Result<()> {
    store::put(
        &AgreementRecord::key(bpn, key),
        &AgreementRecord {
            agreement_id: agreement_id.to_owned(),
            asset_id: asset_id.to_owned(),
            negotiated_at: check::now_timestamp(),
        },
    )
}

/// Forgets an agreement that no longer works.
pub fn forget_agreement(bpn: &str, key: &str) -> Result<()> {
    store::delete(&AgreementRecord::key(bpn, key)).map(|_| ())
}

/// The agreement-cache key of a partner's notification API.
pub const NOTIFICATION_API_KEY: &str = "~ccmapi";

/// Reads a counterparty's answer (at most `limit` bytes) as JSON, or as a JSON string when
/// it is not JSON; `None` when empty.
pub fn read_answer(response: &mut ClientResponse, limit: usize) -> Result<Option<Value>> {
    let bytes = response.body.read_bytes(limit)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        Value::String(
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(MAX_ERROR_DETAIL_CHARS)
                .collect(),
        )
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_parse_in_both_spellings() {
        let catalog = json!({
            "@type": "Catalog",
            "participantId": "did:web:supplier",
            "dataset": [{
                "@id": "a1",
                "dct:type": {"@id": "cx-taxo:CompanyCertificate"},
                "dct:subject": {"@id": "cx-taxo:CompanyCertificate"},
                "dct:certificateType": {"@id": "cx-taxo:ISO9001"},
                "dct:enclosedSites": [{"@id": "cx-taxo:BPNS000000000001"}],
                "cx-common:version": "3.0",
                "odrl:hasPolicy": {"@id": "offer-1"}
            }, {
                "@id": "api",
                vocab::DCT_TYPE: {"@id": vocab::TAXO_CCMAPI},
                vocab::DCT_SUBJECT: {"@id": vocab::TAXO_NOTIFICATION_API},
                vocab::CX_VERSION: "3.0",
                "hasPolicy": [{"@id": "offer-2"}, {"@id": "offer-3"}]
            }]
        });
        let (datasets, participant) = parse_catalog(&catalog);
        assert_eq!(participant.as_deref(), Some("did:web:supplier"));
        assert_eq!(datasets.len(), 2);
        assert!(datasets[0].is_certificate() && !datasets[0].is_notification_api());
        assert_eq!(datasets[0].certificate_type().as_deref(), Some("iso9001"));
        assert_eq!(datasets[0].sites(), vec!["BPNS000000000001"]);
        assert_eq!(datasets[0].offers.len(), 1);
        assert!(datasets[1].is_notification_api() && !datasets[1].is_certificate());
        assert_eq!(datasets[1].offers.len(), 2);
        // The reference app's variant: type = the subject.
        let variant = json!({"dataset": {"@id": "x",
            "dct:type": {"@id": "cx-taxo:CompanyCertificateManagementNotificationApi"},
            "dct:subject": {"@id": "cx-taxo:CompanyCertificateManagementNotificationApi"},
            "cx-common:version": "3.0"}});
        assert!(parse_catalog(&variant).0[0].is_notification_api());
        let old = json!({"dataset": {"@id": "x",
            "dct:subject": {"@id": "cx-taxo:CompanyCertificateManagementNotificationApi"},
            "cx-common:version": "2.0"}});
        assert!(!parse_catalog(&old).0[0].is_notification_api());
    }

    #[test]
    fn control_plane_errors_are_summarised() {
        assert_eq!(error_detail(r#"[{"message":"a"},{"message":"b"}]"#), "a; b");
        assert_eq!(error_detail("plain"), "plain");
        let e = unexpected(
            "x",
            &management::Response {
                status: 409,
                body: "[]".into(),
            },
        );
        assert_eq!(e.kind(), "conflict");
        let e = unexpected(
            "x",
            &management::Response {
                status: 503,
                body: String::new(),
            },
        );
        assert_eq!(e.kind(), "unavailable");
    }
}
