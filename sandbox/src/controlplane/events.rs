//! EDC-style event delivery to a negotiation's or transfer's `callbackAddresses`.

use serde_json::{Value, json};

use super::ControlPlane;
use super::model::now_millis;
use crate::error::ErrorDetail;
use crate::jsonld;

/// Validate `callbackAddresses`: a list of objects with a `uri` and optional `events[]`.
pub(super) fn parse_callbacks(value: Option<&Value>, errors: &mut Vec<ErrorDetail>) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, item) in jsonld::as_list(value).into_iter().enumerate() {
        match item.as_object() {
            Some(obj) if jsonld::get_str(obj, "uri").is_some() => out.push(item.clone()),
            _ => errors.push(
                ErrorDetail::new("a callback address needs a 'uri'", "ValidationFailure")
                    .with_path(format!("callbackAddresses[{i}]"))
                    .with_value(item),
            ),
        }
    }
    out
}

/// Does a callback subscribe to `dotted` (e.g. `contract.negotiation.finalized`)? An entry
/// subscribes to an event when it equals the event's dotted name or is a prefix of it.
fn subscribed(callback: &Value, dotted: &str) -> bool {
    let events = jsonld::as_list(callback.get("events"));
    events.iter().filter_map(Value::as_str).any(|e| {
        dotted == e
            || dotted
                .strip_prefix(e)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

impl ControlPlane {
    /// POST `{id, at, type, payload}` to every subscribed callback address, in the background.
    pub(super) fn emit(&self, callbacks: &[Value], event_type: &str, dotted: &str, payload: Value) {
        let targets: Vec<String> = callbacks
            .iter()
            .filter(|c| subscribed(c, dotted))
            .filter_map(|c| c.as_object().and_then(|o| jsonld::get_str(o, "uri")))
            .collect();
        if targets.is_empty() {
            return;
        }
        let envelope = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "at": now_millis(),
            "type": event_type,
            "payload": payload,
        });
        for uri in targets {
            let http = self.http().clone();
            let envelope = envelope.clone();
            tokio::spawn(async move {
                if let Err(error) = http.post(&uri).json(&envelope).send().await {
                    tracing::warn!(%uri, %error, "event delivery failed");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_by_prefix() {
        let cb = json!({"uri": "http://x", "events": ["contract.negotiation"]});
        assert!(subscribed(&cb, "contract.negotiation.finalized"));
        assert!(!subscribed(&cb, "transfer.process.started"));
        assert!(!subscribed(
            &json!({"uri": "http://x", "events": ["contract.neg"]}),
            "contract.negotiation.finalized"
        ));
    }
}
