//! Shared test harness: a Weft data plane on 127.0.0.1:0 with a runtime, a registry of the
//! bundled fixture apps and a test [`AppDirectory`]; a test control plane that records
//! callbacks; and a small DPS client.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use weft_dataplane::{
    AppDirectory, ControlPlaneSeed, CpAuthorization, DataPlane, DataPlaneConfig, DirectoryError,
    TenantApp, TransferHandle, Workers,
};
use weft_runtime::config::RuntimeConfig;
use weft_runtime::{CallContext, Entry, Registry, Runtime, Services, Tenant};
use weft_store::Store;

pub const PULL: &str = "https://w3id.org/dspace-sig/profile/http-pull";
pub const PUSH: &str = "https://w3id.org/dspace-sig/profile/http-push";
pub const PROVIDER: &str = "provider-ctx";
pub const CONSUMER: &str = "consumer-ctx";
/// A tenant with no app enabled.
pub const EMPTY: &str = "empty-ctx";
pub const CP_ID: &str = "tck-control-plane";

/// Upper bound for waiting on an asynchronous outcome; only reached when a test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Tenants and the plugins they enabled, over one registry.
pub struct TestDirectory {
    runtime: Arc<Runtime>,
    registry: Registry,
    tenants: Mutex<HashMap<String, Vec<String>>>,
}

impl TestDirectory {
    pub fn enable(&self, ctx: &str, plugin: &str) {
        self.tenants
            .lock()
            .unwrap()
            .entry(ctx.to_owned())
            .or_default()
            .push(plugin.to_owned());
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A call context for `ctx` and `plugin` (grants from the manifest).
    pub fn call(
        &self,
        ctx: &str,
        plugin: &str,
        entry: Entry,
    ) -> (Arc<weft_runtime::LoadedPlugin>, CallContext) {
        let p = self.registry.active(plugin).unwrap();
        let mut call = CallContext::new(
            Tenant {
                participant_context_id: ctx.to_owned(),
                did: format!("did:web:{ctx}"),
                bpn: None,
            },
            entry,
        );
        call.grants = Arc::new(p.manifest.capabilities.clone());
        (p, call)
    }
}

#[async_trait]
impl AppDirectory for TestDirectory {
    fn runtime(&self) -> Arc<Runtime> {
        self.runtime.clone()
    }

    async fn apps_for(&self, ctx: &str) -> Result<Vec<TenantApp>, DirectoryError> {
        let plugins = self
            .tenants
            .lock()
            .unwrap()
            .get(ctx)
            .cloned()
            .ok_or_else(|| DirectoryError::UnknownTenant(ctx.to_owned()))?;
        Ok(plugins
            .iter()
            .filter_map(|id| {
                self.registry.active(id)?;
                let (plugin, call) = self.call(ctx, id, Entry::Api);
                Some(TenantApp { plugin, call })
            })
            .collect())
    }
}

/// Where compiled components are cached between the tests of this crate.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-dataplane-cache")
}

/// A running Weft data plane.
pub struct Host {
    pub dp: DataPlane,
    pub url: String,
    pub directory: Arc<TestDirectory>,
    pub store: Store,
    server: JoinHandle<()>,
    workers: Option<Workers>,
}

/// A test config: insecure endpoints allowed, fast callbacks, the CP seeded for every context.
pub fn config(cp_url: &str) -> DataPlaneConfig {
    let mut c = DataPlaneConfig {
        allow_insecure_endpoints: true,
        ..DataPlaneConfig::default()
    };
    c.callbacks.initial_backoff_ms = 20;
    c.callbacks.max_backoff_ms = 200;
    c.callbacks.poll_ms = 50;
    c.callbacks.settle_ms = 10;
    // A crash mid-delivery leaves the callback leased for this long (plus a margin).
    c.callbacks.timeout_ms = 1_000;
    c.control_planes.push(ControlPlaneSeed {
        id: CP_ID.to_owned(),
        endpoint: cp_url.to_owned(),
        contexts: vec!["*".to_owned()],
        authorization: Some(CpAuthorization::None),
    });
    c
}

impl Host {
    /// Starts a host on `db` with `provider`/`consumer` tenants running the
    /// conformance app, and `empty` with none.
    pub async fn start(db: &Db, config: DataPlaneConfig) -> Host {
        Self::start_with(db, config, |_| {}).await
    }

