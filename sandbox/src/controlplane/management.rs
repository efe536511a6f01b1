//! Management API routes: participant contexts and config, assets, policy and contract
//! definitions, CEL expressions, agreements and data-plane registration (edcv.md §1.2–1.5).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::auth::{Access, ApiVersion, Area};
use super::model::{ConfigEntries, DataPlane, Entity, Kind, Participant, in_order, now_millis};
use super::{ControlPlane, catalog, id_response, negotiation, transfer};
use crate::config::ClaimMode;
use crate::error::{ApiError, ErrorDetail};
use crate::jsonld;
use crate::query::{self, QuerySpec};

pub(super) type ApiResult = Result<Response, ApiError>;

const PARTICIPANT_STATES: [&str; 3] = ["CREATED", "ACTIVATED", "DEACTIVATED"];

pub(super) fn routes() -> Router<ControlPlane> {
    let p = "/api/mgmt/{ver}/participants/{pc}";
    Router::new()
        .route(
            "/api/mgmt/{ver}/participants",
            post(create_participant).get(list_participants),
        )
        .route(
            p,
            get(get_participant)
                .put(update_participant)
                .delete(delete_participant),
        )
        .route(
            &format!("{p}/config"),
            get(get_config).put(put_config).patch(patch_config),
        )
        .route(&format!("{p}/assets"), post(create_asset).put(update_asset))
        .route(&format!("{p}/assets/request"), post(query_assets))
        .route(
            &format!("{p}/assets/{{id}}"),
            get(get_asset).delete(delete_asset),
        )
        .route(&format!("{p}/policydefinitions"), post(create_policy))
        .route(
            &format!("{p}/policydefinitions/request"),
            post(query_policies),
        )
        .route(
            &format!("{p}/policydefinitions/{{id}}"),
            get(get_policy).put(update_policy).delete(delete_policy),
        )
        .route(
            &format!("{p}/policydefinitions/{{id}}/validate"),
            post(validate_policy),
        )
        .route(
            &format!("{p}/contractdefinitions"),
            post(create_contract_definition).put(update_contract_definition),
        )
        .route(
            &format!("{p}/contractdefinitions/request"),
            post(query_contract_definitions),
        )
        .route(
            &format!("{p}/contractdefinitions/{{id}}"),
            get(get_contract_definition).delete(delete_contract_definition),
        )
        .route(
            &format!("{p}/catalog/request"),
            post(catalog::request_catalog),
        )
        .route(
            &format!("{p}/catalog/dataset/request"),
            post(catalog::request_dataset),
        )
        .route(
            &format!("{p}/contractnegotiations"),
            post(negotiation::initiate),
        )
        .route(
            &format!("{p}/contractnegotiations/request"),
            post(negotiation::query),
        )
        .route(
            &format!("{p}/contractnegotiations/{{id}}"),
            get(negotiation::get_one).delete(negotiation::delete),
        )
        .route(
            &format!("{p}/contractnegotiations/{{id}}/state"),
            get(negotiation::get_state),
        )
        .route(
            &format!("{p}/contractnegotiations/{{id}}/agreement"),
            get(negotiation::get_agreement),
        )
        .route(
            &format!("{p}/contractnegotiations/{{id}}/terminate"),
            post(negotiation::terminate),
        )
        .route(
            &format!("{p}/contractagreements/request"),
            post(query_agreements),
        )
        .route(
            &format!("{p}/contractagreements/{{id}}"),
            get(get_agreement),
        )
        .route(
            &format!("{p}/contractagreements/{{id}}/negotiation"),
            get(get_agreement_negotiation),
        )
        .route(&format!("{p}/transferprocesses"), post(transfer::initiate))
        .route(
            &format!("{p}/transferprocesses/request"),
            post(transfer::query),
        )
        .route(
            &format!("{p}/transferprocesses/{{id}}"),
            get(transfer::get_one),
        )
        .route(
            &format!("{p}/transferprocesses/{{id}}/state"),
            get(transfer::get_state),
        )
        .route(
            &format!("{p}/transferprocesses/{{id}}/{{action}}"),
            post(transfer::action),
        )
        .route(&format!("{p}/dataplanes"), put(register_dataplane))
        .route(
            &format!("{p}/dataplanes/{{id}}"),
            axum::routing::delete(delete_dataplane),
        )
        .route(
            "/api/mgmt/{ver}/dataplanes/{pc}",
            post(register_dataplane_jad),
        )
        .route("/api/mgmt/{ver}/celexpressions", post(create_cel))
        .route("/api/mgmt/{ver}/celexpressions/request", post(query_cel))
        .route(
            "/api/mgmt/{ver}/celexpressions/{id}",
            get(get_cel).put(update_cel).delete(delete_cel),
        )
}

