//! Shared fixtures for the sandbox's integration tests: a started sandbox with a provider, a
//! consumer and an outsider context, an HTTP helper, seeding helpers and a fake data plane.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};
use weft_sandbox::{
    ApiVersion, ClaimMode, MintSpec, ParticipantSpec, Role, RunningSandbox, Sandbox, SandboxConfig,
};

pub const CTX: &str = "https://w3id.org/edc/connector/management/v2";
pub const PROVIDER: &str = "provider-pc";
pub const CONSUMER: &str = "consumer-pc";
pub const OUTSIDER: &str = "outsider-pc";
pub const PROVIDER_DID: &str = "did:web:provider.example";
pub const CONSUMER_DID: &str = "did:web:consumer.example";
pub const OUTSIDER_DID: &str = "did:web:outsider.example";

/// Upper bound for polling; only reached when something is broken.
const POLL_ATTEMPTS: usize = 500;
const POLL_PAUSE: Duration = Duration::from_millis(20);

pub struct Fixture {
    pub sb: RunningSandbox,
    pub http: reqwest::Client,
    pub version: ApiVersion,
}

pub fn participants() -> Vec<ParticipantSpec> {
    vec![
        ParticipantSpec::new(PROVIDER, PROVIDER_DID).with_bpn("BPNL00000000PROV"),
        ParticipantSpec::new(CONSUMER, CONSUMER_DID)
            .with_bpn("BPNL00000000CONS")
            .with_attribute("MembershipCredential", "active"),
        ParticipantSpec::new(OUTSIDER, OUTSIDER_DID).with_bpn("BPNL00000000OUTS"),
    ]
}

pub async fn start(mode: ClaimMode, version: ApiVersion) -> Fixture {
    start_with(
        SandboxConfig {
            claim_mode: mode,
            participants: participants(),
            ..SandboxConfig::default()
        },
        version,
    )
    .await
}

pub async fn start_with(config: SandboxConfig, version: ApiVersion) -> Fixture {
    let sb = Sandbox::start(config).await.unwrap();
    Fixture {
        sb,
        http: reqwest::Client::new(),
        version,
    }
}

impl Fixture {
    /// A tenant token with read and write scope.
    pub fn token(&self, pc: &str) -> String {
        self.sb
            .idp()
            .mint(&MintSpec::participant(
                pc,
                &["management-api:read", "management-api:write"],
            ))
            .unwrap()
    }

    pub fn token_with(&self, pc: &str, scopes: &[&str]) -> String {
        self.sb
            .idp()
            .mint(&MintSpec::participant(pc, scopes))
            .unwrap()
    }

    /// Admin: role `admin` (participant-context mode) or scope `management-api:admin`.
    pub fn admin_token(&self) -> String {
        self.sb
            .idp()
            .mint(&MintSpec::service(
                "admin-subject",
                Role::Admin,
                &["management-api:admin"],
            ))
            .unwrap()
    }

    pub fn provisioner_token(&self) -> String {
        self.sb
            .idp()
            .mint(&MintSpec::service(
                "provisioner",
                Role::Provisioner,
                &[
                    "management-api:read",
                    "management-api:write",
                    "management-api:admin",
                ],
            ))
            .unwrap()
    }

    /// `{management}/{version}/participants/{pc}{rest}`.
    pub fn url(&self, pc: &str, rest: &str) -> String {
        format!("{}{rest}", self.sb.urls().management_for(self.version, pc))
    }

