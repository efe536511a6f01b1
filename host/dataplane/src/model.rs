//! The DPS 1.0-RC3 wire format (messages, DataAddress) and the data flow state machine.
//!
//! Input is read leniently where interoperability needs it (legacy `transferType` and
//! `callbackAddress`, `@type` absent, unknown fields ignored) and strictly where the spec
//! requires a field (a missing one is a 400 naming it). Output always carries `@type` on
//! DataAddress and EndpointProperty, as the DSP schema requires.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use weft_runtime::bindings::data_flows as wit;
use weft_runtime::bindings::types::{DataAddress, Property};

use crate::error::DpsError;

/// The HTTP pull profile of the DPS profile registry.
pub const HTTP_PULL_PROFILE: &str = "https://w3id.org/dspace-sig/profile/http-pull";
/// The HTTP push profile of the DPS profile registry.
pub const HTTP_PUSH_PROFILE: &str = "https://w3id.org/dspace-sig/profile/http-push";

/// Endpoint properties that are secrets: kept host-side, never shown to apps.
pub const SECRET_PROPERTIES: [&str; 3] = ["authorization", "refreshToken", "clientSecret"];

/// Longest id (process, message, agreement, dataset, control plane) accepted: ids appear
/// in URLs, logs and primary keys.
pub const MAX_ID_BYTES: usize = 256;

/// Longest free-text reason (suspend, terminate, errored) kept.
pub const MAX_REASON_BYTES: usize = 4 * 1024;

/// DPS data flow states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlowState {
    Initialized,
    Preparing,
    Prepared,
    Starting,
    Started,
    Suspended,
    Completed,
    Terminated,
}

impl FlowState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Initialized => "INITIALIZED",
            FlowState::Preparing => "PREPARING",
            FlowState::Prepared => "PREPARED",
            FlowState::Starting => "STARTING",
            FlowState::Started => "STARTED",
            FlowState::Suspended => "SUSPENDED",
            FlowState::Completed => "COMPLETED",
            FlowState::Terminated => "TERMINATED",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<FlowState> {
        Some(match s {
            "INITIALIZED" => FlowState::Initialized,
            "PREPARING" => FlowState::Preparing,
            "PREPARED" => FlowState::Prepared,
            "STARTING" => FlowState::Starting,
            "STARTED" => FlowState::Started,
            "SUSPENDED" => FlowState::Suspended,
            "COMPLETED" => FlowState::Completed,
            "TERMINATED" => FlowState::Terminated,
            _ => return None,
        })
    }

    /// COMPLETED and TERMINATED are final.
    pub fn is_terminal(self) -> bool {
        matches!(self, FlowState::Completed | FlowState::Terminated)
    }

    /// Whether the spec's state machine allows `self → to` (as the Rust and Go SDKs
    /// enforce it). Same-state moves are not transitions; callers treat them as no-ops.
    pub fn can_move_to(self, to: FlowState) -> bool {
        use FlowState::*;
        match to {
            Preparing => self == Initialized,
            Prepared => matches!(self, Initialized | Preparing),
            Starting => matches!(self, Initialized | Prepared),
            Started => matches!(self, Initialized | Prepared | Starting | Suspended),
            Suspended | Completed => self == Started,
            Terminated => !self.is_terminal(),
            Initialized => false,
        }
    }

    /// Whether a reply in this state is asynchronous (202 + Location).
    pub fn is_pending(self) -> bool {
        matches!(self, FlowState::Preparing | FlowState::Starting)
    }

    pub(crate) fn to_wit(self) -> wit::FlowState {
        match self {
            FlowState::Initialized => wit::FlowState::Initialized,
            FlowState::Preparing => wit::FlowState::Preparing,
            FlowState::Prepared => wit::FlowState::Prepared,
            FlowState::Starting => wit::FlowState::Starting,
            FlowState::Started => wit::FlowState::Started,
            FlowState::Suspended => wit::FlowState::Suspended,
            FlowState::Completed => wit::FlowState::Completed,
            FlowState::Terminated => wit::FlowState::Terminated,
        }
    }
}

