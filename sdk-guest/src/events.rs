//! Control-plane and timer events: the argument of [`crate::Plugin::on_event`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "state")]
pub enum EventKind {
    /// A contract negotiation changed state; the payload names the new state.
    ContractNegotiation(String),
    /// A transfer process changed state; the payload names the new state.
    TransferProcess(String),
    /// A process watched with [`crate::management::watch`] reached a final state.
    ProcessStateChanged(String),
    /// A periodic tick the plugin asked for in its manifest.
    Timer,
}

/// One event. Delivery is at-least-once: de-duplicate on [`Event::id`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and stable across redeliveries.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// The negotiation or transfer id, or the timer name.
    pub subject: String,
    /// The correlation given to [`crate::management::watch`], if any.
    pub correlation: Option<String>,
    /// The event's JSON payload (`{}` when none).
    pub payload: String,
    /// 1 on first delivery, higher on retries.
    pub attempt: u32,
}

impl Event {
    /// The payload deserialized as `T`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.payload)
            .map_err(|e| Error::Invalid(format!("event payload: {e}")))
    }
}