pub(super) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub(super) fn json_ok(value: Value) -> Response {
    Json(value).into_response()
}

/// Parse a JSON object body, turning problems into a 400 error array.
pub(super) fn body_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    jsonld::parse_object(bytes).map_err(ApiError::validation)
}

/// Parse a query body into a QuerySpec.
pub(super) fn query_spec(bytes: &[u8]) -> Result<QuerySpec, ApiError> {
    QuerySpec::parse(bytes).map_err(ApiError::validation)
}

impl ControlPlane {
    /// Parse the version segment, then authorize.
    pub(super) fn guard(
        &self,
        headers: &HeaderMap,
        ver: &str,
        area: Area,
        access: Access,
        pc: Option<&str>,
    ) -> Result<super::auth::Principal, ApiError> {
        ApiVersion::parse(ver)?;
        self.authorize(headers, area, access, pc)
    }
}

// ---------------------------------------------------------------- participant contexts

fn participant_from_body(
    obj: &Map<String, Value>,
    id: Option<&str>,
) -> Result<(String, Participant), ApiError> {
    let mut errors = jsonld::check_envelope(obj, "ParticipantContext");
    let body_id = jsonld::optional_id(obj, &mut errors);
    let identity = jsonld::require_str(obj, "identity", &mut errors);
    let properties =
        jsonld::object_field(obj, "properties", false, &mut errors).unwrap_or_default();
    let state = match jsonld::get_str(obj, "state") {
        None => "CREATED".to_owned(),
        Some(s) if PARTICIPANT_STATES.contains(&s.as_str()) => s,
        Some(s) => {
            errors.push(
                ErrorDetail::new(
                    "'state' must be CREATED, ACTIVATED or DEACTIVATED",
                    "ValidationFailure",
                )
                .with_path("state")
                .with_value(json!(s)),
            );
            String::new()
        }
    };
    if let (Some(path_id), Some(body_id)) = (id, &body_id)
        && path_id != body_id
    {
        errors.push(
            ErrorDetail::new("'@id' does not match the path", "ValidationFailure").with_path("@id"),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let id = id
        .map(str::to_owned)
        .or(body_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let bpn = ["bpn", "BusinessPartnerNumber", "BPN"]
        .iter()
        .find_map(|k| {
            properties
                .get(*k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    Ok((
        id.clone(),
        Participant {
            id,
            identity,
            properties,
            state,
            bpn,
            created_at: now_millis(),
            config: None,
        },
    ))
}

async fn create_participant(
    State(cp): State<ControlPlane>,
    Path(ver): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Write, None)?;
    let obj = body_object(&body)?;
    let (id, participant) = participant_from_body(&obj, None)?;
    let created_at = participant.created_at;
    let mut store = cp.store();
    if store.participants.contains_key(&id) {
        return Err(ApiError::conflict(format!(
            "Object of type ParticipantContext with ID={id} already exists"
        )));
    }
    store.participants.insert(id.clone(), participant);
    store.tenant_mut(&id);
    Ok(id_response(&id, created_at))
}

async fn list_participants(
    State(cp): State<ControlPlane>,
    Path(ver): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Read, None)?;
    let store = cp.store();
    let list: Vec<Value> = store
        .participants
        .values()
        .map(Participant::to_json)
        .collect();
    Ok(json_ok(Value::Array(list)))
}

async fn get_participant(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Read, Some(&pc))?;
    let store = cp.store();
    let participant = store
        .participants
        .get(&pc)
        .ok_or_else(|| ApiError::not_found("ParticipantContext", &pc))?;
    Ok(json_ok(participant.to_json()))
}

async fn update_participant(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Write, Some(&pc))?;
    let obj = body_object(&body)?;
    let (_, mut participant) = participant_from_body(&obj, Some(&pc))?;
    let mut store = cp.store();
    let existing = store
        .participants
        .get(&pc)
        .ok_or_else(|| ApiError::not_found("ParticipantContext", &pc))?;
    participant.created_at = existing.created_at;
    participant.config = existing.config.clone();
    store.participants.insert(pc, participant);
    Ok(no_content())
}

async fn delete_participant(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Write, Some(&pc))?;
    let mut store = cp.store();
    store.participants.remove(&pc);
    store.tenants.remove(&pc);
    Ok(no_content())
}

async fn get_config(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Read, Some(&pc))?;
    let store = cp.store();
    let participant = store
        .participants
        .get(&pc)
        .ok_or_else(|| ApiError::not_found("ParticipantContext", &pc))?;
    let entries = participant
        .config
        .as_ref()
        .map(|(e, _)| e.clone())
        .unwrap_or_default();
    Ok(json_ok(json!({
        "@context": jsonld::context(),
        "@type": "ParticipantContextConfig",
        "@id": pc,
        "entries": entries,
    })))
}