    pub fn root(&self, rest: &str) -> String {
        format!(
            "{}/{}{rest}",
            self.sb.urls().management,
            self.version.as_str()
        )
    }

    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.http, method, url, token, body).await
    }

    pub async fn post(&self, url: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, url, Some(token), Some(body)).await
    }

    pub async fn get(&self, url: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, url, Some(token), None).await
    }

    /// Create an asset, a policy, and a contract definition offering the asset under `policy`.
    pub async fn offer(&self, asset_id: &str, policy: Value, extra_asset: Value) -> String {
        let token = self.token(PROVIDER);
        let mut asset = json!({"@context": [CTX], "@type": "Asset", "@id": asset_id,
            "properties": {"name": format!("asset {asset_id}"), "contenttype": "application/json"}});
        if let (Some(a), Some(extra)) = (asset.as_object_mut(), extra_asset.as_object()) {
            a.extend(extra.clone());
        }
        let (status, body) = self
            .post(&self.url(PROVIDER, "/assets"), &token, asset)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let policy_id = format!("policy-{asset_id}");
        let (status, body) = self
            .post(
                &self.url(PROVIDER, "/policydefinitions"),
                &token,
                json!({"@context": [CTX], "@type": "PolicyDefinition", "@id": policy_id, "policy": policy}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let def_id = format!("def-{asset_id}");
        let (status, body) = self
            .post(
                &self.url(PROVIDER, "/contractdefinitions"),
                &token,
                json!({"@context": [CTX], "@type": "ContractDefinition", "@id": def_id,
                    "accessPolicyId": policy_id, "contractPolicyId": policy_id,
                    "assetsSelector": [{"@type": "Criterion", "operandLeft": "https://w3id.org/edc/v0.0.1/ns/id",
                        "operator": "=", "operandRight": asset_id}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        def_id
    }

    pub async fn catalog(&self, consumer: &str) -> (StatusCode, Value) {
        let body = json!({"@context": [CTX], "@type": "CatalogRequest",
            "counterPartyAddress": self.sb.urls().dsp_address(PROVIDER),
            "counterPartyId": PROVIDER_DID, "protocol": "dataspace-protocol-http:2025-1"});
        self.post(
            &self.url(consumer, "/catalog/request"),
            &self.token(consumer),
            body,
        )
        .await
    }

    /// Negotiate the first offer for `asset_id` as `consumer`; returns the negotiation id.
    pub async fn negotiate(&self, consumer: &str, offer: &Value, asset_id: &str) -> String {
        let body = json!({"@context": [CTX], "@type": "ContractRequest",
            "counterPartyAddress": self.sb.urls().dsp_address(PROVIDER),
            "protocol": "dataspace-protocol-http:2025-1",
            "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer",
                "@id": offer["@id"], "assigner": PROVIDER_DID, "target": asset_id,
                "permission": offer["permission"], "prohibition": offer["prohibition"], "obligation": offer["obligation"]}});
        let (status, body) = self
            .post(
                &self.url(consumer, "/contractnegotiations"),
                &self.token(consumer),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["@type"], "IdResponse");
        body["@id"].as_str().unwrap().to_owned()
    }

    /// Poll `{url}` until its `state` is one of `wanted`; returns the final body.
    pub async fn wait_state(&self, url: &str, token: &str, wanted: &[&str]) -> Value {
        let mut last = Value::Null;
        for _ in 0..POLL_ATTEMPTS {
            let (status, body) = self.get(url, token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if wanted.iter().any(|w| body["state"] == *w) {
                return body;
            }
            last = body;
            tokio::time::sleep(POLL_PAUSE).await;
        }
        panic!("{url} never reached {wanted:?}; last: {last}");
    }

    /// Offer, catalog, negotiate to FINALIZED; returns the agreement id.
    pub async fn agreement(&self, asset_id: &str, extra_asset: Value) -> String {
        self.offer(
            asset_id,
            json!({"@type": "Set", "permission": [{"action": "use"}]}),
            extra_asset,
        )
        .await;
        let (_, catalog) = self.catalog(CONSUMER).await;
        let dataset = catalog["dataset"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["@id"] == asset_id)
            .unwrap()
            .clone();
        let id = self
            .negotiate(CONSUMER, &dataset["hasPolicy"][0], asset_id)
            .await;
        let url = self.url(CONSUMER, &format!("/contractnegotiations/{id}"));
        let n = self
            .wait_state(&url, &self.token(CONSUMER), &["FINALIZED", "TERMINATED"])
            .await;
        assert_eq!(n["state"], "FINALIZED", "{n}");
        n["contractAgreementId"].as_str().unwrap().to_owned()
    }

    /// Register a data plane for `pc`.
    pub async fn register_dataplane(&self, pc: &str, body: Value) {
        let (status, resp) = self
            .call(
                Method::PUT,
                &self.url(pc, "/dataplanes"),
                Some(&self.token(pc)),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{resp}");
    }

    pub async fn start_transfer(&self, agreement: &str, transfer_type: &str) -> String {
        let body = json!({"@context": [CTX], "@type": "TransferRequest",
            "counterPartyAddress": self.sb.urls().dsp_address(PROVIDER), "contractId": agreement,
            "transferType": transfer_type, "protocol": "dataspace-protocol-http:2025-1",
            "dataplaneMetadata": {"labels": ["l1"], "properties": {"k": "v"}}});
        let (status, body) = self
            .post(
                &self.url(CONSUMER, "/transferprocesses"),
                &self.token(CONSUMER),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["@id"].as_str().unwrap().to_owned()
    }

    pub async fn wait_transfer(&self, pc: &str, id: &str, wanted: &[&str]) -> Value {
        let url = self.url(pc, &format!("/transferprocesses/{id}"));
        self.wait_state(&url, &self.token(pc), wanted).await
    }
}

pub async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// Assert an EDC error array whose entries include one with `path`, if given.
pub fn assert_error_array(body: &Value, path: Option<&str>) {
    let entries = body
        .as_array()
        .unwrap_or_else(|| panic!("not an error array: {body}"));
    assert!(!entries.is_empty(), "{body}");
    for e in entries {
        assert!(e["message"].is_string() && e["type"].is_string(), "{body}");
    }
    if let Some(path) = path {
        assert!(
            entries.iter().any(|e| e["path"] == path),
            "no entry for {path}: {body}"
        );
    }
}

/// Poll a condition (for asynchronous effects such as data-plane signals).
pub async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..POLL_ATTEMPTS {
        if f() {
            return;
        }
        tokio::time::sleep(POLL_PAUSE).await;
    }
    panic!("never happened: {what}");
}

// ------------------------------------------------------------------ fake data plane

/// One signal a fake data plane received.
#[derive(Debug, Clone)]
pub struct Signal {
    /// `prepare`, `start`, or `{id}/started` etc. (relative to the registered endpoint).
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Async,
}

#[derive(Clone)]
pub struct FakeDataPlane {
    pub endpoint: String,
    pub signals: Arc<Mutex<Vec<Signal>>>,
    mode: Mode,
    fail_start: bool,
}

impl FakeDataPlane {
    pub fn signals(&self) -> Vec<Signal> {
        self.signals.lock().unwrap().clone()
    }

    /// Paths received, e.g. `["prepare", "<id>/started"]`.
    pub fn paths(&self) -> Vec<String> {
        self.signals().into_iter().map(|s| s.path).collect()
    }

    pub fn find(&self, path: &str) -> Option<Signal> {
        self.signals().into_iter().find(|s| s.path == path)
    }
}

pub fn pull_address(process_id: &str) -> Value {
    json!({"@type": "DataAddress", "endpointType": "https://w3id.org/dspace-sig/profile/http-pull",
        "endpoint": format!("https://provider.example/public/{process_id}"),
        "endpointProperties": [
            {"@type": "EndpointProperty", "name": "authorization", "value": "token-123"},
            {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}]})
}

pub fn push_address() -> Value {
    json!({"@type": "DataAddress", "endpointType": "https://w3id.org/dspace-sig/profile/http-push",
        "endpoint": "https://consumer.example/inbox",
        "endpointProperties": [{"@type": "EndpointProperty", "name": "authorization", "value": "push-token"},
            {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}]})
}

async fn fake_signal(
    State(dp): State<FakeDataPlane>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    dp.signals.lock().unwrap().push(Signal {
        path: rest.clone(),
        body: body.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let process = body["processId"].as_str().unwrap_or_default().to_owned();
    let push = body["profile"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .ends_with("push");
    let status = |state: &str, address: Option<Value>| {
        let mut msg = json!({"messageId": "m", "dataFlowId": process, "state": state});
        if let Some(a) = address {
            msg["dataAddress"] = a;
        }
        msg
    };
    match rest.as_str() {
        "prepare" if dp.mode == Mode::Async => (
            StatusCode::ACCEPTED,
            [("location", format!("/dataflows/{process}/status"))],
            Json(status("PREPARING", None)),
        )
            .into_response(),
        "prepare" => Json(status("PREPARED", push.then(push_address))).into_response(),
        "start" if dp.fail_start => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": "refused"}))).into_response()
        }
        "start" if dp.mode == Mode::Async => (
            StatusCode::ACCEPTED,
            [("location", format!("/dataflows/{process}/status"))],
            Json(status("STARTING", None)),
        )
            .into_response(),
        "start" => Json(status("STARTED", (!push).then(|| pull_address(&process)))).into_response(),
        r if r.ends_with("/resume") => {
            let id = r.trim_end_matches("/resume").to_owned();
            Json(json!({"messageId": "m", "dataFlowId": id, "state": "STARTED"})).into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

/// Serve a fake DPS data plane on 127.0.0.1:0; its registered endpoint is `<base>/dataflows`.
pub async fn fake_dataplane(mode: Mode) -> FakeDataPlane {
    fake_dataplane_with(mode, false).await
}

pub async fn fake_dataplane_with(mode: Mode, fail_start: bool) -> FakeDataPlane {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dp = FakeDataPlane {
        endpoint: format!("http://{addr}/dataflows"),
        signals: Arc::new(Mutex::new(Vec::new())),
        mode,
        fail_start,
    };
    let router = Router::new()
        .route("/dataflows/{*rest}", post(fake_signal))
        .with_state(dp.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    dp
}
