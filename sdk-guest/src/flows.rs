//! Data flows as the DPS signals describe them: arguments and answers of the
//! `weft:plugin/data-flows` hooks, and the `DataAddress` shared with [`crate::transfer`].

use serde::{Deserialize, Serialize};

/// The reason the default data-flow hooks give: this plugin serves no flows.
pub const NOT_SUPPORTED: &str = "data flows are not supported by this plugin";

/// A name/value pair (endpoint properties, log fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A DSP/DPS DataAddress: where and how to reach data of a flow. Secrets such as
/// `authorization` are held by the host and never appear here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataAddress {
    /// The profile-specific endpoint type.
    pub endpoint_type: String,
    /// The URL (or other locator) of the endpoint.
    pub endpoint: String,
    /// Endpoint properties such as `authType`.
    #[serde(default)]
    pub endpoint_properties: Vec<Property>,
}

impl DataAddress {
    /// An address without properties.
    pub fn new(endpoint_type: impl Into<String>, endpoint: impl Into<String>) -> Self {
        DataAddress {
            endpoint_type: endpoint_type.into(),
            endpoint: endpoint.into(),
            endpoint_properties: Vec::new(),
        }
    }

    /// Adds an endpoint property.
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.endpoint_properties.push(Property {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// The first endpoint property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.endpoint_properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

/// DPS data flow states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
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

/// Which side of the transfer this data plane is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowRole {
    /// The data provider.
    Provider,
    /// The data consumer.
    Consumer,
}

/// Whether the consumer fetches (pull) or the provider sends (push).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// The consumer fetches.
    Pull,
    /// The provider sends.
    Push,
}

/// A data flow as the signals describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFlow {
    /// The data flow id (the control plane's process id).
    pub id: String,
    /// The id of the signal message that caused this call.
    pub message_id: String,
    /// This tenant's DSP identity.
    pub participant_id: String,
    /// The other participant.
    pub counter_party_id: String,
    /// The dataspace context.
    pub dataspace_context: String,
    /// The contract agreement the flow runs under.
    pub agreement_id: String,
    /// The dataset (asset) id.
    pub dataset_id: String,
    /// The transfer profile.
    pub profile: String,
    /// This side's role.
    pub role: FlowRole,
    /// Pull or push.
    pub mode: TransferMode,
    /// The state before this signal is applied.
    pub state: FlowState,
    /// The counterparty's verified claims, as JSON.
    pub claims: String,
    /// Labels from the asset's data plane metadata.
    pub labels: Vec<String>,
    /// Metadata from the asset's data plane metadata, as JSON.
    pub metadata: String,
    /// The counterparty's DataAddress when the signal carried one.
    pub data_address: Option<DataAddress>,
}

impl DataFlow {
    /// The claims parsed as JSON (`null` when empty or malformed).
    pub fn claims_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.claims).unwrap_or(serde_json::Value::Null)
    }

    /// The metadata parsed as JSON (`null` when empty or malformed).
    pub fn metadata_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or(serde_json::Value::Null)
    }
}

/// A plugin's answer to `prepare` or `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept now. An address overrides the one the host would mint.
    Accept(Option<DataAddress>),
    /// Accept, finish later through [`crate::transfer::prepared`] / [`crate::transfer::started`].
    Pending,
    /// Refuse the flow, with a reason for the control plane.
    Reject(String),
}
