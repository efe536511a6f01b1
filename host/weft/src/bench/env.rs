//! The environment B2–B6 share: the dataspace stand-in's identity provider, one Weft
//! assembled as `weft serve` assembles it (SQLite store in a temporary directory, the DPS
//! data plane with this benchmark as its control plane; `hello` 0.1.0 active and 2.0.0
//! installed, one tenant with `hello` enabled) and the native baseline server (which
//! also acknowledges the data plane's callbacks), all on loopback.
//!
//! Weft is configured like a deployment except for the per-tenant request limits, which
//! are raised so the load generator measures cost, not the rate limiter.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use weft_auth::{AuthConfig, Authenticator};
use weft_sandbox::{
    ClaimMode, ClientSpec, ParticipantSpec, RunningSandbox, Sandbox, SandboxConfig,
};
use weft_server::{ServerConfig, TenantLimits, Weft, WeftOptions};

/// The tenant (participant context) the load runs as.
pub(crate) const TENANT: &str = "bench";

/// Its business partner number.
pub(crate) const TENANT_BPN: &str = "BPNL000000000001";

/// The scope the tenant's token carries (Weft's default apps scope).
const APPS_SCOPE: &str = weft_auth::DEFAULT_APPS_SCOPE;

/// Token lifetime: longer than any benchmark run.
const TOKEN_LIFETIME_SECS: u64 = 6 * 3600;

/// Concurrent calls per tenant allowed during the benchmark: above any load it generates.
const BENCH_MAX_CONCURRENT_CALLS: u32 = 100_000;

/// Request rate per tenant allowed during the benchmark: never reached.
const BENCH_REQUESTS_PER_SECOND: f64 = 1e9;

/// The tenant's DID.
pub(crate) fn did(ctx: &str) -> String {
    format!("did:web:localhost:{ctx}")
}

/// Id of the control plane this benchmark plays towards the data plane.
const CONTROL_PLANE_ID: &str = "bench-control-plane";

/// Where the data plane sends callbacks (on the native server, which acknowledges all).
const CALLBACK_PREFIX: &str = "/bench-control-plane";

/// The runtime configuration of Weft's side: the defaults, plus a perf map of the compiled
/// plugins when `WEFT__RUNTIME__PERF_MAP=true` (as for `weft serve`), for profiling.
pub(crate) fn runtime_config() -> weft_runtime::config::RuntimeConfig {
    weft_runtime::config::RuntimeConfig {
        perf_map: std::env::var(PERF_MAP_VAR).is_ok_and(|v| v == "true" || v == "1"),
        ..Default::default()
    }
}

/// The override `weft serve` reads for [`weft_runtime::config::RuntimeConfig::perf_map`].
const PERF_MAP_VAR: &str = "WEFT__RUNTIME__PERF_MAP";

/// The data plane configuration: this benchmark is every context's control plane,
/// authenticated with a static token both ways.
pub(crate) fn data_plane_config(
    public_url: &str,
    callback_endpoint: &str,
    authorization: &str,
) -> anyhow::Result<weft_dataplane::DataPlaneConfig> {
    let doc = toml::toml! {
        public-url = public_url
        // Everything runs on plain-http loopback.
        allow-insecure-endpoints = true
        [[control-planes]]
        id = CONTROL_PLANE_ID
        endpoint = callback_endpoint
        contexts = ["*"]
        authorization = { type = "static_token", authorization = authorization }
    };
    Ok(toml::Value::Table(doc).try_into()?)
}

/// The running environment.
pub(crate) struct Env {
    pub(crate) dataspace: RunningSandbox,
    pub(crate) weft: Weft,
    /// What the control plane sends as `Authorization` on DPS signals.
    pub(crate) cp_authorization: String,
    /// Callback base URL and authorization, for child hosts.
    pub(crate) callback_endpoint: String,
    /// The identity provider settings Weft uses (for child hosts and native baselines).
    pub(crate) auth: AuthConfig,
    pub(crate) weft_addr: SocketAddr,
    pub(crate) native_addr: SocketAddr,
    pub(crate) admin_token: String,
    pub(crate) tenant_token: String,
    pub(crate) http: reqwest::Client,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    assembled: crate::wiring::Assembled,
    /// A PostgreSQL store's URL and throw-away schema, dropped at shutdown.
    store_url: Option<String>,
    store_schema: Option<String>,
    _dir: tempfile::TempDir,
}

