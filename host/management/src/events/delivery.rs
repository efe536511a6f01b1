//! Delivering outbox events to apps: claim due events with a lease, call the app's `events`
//! export, then record delivery, schedule a retry with exponential back-off, or give up with
//! an audit entry. Events of one (tenant, app) go one after the other; different pairs in
//! parallel, bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use weft_store::AuditEntry;
use weft_store::management::{EventStatus, OutboxEvent};

use super::{AUDIT_ACTOR, DeliveryError, Event, EventHub, EventKind};

/// Events claimed per round.
pub const DELIVERY_BATCH: u32 = 100;

/// Claim rounds per `deliver_due` call, so one call ends even under a constant stream.
pub const MAX_ROUNDS_PER_RUN: usize = 10;

/// (tenant, app) pairs served at once: each delivery occupies an instance slot.
pub const MAX_CONCURRENT_DELIVERIES: usize = 8;

/// What one delivery run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Failed attempts scheduled for another try.
    pub retried: usize,
    /// Given up after the last attempt (audited).
    pub failed: usize,
    /// Not deliverable because the app is no longer enabled (audited).
    pub dropped: usize,
}

impl DeliveryReport {
    fn add(&mut self, other: DeliveryReport) {
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.failed += other.failed;
        self.dropped += other.dropped;
    }
}

/// The contract's event for an outbox row, or `None` for an unknown kind.
fn to_event(e: &OutboxEvent, attempt: u32) -> Option<Event> {
    let kind = match e.kind.as_str() {
        "contract-negotiation" => EventKind::ContractNegotiation(e.state.clone()),
        "transfer-process" => EventKind::TransferProcess(e.state.clone()),
        "process-state-changed" => EventKind::ProcessStateChanged(e.state.clone()),
        "timer" => EventKind::Timer,
        _ => return None,
    };
    Some(Event {
        id: e.id.clone(),
        kind,
        subject: e.subject.clone(),
        correlation: e.correlation.clone(),
        payload: e.payload_json.clone(),
        attempt,
    })
}