fn config_from_body(
    obj: &Map<String, Value>,
    entries_required: bool,
) -> Result<ConfigEntries, ApiError> {
    let mut errors = jsonld::check_envelope(obj, "ParticipantContextConfig");
    let entries = jsonld::object_field(obj, "entries", entries_required, &mut errors);
    let private = jsonld::object_field(obj, "privateEntries", false, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok((entries.unwrap_or_default(), private.unwrap_or_default()))
}

async fn put_config(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::Participants, Access::Write, Some(&pc))?;
    let config = config_from_body(&body_object(&body)?, true)?;
    let mut store = cp.store();
    let participant = store
        .participants
        .get_mut(&pc)
        .ok_or_else(|| ApiError::not_found("ParticipantContext", &pc))?;
    participant.config = Some(config);
    Ok(no_content())
}

async fn patch_config(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if ApiVersion::parse(&ver)? != ApiVersion::V5beta {
        return Err(ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: json!([{"message": "PATCH of config exists from v5beta on", "type": "InvalidRequest"}]),
        });
    }
    cp.guard(&headers, &ver, Area::Participants, Access::Write, Some(&pc))?;
    let (entries, private) = config_from_body(&body_object(&body)?, false)?;
    let mut store = cp.store();
    let participant = store
        .participants
        .get_mut(&pc)
        .ok_or_else(|| ApiError::not_found("ParticipantContext", &pc))?;
    let (e, p) = participant.config.get_or_insert_with(Default::default);
    e.extend(entries);
    p.extend(private);
    Ok(no_content())
}

// ---------------------------------------------------------------- plain entities

fn area_of(kind: Kind) -> Area {
    match kind {
        Kind::Asset => Area::Tenant("assets"),
        Kind::PolicyDefinition => Area::Tenant("policydefinitions"),
        Kind::ContractDefinition => Area::Tenant("contractdefinitions"),
        Kind::CelExpression => Area::CelExpressions,
    }
}

fn is_set_type(t: &str) -> bool {
    matches!(jsonld::odrl_short(t), "Set")
}