impl std::fmt::Display for FlowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// This data plane's side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Provider,
    Consumer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Consumer => "consumer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "provider" => Some(Role::Provider),
            "consumer" => Some(Role::Consumer),
            _ => None,
        }
    }
}

/// Pull or push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pull,
    Push,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Pull => "pull",
            Mode::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "pull" => Some(Mode::Pull),
            "push" => Some(Mode::Push),
            _ => None,
        }
    }

    /// The mode a profile names: the text after its last `-` (`…/http-pull`,
    /// `HttpData-PULL`), as the Java SDK reads it.
    pub fn of_profile(profile: &str) -> Option<Mode> {
        let suffix = profile.rsplit('-').next()?;
        if suffix.eq_ignore_ascii_case("pull") {
            Some(Mode::Pull)
        } else if suffix.eq_ignore_ascii_case("push") {
            Some(Mode::Push)
        } else {
            None
        }
    }

    /// The `endpointType` of addresses Weft mints for this mode (HTTP profile).
    pub fn endpoint_type(self) -> &'static str {
        match self {
            Mode::Pull => HTTP_PULL_PROFILE,
            Mode::Push => HTTP_PUSH_PROFILE,
        }
    }
}

fn data_address_type() -> String {
    "DataAddress".to_owned()
}

fn endpoint_property_type() -> String {
    "EndpointProperty".to_owned()
}

/// Property values are strings on the wire; numbers and booleans (seen in the wild for
/// `expiresIn`) are accepted and kept as their text.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        v @ (Value::Number(_) | Value::Bool(_)) => Ok(v.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, got {other}"
        ))),
    }
}

/// One endpoint property on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProperty {
    #[serde(rename = "@type", default = "endpoint_property_type")]
    pub kind: String,
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub value: String,
}

/// A DataAddress on the wire (DSP 2025-1 schema; `@type` optional on input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDataAddress {
    #[serde(rename = "@type", default = "data_address_type")]
    pub kind: String,
    #[serde(rename = "endpointType")]
    pub endpoint_type: String,
    pub endpoint: String,
    #[serde(rename = "endpointProperties", default)]
    pub endpoint_properties: Vec<WireProperty>,
}

impl WireDataAddress {
    /// An address with canonical `@type`s.
    pub fn new(endpoint_type: &str, endpoint: &str, properties: &[(&str, &str)]) -> Self {
        WireDataAddress {
            kind: data_address_type(),
            endpoint_type: endpoint_type.to_owned(),
            endpoint: endpoint.to_owned(),
            endpoint_properties: properties
                .iter()
                .map(|(n, v)| WireProperty {
                    kind: endpoint_property_type(),
                    name: (*n).to_owned(),
                    value: (*v).to_owned(),
                })
                .collect(),
        }
    }

    /// The same address with canonical `@type`s (as Weft emits and stores it).
    pub fn normalized(mut self) -> Self {
        self.kind = data_address_type();
        for p in &mut self.endpoint_properties {
            p.kind = endpoint_property_type();
        }
        self
    }

