//! Catalog requests: a DSP 2025-1 catalog built from the provider context's contract
//! definitions and assets, with access policies evaluated against the requesting context.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::auth::{Access, Area};
use super::management::{ApiResult, body_object, json_ok};
use super::model::{DataPlane, Entity, Kind, Store, in_order};
use super::{ControlPlane, DSP_PROFILE, DSP_PROTOCOL};
use crate::error::{ApiError, ErrorDetail};
use crate::jsonld::{self, DSP_CONTEXT};
use crate::policy;
use crate::query::{self, QuerySpec};

/// Protocol strings accepted in `protocol` (v4alpha era).
const PROTOCOLS: [&str; 2] = [DSP_PROTOCOL, "dataspace-protocol-http"];
/// Profile ids accepted in `profile` (now).
const PROFILES: [&str; 1] = [DSP_PROFILE];

/// `protocol` xor `profile`, with a known value (edcv.md §1.4).
pub(super) fn protocol(obj: &Map<String, Value>, errors: &mut Vec<ErrorDetail>) -> String {
    match (
        jsonld::get_str(obj, "protocol"),
        jsonld::get_str(obj, "profile"),
    ) {
        (Some(_), Some(_)) => {
            errors.push(
                ErrorDetail::new(
                    "give either 'protocol' or 'profile', not both",
                    "ValidationFailure",
                )
                .with_path("protocol"),
            );
            String::new()
        }
        (None, None) => {
            errors.push(ErrorDetail::missing("protocol"));
            String::new()
        }
        (Some(p), None) if PROTOCOLS.contains(&p.as_str()) => p,
        (None, Some(p)) if PROFILES.contains(&p.as_str()) => p,
        (Some(p), None) | (None, Some(p)) => {
            errors.push(
                ErrorDetail::new(format!("unsupported protocol '{p}'"), "ValidationFailure")
                    .with_path("protocol")
                    .with_value(json!(p)),
            );
            String::new()
        }
    }
}

/// Encode an offer id: base64(definition):base64(asset):base64(random), as EDC does.
pub(super) fn offer_id(definition: &str, asset: &str) -> String {
    format!(
        "{}:{}:{}",
        STANDARD.encode(definition),
        STANDARD.encode(asset),
        STANDARD.encode(uuid::Uuid::new_v4().to_string())
    )
}