/// Validate a create/update body and build the stored entity body.
fn entity_body(
    kind: Kind,
    obj: Map<String, Value>,
    path_id: Option<&str>,
) -> Result<(String, Map<String, Value>), ApiError> {
    let mut errors = jsonld::check_envelope(&obj, kind.type_name());
    let body_id = jsonld::optional_id(&obj, &mut errors);
    match kind {
        Kind::Asset => {
            jsonld::object_field(&obj, "properties", true, &mut errors);
            jsonld::object_field(&obj, "privateProperties", false, &mut errors);
            jsonld::object_field(&obj, "dataAddress", false, &mut errors);
            jsonld::object_field(&obj, "dataplaneMetadata", false, &mut errors);
        }
        Kind::PolicyDefinition => {
            if let Some(policy) = jsonld::object_field(&obj, "policy", true, &mut errors) {
                match policy.get("@type").and_then(Value::as_str) {
                    Some(t) if is_set_type(t) => {}
                    other => errors.push(
                        ErrorDetail::new("'policy.@type' must be 'Set'", "ValidationFailure")
                            .with_path("policy.@type")
                            .with_value(other.map(|t| json!(t)).unwrap_or(Value::Null)),
                    ),
                }
            }
            jsonld::object_field(&obj, "privateProperties", false, &mut errors);
        }
        Kind::ContractDefinition => {
            jsonld::require_str(&obj, "accessPolicyId", &mut errors);
            jsonld::require_str(&obj, "contractPolicyId", &mut errors);
            if let Err(mut e) =
                query::parse_criteria(jsonld::get(&obj, "assetsSelector"), "assetsSelector")
            {
                errors.append(&mut e);
            }
        }
        Kind::CelExpression => {
            jsonld::require_str(&obj, "leftOperand", &mut errors);
            jsonld::require_str(&obj, "expression", &mut errors);
            jsonld::require_str(&obj, "description", &mut errors);
        }
    }
    let id = match (path_id, body_id) {
        (Some(p), Some(b)) if p != b => {
            errors.push(
                ErrorDetail::new("'@id' does not match the path", "ValidationFailure")
                    .with_path("@id"),
            );
            String::new()
        }
        (Some(p), _) => p.to_owned(),
        (None, Some(b)) => b,
        (None, None) => uuid::Uuid::new_v4().to_string(),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut body = jsonld::compact_keys(obj);
    body.remove("@context");
    body.insert("@type".into(), json!(kind.type_name()));
    body.insert("@id".into(), json!(id));
    match kind {
        Kind::Asset => {
            if let Some(Value::Object(props)) = body.get_mut("properties") {
                props.insert("id".into(), json!(id));
            }
        }
        Kind::ContractDefinition => {
            let selector = jsonld::as_list(body.get("assetsSelector"));
            body.insert("assetsSelector".into(), Value::Array(selector));
        }
        _ => {}
    }
    Ok((id, body))
}

fn scoped<'a>(
    store: &'a mut super::model::Store,
    kind: Kind,
    pc: &str,
) -> &'a mut std::collections::BTreeMap<String, Entity> {
    match kind {
        Kind::CelExpression => &mut store.global,
        _ => store.tenant_mut(pc).entities_mut(kind),
    }
}

fn create_entity(cp: &ControlPlane, kind: Kind, pc: &str, body: &[u8]) -> ApiResult {
    let (id, mut entity_body) = entity_body(kind, body_object(body)?, None)?;
    let created_at = now_millis();
    entity_body.insert("createdAt".into(), json!(created_at));
    let mut store = cp.store();
    let seq = store.next_seq();
    let map = scoped(&mut store, kind, pc);
    if map.contains_key(&id) {
        return Err(ApiError::conflict(format!(
            "Object of type {} with ID={id} already exists",
            kind.type_name()
        )));
    }
    map.insert(
        id.clone(),
        Entity {
            seq,
            body: entity_body,
        },
    );
    Ok(id_response(&id, created_at))
}

fn update_entity(
    cp: &ControlPlane,
    kind: Kind,
    pc: &str,
    path_id: Option<&str>,
    body: &[u8],
) -> ApiResult {
    let obj = body_object(body)?;
    if path_id.is_none() && obj.get("@id").is_none() {
        return Err(ApiError::validation(vec![ErrorDetail::missing("@id")]));
    }
    let (id, mut entity_body) = entity_body(kind, obj, path_id)?;
    let mut store = cp.store();
    let map = scoped(&mut store, kind, pc);
    let existing = map
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(kind.type_name(), &id))?;
    let created_at = existing
        .body
        .get("createdAt")
        .cloned()
        .unwrap_or(json!(now_millis()));
    entity_body.insert("createdAt".into(), created_at);
    existing.body = entity_body;
    Ok(no_content())
}

fn get_entity(cp: &ControlPlane, kind: Kind, pc: &str, id: &str) -> ApiResult {
    let mut store = cp.store();
    let map = scoped(&mut store, kind, pc);
    let entity = map
        .get(id)
        .ok_or_else(|| ApiError::not_found(kind.type_name(), id))?;
    Ok(json_ok(entity.to_json()))
}