    /// The first property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.endpoint_properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The address without secret properties.
    pub fn without_secrets(&self) -> Self {
        let mut public = self.clone();
        public.endpoint_properties.retain(|p| {
            !SECRET_PROPERTIES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&p.name))
        });
        public
    }

    /// The `Authorization` header value to reach this address, if it carries a token.
    /// HTTP profile: `authType` `bearer` (or absent) → `Bearer <authorization>`.
    pub fn authorization_header(&self) -> Option<String> {
        let token = self.property("authorization")?;
        match self.property("authType") {
            Some(t) if !t.eq_ignore_ascii_case("bearer") => Some(token.to_owned()),
            _ if token
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("bearer ")) =>
            {
                Some(token.to_owned())
            }
            _ => Some(format!("Bearer {token}")),
        }
    }

    /// The address as apps see it (secrets removed).
    pub fn to_wit_public(&self) -> DataAddress {
        let public = self.without_secrets();
        DataAddress {
            endpoint_type: public.endpoint_type,
            endpoint: public.endpoint,
            endpoint_properties: public
                .endpoint_properties
                .into_iter()
                .map(|p| Property {
                    name: p.name,
                    value: p.value,
                })
                .collect(),
        }
    }

    /// An address an app handed over.
    pub fn from_wit(a: &DataAddress) -> Self {
        WireDataAddress {
            kind: data_address_type(),
            endpoint_type: a.endpoint_type.clone(),
            endpoint: a.endpoint.clone(),
            endpoint_properties: a
                .endpoint_properties
                .iter()
                .map(|p| WireProperty {
                    kind: endpoint_property_type(),
                    name: p.name.clone(),
                    value: p.value.clone(),
                })
                .collect(),
        }
    }

    /// Checks an address received from outside: non-empty type and an http(s) endpoint.
    pub fn check(&self, allow_insecure: bool) -> Result<(), String> {
        if self.endpoint_type.trim().is_empty() {
            return Err("dataAddress.endpointType must not be empty".into());
        }
        crate::auth::check_endpoint(&self.endpoint, allow_insecure)
            .map_err(|e| format!("dataAddress.endpoint: {e}"))
    }
}

/// `DataFlowPrepareMessage` / `DataFlowStartMessage` as received (every field optional
/// here; [`FlowMessage::validate`] says which is missing).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowMessageIn {
    pub message_id: Option<String>,
    pub participant_id: Option<String>,
    pub counter_party_id: Option<String>,
    pub dataspace_context: Option<String>,
    pub process_id: Option<String>,
    pub agreement_id: Option<String>,
    pub dataset_id: Option<String>,
    pub profile: Option<String>,
    /// Before RC3: the profile.
    pub transfer_type: Option<String>,
    /// Before RC3: where callbacks go.
    pub callback_address: Option<String>,
    pub claims: Option<Value>,
    pub labels: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub data_address: Option<WireDataAddress>,
}

/// A validated prepare or start message.
#[derive(Debug, Clone)]
pub struct FlowMessage {
    pub message_id: String,
    pub participant_id: String,
    pub counter_party_id: String,
    pub dataspace_context: String,
    pub process_id: String,
    pub agreement_id: String,
    pub dataset_id: String,
    pub profile: String,
    pub mode: Mode,
    pub callback_address: Option<String>,
    pub claims: Map<String, Value>,
    pub labels: Vec<String>,
    pub metadata: Map<String, Value>,
    pub data_address: Option<WireDataAddress>,
}

fn required(field: &'static str, value: Option<String>) -> Result<String, DpsError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(DpsError::BadRequest(format!("`{field}` must not be empty"))),
        None => Err(DpsError::BadRequest(format!("`{field}` is required"))),
    }
}

/// Checks an id taken from a message or a path: bounded, printable, usable as a path
/// segment.
pub fn check_id(field: &str, value: &str) -> Result<(), DpsError> {
    if value.is_empty() {
        return Err(DpsError::BadRequest(format!("`{field}` must not be empty")));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(DpsError::BadRequest(format!(
            "`{field}` is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    if value.chars().any(|c| c.is_control() || c == '/') {
        return Err(DpsError::BadRequest(format!(
            "`{field}` must not contain `/` or control characters"
        )));
    }
    Ok(())
}

fn object(field: &'static str, value: Option<Value>) -> Result<Map<String, Value>, DpsError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(DpsError::BadRequest(format!(
            "`{field}` must be a JSON object"
        ))),
    }
}

