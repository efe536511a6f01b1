//! Shared fixtures: a sandbox (IdP + control plane) with three tenants and their OAuth2
//! clients, a counting/fault-injecting proxy in front of the IdP and the control plane, a
//! client configured against them, and seeding helpers that go through the client itself.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use weft_management::{
    ApiVersion, Grant, IdentityConfig, ManagementClient, ManagementConfig, Secret, TenantClient,
};
use weft_runtime::GuestError;
use weft_runtime::bindings::management::{
    Method, Request as MgmtRequest, Response as MgmtResponse,
};
use weft_runtime::bindings::types::Property;
use weft_sandbox::{
    ClaimMode, ClientSpec, ParticipantSpec, RunningSandbox, Sandbox, SandboxConfig,
};

pub const PROVIDER: &str = "provider-pc";
pub const CONSUMER: &str = "consumer-pc";
pub const OUTSIDER: &str = "outsider-pc";
pub const PROVIDER_DID: &str = "did:web:provider.example";
pub const READ: &str = "management-api:read";
pub const WRITE: &str = "management-api:write";
pub const HTTP_PULL: &str = "https://w3id.org/dspace-sig/profile/http-pull";

/// Bound for polling loops; only reached when something is broken.
pub const POLL_ATTEMPTS: usize = 500;
pub const POLL_PAUSE: Duration = Duration::from_millis(20);

pub fn secret_of(ctx: &str) -> String {
    format!("{ctx}-secret")
}

/// A reverse proxy that counts requests and can answer the next ones with given statuses.
#[derive(Clone)]
pub struct Proxy {
    pub base: String,
    target: String,
    http: reqwest::Client,
    count: Arc<AtomicU64>,
    faults: Arc<Mutex<VecDeque<u16>>>,
    /// Paths (with query) of the requests received, oldest first.
    pub paths: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            base: format!("http://{}", listener.local_addr().unwrap()),
            target: target.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            count: Arc::new(AtomicU64::new(0)),
            faults: Arc::new(Mutex::new(VecDeque::new())),
            paths: Arc::new(Mutex::new(Vec::new())),
        };
        let router = Router::new().fallback(forward).with_state(proxy.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        proxy
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Answer the next requests with these statuses (without forwarding them).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.faults.lock().unwrap().extend(statuses.iter().copied());
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    proxy.count.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    proxy.paths.lock().unwrap().push(path.clone());
    if let Some(status) = proxy.faults.lock().unwrap().pop_front() {
        return (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!([{"message": "injected", "type": "Injected"}])),
        )
            .into_response();
    }
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut outbound = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.target))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outbound = outbound.header(name, value);
        }
    }
    let Ok(response) = outbound.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}

/// A TCP listener that accepts connections and never answers (a hung server).
pub async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

pub struct Fixture {
    pub sb: RunningSandbox,
    pub idp: Proxy,
    pub cp: Proxy,
    pub version: ApiVersion,
}

pub fn participants() -> Vec<ParticipantSpec> {
    vec![
        ParticipantSpec::new(PROVIDER, PROVIDER_DID),
        ParticipantSpec::new(CONSUMER, "did:web:consumer.example")
            .with_attribute("MembershipCredential", "active"),
        ParticipantSpec::new(OUTSIDER, "did:web:outsider.example"),
    ]
}