fn delete_entity(cp: &ControlPlane, kind: Kind, pc: &str, id: &str) -> ApiResult {
    let mut store = cp.store();
    if kind != Kind::CelExpression {
        let tenant = store.tenant_mut(pc);
        if tenant.entity(kind, id).is_none() {
            return Err(ApiError::not_found(kind.type_name(), id));
        }
        match kind {
            Kind::PolicyDefinition => {
                if let Some(def) = tenant.entities(Kind::ContractDefinition).find(|d| {
                    [
                        jsonld::get_str(&d.body, "accessPolicyId"),
                        jsonld::get_str(&d.body, "contractPolicyId"),
                    ]
                    .iter()
                    .any(|p| p.as_deref() == Some(id))
                }) {
                    return Err(ApiError::conflict(format!(
                        "PolicyDefinition {id} is referenced by ContractDefinition {}",
                        def.body
                            .get("@id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                    )));
                }
            }
            Kind::Asset => {
                if let Some(agreement) = tenant.agreements.values().find(|a| a.asset_id == id) {
                    return Err(ApiError::conflict(format!(
                        "Asset {id} is referenced by ContractAgreement {}",
                        agreement.id
                    )));
                }
            }
            _ => {}
        }
    }
    let map = scoped(&mut store, kind, pc);
    map.remove(id)
        .ok_or_else(|| ApiError::not_found(kind.type_name(), id))?;
    Ok(no_content())
}

fn query_entities(cp: &ControlPlane, kind: Kind, pc: &str, body: &[u8]) -> ApiResult {
    let spec = query_spec(body)?;
    let mut store = cp.store();
    let map = scoped(&mut store, kind, pc);
    let items: Vec<Value> = in_order(map.values().map(|e| (e.seq, e)))
        .into_iter()
        .map(Entity::to_json)
        .collect();
    Ok(json_ok(Value::Array(spec.apply(items))))
}

type PcPath = Path<(String, String)>;
type IdPath = Path<(String, String, String)>;

async fn create_asset(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::Asset),
        Access::Write,
        Some(&pc),
    )?;
    create_entity(&cp, Kind::Asset, &pc, &body)
}
async fn update_asset(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::Asset),
        Access::Write,
        Some(&pc),
    )?;
    update_entity(&cp, Kind::Asset, &pc, None, &body)
}
async fn query_assets(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::Asset),
        Access::Read,
        Some(&pc),
    )?;
    query_entities(&cp, Kind::Asset, &pc, &body)
}
async fn get_asset(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::Asset),
        Access::Read,
        Some(&pc),
    )?;
    get_entity(&cp, Kind::Asset, &pc, &id)
}
async fn delete_asset(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    // VC quirk (edcv.md §1.2): in the role/scope model, asset DELETE only needs the read scope.
    let access = match cp.config().claim_mode {
        ClaimMode::ParticipantContext => Access::Read,
        ClaimMode::Subject => Access::Write,
    };
    cp.guard(&headers, &ver, area_of(Kind::Asset), access, Some(&pc))?;
    delete_entity(&cp, Kind::Asset, &pc, &id)
}

async fn create_policy(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::PolicyDefinition),
        Access::Write,
        Some(&pc),
    )?;
    create_entity(&cp, Kind::PolicyDefinition, &pc, &body)
}
async fn update_policy(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::PolicyDefinition),
        Access::Write,
        Some(&pc),
    )?;
    update_entity(&cp, Kind::PolicyDefinition, &pc, Some(&id), &body)
}
async fn query_policies(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::PolicyDefinition),
        Access::Read,
        Some(&pc),
    )?;
    query_entities(&cp, Kind::PolicyDefinition, &pc, &body)
}
async fn get_policy(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::PolicyDefinition),
        Access::Read,
        Some(&pc),
    )?;
    get_entity(&cp, Kind::PolicyDefinition, &pc, &id)
}
async fn delete_policy(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::PolicyDefinition),
        Access::Write,
        Some(&pc),
    )?;
    delete_entity(&cp, Kind::PolicyDefinition, &pc, &id)
}
async fn validate_policy(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::PolicyDefinition),
        Access::Read,
        Some(&pc),
    )?;
    let store = cp.store();
    let entity = store
        .tenant(&pc)
        .and_then(|t| t.entity(Kind::PolicyDefinition, &id))
        .ok_or_else(|| ApiError::not_found("PolicyDefinition", &id))?;
    let policy = entity.body.get("policy").cloned().unwrap_or(Value::Null);
    let errors = crate::policy::well_formed(&policy);
    Ok(json_ok(json!({
        "@context": jsonld::context(),
        "@type": "PolicyValidationResult",
        "isValid": errors.is_empty(),
        "errors": errors,
    })))
}

