//! Where events come from: the poll fallback, the callback endpoint, watch checks and timers.
//! All of them end in [`EventHub::observe`] or an outbox insert with a stable event id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use weft_runtime::GuestError;
use weft_store::AuditEntry;
use weft_store::management::{NewEvent, ProcessState, Watch, WatchRecord};

use super::{AUDIT_ACTOR, EventHub, Topic, event_id};
use crate::client::MANAGEMENT_CONTEXT;
use crate::error::describe;
use crate::process::Process;

/// Page size of the poll queries.
pub const POLL_PAGE: usize = 100;

/// Most pages one poll reads per tenant and kind: the 2,000 most recent processes are
/// watched by polling; older ones still change only rarely, and callbacks cover them.
pub const MAX_POLL_PAGES: usize = 20;

/// Tenants polled at once: bounds the load one poll round puts on the control plane.
pub const POLL_CONCURRENCY: usize = 8;

/// Largest event payload handed to an app; a bigger process object is cut to its id and
/// state (the app can read the rest through the Management API).
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 64 << 10;

/// Largest callback body accepted (EDC event envelopes are a few KiB).
pub const MAX_CALLBACK_BODY_BYTES: usize = 256 << 10;

/// Deadline of one host-side poll or refresh request round.
const HOST_REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// What one poll round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// (tenant, kind) pairs polled.
    pub polled: usize,
    /// Processes whose state changed (or that were new).
    pub changes: usize,
    /// Events enqueued.
    pub events: usize,
    /// (tenant, kind) pairs whose poll failed.
    pub errors: usize,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The process id, state and state timestamp of a process object.
fn seen_state(item: &Value) -> Option<ProcessState> {
    let id = item
        .get("@id")
        .or_else(|| item.get("id"))
        .and_then(Value::as_str)?;
    let state = item.get("state").and_then(Value::as_str)?;
    let ts = match item.get("stateTimestamp") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    (!id.is_empty() && !state.is_empty()).then(|| ProcessState {
        process_id: id.to_owned(),
        state: state.to_owned(),
        state_timestamp: ts,
    })
}

/// The payload apps get: the process object without Weft's callback tokens, bounded.
fn payload_of(item: &Value, seen: &ProcessState) -> String {
    let mut item = item.clone();
    if let Some(o) = item.as_object_mut() {
        o.remove("callbackAddresses");
    }
    let text = item.to_string();
    if text.len() <= MAX_EVENT_PAYLOAD_BYTES {
        return text;
    }
    json!({"@id": seen.process_id, "state": seen.state, "stateTimestamp": seen.state_timestamp,
        "truncated": true})
    .to_string()
}

fn store_error(what: &str, e: weft_store::StoreError) -> GuestError {
    tracing::error!("event store: {what}: {e}");
    GuestError::Internal(format!("event store: {what}"))
}