/// A sandbox in `mode` with a client per tenant (id = ctx) and Weft's exchange client.
pub async fn start(mode: ClaimMode, version: ApiVersion) -> Fixture {
    let mut clients: Vec<ClientSpec> = [PROVIDER, CONSUMER, OUTSIDER]
        .iter()
        .map(|pc| ClientSpec::participant(*pc, secret_of(pc), *pc, &[READ, WRITE]))
        .collect();
    clients.push(
        ClientSpec::service(
            "weft",
            "weft-secret",
            weft_sandbox::Role::Participant,
            &[READ, WRITE],
        )
        .with_token_exchange(),
    );
    let sb = Sandbox::start(SandboxConfig {
        claim_mode: mode,
        participants: participants(),
        clients,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let idp = Proxy::start(&sb.urls().idp).await;
    // The proxy keeps paths, so `{cp.base}/api/mgmt` is the management base.
    let origin = sb
        .urls()
        .management
        .trim_end_matches("/api/mgmt")
        .to_owned();
    let cp = Proxy::start(&origin).await;
    Fixture {
        sb,
        idp,
        cp,
        version,
    }
}

impl Fixture {
    /// Client credentials with every tenant's client inline; fast retries for tests.
    pub fn config(&self) -> ManagementConfig {
        let clients = [PROVIDER, CONSUMER, OUTSIDER]
            .iter()
            .map(|pc| TenantClient {
                participant_context: (*pc).to_owned(),
                client_id: (*pc).to_owned(),
                client_secret: Some(Secret::new(secret_of(pc))),
                client_secret_file: None,
            })
            .collect();
        let mut config = ManagementConfig::new(
            format!("{}/api/mgmt", self.cp.base),
            IdentityConfig {
                token_url: format!("{}/token", self.idp.base),
                grant: Grant::ClientCredentials {
                    clients,
                    secret_dir: None,
                },
                client_auth: Default::default(),
                timeout_ms: 5_000,
                refresh_margin_secs: 30,
                failure_hold_ms: 0,
            },
        );
        config.version = self.version;
        config.limits.retry_backoff_ms = 10;
        config.limits.wait_poll_initial_ms = 20;
        config.limits.wait_poll_max_ms = 100;
        config
    }

    pub fn client(&self) -> ManagementClient {
        ManagementClient::new(self.config(), None).unwrap()
    }

    /// Requests the control plane received (through the proxy or not), oldest first.
    pub fn recorded(&self) -> Vec<weft_sandbox::RecordedRequest> {
        self.sb.control_plane().requests()
    }

    pub fn dsp(&self, pc: &str) -> String {
        self.sb.urls().dsp_address(pc)
    }
}

pub fn request(method: Method, path: &str, body: Option<Value>) -> MgmtRequest {
    MgmtRequest {
        method,
        path: path.to_owned(),
        query: Vec::<Property>::new(),
        body: body.map(|b| b.to_string()),
    }
}

pub async fn send(
    client: &ManagementClient,
    ctx: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<MgmtResponse, GuestError> {
    client.send_as(ctx, request(method, path, body)).await
}

/// Sends and expects a 2xx; returns the JSON body (`Null` when empty).
pub async fn ok(
    client: &ManagementClient,
    ctx: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let r = send(client, ctx, method, path, body).await.unwrap();
    assert!(
        (200..300).contains(&r.status),
        "{path}: {} {}",
        r.status,
        r.body
    );
    if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&r.body).unwrap()
    }
}

/// The claims of a bearer token (unverified), from an `Authorization` header.
pub fn claims(authorization: &str) -> Value {
    let token = authorization.strip_prefix("Bearer ").unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn membership_policy() -> Value {
    json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "MembershipCredential", "operator": "eq", "rightOperand": "active"}]}]})
}

/// As the provider (through the client): an asset, an open access policy, a contract policy
/// requiring membership, and a contract definition offering the asset.
pub async fn offer(client: &ManagementClient, asset: &str) {
    ok(
        client,
        PROVIDER,
        Method::Post,
        "assets",
        Some(json!({"@type": "Asset", "@id": asset, "properties": {"name": asset}})),
    )
    .await;
    ok(
        client,
        PROVIDER,
        Method::Post,
        "policydefinitions",
        Some(
            json!({"@type": "PolicyDefinition", "@id": format!("open-{asset}"),
            "policy": {"@type": "Set", "permission": [{"action": "use"}]}}),
        ),
    )
    .await;
    ok(client, PROVIDER, Method::Post, "policydefinitions",
        Some(json!({"@type": "PolicyDefinition", "@id": format!("members-{asset}"), "policy": membership_policy()}))).await;
    ok(client, PROVIDER, Method::Post, "contractdefinitions",
        Some(json!({"@type": "ContractDefinition", "@id": format!("def-{asset}"),
            "accessPolicyId": format!("open-{asset}"), "contractPolicyId": format!("members-{asset}"),
            "assetsSelector": [{"@type": "Criterion", "operandLeft": "https://w3id.org/edc/v0.0.1/ns/id",
                "operator": "=", "operandRight": asset}]}))).await;
}

/// As `consumer`: finds the asset's offer in the provider's catalog and starts a negotiation.
pub async fn negotiate(
    f: &Fixture,
    client: &ManagementClient,
    consumer: &str,
    asset: &str,
) -> String {
    let catalog = ok(
        client,
        consumer,
        Method::Post,
        "catalog/request",
        Some(
            json!({"@type": "CatalogRequest", "counterPartyAddress": f.dsp(PROVIDER),
            "counterPartyId": PROVIDER_DID, "protocol": "dataspace-protocol-http:2025-1"}),
        ),
    )
    .await;
    let dataset = catalog["dataset"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@id"] == asset)
        .unwrap_or_else(|| panic!("{asset} not offered: {catalog}"))
        .clone();
    let offer = &dataset["hasPolicy"][0];
    let created = ok(client, consumer, Method::Post, "contractnegotiations",
        Some(json!({"@type": "ContractRequest", "counterPartyAddress": f.dsp(PROVIDER),
            "protocol": "dataspace-protocol-http:2025-1",
            "policy": {"@type": "Offer", "@id": offer["@id"], "assigner": PROVIDER_DID, "target": asset,
                "permission": offer["permission"], "prohibition": offer["prohibition"],
                "obligation": offer["obligation"]}}))).await;
    assert_eq!(created["@type"], "IdResponse");
    created["@id"].as_str().unwrap().to_owned()
}

/// Polls `f` until it returns true.
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut f: F) {
    for _ in 0..POLL_ATTEMPTS {
        if f().await {
            return;
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
    panic!("never happened: {what}");
}