async fn create_contract_definition(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::ContractDefinition),
        Access::Write,
        Some(&pc),
    )?;
    create_entity(&cp, Kind::ContractDefinition, &pc, &body)
}
async fn update_contract_definition(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::ContractDefinition),
        Access::Write,
        Some(&pc),
    )?;
    update_entity(&cp, Kind::ContractDefinition, &pc, None, &body)
}
async fn query_contract_definitions(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::ContractDefinition),
        Access::Read,
        Some(&pc),
    )?;
    query_entities(&cp, Kind::ContractDefinition, &pc, &body)
}
async fn get_contract_definition(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::ContractDefinition),
        Access::Read,
        Some(&pc),
    )?;
    get_entity(&cp, Kind::ContractDefinition, &pc, &id)
}
async fn delete_contract_definition(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        area_of(Kind::ContractDefinition),
        Access::Write,
        Some(&pc),
    )?;
    delete_entity(&cp, Kind::ContractDefinition, &pc, &id)
}

async fn create_cel(
    State(cp): State<ControlPlane>,
    Path(ver): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::CelExpressions, Access::Write, None)?;
    create_entity(&cp, Kind::CelExpression, "", &body)
}
async fn query_cel(
    State(cp): State<ControlPlane>,
    Path(ver): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::CelExpressions, Access::Read, None)?;
    query_entities(&cp, Kind::CelExpression, "", &body)
}
async fn get_cel(
    State(cp): State<ControlPlane>,
    Path((ver, id)): PcPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::CelExpressions, Access::Read, None)?;
    get_entity(&cp, Kind::CelExpression, "", &id)
}
async fn update_cel(
    State(cp): State<ControlPlane>,
    Path((ver, id)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::CelExpressions, Access::Write, None)?;
    update_entity(&cp, Kind::CelExpression, "", Some(&id), &body)
}
async fn delete_cel(
    State(cp): State<ControlPlane>,
    Path((ver, id)): PcPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(&headers, &ver, Area::CelExpressions, Access::Write, None)?;
    delete_entity(&cp, Kind::CelExpression, "", &id)
}

// ---------------------------------------------------------------- agreements

async fn query_agreements(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("contractagreements"),
        Access::Read,
        Some(&pc),
    )?;
    let spec = query_spec(&body)?;
    let store = cp.store();
    let items: Vec<Value> = store
        .tenant(&pc)
        .map(|t| {
            in_order(t.agreements.values().map(|a| (a.seq, a)))
                .into_iter()
                .map(|a| a.to_json())
                .collect()
        })
        .unwrap_or_default();
    Ok(json_ok(Value::Array(spec.apply(items))))
}

async fn get_agreement(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("contractagreements"),
        Access::Read,
        Some(&pc),
    )?;
    let store = cp.store();
    let agreement = store
        .tenant(&pc)
        .and_then(|t| t.agreements.get(&id))
        .ok_or_else(|| ApiError::not_found("ContractAgreement", &id))?;
    Ok(json_ok(agreement.to_json()))
}

async fn get_agreement_negotiation(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("contractagreements"),
        Access::Read,
        Some(&pc),
    )?;
    let store = cp.store();
    let tenant = store
        .tenant(&pc)
        .ok_or_else(|| ApiError::not_found("ContractAgreement", &id))?;
    let agreement = tenant
        .agreements
        .get(&id)
        .ok_or_else(|| ApiError::not_found("ContractAgreement", &id))?;
    let negotiation = tenant
        .negotiations
        .get(&agreement.negotiation_id)
        .ok_or_else(|| ApiError::not_found("ContractNegotiation", &agreement.negotiation_id))?;
    Ok(json_ok(negotiation.to_json()))
}

// ---------------------------------------------------------------- data planes

