//! The event hub against the sandbox: polling, callbacks, watches and timers feed the
//! outbox; delivery reaches the right tenant only, retries a failing handler and audits it.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use serde_json::{Value, json};
use weft_management::{
    ApiVersion, DeliveryError, DeliveryReport, Event, EventHub, EventKind, EventTargets,
    ManagementClient, Process, Secret, Subscriber, Topic,
};
use weft_runtime::bindings::management::Method;
use weft_runtime::grants::Grants;
use weft_sandbox::ClaimMode;
use weft_store::management::EventStatus;
use weft_store::{AuditFilter, Store};

/// One delivery the fake server saw.
#[derive(Debug, Clone)]
struct Delivered {
    ctx: String,
    plugin: String,
    id: String,
    kind: String,
    state: String,
    subject: String,
    correlation: Option<String>,
    payload: Value,
    attempt: u32,
}

/// The server's side, faked: subscriptions, a failing app, a disabled app.
#[derive(Default)]
struct Targets {
    subs: Mutex<Vec<Subscriber>>,
    failing: Mutex<HashSet<String>>,
    disabled: Mutex<HashSet<String>>,
    delivered: Mutex<Vec<Delivered>>,
}

impl Targets {
    fn subscribe(&self, ctx: &str, plugin: &str, events: &[&str], timer_secs: Option<u64>) {
        let grants = Grants {
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            timer_secs,
            ..Grants::default()
        };
        self.subs.lock().unwrap().push(Subscriber {
            ctx: ctx.into(),
            plugin_id: plugin.into(),
            grants: Arc::new(grants),
        });
    }

    fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventTargets for Targets {
    async fn subscribers(&self, topic: Topic) -> Vec<Subscriber> {
        // Returns everyone: the hub must check the grants itself.
        let _ = topic;
        self.subs.lock().unwrap().clone()
    }

    async fn deliver(&self, ctx: &str, plugin_id: &str, event: Event) -> Result<(), DeliveryError> {
        if self.disabled.lock().unwrap().contains(plugin_id) {
            return Err(DeliveryError::NotEnabled);
        }
        let (kind, state) = match &event.kind {
            EventKind::ContractNegotiation(s) => ("contract-negotiation", s.clone()),
            EventKind::TransferProcess(s) => ("transfer-process", s.clone()),
            EventKind::ProcessStateChanged(s) => ("process-state-changed", s.clone()),
            EventKind::Timer => ("timer", String::new()),
        };
        self.delivered.lock().unwrap().push(Delivered {
            ctx: ctx.into(),
            plugin: plugin_id.into(),
            id: event.id.clone(),
            kind: kind.into(),
            state,
            subject: event.subject.clone(),
            correlation: event.correlation.clone(),
            payload: serde_json::from_str(&event.payload).unwrap(),
            attempt: event.attempt,
        });
        if self.failing.lock().unwrap().contains(plugin_id) {
            return Err(DeliveryError::Handler(
                "internal: the handler crashed".into(),
            ));
        }
        Ok(())
    }
}

struct Setup {
    f: Fixture,
    client: ManagementClient,
    store: Store,
    targets: Arc<Targets>,
    hub: EventHub,
}

async fn setup_with(adjust: impl FnOnce(&mut weft_management::ManagementConfig)) -> Setup {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let mut config = f.config();
    config.events.max_attempts = 3;
    config.events.retry_base_ms = 1;
    config.events.retry_max_ms = 5;
    adjust(&mut config);
    let client = ManagementClient::new(config, Some(store.clone())).unwrap();
    let targets = Arc::new(Targets::default());
    let hub = EventHub::new(client.clone(), targets.clone()).unwrap();
    Setup {
        f,
        client,
        store,
        targets,
        hub,
    }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

const DONE: [&str; 2] = ["FINALIZED", "TERMINATED"];

async fn settle(s: &Setup, ctx: &str, id: &str) -> String {
    let done: Vec<String> = DONE.iter().map(|d| (*d).to_owned()).collect();
    s.client
        .wait_for(
            ctx,
            Process::Negotiation,
            id,
            &done,
            Duration::from_secs(20),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn polled_events_reach_the_right_tenant_only() {
    let s = setup().await;
    s.targets
        .subscribe(CONSUMER, "watcher", &["contract-negotiation"], None);
    s.targets
        .subscribe(OUTSIDER, "watcher", &["contract-negotiation"], None);
    // The provider's app asked for transfer events only.
    s.targets
        .subscribe(PROVIDER, "other", &["transfer-process"], None);
    offer(&s.client, "data").await;
    let first = s.hub.poll_once().await;
    assert_eq!((first.errors, first.events), (0, 0), "{first:?}");

    let member = negotiate(&s.f, &s.client, CONSUMER, "data").await;
    assert_eq!(settle(&s, CONSUMER, &member).await, "FINALIZED");
    let report = s.hub.poll_once().await;
    assert_eq!(report.events, 1, "{report:?}");
    let delivered = s.hub.deliver_due().await;
    assert_eq!(
        delivered,
        DeliveryReport {
            delivered: 1,
            ..DeliveryReport::default()
        }
    );
    let d = s.targets.delivered();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].ctx.as_str(), d[0].plugin.as_str()),
        (CONSUMER, "watcher")
    );
    assert_eq!(
        (d[0].kind.as_str(), d[0].state.as_str()),
        ("contract-negotiation", "FINALIZED")
    );
    assert_eq!(d[0].subject, member);
    assert_eq!(d[0].attempt, 1);
    assert_eq!(d[0].payload["@id"], member.as_str());
    assert!(d[0].payload.get("callbackAddresses").is_none());

    // Nothing changed: nothing new.
    assert_eq!(s.hub.poll_once().await.events, 0);
    assert_eq!(s.hub.deliver_due().await.delivered, 0);

    let outsider = negotiate(&s.f, &s.client, OUTSIDER, "data").await;
    assert_eq!(settle(&s, OUTSIDER, &outsider).await, "TERMINATED");
    s.hub.poll_once().await;
    s.hub.deliver_due().await;
    let d = s.targets.delivered();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(
        (
            d[1].ctx.as_str(),
            d[1].state.as_str(),
            d[1].subject.as_str()
        ),
        (OUTSIDER, "TERMINATED", outsider.as_str())
    );
    assert!(
        d.iter().all(|e| e.plugin == "watcher"),
        "the provider's app got nothing: {d:?}"
    );
    assert_ne!(d[0].id, d[1].id);

    // A fresh store (a new deployment) treats what exists as the past: no replay.
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let client = ManagementClient::new(s.f.config(), Some(store)).unwrap();
    let hub = EventHub::new(client, s.targets.clone()).unwrap();
    let baseline = hub.poll_once().await;
    assert!(
        baseline.changes >= 2 && baseline.events == 0,
        "{baseline:?}"
    );
}

#[tokio::test]
async fn callbacks_are_authenticated_hints() {
    // Weft's public listener, serving the callback router.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let s = setup_with(|c| {
        c.public_url = Some(public.clone());
        c.events.callback_secret = Some(Secret::new("a-callback-key-for-tests"));
    })
    .await;
    let router = s.hub.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    s.targets
        .subscribe(CONSUMER, "watcher", &["contract-negotiation"], None);
    s.targets
        .subscribe(OUTSIDER, "watcher", &["contract-negotiation"], None);
    offer(&s.client, "data").await;

    // No poll at all: the callbacks EDC sends to the injected address produce the events.
    let id = negotiate(&s.f, &s.client, CONSUMER, "data").await;
    let request =
        s.f.recorded()
            .into_iter()
            .rev()
            .find(|r| r.path.ends_with("/contractnegotiations"))
            .unwrap();
    let body: Value = serde_json::from_str(&request.body).unwrap();
    let ours = s.client.callback_address(CONSUMER).unwrap();
    assert_eq!(body["callbackAddresses"][0]["uri"], ours.as_str());
    assert!(ours.starts_with(&format!("{public}/events/{CONSUMER}?token=")));
    eventually("a FINALIZED event from callbacks", async || {
        s.store
            .mgmt_events_of(CONSUMER, 100)
            .await
            .unwrap()
            .iter()
            .any(|e| e.subject == id && e.state == "FINALIZED")
    })
    .await;
    assert!(
        s.store
            .mgmt_events_of(OUTSIDER, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Authentication.
    let http = reqwest::Client::new();
    let envelope = json!({"id": "x", "type": "ContractNegotiationFinalized",
        "payload": {"contractNegotiationId": id}});
    let post = |url: String, body: String| {
        let http = http.clone();
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let url = format!("{public}/events/{CONSUMER}");
    assert_eq!(post(url.clone(), envelope.to_string()).await.status(), 401);
    let outsider_token = s
        .client
        .callback_address(OUTSIDER)
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let r = post(
        format!("{url}?token={outsider_token}"),
        envelope.to_string(),
    )
    .await;
    assert_eq!(r.status(), 401, "another tenant's token");
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["error"], "unauthorized");
    let token = ours.split("token=").nth(1).unwrap().to_owned();
    let bearer = http
        .post(&url)
        .bearer_auth(&token)
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 204);
    assert_eq!(
        post(format!("{url}?token={token}"), "{nope".into())
            .await
            .status(),
        400
    );
    let huge = post(format!("{url}?token={token}"), "x".repeat(300 << 10)).await;
    assert_eq!(huge.status(), 413);
    assert_eq!(huge.json::<Value>().await.unwrap()["error"], "invalid");
    let other = json!({"type": "AssetCreated", "payload": {"@id": "a"}});
    assert_eq!(
        post(format!("{url}?token={token}"), other.to_string())
            .await
            .status(),
        204
    );

    // A callback naming another tenant's process produces nothing: the hub re-reads the
    // process as the tenant, and the control plane does not show it.
    assert_eq!(
        s.hub
            .refresh(OUTSIDER, Process::Negotiation, &id)
            .await
            .unwrap(),
        0
    );
    assert!(
        s.store
            .mgmt_events_of(OUTSIDER, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // The same change seen again (a late poll) is not a second event.
    let before = s.store.mgmt_events_of(CONSUMER, 100).await.unwrap().len();
    s.hub.poll_once().await;
    assert_eq!(
        s.store.mgmt_events_of(CONSUMER, 100).await.unwrap().len(),
        before
    );

    // Without a configured key, callbacks are refused outright.
    let plain = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = plain.hub.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let r = post(
        format!("http://{addr}/events/{CONSUMER}?token={token}"),
        envelope.to_string(),
    )
    .await;
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn a_failing_handler_is_retried_then_audited() {
    let s = setup().await;
    s.targets.subscribe(CONSUMER, "crashy", &[], Some(10));
    s.targets.failing.lock().unwrap().insert("crashy".into());
    assert_eq!(s.hub.tick_timers().await, 1);
    let mut total = DeliveryReport::default();
    eventually("the last attempt", async || {
        let r = s.hub.deliver_due().await;
        total.retried += r.retried;
        total.failed += r.failed;
        total.failed == 1
    })
    .await;
    assert_eq!(total.retried, 2);
    let d = s.targets.delivered();
    assert_eq!(d.iter().map(|e| e.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        d.iter().all(|e| e.id == d[0].id),
        "the id is stable across attempts"
    );
    let audit = s
        .store
        .list_audit(&AuditFilter {
            target_prefix: Some(format!("tenant/{CONSUMER}/plugin/crashy/event/")),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "event.delivery-failed");
    let detail: Value = serde_json::from_str(&audit[0].detail_json).unwrap();
    assert_eq!(detail["attempts"], 3);
    assert!(
        detail["reason"].as_str().unwrap().contains("crashed"),
        "{detail}"
    );
    let event = s.store.mgmt_event(&d[0].id).await.unwrap().unwrap();
    assert_eq!(event.status, EventStatus::Failed);
    // Given up means given up: no further attempts.
    assert_eq!(s.hub.deliver_due().await, DeliveryReport::default());

    // An app disabled meanwhile: dropped, with an audit entry. `crashy` leaves first: its
    // timer would tick again if the clock crossed into its next 10 s slot meanwhile.
    s.targets.subs.lock().unwrap().clear();
    s.targets.subscribe(CONSUMER, "gone", &[], Some(10));
    s.targets.disabled.lock().unwrap().insert("gone".into());
    assert_eq!(s.hub.tick_timers().await, 1);
    assert_eq!(s.hub.deliver_due().await.dropped, 1);
    let audit = s
        .store
        .list_audit(&AuditFilter {
            target_prefix: Some(format!("tenant/{CONSUMER}/plugin/gone/")),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit[0].action, "event.dropped");
}

#[tokio::test]
async fn watches_continue_through_process_state_changed() {
    let s = setup().await;
    offer(&s.client, "data").await;
    let id = negotiate(&s.f, &s.client, CONSUMER, "data").await;
    s.client
        .add_watch(CONSUMER, "app", Process::Negotiation, &id, "order-42")
        .await
        .unwrap();
    // The same watch twice is one watch.
    s.client
        .add_watch(CONSUMER, "app", Process::Negotiation, &id, "order-42")
        .await
        .unwrap();
    assert_eq!(s.store.mgmt_count_watches(CONSUMER).await.unwrap(), 1);
    // Another tenant cannot watch it.
    let r = s
        .client
        .add_watch(OUTSIDER, "app", Process::Negotiation, &id, "x")
        .await;
    assert!(
        matches!(r, Err(weft_runtime::GuestError::NotFound(_))),
        "{r:?}"
    );
    eventually("the watch fires", async || {
        s.hub.check_watches().await;
        s.hub.deliver_due().await;
        !s.targets.delivered().is_empty()
    })
    .await;
    let d = s.targets.delivered();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].ctx.as_str(), d[0].plugin.as_str()), (CONSUMER, "app"));
    assert_eq!(
        (d[0].kind.as_str(), d[0].state.as_str()),
        ("process-state-changed", "FINALIZED")
    );
    assert_eq!(d[0].correlation.as_deref(), Some("order-42"));
    assert_eq!(d[0].subject, id);
    assert_eq!(s.store.mgmt_count_watches(CONSUMER).await.unwrap(), 0);
    s.hub.check_watches().await;
    assert_eq!(s.hub.deliver_due().await.delivered, 0);
}

#[tokio::test]
async fn timers_tick_once_per_interval_and_tenant() {
    let s = setup().await;
    s.targets.subscribe(CONSUMER, "ticker", &[], Some(10));
    s.targets.subscribe(OUTSIDER, "ticker", &[], Some(3600));
    s.targets
        .subscribe(OUTSIDER, "quiet", &["contract-negotiation"], None);
    assert_eq!(s.hub.tick_timers().await, 2);
    assert_eq!(
        s.hub.tick_timers().await,
        0,
        "the same interval does not tick twice"
    );
    s.hub.deliver_due().await;
    let mut d = s.targets.delivered();
    d.sort_by(|a, b| a.ctx.cmp(&b.ctx));
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .all(|e| e.kind == "timer" && e.plugin == "ticker" && e.subject == "timer")
    );
    assert_eq!(d[0].ctx, CONSUMER);
    assert_eq!(d[0].payload["intervalSecs"], 10);
    assert_eq!(d[1].payload["intervalSecs"], 3600);
}

#[tokio::test]
async fn background_tasks_deliver_without_help() {
    let s = setup_with(|c| {
        c.events.poll_interval_ms = 50;
        c.events.watch_interval_ms = 50;
        c.events.delivery_scan_ms = 50;
    })
    .await;
    s.targets
        .subscribe(CONSUMER, "watcher", &["contract-negotiation"], None);
    offer(&s.client, "data").await;
    let _tasks = s.hub.spawn();
    eventually("the first poll sets the baseline", async || {
        s.store
            .mgmt_has_baseline(CONSUMER, "contract-negotiation")
            .await
            .unwrap()
    })
    .await;
    let id = negotiate(&s.f, &s.client, CONSUMER, "data").await;
    eventually("FINALIZED delivered", async || {
        s.targets
            .delivered()
            .iter()
            .any(|e| e.subject == id && e.state == "FINALIZED")
    })
    .await;
    let ok = ok(
        &s.client,
        CONSUMER,
        Method::Get,
        &format!("contractnegotiations/{id}"),
        None,
    )
    .await;
    assert_eq!(ok["state"], "FINALIZED");
}