    pub async fn start_with(
        db: &Db,
        mut config: DataPlaneConfig,
        tweak: impl FnOnce(&TestDirectory),
    ) -> Host {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        config.public_url = url.clone();

        let transfer = TransferHandle::new();
        let mut services = Services::in_memory();
        services.transfer = Arc::new(transfer.clone());
        let mut rc = RuntimeConfig {
            cache_dir: Some(cache_dir()),
            ..RuntimeConfig::default()
        };
        rc.pool.enabled = false;
        let runtime = Runtime::new(rc, services).unwrap();
        let registry = Registry::new(runtime.clone());
        for b in [weft_bundle::DPS_CONFORMANCE, weft_bundle::HELLO] {
            let p = registry
                .install(b.wasm.to_vec(), b.manifest.to_owned(), None)
                .await
                .unwrap();
            registry.activate(p.id(), &p.version()).unwrap();
        }
        let directory = Arc::new(TestDirectory {
            runtime,
            registry,
            tenants: Mutex::new(HashMap::new()),
        });
        directory.enable(PROVIDER, "dps-conformance");
        directory.enable(CONSUMER, "dps-conformance");
        directory
            .tenants
            .lock()
            .unwrap()
            .insert(EMPTY.to_owned(), Vec::new());
        tweak(&directory);

        let store = db.open().await;
        let dp = DataPlane::new(store.clone(), directory.clone(), config).unwrap();
        transfer.bind(&dp);
        let workers = dp.start_workers();
        let app = dp.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Host {
            dp,
            url,
            directory,
            store,
            server,
            workers: Some(workers),
        }
    }

    /// Stops the server and workers and closes the store (a host crash, as far as the
    /// durable state is concerned).
    pub async fn stop(mut self) {
        self.server.abort();
        let _ = (&mut self.server).await;
        self.workers.take();
        self.store.close().await;
    }

    pub fn client(&self, ctx: &str) -> Dps {
        Dps {
            http: reqwest::Client::new(),
            base: format!("{}/dps/{ctx}", self.url),
            auth: None,
        }
    }

    /// Calls the conformance app's tenant API as `ctx`.
    pub async fn app_api(
        &self,
        ctx: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, bytes) = self.app_api_raw(ctx, method, path, body).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn app_api_raw(
        &self,
        ctx: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Bytes) {
        let (plugin, call) = self.directory.call(ctx, "dps-conformance", Entry::Api);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("http://weft.test{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let runtime = self.directory.runtime();
        let response = runtime.handle_http(plugin, call, request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes)
    }

    /// The hooks the conformance app recorded for a flow of `ctx`.
    pub async fn hooks(&self, ctx: &str, flow: &str) -> Vec<Value> {
        let (status, v) = self
            .app_api(ctx, "GET", &format!("/hooks/{flow}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v.as_array().unwrap().clone()
    }

    pub async fn state(&self, ctx: &str, flow: &str) -> Option<String> {
        self.dp.flow(ctx, flow).await.unwrap().map(|f| f.state)
    }
}

/// A DPS client for one context.
#[derive(Clone)]
pub struct Dps {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: Option<String>,
}

/// A reply: status, headers, JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Dps {
    pub fn with_auth(mut self, auth: &str) -> Dps {
        self.auth = Some(auth.to_owned());
        self
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn prepare(&self, body: &Value) -> Reply {
        self.post("/dataflows/prepare", body).await
    }

    pub async fn start(&self, body: &Value) -> Reply {
        self.post("/dataflows/start", body).await
    }

    /// `POST /dataflows/{id}/{signal}` with a fresh `messageId` plus `extra` fields.
    pub async fn signal(&self, id: &str, signal: &str, extra: Value) -> Reply {
        let mut body = json!({ "messageId": uuid::Uuid::new_v4().to_string() });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.post(&format!("/dataflows/{id}/{signal}"), &body).await
    }

    pub async fn status(&self, id: &str) -> Reply {
        self.send(
            reqwest::Method::GET,
            &format!("/dataflows/{id}/status"),
            None,
        )
        .await
    }

    /// Asserts the flow's status is `state`.
    pub async fn assert_state(&self, id: &str, state: &str) {
        let r = self.status(id).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["dataFlowId"], id);
        assert_eq!(r.body["state"], state, "flow {id}");
    }
}

/// A prepare/start message as the DPS test kit sends it.
pub fn flow_message(process_id: &str, agreement: &str, profile: &str) -> Value {
    json!({
        "messageId": uuid::Uuid::new_v4().to_string(),
        "participantId": "tck-participant",
        "counterPartyId": "tck-counterparty",
        "dataspaceContext": "tck-dataspace",
        "processId": process_id,
        "agreementId": agreement,
        "datasetId": "dataset-1",
        "profile": profile,
        "claims": {},
        "labels": ["l1"],
        "metadata": {"m": 1}
    })
}

/// A push start: the consumer's address.
pub fn push_start(process_id: &str, agreement: &str, consumer_address: Value) -> Value {
    let mut m = flow_message(process_id, agreement, PUSH);
    m["dataAddress"] = consumer_address;
    m
}

/// A consumer push address that exists nowhere (the TCK's kind).
pub fn dummy_push_address() -> Value {
    json!({
        "endpointType": PUSH,
        "endpoint": "http://127.0.0.1:9/push",
        "endpointProperties": [{"name": "authType", "value": "bearer"}, {"name": "authorization", "value": "secret-consumer-token"}]
    })
}

/// Checks a reply is a DataFlowStatusMessage in `state`.
pub fn assert_status_message(r: &Reply, status: u16, id: &str, state: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["dataFlowId"], id, "{r:?}");
    assert_eq!(r.body["state"], state, "{r:?}");
    assert!(
        r.body["messageId"].as_str().is_some_and(|m| !m.is_empty()),
        "{r:?}"
    );
}

/// Checks a reply is a JSON error with `status`.
pub fn assert_error(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    assert!(
        r.body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "error body: {r:?}"
    );
}

/// The value of an endpoint property of a wire DataAddress.
pub fn property<'a>(address: &'a Value, name: &str) -> Option<&'a str> {
    address["endpointProperties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["value"]
        .as_str()
}