fn string_list(
    obj: &Map<String, Value>,
    names: &[&str],
    required: bool,
    errors: &mut Vec<ErrorDetail>,
) -> Vec<String> {
    let Some((name, value)) = names.iter().find_map(|n| obj.get(*n).map(|v| (*n, v))) else {
        if required {
            errors.push(ErrorDetail::missing(
                names.first().copied().unwrap_or_default(),
            ));
        }
        return Vec::new();
    };
    match value.as_array().map(|a| {
        a.iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    }) {
        Some(Some(list)) => list,
        _ => {
            errors.push(
                ErrorDetail::new(
                    format!("'{name}' must be an array of strings"),
                    "ValidationFailure",
                )
                .with_path(name)
                .with_value(value.clone()),
            );
            Vec::new()
        }
    }
}

/// Accept `dataplaneId` or `id`, `transferTypes` or `profiles` (edcv.md §1.5, dps.md §3).
fn dataplane_from_body(obj: &Map<String, Value>) -> Result<DataPlane, ApiError> {
    let mut errors = Vec::new();
    let id = ["dataplaneId", "id", "@id"]
        .iter()
        .find_map(|k| {
            obj.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        })
        .map(str::to_owned);
    if id.is_none() {
        errors.push(ErrorDetail::missing("dataplaneId"));
    }
    let endpoint = jsonld::require_str(obj, "endpoint", &mut errors);
    if !(endpoint.is_empty() || endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        errors.push(
            ErrorDetail::new("'endpoint' must be an http(s) URL", "ValidationFailure")
                .with_path("endpoint")
                .with_value(json!(endpoint)),
        );
    }
    let transfer_types = string_list(obj, &["transferTypes", "profiles"], true, &mut errors);
    let labels = string_list(obj, &["labels"], false, &mut errors);
    let authorization = match obj.get("authorization") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) if a.get("type").and_then(Value::as_str).is_some() => {
            Some(Value::Object(a.clone()))
        }
        Some(other) => {
            errors.push(
                ErrorDetail::new(
                    "'authorization' must be an object with a 'type'",
                    "ValidationFailure",
                )
                .with_path("authorization")
                .with_value(other.clone()),
            );
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(DataPlane {
        id: id.unwrap_or_default(),
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        transfer_types,
        labels,
        authorization,
    })
}

fn upsert_dataplane(cp: &ControlPlane, pc: &str, dataplane: DataPlane) {
    let mut store = cp.store();
    let planes = &mut store.tenant_mut(pc).dataplanes;
    match planes.iter_mut().find(|d| d.id == dataplane.id) {
        Some(existing) => *existing = dataplane,
        None => planes.push(dataplane),
    }
}

async fn register_dataplane(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("dataplanes"),
        Access::Write,
        Some(&pc),
    )?;
    let dataplane = dataplane_from_body(&body_object(&body)?)?;
    upsert_dataplane(&cp, &pc, dataplane);
    Ok(StatusCode::OK.into_response())
}

async fn delete_dataplane(
    State(cp): State<ControlPlane>,
    Path((ver, pc, id)): IdPath,
    headers: HeaderMap,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("dataplanes"),
        Access::Write,
        Some(&pc),
    )?;
    let mut store = cp.store();
    let planes = &mut store.tenant_mut(&pc).dataplanes;
    let before = planes.len();
    planes.retain(|d| d.id != id);
    if planes.len() == before {
        return Err(ApiError::not_found("DataPlane", &id));
    }
    Ok(no_content())
}

/// JAD's v4alpha workaround: `POST /v4alpha/dataplanes/{pc}` with a plain DataPlaneInstance.
async fn register_dataplane_jad(
    State(cp): State<ControlPlane>,
    Path((ver, pc)): PcPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    cp.guard(
        &headers,
        &ver,
        Area::Tenant("dataplanes"),
        Access::Write,
        Some(&pc),
    )?;
    let obj = body_object(&body)?;
    let mut errors = Vec::new();
    let url = jsonld::require_str(&obj, "url", &mut errors);
    let transfer_types = string_list(&obj, &["allowedTransferTypes"], true, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| url.clone(), str::to_owned);
    upsert_dataplane(
        &cp,
        &pc,
        DataPlane {
            id,
            endpoint: url.trim_end_matches('/').to_owned(),
            transfer_types,
            labels: Vec::new(),
            authorization: None,
        },
    );
    Ok(no_content())
}