impl FlowMessageIn {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<FlowMessageIn, DpsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(DpsError::BadRequest("a JSON body is required".into()));
        }
        serde_json::from_slice(body)
            .map_err(|e| DpsError::BadRequest(format!("malformed message: {e}")))
    }

    /// Checks required fields (`claims` may be absent: `{}`, for pre-RC3 control planes).
    pub fn validate(self, allow_insecure: bool) -> Result<FlowMessage, DpsError> {
        let message_id = required("messageId", self.message_id)?;
        let process_id = required("processId", self.process_id)?;
        check_id("processId", &process_id)?;
        check_id("messageId", &message_id)?;
        let profile = match (self.profile, self.transfer_type) {
            (Some(p), _) if !p.trim().is_empty() => p,
            (_, t) => required("profile", t)?,
        };
        let mode = Mode::of_profile(&profile).ok_or_else(|| {
            DpsError::BadRequest(format!(
                "profile {profile:?} names neither pull nor push (it must end in -pull or -push)"
            ))
        })?;
        let agreement_id = required("agreementId", self.agreement_id)?;
        let dataset_id = required("datasetId", self.dataset_id)?;
        let participant_id = required("participantId", self.participant_id)?;
        let counter_party_id = required("counterPartyId", self.counter_party_id)?;
        let dataspace_context = required("dataspaceContext", self.dataspace_context)?;
        for (field, value) in [("agreementId", &agreement_id), ("datasetId", &dataset_id)] {
            if value.len() > MAX_ID_BYTES || value.contains('\0') {
                return Err(DpsError::BadRequest(format!(
                    "`{field}` is longer than {MAX_ID_BYTES} bytes or contains NUL"
                )));
            }
        }
        if let Some(cb) = &self.callback_address {
            crate::auth::check_endpoint(cb, allow_insecure)
                .map_err(|e| DpsError::BadRequest(format!("callbackAddress: {e}")))?;
        }
        let data_address = match self.data_address {
            Some(a) => {
                a.check(allow_insecure).map_err(DpsError::BadRequest)?;
                Some(a.normalized())
            }
            None => None,
        };
        Ok(FlowMessage {
            message_id,
            participant_id,
            counter_party_id,
            dataspace_context,
            process_id,
            agreement_id,
            dataset_id,
            profile,
            mode,
            callback_address: self.callback_address,
            claims: object("claims", self.claims)?,
            labels: self.labels.unwrap_or_default(),
            metadata: object("metadata", self.metadata)?,
            data_address,
        })
    }
}

/// The body of `/started`, `/suspend`, `/resume`, `/terminate`, `/completed`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalIn {
    pub message_id: Option<String>,
    pub reason: Option<String>,
    pub data_address: Option<WireDataAddress>,
}

impl SignalIn {
    /// Parses a body; an empty body is `{}` when `empty_ok`.
    pub fn parse(body: &[u8], empty_ok: bool) -> Result<SignalIn, DpsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return if empty_ok {
                Ok(SignalIn::default())
            } else {
                Err(DpsError::BadRequest(
                    "a JSON body with `messageId` is required".into(),
                ))
            };
        }
        serde_json::from_slice(body)
            .map_err(|e| DpsError::BadRequest(format!("malformed message: {e}")))
    }

    /// The message id, required unless `optional`.
    pub fn message_id(&self, optional: bool) -> Result<Option<String>, DpsError> {
        match &self.message_id {
            Some(m) => check_id("messageId", m).map(|()| Some(m.clone())),
            None if optional => Ok(None),
            None => Err(DpsError::BadRequest("`messageId` is required".into())),
        }
    }

    /// The reason, cut to [`MAX_REASON_BYTES`].
    pub fn reason(&self) -> Option<String> {
        self.reason.as_deref().map(truncate_reason)
    }
}

/// Cuts a free-text reason to [`MAX_REASON_BYTES`] at a character boundary.
pub fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].replace('\0', "")
}

/// `DataFlowStatusMessage`: replies and callbacks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusMessage {
    pub message_id: String,
    pub data_flow_id: String,
    pub state: FlowState,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub data_address: Option<WireDataAddress>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl StatusMessage {
    /// A status message with a fresh message id.
    pub fn new(flow_id: &str, state: FlowState) -> Self {
        StatusMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            data_flow_id: flow_id.to_owned(),
            state,
            data_address: None,
            error: None,
        }
    }
}