/// Decode an offer id into (definition, asset).
pub(super) fn parse_offer_id(id: &str) -> Option<(String, String)> {
    let mut parts = id.split(':');
    let (def, asset, rand) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || rand.is_empty() {
        return None;
    }
    let decode = |s: &str| {
        STANDARD
            .decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    Some((decode(def)?, decode(asset)?))
}

/// The participant context a DSP address (`…/api/dsp/{pc}/…`) or DID names.
pub(super) fn resolve_counterparty(
    store: &Store,
    address: &str,
    id: Option<&str>,
) -> Option<String> {
    let from_address = address
        .split_once("/api/dsp/")
        .and_then(|(_, rest)| rest.split('/').next())
        .filter(|pc| store.participants.contains_key(*pc))
        .map(str::to_owned);
    match (from_address, id.filter(|i| !i.is_empty())) {
        (Some(pc), Some(did)) => {
            (store.participants.get(&pc).map(|p| p.identity.as_str()) == Some(did)).then_some(pc)
        }
        (Some(pc), None) => Some(pc),
        (None, Some(did)) => store.participant_by_did(did).map(|p| p.id.clone()),
        (None, None) => None,
    }
}

fn str_list(value: Option<&Value>) -> Vec<String> {
    jsonld::as_list(value)
        .iter()
        .filter_map(jsonld::text)
        .collect()
}

/// Transfer types the asset may be offered with (edcv.md §1.5: `dataplaneMetadata.profiles`,
/// empty means any).
pub(super) fn asset_profiles(asset: &Entity) -> Vec<String> {
    asset
        .body
        .get("dataplaneMetadata")
        .and_then(Value::as_object)
        .map(|m| str_list(jsonld::get(m, "profiles")))
        .unwrap_or_default()
}

pub(super) fn supports(dataplane: &DataPlane, transfer_type: &str, profiles: &[String]) -> bool {
    dataplane.transfer_types.iter().any(|t| t == transfer_type)
        && (profiles.is_empty() || profiles.iter().any(|p| p == transfer_type))
}

fn offer_json(id: &str, contract_policy: &Value) -> Value {
    let obj = contract_policy.as_object().cloned().unwrap_or_default();
    let rule = |name: &str| Value::Array(jsonld::as_list(obj.get(name)));
    json!({
        "@id": id,
        "@type": "Offer",
        "permission": rule("permission"),
        "prohibition": rule("prohibition"),
        "obligation": rule("obligation"),
    })
}

/// Build the provider's catalog as seen by `consumer_pc`.
pub(super) fn build_catalog(
    store: &Store,
    provider_pc: &str,
    consumer_pc: &str,
    spec: &QuerySpec,
    endpoint_url: &str,
) -> Value {
    let provider_did = store
        .participants
        .get(provider_pc)
        .map(|p| p.identity.clone())
        .unwrap_or_default();
    let consumer = store
        .participants
        .get(consumer_pc)
        .map(|p| p.attributes())
        .unwrap_or_default();
    let service_id = format!("{provider_pc}-dsp");
    let mut datasets: Vec<(Value, Vec<Value>)> = Vec::new();
    if let Some(tenant) = store.tenant(provider_pc) {
        let assets = in_order(tenant.entities(Kind::Asset).map(|e| (e.seq, e)));
        let policy_of = |id: Option<String>| {
            id.and_then(|id| tenant.entity(Kind::PolicyDefinition, &id))
                .and_then(|p| p.body.get("policy").cloned())
        };
        for def in in_order(
            tenant
                .entities(Kind::ContractDefinition)
                .map(|e| (e.seq, e)),
        ) {
            let (Some(access), Some(contract)) = (
                policy_of(jsonld::get_str(&def.body, "accessPolicyId")),
                policy_of(jsonld::get_str(&def.body, "contractPolicyId")),
            ) else {
                continue;
            };
            if policy::evaluate(&access, &consumer).is_err() {
                continue;
            }
            let Ok(selector) =
                query::parse_criteria(def.body.get("assetsSelector"), "assetsSelector")
            else {
                continue;
            };
            let def_id = def
                .body
                .get("@id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            for asset in &assets {
                let asset_json = asset.to_json();
                if !query::matches_all(&asset_json, &selector) {
                    continue;
                }
                let asset_id = asset
                    .body
                    .get("@id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let offer = offer_json(&offer_id(def_id, asset_id), &contract);
                match datasets
                    .iter_mut()
                    .find(|(a, _)| a.get("@id") == asset_json.get("@id"))
                {
                    Some((_, offers)) => offers.push(offer),
                    None => datasets.push((asset_json, vec![offer])),
                }
            }
        }
        let selected: Vec<Value> = spec.apply(datasets.iter().map(|(a, _)| a.clone()).collect());
        datasets.retain(|(a, _)| selected.contains(a));
        datasets.sort_by_key(|(a, _)| selected.iter().position(|s| s == a));
        let dataset_json: Vec<Value> = datasets
            .iter()
            .map(|(asset_json, offers)| {
                let asset_id = asset_json.get("@id").cloned().unwrap_or(Value::Null);
                let asset = asset_id
                    .as_str()
                    .and_then(|id| tenant.entity(Kind::Asset, id));
                let profiles = asset.map(asset_profiles).unwrap_or_default();
                let mut formats: Vec<String> = Vec::new();
                for plane in &tenant.dataplanes {
                    for t in &plane.transfer_types {
                        if supports(plane, t, &profiles) && !formats.contains(t) {
                            formats.push(t.clone());
                        }
                    }
                }
                let distributions: Vec<Value> = formats
                    .iter()
                    .map(|f| json!({"@type": "Distribution", "format": f, "accessService": service_id}))
                    .collect();
                let mut dataset = Map::new();
                if let Some(Value::Object(props)) = asset_json.get("properties") {
                    for (k, v) in props {
                        if k != "id" {
                            dataset.insert(k.clone(), v.clone());
                        }
                    }
                }
                dataset.insert("@id".into(), asset_id);
                dataset.insert("@type".into(), json!("Dataset"));
                dataset.insert("hasPolicy".into(), Value::Array(offers.clone()));
                dataset.insert("distribution".into(), Value::Array(distributions));
                Value::Object(dataset)
            })
            .collect();
        return json!({
            "@context": [DSP_CONTEXT],
            "@id": uuid::Uuid::new_v4().to_string(),
            "@type": "Catalog",
            "participantId": provider_did,
            "dataset": dataset_json,
            "service": [{"@id": service_id, "@type": "DataService", "endpointURL": endpoint_url}],
        });
    }
    json!({
        "@context": [DSP_CONTEXT],
        "@id": uuid::Uuid::new_v4().to_string(),
        "@type": "Catalog",
        "participantId": provider_did,
        "dataset": [],
        "service": [],
    })
}

struct CounterPartyRequest {
    address: String,
    counter_party_id: String,
    spec: QuerySpec,
    dataset_id: Option<String>,
}

fn parse_request(
    obj: &Map<String, Value>,
    type_name: &str,
) -> Result<CounterPartyRequest, ApiError> {
    let mut errors = jsonld::check_envelope(obj, type_name);
    let address = jsonld::require_str(obj, "counterPartyAddress", &mut errors);
    let counter_party_id = jsonld::require_str(obj, "counterPartyId", &mut errors);
    protocol(obj, &mut errors);
    let dataset_id = if type_name == "DatasetRequest" {
        let id = jsonld::optional_id(obj, &mut errors);
        if id.is_none() && !errors.iter().any(|e| e.path.as_deref() == Some("@id")) {
            errors.push(ErrorDetail::missing("@id"));
        }
        id
    } else {
        None
    };
    let spec = match jsonld::get(obj, "querySpec") {
        None | Some(Value::Null) => QuerySpec::default(),
        Some(Value::Object(q)) => QuerySpec::from_object(q, &mut errors),
        Some(other) => {
            errors.push(
                ErrorDetail::new("'querySpec' must be an object", "ValidationFailure")
                    .with_path("querySpec")
                    .with_value(other.clone()),
            );
            QuerySpec::default()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(CounterPartyRequest {
        address,
        counter_party_id,
        spec,
        dataset_id,
    })
}

fn catalog_for(
    cp: &ControlPlane,
    pc: &str,
    request: &CounterPartyRequest,
) -> Result<Value, ApiError> {
    let store = cp.store();
    let provider = resolve_counterparty(&store, &request.address, Some(&request.counter_party_id))
        .ok_or_else(|| {
            ApiError::bad_gateway(format!(
                "counter-party `{}` at {} cannot be reached",
                request.counter_party_id, request.address
            ))
        })?;
    Ok(build_catalog(
        &store,
        &provider,
        pc,
        &request.spec,
        &cp.dsp_address(&provider),
    ))
}

pub(super) async fn request_catalog(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("catalog"),
        Access::Read,
        Some(&pc),
    )?;
    let request = parse_request(&body_object(&body)?, "CatalogRequest")?;
    Ok(json_ok(catalog_for(&cp, &pc, &request)?))
}

pub(super) async fn request_dataset(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("catalog"),
        Access::Read,
        Some(&pc),
    )?;
    let mut request = parse_request(&body_object(&body)?, "DatasetRequest")?;
    let dataset_id = request.dataset_id.clone().unwrap_or_default();
    request.spec = QuerySpec {
        limit: query::MAX_LIMIT,
        ..QuerySpec::default()
    };
    let catalog = catalog_for(&cp, &pc, &request)?;
    let dataset = jsonld::as_list(catalog.get("dataset"))
        .into_iter()
        .find(|d| d.get("@id").and_then(Value::as_str) == Some(&dataset_id))
        .ok_or_else(|| ApiError::not_found("Dataset", &dataset_id))?;
    let mut out = Map::new();
    out.insert("@context".into(), json!([DSP_CONTEXT]));
    if let Value::Object(d) = dataset {
        out.extend(d);
    }
    Ok(json_ok(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_ids_round_trip() {
        let id = offer_id("def-1", "asset:with:colons");
        assert_eq!(
            parse_offer_id(&id),
            Some(("def-1".into(), "asset:with:colons".into()))
        );
        assert_eq!(parse_offer_id("garbage"), None);
        assert_eq!(parse_offer_id("a:b"), None);
    }
}
