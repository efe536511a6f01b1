//! End to end with a real plugin (`hello` from weft-bundle) on the runtime: the
//! `management` import through this crate's backend against the sandbox (tenant scoping,
//! grants enforced before anything leaves the host, 409 on a repeated create), waits and
//! watches from inside the app, and events delivered to the app's `events` export for the
//! right tenant only, with a failing handler retried and audited.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use weft_management::{
    ApiVersion, DeliveryError, Event, EventHub, EventTargets, ManagementClient, Subscriber, Topic,
    deliver_via_runtime,
};
use weft_runtime::config::RuntimeConfig;
use weft_runtime::grants::Grants;
use weft_runtime::plugin::LoadRequest;
use weft_runtime::services::{MemoryState, Scope, Services, StateBackend, Unconfigured};
use weft_runtime::{CallContext, Entry, LoadedPlugin, Runtime, Tenant};
use weft_sandbox::ClaimMode;
use weft_store::{AuditFilter, Store};

struct Wasm {
    f: Fixture,
    client: ManagementClient,
    store: Store,
    state: Arc<MemoryState>,
    rt: Arc<Runtime>,
    hello: Arc<LoadedPlugin>,
}

fn grants(management: &[&str], state_quota_bytes: u64) -> Grants {
    Grants {
        management: management.iter().map(|s| (*s).to_owned()).collect(),
        state_quota_bytes,
        events: ["contract-negotiation".to_owned()].into(),
        timer_secs: Some(10),
        ..Grants::default()
    }
}

fn call(ctx: &str, entry: Entry, grants: Grants) -> CallContext {
    let tenant = Tenant {
        participant_context_id: ctx.into(),
        did: format!("did:web:{ctx}"),
        bpn: None,
    };
    let mut call = CallContext::new(tenant, entry);
    call.grants = Arc::new(grants);
    call
}

async fn setup() -> Wasm {
    let f = start(ClaimMode::Subject, ApiVersion::V5beta).await;
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let mut config = f.config();
    config.events.max_attempts = 3;
    config.events.retry_base_ms = 1;
    config.events.retry_max_ms = 5;
    let client = ManagementClient::new(config, Some(store.clone())).unwrap();
    let state = Arc::new(MemoryState::default());
    let services = Services {
        state: state.clone(),
        management: Arc::new(client.clone()),
        transfer: Arc::new(Unconfigured),
    };
    let mut rc = RuntimeConfig::default();
    rc.pool.instances = 16;
    let rt = Runtime::new(rc, services).unwrap();
    let hello = rt
        .load(LoadRequest {
            wasm: weft_bundle::HELLO.wasm,
            manifest: weft_bundle::HELLO.manifest,
            signature: None,
        })
        .unwrap();
    Wasm {
        f,
        client,
        store,
        state,
        rt,
        hello,
    }
}

impl Wasm {
    /// `POST {path}` to hello's tenant API as `ctx` with `grants`; returns its JSON answer.
    async fn api(&self, ctx: &str, grants: Grants, path: &str, body: Value) -> Value {
        let request = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://plugin{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = self
            .rt
            .handle_http(self.hello.clone(), call(ctx, Entry::Api, grants), request)
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn last_event(&self, ctx: &str) -> Option<String> {
        let scope = Scope {
            tenant: ctx.into(),
            plugin: "hello".into(),
        };
        self.state
            .get(&scope, "last-event")
            .await
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }
}

const RW: [&str; 2] = [READ, WRITE];

fn create_asset(id: &str) -> Value {
    json!({"method": "POST", "path": "assets",
        "body": {"@type": "Asset", "@id": id, "properties": {"name": id}}})
}

#[tokio::test]
async fn the_management_import_is_tenant_scoped_and_granted() {
    let w = setup().await;
    // The same app, enabled for two tenants, bootstraps the same asset id for each.
    for ctx in [CONSUMER, OUTSIDER] {
        let r = w
            .api(
                ctx,
                grants(&RW, 1 << 20),
                "/mgmt",
                create_asset("app-asset"),
            )
            .await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["body"]["@id"], "app-asset");
    }
    // A second bootstrap sees 409: "exists".
    let r = w
        .api(
            CONSUMER,
            grants(&RW, 1 << 20),
            "/mgmt",
            create_asset("app-asset"),
        )
        .await;
    assert_eq!(r["status"], 409, "{r}");
    // Each tenant sees only its own asset.
    let mine = w
        .api(
            CONSUMER,
            grants(&RW, 1 << 20),
            "/mgmt",
            json!({"method": "POST", "path": "assets/request", "body": {"@type": "QuerySpec"}}),
        )
        .await;
    assert_eq!(mine["body"].as_array().unwrap().len(), 1, "{mine}");
    for r in w.f.recorded() {
        assert!(!r.path.contains("/participants/provider-pc/"), "{}", r.path);
    }

    // Read-only grants: a write is refused inside the host and never reaches the control plane.
    w.f.sb.control_plane().clear_requests();
    let r = w
        .api(
            CONSUMER,
            grants(&[READ], 1 << 20),
            "/mgmt",
            create_asset("denied"),
        )
        .await;
    assert_eq!(r["error"], "access-denied", "{r}");
    assert!(w.f.recorded().is_empty(), "the control plane saw nothing");
    let r = w
        .api(
            CONSUMER,
            grants(&[READ], 1 << 20),
            "/mgmt",
            json!({"method": "GET", "path": "assets/app-asset"}),
        )
        .await;
    assert_eq!(r["status"], 200, "{r}");
    // Nothing outside the tenant scope.
    w.f.sb.control_plane().clear_requests();
    for path in [
        "../provider-pc/assets",
        "participants",
        "/api/mgmt/v5beta/participants/provider-pc/assets",
    ] {
        let r = w
            .api(
                CONSUMER,
                grants(&RW, 1 << 20),
                "/mgmt",
                json!({"method": "GET", "path": path}),
            )
            .await;
        assert!(
            r["error"] == "invalid" || r["error"] == "access-denied",
            "{path}: {r}"
        );
    }
    assert!(w.f.recorded().is_empty());
}