impl Env {
    pub(crate) async fn start(store_url: Option<&str>) -> anyhow::Result<Env> {
        let dir = tempfile::Builder::new()
            .prefix("weft-bench-")
            .tempdir()
            .context("creating the data directory")?;
        let mut sandbox = SandboxConfig {
            claim_mode: ClaimMode::Subject,
            token_lifetime_secs: TOKEN_LIFETIME_SECS,
            ..SandboxConfig::default()
        };
        sandbox
            .participants
            .push(ParticipantSpec::new(TENANT, did(TENANT)).with_bpn(TENANT_BPN));
        sandbox.clients.push(ClientSpec::participant(
            "bench-client",
            "bench-secret",
            TENANT,
            &[APPS_SCOPE],
        ));
        let dataspace = Sandbox::start(sandbox)
            .await
            .context("starting the identity provider")?;
        let urls = dataspace.urls().clone();
        let mut auth = AuthConfig::new(urls.issuer.clone(), urls.jwks.clone());
        auth.claim_mode = weft_auth::ClaimMode::Subject;

        let mut server = ServerConfig::with_data_dir(dir.path());
        if let Some(url) = store_url {
            server.store_url = Some(url.to_owned());
            server.store_schema = Some(format!("weft_bench_{}", random_hex(6)));
        }
        let (store_url, store_schema) = (server.store_url.clone(), server.store_schema.clone());
        server.tenant_limits = TenantLimits {
            max_concurrent_calls: BENCH_MAX_CONCURRENT_CALLS,
            requests_per_second: BENCH_REQUESTS_PER_SECOND,
            burst: u32::MAX,
        };
        let weft_listener = bind().await?;
        let weft_addr = weft_listener.local_addr()?;
        let native_listener = bind().await?;
        let native_addr = native_listener.local_addr()?;
        let cp_authorization = format!("Bearer {}", random_hex(24));
        let callback_endpoint = format!("http://{native_addr}{CALLBACK_PREFIX}");
        let data_plane = data_plane_config(
            &format!("http://{weft_addr}"),
            &callback_endpoint,
            &cp_authorization,
        )?;
        let assembled = crate::wiring::Assembled::build(
            WeftOptions::new(server, auth.clone(), runtime_config()),
            crate::wiring::Parts {
                management: None,
                data_plane: Some(data_plane),
            },
        )
        .await
        .context("starting Weft")?;
        let weft = assembled.weft.clone();

        let mut stops = Vec::new();
        let mut servers = Vec::new();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        servers.push(tokio::spawn(weft_server::serve(
            weft_listener,
            weft.router(),
            async move {
                let _ = stopped.await;
            },
        )));

        let native_auth = Authenticator::new(auth.clone(), reqwest::Client::new())?;
        let native = super::api::native_routes(native_auth.clone())
            .merge(super::pull::native_routes(native_auth))
            .route(
                &format!("{CALLBACK_PREFIX}/{{*rest}}"),
                axum::routing::any(|| async { axum::http::StatusCode::OK }),
            );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        servers.push(tokio::spawn(async move {
            axum::serve(native_listener, native)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        }));

        let env = Env {
            admin_token: dataspace.admin_token()?,
            tenant_token: dataspace.tenant_token(TENANT, &[APPS_SCOPE])?,
            dataspace,
            weft,
            cp_authorization,
            callback_endpoint,
            assembled,
            auth,
            weft_addr,
            native_addr,
            http: reqwest::Client::new(),
            stops,
            servers,
            store_url,
            store_schema,
            _dir: dir,
        };
        env.provision().await.context("provisioning Weft")?;
        Ok(env)
    }