/// `DataFlowStatusResponseMessage` (GET status).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    pub data_flow_id: String,
    pub state: FlowState,
}

/// `ControlPlaneRegistrationMessage` as received.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneRegistrationIn {
    pub controlplane_id: Option<String>,
    pub endpoint: Option<String>,
    pub authorization: Option<Value>,
}

impl ControlPlaneRegistrationIn {
    pub fn parse(body: &[u8]) -> Result<Self, DpsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(DpsError::BadRequest("a JSON body is required".into()));
        }
        serde_json::from_slice(body)
            .map_err(|e| DpsError::BadRequest(format!("malformed registration: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transitions_follow_the_reference() {
        use FlowState::*;
        assert!(Initialized.can_move_to(Preparing));
        assert!(Preparing.can_move_to(Prepared));
        assert!(Prepared.can_move_to(Started));
        assert!(Suspended.can_move_to(Started));
        assert!(!Prepared.can_move_to(Suspended));
        assert!(!Preparing.can_move_to(Started));
        assert!(Suspended.can_move_to(Terminated));
        assert!(!Completed.can_move_to(Terminated));
        assert!(!Terminated.can_move_to(Started));
        assert!(!Started.can_move_to(Prepared));
    }

    #[test]
    fn modes_come_from_the_profile_suffix() {
        assert_eq!(Mode::of_profile(HTTP_PULL_PROFILE), Some(Mode::Pull));
        assert_eq!(Mode::of_profile("HttpData-PUSH"), Some(Mode::Push));
        assert_eq!(Mode::of_profile("http-pull"), Some(Mode::Pull));
        assert_eq!(Mode::of_profile("s3"), None);
    }

    #[test]
    fn addresses_without_type_are_accepted_and_emitted_with_it() {
        let a: WireDataAddress = serde_json::from_value(json!({
            "endpointType": HTTP_PULL_PROFILE,
            "endpoint": "https://p.example/data",
            "endpointProperties": [{"name": "authorization", "value": "t"}, {"name": "expiresIn", "value": 300}]
        }))
        .unwrap();
        assert_eq!(a.property("expiresIn"), Some("300"));
        let out = serde_json::to_value(&a).unwrap();
        assert_eq!(out["@type"], "DataAddress");
        assert_eq!(out["endpointProperties"][0]["@type"], "EndpointProperty");
        assert_eq!(a.authorization_header().as_deref(), Some("Bearer t"));
        assert!(a.without_secrets().property("authorization").is_none());
        assert!(
            a.to_wit_public()
                .endpoint_properties
                .iter()
                .all(|p| p.name != "authorization")
        );
    }

    #[test]
    fn legacy_fields_and_missing_ones() {
        let m = FlowMessageIn::parse(
            br#"{"messageId":"m","processId":"p","agreementId":"a","datasetId":"d","transferType":"HttpData-PULL",
                "participantId":"x","counterPartyId":"y","dataspaceContext":"z","callbackAddress":"https://cp.example/cb"}"#,
        )
        .unwrap()
        .validate(false)
        .unwrap();
        assert_eq!(m.profile, "HttpData-PULL");
        assert_eq!(m.mode, Mode::Pull);
        assert_eq!(m.callback_address.as_deref(), Some("https://cp.example/cb"));
        let missing = FlowMessageIn::parse(br#"{"messageId":"m","processId":"p"}"#)
            .unwrap()
            .validate(false);
        assert!(matches!(missing, Err(DpsError::BadRequest(m)) if m.contains("profile")));
        let bad = FlowMessageIn::parse(br#"{"messageId": 5}"#);
        assert!(matches!(bad, Err(DpsError::BadRequest(_))));
        let slash = FlowMessageIn {
            process_id: Some("a/b".into()),
            message_id: Some("m".into()),
            ..Default::default()
        }
        .validate(false);
        assert!(matches!(slash, Err(DpsError::BadRequest(m)) if m.contains("processId")));
    }

    #[test]
    fn reasons_are_cut_at_char_boundaries() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