#[tokio::test]
async fn apps_wait_and_watch_without_spinning() {
    let w = setup().await;
    offer(&w.client, "data").await;
    let id = negotiate(&w.f, &w.client, CONSUMER, "data").await;
    let r = w
        .api(
            CONSUMER,
            grants(&RW, 1 << 20),
            "/wait",
            json!({"kind": "contract-negotiation",
        "id": id, "states": ["FINALIZED", "TERMINATED"], "timeoutMs": 20_000}),
        )
        .await;
    assert_eq!(r["state"], "FINALIZED", "{r}");
    let outsider = negotiate(&w.f, &w.client, OUTSIDER, "data").await;
    let r = w
        .api(
            OUTSIDER,
            grants(&RW, 1 << 20),
            "/wait",
            json!({"kind": "contract-negotiation",
        "id": outsider, "states": ["FINALIZED", "TERMINATED"], "timeoutMs": 20_000}),
        )
        .await;
    assert_eq!(r["state"], "TERMINATED", "{r}");
    // The outsider cannot wait on or watch the consumer's negotiation.
    let r = w
        .api(
            OUTSIDER,
            grants(&RW, 1 << 20),
            "/wait",
            json!({"kind": "contract-negotiation",
        "id": id, "states": ["FINALIZED"], "timeoutMs": 1_000}),
        )
        .await;
    assert_eq!(r["error"], "not-found", "{r}");
    let r = w
        .api(
            CONSUMER,
            grants(&RW, 1 << 20),
            "/watch",
            json!({"kind": "contract-negotiation", "id": id, "correlation": "c1"}),
        )
        .await;
    assert_eq!(r["watching"], id.as_str(), "{r}");
    let watches = w.store.mgmt_watches(None, 10).await.unwrap();
    assert_eq!(watches.len(), 1);
    assert_eq!(
        (
            watches[0].watch.tenant_id.as_str(),
            watches[0].watch.plugin_id.as_str()
        ),
        (CONSUMER, "hello")
    );
}

/// Delivers to the real `hello` plugin; the outsider's enablement has no state quota, so its
/// handler (which records the event in state) fails.
struct HelloTargets {
    rt: Arc<Runtime>,
    hello: Arc<LoadedPlugin>,
}

impl HelloTargets {
    fn grants_of(ctx: &str) -> Grants {
        grants(&RW, if ctx == CONSUMER { 1 << 20 } else { 0 })
    }
}

#[async_trait]
impl EventTargets for HelloTargets {
    async fn subscribers(&self, _topic: Topic) -> Vec<Subscriber> {
        [CONSUMER, OUTSIDER]
            .iter()
            .map(|ctx| Subscriber {
                ctx: (*ctx).into(),
                plugin_id: "hello".into(),
                grants: Arc::new(Self::grants_of(ctx)),
            })
            .collect()
    }

    async fn deliver(&self, ctx: &str, plugin_id: &str, event: Event) -> Result<(), DeliveryError> {
        if plugin_id != "hello" {
            return Err(DeliveryError::NotEnabled);
        }
        let call = call(ctx, Entry::Events, Self::grants_of(ctx));
        deliver_via_runtime(&self.rt, &self.hello, call, event).await
    }
}

#[tokio::test]
async fn events_reach_the_app_for_the_right_tenant_and_failures_are_audited() {
    let w = setup().await;
    let targets = Arc::new(HelloTargets {
        rt: w.rt.clone(),
        hello: w.hello.clone(),
    });
    let hub = EventHub::new(w.client.clone(), targets).unwrap();
    offer(&w.client, "data").await;
    assert_eq!(hub.poll_once().await.errors, 0);

    let id = negotiate(&w.f, &w.client, CONSUMER, "data").await;
    let done = ["FINALIZED".to_owned(), "TERMINATED".to_owned()];
    w.client
        .wait_for(
            CONSUMER,
            weft_management::Process::Negotiation,
            &id,
            &done,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(hub.poll_once().await.events, 1);
    // Timer ticks for both tenants too.
    assert_eq!(hub.tick_timers().await, 2);
    let mut failed = 0;
    eventually("the outsider's handler gives up", async || {
        failed += hub.deliver_due().await.failed;
        failed == 1
    })
    .await;

    let events = w.store.mgmt_events_of(CONSUMER, 10).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let negotiation_event = events.iter().find(|e| e.subject == id).unwrap();
    let last = w
        .last_event(CONSUMER)
        .await
        .expect("the consumer's app got its events");
    assert!(events.iter().any(|e| e.id == last), "{last}");
    assert!(negotiation_event.attempts == 1);
    assert_eq!(
        w.last_event(OUTSIDER).await,
        None,
        "the outsider's app recorded nothing"
    );
    assert!(w.last_event(PROVIDER).await.is_none());

    let audit = w
        .store
        .list_audit(&AuditFilter {
            target_prefix: Some(format!("tenant/{OUTSIDER}/plugin/hello/event/")),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "event.delivery-failed");
    let detail: Value = serde_json::from_str(&audit[0].detail_json).unwrap();
    assert_eq!(detail["attempts"], 3, "{detail}");
    assert!(
        detail["reason"].as_str().unwrap().contains("handler"),
        "{detail}"
    );
}