    /// Weft's base URL.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.weft_addr)
    }

    /// Installs hello 0.1.0 (active) and 2.0.0, creates the tenant and enables hello.
    async fn provision(&self) -> anyhow::Result<()> {
        let base = self.base();
        upload(
            &self.http,
            &base,
            &self.admin_token,
            &weft_bundle::HELLO,
            true,
        )
        .await?;
        upload(
            &self.http,
            &base,
            &self.admin_token,
            &weft_bundle::HELLO_V2,
            false,
        )
        .await?;
        create_tenant(
            &self.http,
            &base,
            &self.admin_token,
            TENANT,
            Some(TENANT_BPN),
        )
        .await?;
        enable(&self.http, &base, &self.admin_token, TENANT, "hello").await?;
        Ok(())
    }

    pub(crate) async fn shutdown(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for server in self.servers {
            let _ = server.await;
        }
        self.weft.close().await;
        drop(self.assembled);
        self.dataspace.shutdown().await;
        if let (Some(url), Some(schema)) = (&self.store_url, &self.store_schema)
            && let Err(e) = weft_store::drop_postgres_schema(url, schema).await
        {
            eprintln!("could not drop the benchmark's schema {schema}: {e}");
        }
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A DPS prepare/start message (as a control plane sends it) for an http-pull flow.
pub(crate) fn flow_message(process_id: &str) -> Value {
    flow_message_with(process_id, weft_dataplane::HTTP_PULL_PROFILE)
}

/// A DPS prepare/start message for `process_id` with `profile`.
pub(crate) fn flow_message_with(process_id: &str, profile: &str) -> Value {
    json!({
        "messageId": format!("{process_id}-{}", random_hex(4)),
        "participantId": did(TENANT),
        "counterPartyId": "did:web:localhost:counterparty",
        "dataspaceContext": "bench",
        "processId": process_id,
        "agreementId": "agreement-1",
        "datasetId": "dataset-1",
        "profile": profile,
        "claims": {},
        "labels": [],
        "metadata": {}
    })
}

/// A signal message (`terminate`, `started`, …) with a fresh message id.
pub(crate) fn signal_message() -> Value {
    json!({ "messageId": random_hex(8) })
}

async fn bind() -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("binding a loopback port")
}

/// Uploads a bundled plugin through the admin API, granting what its manifest asks.
pub(crate) async fn upload(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    plugin: &weft_bundle::Bundled,
    activate: bool,
) -> anyhow::Result<Value> {
    let asks = weft_runtime::manifest::Manifest::parse(plugin.manifest)?.capabilities;
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(plugin.wasm.to_vec()).file_name("plugin.wasm"),
        )
        .text("manifest", plugin.manifest.to_string())
        .text("grants", serde_json::to_string(&asks)?);
    let resp = http
        .post(format!("{base}/admin/plugins?activate={activate}"))
        .bearer_auth(admin_token)
        .multipart(form)
        .send()
        .await?;
    expect_ok(resp, &format!("uploading {}", plugin.id)).await
}

/// Creates a tenant through the admin API.
pub(crate) async fn create_tenant(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    ctx: &str,
    bpn: Option<&str>,
) -> anyhow::Result<Value> {
    let mut body = json!({"id": ctx, "did": did(ctx)});
    if let Some(bpn) = bpn {
        body["bpn"] = json!(bpn);
    }
    let resp = http
        .post(format!("{base}/admin/tenants"))
        .bearer_auth(admin_token)
        .json(&body)
        .send()
        .await?;
    expect_ok(resp, &format!("creating tenant {ctx}")).await
}

/// Enables an app for a tenant through the admin API (runs its `on-enable`).
pub(crate) async fn enable(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    ctx: &str,
    app: &str,
) -> anyhow::Result<Value> {
    let resp = http
        .put(format!("{base}/admin/tenants/{ctx}/apps/{app}"))
        .bearer_auth(admin_token)
        .json(&json!({"config": {}}))
        .send()
        .await?;
    expect_ok(resp, &format!("enabling {app} for {ctx}")).await
}

/// Activates a plugin version through the admin API.
pub(crate) async fn activate(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    id: &str,
    version: &str,
) -> anyhow::Result<Value> {
    let resp = http
        .post(format!(
            "{base}/admin/plugins/{id}/versions/{version}/activate"
        ))
        .bearer_auth(admin_token)
        .send()
        .await?;
    expect_ok(resp, &format!("activating {id} {version}")).await
}

pub(crate) async fn expect_ok(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what}: {status} {body}");
    }
    Ok(body)
}

/// Sends one DPS message as the control plane; returns the status and the JSON reply.
pub(crate) async fn dps(
    http: &reqwest::Client,
    base: &str,
    authorization: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let resp = http
        .post(format!("{base}{path}"))
        .header(reqwest::header::AUTHORIZATION, authorization)
        .json(body)
        .send()
        .await?;
    let status = resp.status();
    let reply: Value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, reply))
}

/// Sends a DPS message and checks the reply is 200 with `state`.
pub(crate) async fn dps_expect(
    http: &reqwest::Client,
    base: &str,
    authorization: &str,
    path: &str,
    body: &Value,
    state: &str,
) -> anyhow::Result<Value> {
    let (status, reply) = dps(http, base, authorization, path, body).await?;
    if status != reqwest::StatusCode::OK || reply["state"] != state {
        bail!("{path}: expected 200 {state}, got {status} {reply}");
    }
    Ok(reply)
}