impl EventHub {
    fn retention_millis(&self) -> i64 {
        i64::try_from(self.inner.config.retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Whether a state entered at `state_timestamp` is recent enough to be news: a process
    /// seen again after its stored state was pruned must not replay an old event.
    fn is_fresh(&self, seen: &ProcessState) -> bool {
        match seen.state_timestamp.parse::<i64>() {
            Ok(ts) => now_millis().saturating_sub(ts) < self.retention_millis(),
            Err(_) => true,
        }
    }

    /// The subscribers of `topic`, by tenant (grants checked again here).
    async fn subscribers_by_tenant(&self, topic: Topic) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in self.inner.targets.subscribers(topic).await {
            if s.wants(topic) {
                out.entry(s.ctx).or_default().insert(s.plugin_id);
            }
        }
        out
    }

    /// Records the state of a process seen by any source; enqueues events for `plugins`
    /// when it changed (and `emit`), and wakes the process's watches when it settled.
    /// Returns the number of events enqueued.
    pub(crate) async fn observe(
        &self,
        ctx: &str,
        process: Process,
        item: &Value,
        plugins: &BTreeSet<String>,
        emit: bool,
        always_check_watches: bool,
    ) -> Result<(bool, usize), GuestError> {
        let Some(seen) = seen_state(item) else {
            return Ok((false, 0));
        };
        let store = &self.inner.store;
        let changed = store
            .mgmt_put_process_state(ctx, process.kind(), &seen)
            .await
            .map_err(|e| store_error("recording a process state", e))?;
        let mut enqueued = 0;
        if changed && emit && self.is_fresh(&seen) {
            let payload = payload_of(item, &seen);
            for plugin in plugins {
                let event = NewEvent {
                    id: event_id(&[
                        "process",
                        ctx,
                        plugin,
                        process.kind(),
                        &seen.process_id,
                        &seen.state,
                        &seen.state_timestamp,
                    ]),
                    tenant_id: ctx.to_owned(),
                    plugin_id: plugin.clone(),
                    kind: process.kind().to_owned(),
                    state: seen.state.clone(),
                    subject: seen.process_id.clone(),
                    correlation: None,
                    payload_json: payload.clone(),
                };
                if store
                    .mgmt_enqueue_event(&event)
                    .await
                    .map_err(|e| store_error("enqueuing an event", e))?
                {
                    enqueued += 1;
                }
            }
        }
        if process.is_settled(&seen.state) && (changed || always_check_watches) {
            let watches = store
                .mgmt_watches(
                    Some((ctx, process.kind(), &seen.process_id)),
                    weft_store::management::MAX_WATCH_PAGE,
                )
                .await
                .map_err(|e| store_error("listing watches", e))?;
            for w in watches {
                if self.fire_watch(&w.watch, &seen, item).await? {
                    enqueued += 1;
                }
            }
        }
        if enqueued > 0 {
            self.inner.deliver_wake.notify_one();
        }
        Ok((changed, enqueued))
    }

    /// Enqueues a watch's `process-state-changed` event, then removes the watch.
    async fn fire_watch(
        &self,
        watch: &Watch,
        seen: &ProcessState,
        item: &Value,
    ) -> Result<bool, GuestError> {
        let store = &self.inner.store;
        let event = NewEvent {
            id: event_id(&[
                "watch",
                &watch.tenant_id,
                &watch.plugin_id,
                &watch.kind,
                &watch.process_id,
                &watch.correlation,
                &seen.state,
            ]),
            tenant_id: watch.tenant_id.clone(),
            plugin_id: watch.plugin_id.clone(),
            kind: "process-state-changed".to_owned(),
            state: seen.state.clone(),
            subject: watch.process_id.clone(),
            correlation: Some(watch.correlation.clone()),
            payload_json: payload_of(item, seen),
        };
        let inserted = store
            .mgmt_enqueue_event(&event)
            .await
            .map_err(|e| store_error("enqueuing a watch event", e))?;
        store
            .mgmt_remove_watch(watch)
            .await
            .map_err(|e| store_error("removing a watch", e))?;
        Ok(inserted)
    }

    /// One poll round over every tenant with subscribers.
    pub async fn poll_once(&self) -> PollReport {
        let mut work = Vec::new();
        for process in Process::ALL {
            for (ctx, plugins) in self.subscribers_by_tenant(Topic::of(process)).await {
                work.push((ctx, process, plugins));
            }
        }
        let results: Vec<Result<(usize, usize), GuestError>> = futures::stream::iter(work)
            .map(|(ctx, process, plugins)| async move {
                let result = self.poll_tenant(&ctx, process, &plugins).await;
                if let Err(e) = &result {
                    tracing::warn!(
                        ctx,
                        kind = process.kind(),
                        "event poll failed: {}",
                        describe(e)
                    );
                }
                result
            })
            .buffer_unordered(POLL_CONCURRENCY)
            .collect()
            .await;
        let mut report = PollReport::default();
        for r in results {
            report.polled += 1;
            match r {
                Ok((changes, events)) => {
                    report.changes += changes;
                    report.events += events;
                }
                Err(_) => report.errors += 1,
            }
        }
        report
    }

    /// Polls one tenant's processes of one kind; returns (changes, events).
    async fn poll_tenant(
        &self,
        ctx: &str,
        process: Process,
        plugins: &BTreeSet<String>,
    ) -> Result<(usize, usize), GuestError> {
        let store = &self.inner.store;
        let known: HashMap<String, ProcessState> = store
            .mgmt_process_states(ctx, process.kind())
            .await
            .map_err(|e| store_error("reading process states", e))?;
        let baseline = store
            .mgmt_has_baseline(ctx, process.kind())
            .await
            .map_err(|e| store_error("reading the poll baseline", e))?;
        let deadline = Instant::now() + HOST_REQUEST_DEADLINE;
        let path = format!("{}/request", process.path());
        let (mut changes, mut events) = (0, 0);
        for page in 0..MAX_POLL_PAGES {
            let spec = json!({
                "@context": [MANAGEMENT_CONTEXT],
                "@type": "QuerySpec",
                "offset": page * POLL_PAGE,
                "limit": POLL_PAGE,
                "sortField": "createdAt",
                "sortOrder": "DESC",
            });
            let items = self.inner.client.query(ctx, &path, &spec, deadline).await?;
            for item in &items {
                let Some(seen) = seen_state(item) else {
                    continue;
                };
                if known.get(&seen.process_id) == Some(&seen) {
                    continue;
                }
                let (changed, n) = self
                    .observe(ctx, process, item, plugins, baseline, false)
                    .await?;
                changes += usize::from(changed);
                events += n;
            }
            if items.len() < POLL_PAGE {
                break;
            }
        }
        if !baseline {
            store
                .mgmt_set_baseline(ctx, process.kind())
                .await
                .map_err(|e| store_error("setting the poll baseline", e))?;
        }
        Ok((changes, events))
    }

    /// Re-reads one process after a callback and emits what changed. Returns events enqueued.
    pub async fn refresh(
        &self,
        ctx: &str,
        process: Process,
        id: &str,
    ) -> Result<usize, GuestError> {
        let plugins = self
            .subscribers_by_tenant(Topic::of(process))
            .await
            .remove(ctx)
            .unwrap_or_default();
        let watched = !self
            .inner
            .store
            .mgmt_watches(Some((ctx, process.kind(), id)), 1)
            .await
            .map_err(|e| store_error("listing watches", e))?
            .is_empty();
        if plugins.is_empty() && !watched {
            return Ok(0);
        }
        let deadline = Instant::now() + HOST_REQUEST_DEADLINE;
        let item = match self.inner.client.process(ctx, process, id, deadline).await {
            Ok(item) => item,
            Err(GuestError::NotFound(_)) => return Ok(0),
            Err(e) => return Err(e),
        };
        Ok(self
            .observe(ctx, process, &item, &plugins, true, true)
            .await?
            .1)
    }

    /// Checks every watch once: fires those whose process settled, audits and removes those
    /// whose process is gone or that waited too long. Returns events enqueued.
    pub async fn check_watches(&self) -> usize {
        let store = &self.inner.store;
        let watches = match store
            .mgmt_watches(None, weft_store::management::MAX_WATCH_PAGE)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("listing watches failed: {e}");
                return 0;
            }
        };
        let mut groups: BTreeMap<(String, String, String), Vec<WatchRecord>> = BTreeMap::new();
        for w in watches {
            let key = (
                w.watch.tenant_id.clone(),
                w.watch.kind.clone(),
                w.watch.process_id.clone(),
            );
            groups.entry(key).or_default().push(w);
        }
        let max_age = time::Duration::seconds(
            i64::try_from(self.inner.config.watch_max_age_secs).unwrap_or(i64::MAX),
        );
        let now = weft_store::now();
        let mut enqueued = 0;
        for ((ctx, kind, id), records) in groups {
            let (expired, live): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| {
                r.created_at
                    .checked_add(max_age)
                    .is_some_and(|end| end < now)
            });
            for r in expired {
                self.give_up_watch(
                    &r.watch,
                    "watch.expired",
                    "the process did not settle in time",
                )
                .await;
            }
            let Some(process) = Process::from_kind(&kind) else {
                for r in live {
                    self.give_up_watch(&r.watch, "watch.dropped", "unknown process kind")
                        .await;
                }
                continue;
            };
            if live.is_empty() {
                continue;
            }
            let deadline = Instant::now() + HOST_REQUEST_DEADLINE;
            match self
                .inner
                .client
                .process(&ctx, process, &id, deadline)
                .await
            {
                Ok(item) => {
                    let Some(seen) = seen_state(&item) else {
                        continue;
                    };
                    if !process.is_settled(&seen.state) {
                        continue;
                    }
                    for r in live {
                        match self.fire_watch(&r.watch, &seen, &item).await {
                            Ok(true) => enqueued += 1,
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(ctx, "firing a watch failed: {}", describe(&e))
                            }
                        }
                    }
                }
                Err(GuestError::NotFound(_)) => {
                    for r in live {
                        self.give_up_watch(
                            &r.watch,
                            "watch.dropped",
                            "the process no longer exists",
                        )
                        .await;
                    }
                }
                Err(e) => tracing::debug!(ctx, id, "watch check deferred: {}", describe(&e)),
            }
        }
        if enqueued > 0 {
            self.inner.deliver_wake.notify_one();
        }
        enqueued
    }

    async fn give_up_watch(&self, watch: &Watch, action: &str, reason: &str) {
        let entry = AuditEntry {
            actor: AUDIT_ACTOR.to_owned(),
            action: action.to_owned(),
            target: format!(
                "tenant/{}/plugin/{}/watch/{}/{}",
                watch.tenant_id, watch.plugin_id, watch.kind, watch.process_id
            ),
            detail_json: json!({"correlation": watch.correlation, "reason": reason}).to_string(),
        };
        // Audit first: if that fails the watch stays and is tried again next round.
        match self.inner.store.audit(&entry).await {
            Ok(_) => {
                if let Err(e) = self.inner.store.mgmt_remove_watch(watch).await {
                    tracing::warn!("removing a watch failed: {e}");
                }
            }
            Err(e) => tracing::error!("auditing a given-up watch failed: {e}"),
        }
    }

    /// Enqueues the due timer ticks; returns how many.
    pub async fn tick_timers(&self) -> usize {
        let floor = self
            .inner
            .config
            .min_timer_secs
            .max(weft_runtime::grants::MIN_TIMER_SECS)
            .max(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut enqueued = 0;
        let subscribers = self.inner.targets.subscribers(Topic::Timer).await;
        {
            // Forget the slots of pairs that no longer ask for a timer.
            let current: BTreeSet<(&str, &str)> = subscribers
                .iter()
                .map(|s| (s.ctx.as_str(), s.plugin_id.as_str()))
                .collect();
            let mut slots = self
                .inner
                .timer_slots
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            slots.retain(|(ctx, plugin), _| current.contains(&(ctx.as_str(), plugin.as_str())));
        }
        for s in subscribers {
            let Some(asked) = s.grants.timer_secs else {
                continue;
            };
            let interval = asked.max(floor);
            let slot = now / interval;
            let key = (s.ctx.clone(), s.plugin_id.clone());
            let due = {
                let slots = self
                    .inner
                    .timer_slots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                slots.get(&key) != Some(&slot)
            };
            if !due {
                continue;
            }
            let event = NewEvent {
                id: event_id(&[
                    "timer",
                    &s.ctx,
                    &s.plugin_id,
                    &interval.to_string(),
                    &slot.to_string(),
                ]),
                tenant_id: s.ctx.clone(),
                plugin_id: s.plugin_id.clone(),
                kind: "timer".to_owned(),
                state: String::new(),
                subject: "timer".to_owned(),
                correlation: None,
                payload_json: json!({"intervalSecs": interval, "tick": slot}).to_string(),
            };
            match self.inner.store.mgmt_enqueue_event(&event).await {
                Ok(inserted) => {
                    enqueued += usize::from(inserted);
                    let mut slots = self
                        .inner
                        .timer_slots
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    slots.insert(key, slot);
                }
                Err(e) => tracing::warn!(
                    ctx = s.ctx,
                    plugin = s.plugin_id,
                    "enqueuing a timer tick failed: {e}"
                ),
            }
        }
        if enqueued > 0 {
            self.inner.deliver_wake.notify_one();
        }
        enqueued
    }

    /// The callback endpoint: `POST /events/{ctx}`, authenticated with the tenant's callback
    /// token (`?token=` or `Authorization: Bearer`). Mount it on Weft's public listener.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/events/{ctx}", post(callback))
            .layer(DefaultBodyLimit::max(MAX_CALLBACK_BODY_BYTES))
            .with_state(self.clone())
    }
}