/// One callback the test control plane received.
#[derive(Debug, Clone)]
pub struct Callback {
    pub transfer: String,
    pub kind: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct CpState {
    received: Mutex<Vec<Callback>>,
    /// Attempts answered with 503 (and not recorded).
    refused: AtomicUsize,
    /// The status to answer; 200 unless a test says otherwise.
    status: AtomicU16,
    notify: tokio::sync::Notify,
}

/// A control plane that records callbacks.
#[derive(Clone)]
pub struct TestCp {
    pub url: String,
    state: Arc<CpState>,
}

async fn callback(
    State(state): State<Arc<CpState>>,
    UrlPath((transfer, kind)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status =
        StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    if !status.is_success() {
        state.refused.fetch_add(1, Ordering::SeqCst);
        state.notify.notify_waiters();
        return status;
    }
    let cb = Callback {
        transfer,
        kind,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    state.received.lock().unwrap().push(cb);
    state.notify.notify_waiters();
    status
}

impl TestCp {
    pub async fn start() -> TestCp {
        let state = Arc::new(CpState::default());
        state.status.store(200, Ordering::SeqCst);
        let app = axum::Router::new()
            .route(
                "/transfers/{transfer}/dataflow/{kind}",
                axum::routing::post(callback),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/signaling", listener.local_addr().unwrap());
        let app = axum::Router::new().nest("/api/signaling", app);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestCp { url, state }
    }

    /// Answers callbacks with `status` from now on.
    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Callback> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the control plane's state (bounded by [`WAIT`]).
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&TestCp) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.state.notify.notified();
            if pred(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() && !pred(self) {
                panic!(
                    "timed out waiting for {what}; received {:?}",
                    self.received()
                );
            }
        }
    }

    /// Waits for the callback `kind` of `transfer` and returns it.
    pub async fn wait_for(&self, transfer: &str, kind: &str) -> Callback {
        self.wait_until(&format!("callback {kind} of {transfer}"), |cp| {
            cp.received()
                .iter()
                .any(|c| c.transfer == transfer && c.kind == kind)
        })
        .await;
        self.received()
            .into_iter()
            .find(|c| c.transfer == transfer && c.kind == kind)
            .unwrap()
    }

    /// The callbacks received for one transfer, in order.
    pub fn callbacks_of(&self, transfer: &str) -> Vec<Callback> {
        self.received()
            .into_iter()
            .filter(|c| c.transfer == transfer)
            .collect()
    }
}

/// The database of a test: a temporary SQLite file, or a fresh schema on the PostgreSQL
/// server named by `WEFT_TEST_POSTGRES_URL` when that is set. Opening it again is a restart.
pub enum Db {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

/// Environment variable naming the PostgreSQL server to run the tests against.
pub const POSTGRES_URL_VAR: &str = "WEFT_TEST_POSTGRES_URL";

impl Db {
    pub fn new() -> Db {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => Db::Postgres {
                url,
                schema: format!("weft_dp_{}", uuid::Uuid::new_v4().simple()),
            },
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("weft.db");
                Db::Sqlite { _dir: dir, path }
            }
        }
    }

    pub async fn open(&self) -> Store {
        match self {
            Db::Sqlite { path, .. } => {
                Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                    .await
                    .unwrap()
            }
            Db::Postgres { url, schema } => Store::connect_with_schema(url, schema).await.unwrap(),
        }
    }

    /// Every text value of every row of every table, for scanning what is stored.
    pub async fn dump_text(&self) -> String {
        use sqlx::{Column, Row};
        let mut out = String::new();
        match self {
            Db::Sqlite { path, .. } => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let tables: Vec<(String,)> =
                    sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                for (t,) in tables {
                    for row in sqlx::query(&format!("SELECT * FROM \"{t}\""))
                        .fetch_all(&pool)
                        .await
                        .unwrap()
                    {
                        for c in row.columns() {
                            if let Ok(Some(v)) = row.try_get::<Option<String>, _>(c.ordinal()) {
                                out.push_str(&v);
                                out.push('\n');
                            }
                        }
                    }
                }
                pool.close().await;
            }
            Db::Postgres { url, schema } => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let tables: Vec<(String,)> =
                    sqlx::query_as("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1")
                        .bind(schema)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                for (t,) in tables {
                    let sql = format!("SELECT row_to_json(x)::text FROM \"{schema}\".\"{t}\" x");
                    for (v,) in sqlx::query_as::<_, (String,)>(&sql)
                        .fetch_all(&pool)
                        .await
                        .unwrap()
                    {
                        out.push_str(&v);
                        out.push('\n');
                    }
                }
                pool.close().await;
            }
        }
        out
    }

    /// Drops a PostgreSQL schema (nothing to do for SQLite).
    pub async fn cleanup(&self) {
        if let Db::Postgres { url, schema } = self {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}