impl EventHub {
    /// The pause before attempt `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        let c = &self.inner.config;
        let factor = 1u64
            .checked_shl(attempt.saturating_sub(1).min(32))
            .unwrap_or(u64::MAX);
        Duration::from_millis(c.retry_base_ms.saturating_mul(factor).min(c.retry_max_ms))
    }

    /// Delivers every due event (bounded rounds); returns what happened.
    pub async fn deliver_due(&self) -> DeliveryReport {
        let lease = Duration::from_millis(self.inner.config.lease_ms);
        let mut report = DeliveryReport::default();
        for _ in 0..MAX_ROUNDS_PER_RUN {
            let batch = match self
                .inner
                .store
                .mgmt_claim_events(lease, DELIVERY_BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("claiming events failed: {e}");
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            let mut groups: BTreeMap<(String, String), Vec<OutboxEvent>> = BTreeMap::new();
            for e in batch {
                groups
                    .entry((e.tenant_id.clone(), e.plugin_id.clone()))
                    .or_default()
                    .push(e);
            }
            let reports: Vec<DeliveryReport> = futures::stream::iter(groups.into_values())
                .map(|events| async move {
                    let mut r = DeliveryReport::default();
                    for e in events {
                        self.deliver_one(e, &mut r).await;
                    }
                    r
                })
                .buffer_unordered(MAX_CONCURRENT_DELIVERIES)
                .collect()
                .await;
            for r in reports {
                report.add(r);
            }
        }
        report
    }

    async fn deliver_one(&self, e: OutboxEvent, report: &mut DeliveryReport) {
        let attempt = e.attempts.saturating_add(1);
        let max = self.inner.config.max_attempts;
        let Some(event) = to_event(&e, attempt) else {
            self.give_up(
                &e,
                attempt,
                "event.dropped",
                &format!("unknown event kind {:?}", e.kind),
            )
            .await;
            report.dropped += 1;
            return;
        };
        // Bounded below the lease, so no other replica claims it while this call still runs.
        let limit = Duration::from_millis(self.inner.config.lease_ms.saturating_mul(9) / 10);
        let outcome = match tokio::time::timeout(
            limit,
            self.inner
                .targets
                .deliver(&e.tenant_id, &e.plugin_id, event),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(DeliveryError::Call(
                "the delivery did not finish within its lease".into(),
            )),
        };
        let store = &self.inner.store;
        match outcome {
            Ok(()) => {
                if let Err(err) = store
                    .mgmt_finish_attempt(
                        &e.id,
                        EventStatus::Delivered,
                        attempt,
                        Duration::ZERO,
                        None,
                    )
                    .await
                {
                    // The app has it; at worst it sees it again after the lease.
                    tracing::warn!(id = e.id, "recording a delivery failed: {err}");
                }
                report.delivered += 1;
            }
            Err(DeliveryError::NotEnabled) => {
                self.give_up(
                    &e,
                    attempt,
                    "event.dropped",
                    "the app is not enabled for this tenant",
                )
                .await;
                report.dropped += 1;
            }
            Err(err) if attempt >= max => {
                tracing::warn!(
                    ctx = e.tenant_id,
                    plugin = e.plugin_id,
                    id = e.id,
                    attempt,
                    "event delivery failed for the last time: {err}"
                );
                self.give_up(&e, attempt, "event.delivery-failed", &err.to_string())
                    .await;
                report.failed += 1;
            }
            Err(err) => {
                let pause = self.backoff(attempt);
                tracing::info!(
                    ctx = e.tenant_id,
                    plugin = e.plugin_id,
                    id = e.id,
                    attempt,
                    retry_in_ms = pause.as_millis() as u64,
                    "event delivery failed: {err}"
                );
                if let Err(store_err) = store
                    .mgmt_finish_attempt(
                        &e.id,
                        EventStatus::Pending,
                        attempt,
                        pause,
                        Some(&err.to_string()),
                    )
                    .await
                {
                    tracing::warn!(id = e.id, "scheduling a redelivery failed: {store_err}");
                }
                report.retried += 1;
            }
        }
    }

    /// Audits an event that will not be delivered, then marks it failed. If the audit entry
    /// cannot be written the event stays pending, so it is never dropped without a trace.
    async fn give_up(&self, e: &OutboxEvent, attempt: u32, action: &str, reason: &str) {
        let entry = AuditEntry {
            actor: AUDIT_ACTOR.to_owned(),
            action: action.to_owned(),
            target: format!(
                "tenant/{}/plugin/{}/event/{}",
                e.tenant_id, e.plugin_id, e.id
            ),
            detail_json: json!({
                "kind": e.kind,
                "state": e.state,
                "subject": e.subject,
                "correlation": e.correlation,
                "attempts": attempt,
                "reason": reason,
            })
            .to_string(),
        };
        let store = &self.inner.store;
        let result = match store.audit(&entry).await {
            Ok(_) => {
                store
                    .mgmt_finish_attempt(
                        &e.id,
                        EventStatus::Failed,
                        attempt,
                        Duration::ZERO,
                        Some(reason),
                    )
                    .await
            }
            Err(err) => {
                tracing::error!(id = e.id, "auditing an undeliverable event failed: {err}");
                store
                    .mgmt_finish_attempt(
                        &e.id,
                        EventStatus::Pending,
                        attempt,
                        self.backoff(attempt),
                        Some(reason),
                    )
                    .await
            }
        };
        if let Err(err) = result {
            tracing::warn!(id = e.id, "recording an undeliverable event failed: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_rows_become_contract_events() {
        let row = OutboxEvent {
            id: "evt-1".into(),
            tenant_id: "t".into(),
            plugin_id: "p".into(),
            kind: "process-state-changed".into(),
            state: "FINALIZED".into(),
            subject: "n1".into(),
            correlation: Some("c".into()),
            payload_json: "{}".into(),
            attempts: 2,
            status: EventStatus::Pending,
            next_at: weft_store::now(),
            last_error: None,
            created_at: weft_store::now(),
        };
        let e = to_event(&row, 3).unwrap();
        assert_eq!(e.attempt, 3);
        assert_eq!(e.correlation.as_deref(), Some("c"));
        assert!(matches!(e.kind, EventKind::ProcessStateChanged(ref s) if s == "FINALIZED"));
        assert!(
            to_event(
                &OutboxEvent {
                    kind: "bogus".into(),
                    ..row
                },
                1
            )
            .is_none()
        );
    }
}