fn problem(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "message": message})),
    )
        .into_response()
}

/// The event's process kind and id from an EDC event envelope `{id, at, type, payload}`.
fn envelope_target(envelope: &Value) -> Option<(Process, String)> {
    let kind = envelope.get("type").and_then(Value::as_str)?;
    let process = Process::ALL
        .into_iter()
        .find(|p| kind.starts_with(p.event_type_prefix()))?;
    let payload = envelope.get("payload")?;
    let id = [process.payload_id_field(), "@id", "id"]
        .iter()
        .find_map(|f| payload.get(*f).and_then(Value::as_str))?;
    (!id.is_empty()).then(|| (process, id.to_owned()))
}

async fn callback(
    State(hub): State<EventHub>,
    Path(ctx): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the query string cannot be decoded",
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return problem(rejection.status(), "invalid", &rejection.body_text()),
    };
    let Some(auth) = hub.inner.client.callbacks() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "event callbacks are not configured on this host",
        );
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let presented = query.get("token").map(String::as_str).or(bearer);
    if !presented.is_some_and(|t| auth.verify(&ctx, t)) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid callback token for this participant context is required",
        );
    }
    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let Some((process, id)) = envelope_target(&envelope) else {
        // Not a negotiation or transfer event (or without an id): nothing to do; 204 so the
        // sender does not retry it.
        return StatusCode::NO_CONTENT.into_response();
    };
    let Ok(permit) = hub.inner.callback_permits.clone().try_acquire_owned() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "too many callbacks; retry later",
        );
    };
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(e) = hub.refresh(&ctx, process, &id).await {
            tracing::warn!(
                ctx,
                id,
                "handling an event callback failed: {}",
                describe(&e)
            );
        }
    });
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_name_their_process() {
        let e = json!({"id": "x", "type": "ContractNegotiationFinalized",
            "payload": {"contractNegotiationId": "n1", "state": "FINALIZED"}});
        assert_eq!(
            envelope_target(&e),
            Some((Process::Negotiation, "n1".into()))
        );
        let e = json!({"type": "TransferProcessStarted", "payload": {"@id": "t1"}});
        assert_eq!(envelope_target(&e), Some((Process::Transfer, "t1".into())));
        assert_eq!(
            envelope_target(&json!({"type": "AssetCreated", "payload": {"@id": "a"}})),
            None
        );
        assert_eq!(
            envelope_target(&json!({"type": "TransferProcessStarted"})),
            None
        );
    }

    #[test]
    fn seen_states_and_payloads() {
        let item = json!({"@id": "n1", "state": "FINALIZED", "stateTimestamp": 17,
            "callbackAddresses": [{"uri": "https://w/events/pc?token=secret"}]});
        let seen = seen_state(&item).unwrap();
        assert_eq!(seen.state_timestamp, "17");
        let payload = payload_of(&item, &seen);
        assert!(!payload.contains("secret"), "{payload}");
        assert!(seen_state(&json!({"@id": "n1"})).is_none());
        let big = json!({"@id": "n1", "state": "S", "x": "y".repeat(MAX_EVENT_PAYLOAD_BYTES)});
        let payload: Value =
            serde_json::from_str(&payload_of(&big, &seen_state(&big).unwrap())).unwrap();
        assert_eq!(payload["truncated"], true);
    }
}
