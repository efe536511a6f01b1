//! End-to-end tests of the admin and tenant APIs through real HTTP on 127.0.0.1:0, with
//! tokens from a test identity provider whose keys are served as a JWKS.

use http_body_util::BodyExt;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use weft_auth::testing::{TestIssuer, admin_claims, participant_claims};
use weft_bundle::{HELLO, HELLO_V2, WRONG_WORLD};
use weft_runtime::config::RuntimeConfig;
use weft_runtime::runtime::Stats;
use weft_server::{ServerConfig, Weft, WeftOptions};

const PC_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const PC_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const APPS: &str = "weft:apps";

/// Instance slots of a test runtime: enough for these tests, little address space.
const TEST_POOL_INSTANCES: u32 = 16;

/// The grants that cover everything `hello` asks.
fn hello_grants() -> Value {
    json!({
        "management": ["management-api:read", "management-api:write"],
        "state-quota-bytes": 1048576,
        "events": ["contract-negotiation", "transfer-process"],
    })
}

struct Idp {
    issuer: TestIssuer,
    jwks_url: String,
}

impl Idp {
    async fn start() -> Arc<Idp> {
        let issuer = TestIssuer::new();
        let (jwks_url, _) = issuer.serve_jwks().await;
        Arc::new(Idp { issuer, jwks_url })
    }

    fn admin(&self) -> String {
        self.issuer.mint(admin_claims())
    }

    fn tenant(&self, ctx: &str) -> String {
        self.issuer.mint(participant_claims(ctx, &[APPS]))
    }
}

struct Server {
    idp: Arc<Idp>,
    weft: Weft,
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn runtime_config() -> RuntimeConfig {
    let mut rt = RuntimeConfig::default();
    rt.pool.instances = TEST_POOL_INSTANCES;
    rt
}

impl Server {
    async fn start(idp: &Arc<Idp>, dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Server {
        let mut config = ServerConfig::with_data_dir(dir);
        tweak(&mut config);
        Server::start_with(
            idp,
            WeftOptions::new(config, idp.issuer.config(&idp.jwks_url), runtime_config()),
        )
        .await
    }

    async fn start_with(idp: &Arc<Idp>, options: WeftOptions) -> Server {
        let weft = Weft::new(options).await.expect("weft starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(weft_server::serve(listener, weft.router(), async move {
            let _ = stopped.await;
        }));
        Server {
            idp: idp.clone(),
            weft,
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.weft.close().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.idp.admin());
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn tenant(
        &self,
        ctx: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.idp.tenant(ctx));
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        self.send(req).await
    }

    async fn upload(
        &self,
        wasm: &[u8],
        manifest: &str,
        grants: Option<Value>,
        query: &str,
    ) -> (StatusCode, Value) {
        let mut form = Form::new()
            .part(
                "component",
                Part::bytes(wasm.to_vec()).file_name("plugin.wasm"),
            )
            .part("manifest", Part::text(manifest.to_string()));
        if let Some(g) = grants {
            form = form.part("grants", Part::text(g.to_string()));
        }
        let req = self
            .http
            .post(self.url(&format!("/admin/plugins{query}")))
            .bearer_auth(self.idp.admin())
            .multipart(form);
        self.send(req).await
    }

    async fn create_tenant(&self, ctx: &str) {
        let (s, b) = self
            .admin(reqwest::Method::POST, "/admin/tenants", Some(json!({"id": ctx, "did": format!("did:web:{ctx}.example"), "bpn": "BPNL000000000001"})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    async fn enable(&self, ctx: &str, app: &str, body: Value) -> (StatusCode, Value) {
        self.admin(
            reqwest::Method::PUT,
            &format!("/admin/tenants/{ctx}/apps/{app}"),
            Some(body),
        )
        .await
    }

    /// hello 0.1.0 installed with grants, tenants A and B, hello enabled for both.
    async fn seed(&self) {
        let (s, b) = self
            .upload(HELLO.wasm, HELLO.manifest, Some(hello_grants()), "")
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["activated"], true);
        for ctx in [PC_A, PC_B] {
            self.create_tenant(ctx).await;
        }
        let (s, b) = self
            .enable(
                PC_A,
                "hello",
                json!({"config": {"owner": "tenant-a", "secret": "a-config"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = self
            .enable(
                PC_B,
                "hello",
                json!({"config": {"owner": "tenant-b", "secret": "b-config"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Sends a request exactly as written (no URL normalisation), over a fresh connection.
    async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, String) {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(http_body_util::Full::new(bytes_of(body))).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn bytes_of(s: &str) -> hyper::body::Bytes {
    hyper::body::Bytes::from(s.to_string())
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert!(body["error"].is_string(), "no JSON error code: {body}");
    assert!(body["message"].is_string(), "no JSON error message: {body}");
}

use reqwest::Method as M;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_401_with_an_opaque_json_body() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    server.seed().await;
    let claims = || participant_claims(PC_A, &[APPS]);
    let i = &idp.issuer;
    let mut malformed_sig = i.mint(claims());
    malformed_sig.truncate(malformed_sig.len() - 10);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some("Bearer not-a-token".into())),
        ("basic auth", Some("Basic YWRtaW46YWRtaW4=".into())),
        (
            "truncated signature",
            Some(format!("Bearer {malformed_sig}")),
        ),
        (
            "bad signature",
            Some(format!("Bearer {}", i.token_bad_signature(claims()))),
        ),
        (
            "alg none",
            Some(format!("Bearer {}", i.token_alg_none(claims()))),
        ),
        (
            "HS256 with the public key",
            Some(format!(
                "Bearer {}",
                i.token_hs256_with_public_key(claims())
            )),
        ),
        (
            "expired",
            Some(format!("Bearer {}", i.token_expired(claims()))),
        ),
        (
            "not yet valid",
            Some(format!("Bearer {}", i.token_not_yet_valid(claims()))),
        ),
        (
            "wrong issuer",
            Some(format!("Bearer {}", i.token_wrong_issuer(claims()))),
        ),
        (
            "unknown kid",
            Some(format!("Bearer {}", i.token_unknown_kid(claims()))),
        ),
    ];
    let admin_bad = |c: Value| {
        let mut c = c;
        c["role"] = json!("admin");
        c
    };
    let paths = [
        "/tenants/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/apps/hello/whoami",
        "/tenants/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/apps",
        "/admin/plugins",
        "/no/such/route",
    ];
    let mut bodies = Vec::new();
    for (name, header) in &cases {
        for path in paths {
            let mut req = server.http.get(server.url(path));
            if let Some(h) = header {
                req = req.header("authorization", h);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name} on {path}");
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized", "{name}");
            bodies.push(body);
        }
    }
    // No answer tells which check failed.
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "401 bodies differ: {bodies:?}"
    );
    // An expired admin token does not open the admin API either.
    let (s, b) = server
        .send(
            server
                .http
                .get(server.url("/admin/plugins"))
                .bearer_auth(i.token_expired(admin_bad(claims()))),
        )
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED);
    // The public documents need no token; the same request with a good token works.
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (s, doc) = server
        .send(server.http.get(server.url("/openapi.json")))
        .await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/admin/plugins",
        "/admin/plugins/{id}/grants",
        "/admin/tenants/{ctx}/apps/{app}",
        "/admin/audit",
        "/tenants/{ctx}/apps",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    let (s, b) = server.tenant(PC_A, M::GET, paths[0], None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["tenant"]["participantContextId"], PC_A);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_cases_are_403_and_unknown_things_404() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    let (s, b) = server
        .upload(HELLO.wasm, HELLO.manifest, Some(hello_grants()), "")
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    server.create_tenant(PC_A).await;
    server.create_tenant(PC_B).await;
    assert_eq!(
        server.enable(PC_A, "hello", json!({})).await.0,
        StatusCode::OK
    );
    let i = &idp.issuer;
    let whoami = |ctx: &str| format!("/tenants/{ctx}/apps/hello/whoami");
    let cases: Vec<(&str, String, String, reqwest::Method)> = vec![
        (
            "other tenant's context",
            i.mint(participant_claims(PC_B, &[APPS])),
            whoami(PC_A),
            M::GET,
        ),
        (
            "other tenant's app list",
            i.mint(participant_claims(PC_B, &[APPS])),
            format!("/tenants/{PC_A}/apps"),
            M::GET,
        ),
        (
            "missing apps scope",
            i.mint(participant_claims(PC_A, &["management-api:read"])),
            whoami(PC_A),
            M::GET,
        ),
        (
            "participant on the admin API",
            i.mint(participant_claims(PC_A, &[APPS])),
            "/admin/plugins".into(),
            M::GET,
        ),
        (
            "participant with the admin scope",
            i.mint(participant_claims(PC_A, &[APPS, "weft:admin"])),
            "/admin/tenants".into(),
            M::GET,
        ),
        (
            "participant uploading",
            i.mint(participant_claims(PC_A, &[APPS])),
            "/admin/plugins".into(),
            M::POST,
        ),
        (
            "app not enabled",
            i.mint(participant_claims(PC_B, &[APPS])),
            whoami(PC_B),
            M::GET,
        ),
        (
            "provisioner on the tenant API",
            i.mint(json!({"sub": "prov", "role": "provisioner", "scope": APPS})),
            whoami(PC_A),
            M::GET,
        ),
    ];
    for (name, token, path, method) in cases {
        let (s, b) = server
            .send(
                server
                    .http
                    .request(method, server.url(&path))
                    .bearer_auth(token),
            )
            .await;
        assert_error(s, &b, StatusCode::FORBIDDEN);
        assert!(
            !b["message"].as_str().unwrap().contains("scope"),
            "{name}: message leaks the check: {b}"
        );
    }
    // 404s: unknown tenant (as admin), unknown app, unknown route; all JSON.
    let (s, b) = server
        .admin(M::GET, "/tenants/cccc/apps/hello/whoami", None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = server
        .tenant(PC_A, M::GET, &format!("/tenants/{PC_A}/apps/nope/x"), None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = server.admin(M::GET, "/admin/nothing", None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = server.admin(M::PATCH, "/admin/plugins", None).await;
    assert_error(s, &b, StatusCode::METHOD_NOT_ALLOWED);
    // The admin may act for any tenant.
    let (s, b) = server.admin(M::GET, &whoami(PC_A), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["tenant"]["participantContextId"], PC_A);
    // A deactivated tenant is refused, and can be re-activated.
    assert_eq!(
        server
            .admin(M::POST, &format!("/admin/tenants/{PC_A}/deactivate"), None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, b) = server.tenant(PC_A, M::GET, &whoami(PC_A), None).await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    assert_eq!(
        server
            .admin(M::POST, &format!("/admin/tenants/{PC_A}/activate"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server.tenant(PC_A, M::GET, &whoami(PC_A), None).await.0,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_other() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    server.seed().await;
    let app = |ctx: &str, rest: &str| format!("/tenants/{ctx}/apps/hello{rest}");
    // Each writes its own secret under the same key.
    for (ctx, value) in [(PC_A, "a-value"), (PC_B, "b-value")] {
        let (s, b) = server
            .tenant(ctx, M::PUT, &app(ctx, "/state/secret"), Some(value))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    }
    let (s, b) = server
        .tenant(PC_A, M::GET, &app(PC_A, "/state/secret"), None)
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!("a-value")));
    let (s, b) = server
        .tenant(PC_B, M::GET, &app(PC_B, "/state/secret"), None)
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!("b-value")));

    // Path: A's token on B's paths, and traversal from A's prefix, never reach B.
    let token_a = format!("Bearer {}", idp.tenant(PC_A));
    let auth = [("authorization", token_a.clone())];
    for path in [
        app(PC_B, "/state/secret"),
        app(PC_B, "/config"),
        format!("/tenants/{PC_B}/apps"),
        format!("/admin/tenants/{PC_B}"),
        app(PC_A, &format!("/../../../{PC_B}/apps/hello/state/secret")),
        app(
            PC_A,
            &format!("/..%2F..%2F..%2F{PC_B}%2Fapps%2Fhello%2Fstate%2Fsecret"),
        ),
        format!("/tenants/{PC_A}/../{PC_B}/apps/hello/state/secret"),
        format!("/tenants/{PC_A}%2F..%2F{PC_B}/apps/hello/state/secret"),
        format!("//tenants/{PC_B}/apps/hello/state/secret"),
    ] {
        let (status, body) = server.raw("GET", &path, &auth, "").await;
        assert!(
            !body.contains("b-value") && !body.contains("b-config"),
            "{path} leaked B: {status} {body}"
        );
        assert_ne!(status, 200, "{path}: {body}");
    }
    // Headers and body naming B change nothing: A still sees only A.
    let spoof = [
        ("authorization", token_a.clone()),
        ("x-participant-context-id", PC_B.to_string()),
        ("x-tenant", PC_B.to_string()),
        ("participant-context-id", PC_B.to_string()),
        ("forwarded", format!("for={PC_B}")),
    ];
    let (status, body) = server
        .raw("GET", &app(PC_A, "/state/secret"), &spoof, "")
        .await;
    assert_eq!((status, body.as_str()), (200, "a-value"));
    let (status, body) = server
        .raw(
            "GET",
            &app(PC_A, "/whoami"),
            &spoof,
            &json!({"tenant": PC_B}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let who: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(who["tenant"]["participantContextId"], PC_A);
    assert_eq!(who["entryPoint"], "api");
    let (status, body) = server.raw("GET", &app(PC_A, "/config"), &spoof, "").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"owner": "tenant-a", "secret": "a-config"})
    );
    // A writes with B's name everywhere; B's state is untouched.
    let (status, _) = server
        .raw(
            "PUT",
            &app(PC_A, &format!("/state/{PC_B}?tenant={PC_B}")),
            &spoof,
            "from-a",
        )
        .await;
    assert_eq!(status, 204);
    let (s, b) = server
        .tenant(PC_B, M::GET, &app(PC_B, "/state"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let keys: Vec<&str> = b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"secret") && !keys.contains(&PC_B),
        "B sees A's writes: {keys:?}"
    );
    let (_, b) = server
        .tenant(PC_B, M::GET, &app(PC_B, "/state/secret"), None)
        .await;
    assert_eq!(b, json!("b-value"));
    // Guest memory does not survive into another tenant's call.
    let (s, _) = server
        .tenant(PC_A, M::POST, &app(PC_A, "/memory?value=a-memory"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = server
        .tenant(PC_B, M::GET, &app(PC_B, "/memory"), None)
        .await;
    assert_eq!(b, json!({"value": null}));
    // Enablement listings show each tenant only its own, with its own config.
    let (s, b) = server
        .tenant(PC_A, M::GET, &format!("/tenants/{PC_A}/apps"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["app"], "hello");
    assert_eq!(b[0]["config"]["owner"], "tenant-a");
    // B disabling does not touch A; B's app is then refused while A's works.
    assert_eq!(
        server
            .admin(
                M::DELETE,
                &format!("/admin/tenants/{PC_B}/apps/hello"),
                None
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, b) = server
        .tenant(PC_B, M::GET, &app(PC_B, "/whoami"), None)
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN);
    assert_eq!(
        server
            .tenant(PC_A, M::GET, &app(PC_A, "/whoami"), None)
            .await
            .0,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_everything_without_recompiling() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    server.seed().await;
    let (s, b) = server
        .upload(HELLO_V2.wasm, HELLO_V2.manifest, None, "")
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["activated"], true);
    // B stays on 0.1.0; A follows the active 2.0.0.
    let (s, b) = server
        .enable(
            PC_B,
            "hello",
            json!({"config": {"owner": "tenant-b"}, "pinned_version": "0.1.0"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = server
        .tenant(
            PC_A,
            M::PUT,
            &format!("/tenants/{PC_A}/apps/hello/state/kept"),
            Some("durable"),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(Stats::get(&server.weft.runtime().stats().compiles) >= 2);
    let plugins_before = server.admin(M::GET, "/admin/plugins", None).await.1;
    let tenants_before = server
        .admin(M::GET, &format!("/admin/tenants/{PC_B}"), None)
        .await
        .1;
    server.stop().await;

    let server = Server::start(&idp, dir.path(), |_| {}).await;
    let stats = server.weft.runtime().stats();
    assert_eq!(Stats::get(&stats.compiles), 0, "restart recompiled");
    assert_eq!(Stats::get(&stats.cache_loads), 2);
    assert_eq!(
        server.admin(M::GET, "/admin/plugins", None).await.1,
        plugins_before
    );
    assert_eq!(
        server
            .admin(M::GET, &format!("/admin/tenants/{PC_B}"), None)
            .await
            .1,
        tenants_before
    );
    let (_, plugin) = server.admin(M::GET, "/admin/plugins/hello", None).await;
    assert_eq!(plugin["active_version"], "2.0.0");
    let granted: weft_runtime::grants::Grants = serde_json::from_value(hello_grants()).unwrap();
    assert_eq!(plugin["granted"], serde_json::to_value(granted).unwrap());
    let (_, tenants) = server.admin(M::GET, "/admin/tenants", None).await;
    assert_eq!(tenants.as_array().unwrap().len(), 2);
    let (s, b) = server
        .tenant(
            PC_A,
            M::GET,
            &format!("/tenants/{PC_A}/apps/hello/state/kept"),
            None,
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!("durable")));
    let (_, v) = server
        .tenant(
            PC_A,
            M::GET,
            &format!("/tenants/{PC_A}/apps/hello/version"),
            None,
        )
        .await;
    assert_eq!(v, json!("2"));
    let (_, v) = server
        .tenant(
            PC_B,
            M::GET,
            &format!("/tenants/{PC_B}/apps/hello/version"),
            None,
        )
        .await;
    assert_eq!(v, json!("1"));
    let (_, c) = server
        .tenant(
            PC_B,
            M::GET,
            &format!("/tenants/{PC_B}/apps/hello/config"),
            None,
        )
        .await;
    assert_eq!(c, json!({"owner": "tenant-b"}));
    // The audit log survived too.
    let (_, audit) = server.admin(M::GET, "/admin/audit", None).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in ["plugin.upload", "tenant.create", "tenant.app.enable"] {
        assert!(actions.contains(&a), "audit lacks {a}: {actions:?}");
    }
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "admin")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_asking_for_a_new_host_waits_for_the_grant() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    server.seed().await;
    let version = |ctx: &'static str| {
        let server = &server;
        async move {
            server
                .tenant(
                    ctx,
                    M::GET,
                    &format!("/tenants/{ctx}/apps/hello/version"),
                    None,
                )
                .await
                .1
        }
    };
    assert_eq!(version(PC_A).await, json!("1"));
    let manifest = HELLO_V2.manifest.replace(
        "[capabilities]\n",
        "[capabilities]\noutbound-hosts = [\"https://api.example.com\"]\n",
    );
    assert_ne!(manifest, HELLO_V2.manifest);
    let (s, b) = server.upload(HELLO_V2.wasm, &manifest, None, "").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["activated"], false);
    assert_eq!(
        b["missing_grants"],
        json!(["outbound host https://api.example.com"])
    );
    // Stored, not active: calls still run 0.1.0.
    let (_, p) = server.admin(M::GET, "/admin/plugins/hello", None).await;
    assert_eq!(p["active_version"], "0.1.0");
    assert_eq!(p["versions"].as_array().unwrap().len(), 2);
    assert_eq!(version(PC_A).await, json!("1"));
    let (s, b) = server
        .admin(
            M::POST,
            "/admin/plugins/hello/versions/2.0.0/activate",
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);
    assert_eq!(b["error"], "grants-missing");
    assert_eq!(version(PC_A).await, json!("1"));
    // Bad grants are refused and change nothing.
    let (s, b) = server
        .admin(
            M::PUT,
            "/admin/plugins/hello/grants",
            Some(json!({"outbound-hosts": ["ftp://x"]})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = server
        .admin(
            M::PUT,
            "/admin/plugins/hello/grants",
            Some(json!({"bogus": 1})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    // The CSP grants the host: now activation works.
    let mut grants = hello_grants();
    grants["outbound-hosts"] = json!(["https://api.example.com"]);
    let (s, b) = server
        .admin(M::PUT, "/admin/plugins/hello/grants", Some(grants.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["missing_grants"] == json!([])),
        "{b}"
    );
    let (s, b) = server
        .admin(
            M::POST,
            "/admin/plugins/hello/versions/2.0.0/activate",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["previous_version"], "0.1.0");
    assert_eq!(b["upgrade_failures"], json!([]));
    assert_eq!(version(PC_A).await, json!("2"));
    // on-upgrade ran for the tenants following the active version.
    let (_, b) = server
        .tenant(
            PC_A,
            M::GET,
            &format!("/tenants/{PC_A}/apps/hello/state/upgraded-from"),
            None,
        )
        .await;
    assert_eq!(b, json!("0.1.0"));
    // The tenant's effective grants now include the host; a narrowing tenant drops it.
    let (_, e) = server
        .admin(M::GET, &format!("/admin/tenants/{PC_A}/apps/hello"), None)
        .await;
    assert_eq!(
        e["effective_grants"]["outbound-hosts"],
        json!(["https://api.example.com"])
    );
    let narrowed = json!({"state-quota-bytes": 4096, "outbound-hosts": ["https://other.example.com"], "management": ["management-api:read"]});
    let (s, e) = server
        .enable(PC_B, "hello", json!({"grants": narrowed}))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["effective_grants"]["outbound-hosts"], json!([]));
    assert_eq!(e["effective_grants"]["state-quota-bytes"], 4096);
    assert_eq!(
        e["effective_grants"]["management"],
        json!(["management-api:read"])
    );
    // Rollback is a pointer swap back.
    let (s, _) = server
        .admin(
            M::POST,
            "/admin/plugins/hello/versions/0.1.0/activate",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(version(PC_A).await, json!("1"));
    let (_, audit) = server
        .admin(M::GET, "/admin/audit?target_prefix=plugin/hello", None)
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "plugin.activate",
            "plugin.activate",
            "plugin.grants.set",
            "plugin.upload",
            "plugin.upload"
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_gets_429_and_others_do_not() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |c| {
        // A refill far slower than the test, so the outcome cannot depend on timing.
        c.tenant_limits.requests_per_second = 0.001;
        c.tenant_limits.burst = 2;
    })
    .await;
    server.seed().await;
    let path = format!("/tenants/{PC_A}/apps/hello/whoami");
    for _ in 0..2 {
        assert_eq!(
            server.tenant(PC_A, M::GET, &path, None).await.0,
            StatusCode::OK
        );
    }
    let resp = server
        .http
        .get(server.url(&path))
        .bearer_auth(idp.tenant(PC_A))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "rate-limited");
    let (s, _) = server
        .tenant(
            PC_B,
            M::GET,
            &format!("/tenants/{PC_B}/apps/hello/whoami"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "tenant B starved by tenant A");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_change_nothing() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cap = HELLO_V2.wasm.len() as u64 + (64 << 10);
    let server = Server::start(&idp, dir.path(), |c| {
        c.max_upload_bytes = cap;
        c.max_body_bytes = 1024;
    })
    .await;
    server.seed().await;
    let snapshot = server.admin(M::GET, "/admin/plugins", None).await.1;
    let corrupt: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let unknown_field = format!("{}\nbogus-field = 1\n", HELLO_V2.manifest.trim_end())
        .replace("[capabilities]", "bogus = true\n[capabilities]");
    let cases: Vec<(&str, Vec<u8>, String, StatusCode, &str)> = vec![
        (
            "corrupt component",
            corrupt,
            HELLO_V2.manifest.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-component",
        ),
        (
            "unknown manifest field",
            HELLO_V2.wasm.to_vec(),
            unknown_field,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-manifest",
        ),
        (
            "wrong world",
            WRONG_WORLD.wasm.to_vec(),
            WRONG_WORLD.manifest.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-world",
        ),
        (
            "oversize",
            vec![0u8; cap as usize + 1],
            HELLO_V2.manifest.to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
        ),
        (
            "same version, other component",
            HELLO_V2.wasm.to_vec(),
            HELLO.manifest.to_string(),
            StatusCode::CONFLICT,
            "conflict",
        ),
    ];
    for (name, wasm, manifest, want, code) in cases {
        let (s, b) = server.upload(&wasm, &manifest, None, "").await;
        assert_eq!(s, want, "{name}: {b}");
        assert_eq!(b["error"], code, "{name}: {b}");
        assert!(b["message"].is_string(), "{name}: {b}");
    }
    // Malformed forms.
    let form = Form::new().part("manifest", Part::text(HELLO_V2.manifest));
    let (s, b) = server
        .send(
            server
                .http
                .post(server.url("/admin/plugins"))
                .bearer_auth(idp.admin())
                .multipart(form),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST);
    let form = Form::new()
        .part("component", Part::bytes(HELLO_V2.wasm.to_vec()))
        .part("manifest", Part::text(HELLO_V2.manifest))
        .part("surprise", Part::text("x"));
    let (s, b) = server
        .send(
            server
                .http
                .post(server.url("/admin/plugins"))
                .bearer_auth(idp.admin())
                .multipart(form),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST);
    let (s, b) = server
        .send(
            server
                .http
                .post(server.url("/admin/plugins"))
                .bearer_auth(idp.admin())
                .body("plain"),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST);
    let (s, b) = server
        .upload(
            HELLO_V2.wasm,
            HELLO_V2.manifest,
            Some(json!({"state-quota": 1})),
            "",
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    // Uploading the stored version again is idempotent.
    let (s, b) = server.upload(HELLO.wasm, HELLO.manifest, None, "").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["activated"], false);
    // Nothing published changed, and calls still work on the old version.
    assert_eq!(
        server.admin(M::GET, "/admin/plugins", None).await.1,
        snapshot
    );
    let (s, v) = server
        .tenant(
            PC_A,
            M::GET,
            &format!("/tenants/{PC_A}/apps/hello/version"),
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!("1")));
    // Tenant API body cap: 413 whether the length is declared or streamed (to a route that
    // reads the whole body before answering; a streaming answer is cut instead).
    let (s, b) = server
        .tenant(
            PC_A,
            M::POST,
            &format!("/tenants/{PC_A}/apps/hello/echo"),
            Some(&"x".repeat(2048)),
        )
        .await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE);
    let chunks = futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512])));
    let (s, b) = server
        .send(
            server
                .http
                .put(server.url(&format!("/tenants/{PC_A}/apps/hello/state/big")))
                .bearer_auth(idp.tenant(PC_A))
                .body(reqwest::Body::wrap_stream(chunks)),
        )
        .await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, b) = server
        .tenant(
            PC_A,
            M::POST,
            &format!("/tenants/{PC_A}/apps/hello/echo"),
            Some("small body"),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!("small body")));
    // Header cap.
    let big = "h".repeat(weft_server::config::DEFAULT_MAX_HEADER_BYTES + 1);
    let (s, b) = server
        .send(server.http.get(server.url("/healthz")).header("x-big", big))
        .await;
    assert_error(s, &b, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enablement_runs_hooks_and_versions_are_managed() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    server.seed().await;
    let state = |ctx: &'static str, key: &'static str| {
        let server = &server;
        async move {
            server
                .tenant(
                    ctx,
                    M::GET,
                    &format!("/tenants/{ctx}/apps/hello/state/{key}"),
                    None,
                )
                .await
        }
    };
    // on-enable ran for each tenant with its own state.
    assert_eq!(
        state(PC_A, "enabled").await,
        (StatusCode::OK, json!("0.1.0"))
    );
    // A failing on-enable (no state granted to it) answers an error and keeps prior state.
    let (s, b) = server
        .enable(
            PC_A,
            "hello",
            json!({"config": {"v": 2}, "grants": {"state-quota-bytes": 0}}),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, c) = server
        .tenant(
            PC_A,
            M::GET,
            &format!("/tenants/{PC_A}/apps/hello/config"),
            None,
        )
        .await;
    assert_eq!(c["owner"], "tenant-a");
    // Bad enablement requests.
    let (s, b) = server.enable(PC_A, "nope", json!({})).await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = server.enable("unknown-tenant", "hello", json!({})).await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = server
        .enable(PC_A, "hello", json!({"pinned_version": "9.9.9"}))
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (s, b) = server.enable(PC_A, "hello", json!({"surprise": 1})).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = server
        .admin(
            M::POST,
            "/admin/tenants",
            Some(json!({"id": "bad/id", "did": "did:web:x"})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = server
        .admin(
            M::POST,
            "/admin/tenants",
            Some(json!({"id": PC_A, "did": "did:web:x"})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);
    // Versions: a pinned or active version cannot be deleted, an unused one can.
    let (s, _) = server
        .upload(HELLO_V2.wasm, HELLO_V2.manifest, None, "?activate=false")
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = server
        .enable(PC_B, "hello", json!({"pinned_version": "2.0.0"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], "2.0.0");
    let (_, v) = server
        .tenant(
            PC_B,
            M::GET,
            &format!("/tenants/{PC_B}/apps/hello/version"),
            None,
        )
        .await;
    assert_eq!(v, json!("2"));
    let (s, b) = server
        .admin(M::DELETE, "/admin/plugins/hello/versions/2.0.0", None)
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);
    let (s, b) = server
        .admin(M::DELETE, "/admin/plugins/hello/versions/0.1.0", None)
        .await;
    assert_error(s, &b, StatusCode::CONFLICT);
    assert_eq!(
        server.enable(PC_B, "hello", json!({})).await.0,
        StatusCode::OK
    );
    let (s, _) = server
        .admin(M::DELETE, "/admin/plugins/hello/versions/2.0.0", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = server
        .admin(M::GET, "/admin/plugins/hello/versions/2.0.0", None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("plugins"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "the deleted version's component is gone");
    // Disabling runs on-disable; the state it wrote is kept for a later enablement.
    assert_eq!(
        server
            .admin(
                M::DELETE,
                &format!("/admin/tenants/{PC_A}/apps/hello"),
                None
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(state(PC_A, "disabled").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        server.enable(PC_A, "hello", json!({})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        state(PC_A, "disabled").await,
        (StatusCode::OK, json!("0.1.0"))
    );
    let (s, b) = server
        .admin(M::DELETE, &format!("/admin/tenants/{PC_A}/apps/nope"), None)
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND);
    let (_, t) = server
        .admin(M::GET, &format!("/admin/tenants/{PC_A}"), None)
        .await;
    assert_eq!(t["apps"][0]["app"], "hello");
    assert_eq!(t["bpn"], "BPNL000000000001");
    server.stop().await;
}

/// The store-backed parts on PostgreSQL, when `WEFT_TEST_POSTGRES_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_postgres() {
    let Ok(url) = std::env::var("WEFT_TEST_POSTGRES_URL") else {
        eprintln!("WEFT_TEST_POSTGRES_URL not set; skipping the PostgreSQL leg");
        return;
    };
    let schema = format!("weft_server_{}", uuid::Uuid::new_v4().simple());
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = |c: &mut ServerConfig| {
        c.store_url = Some(url.clone());
        c.store_schema = Some(schema.clone());
    };
    let server = Server::start(&idp, dir.path(), config).await;
    assert_eq!(server.weft.store().backend_name(), "postgres");
    server.seed().await;
    let (s, _) = server
        .tenant(
            PC_A,
            M::PUT,
            &format!("/tenants/{PC_A}/apps/hello/state/kept"),
            Some("pg"),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let plugins_before = server.admin(M::GET, "/admin/plugins", None).await.1;
    server.stop().await;
    let server = Server::start(&idp, dir.path(), config).await;
    assert_eq!(server.weft.store().backend_name(), "postgres");
    assert_eq!(Stats::get(&server.weft.runtime().stats().compiles), 0);
    assert_eq!(
        server.admin(M::GET, "/admin/plugins", None).await.1,
        plugins_before
    );
    let (s, b) = server
        .tenant(
            PC_A,
            M::GET,
            &format!("/tenants/{PC_A}/apps/hello/state/kept"),
            None,
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!("pg")));
    let (_, b) = server
        .tenant(
            PC_B,
            M::GET,
            &format!("/tenants/{PC_B}/apps/hello/state/kept"),
            None,
        )
        .await;
    assert_ne!(b, json!("pg"));
    server.stop().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_routes_are_merged_outside_the_token_check() {
    use axum::routing::get;
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = WeftOptions::new(
        ServerConfig::with_data_dir(dir.path()),
        idp.issuer.config(&idp.jwks_url),
        runtime_config(),
    );
    options.router = Some(axum::Router::new().route("/dps/ping", get(|| async { "given" })));
    let mut weft = Weft::new(options).await.unwrap();
    weft.merge_router(axum::Router::new().route("/public/ping", get(|| async { "merged" })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(weft_server::serve(listener, weft.router(), async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for (path, want) in [("/dps/ping", "given"), ("/public/ping", "merged")] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), want);
    }
    // Weft's own routes still need a token.
    let resp = http
        .get(format!("{base}/admin/plugins"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    weft.close().await;
}

/// Answers reach a client that is still sending its body, and the connection stays usable:
/// the server reads a refused request's body (bounded) before its 401, and the runtime
/// reads what an app left unread (here `hello` answers 404 to an unknown route unread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_reach_a_client_still_sending_its_body() {
    let idp = Idp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&idp, dir.path(), |_| {}).await;
    server.seed().await;
    let token = idp.issuer.mint(participant_claims(PC_A, &[APPS]));
    let cases = [
        ("not-a-token".to_owned(), "whoami", 401),
        (token, "no-such-route", 404),
    ];
    for (token, route, status) in cases {
        let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        // The body's only chunk comes once the server has seen the head.
        let late = futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(bytes_of("0123456789")))
        });
        let request = hyper::Request::post(format!("/tenants/{PC_A}/apps/hello/{route}"))
            .header("host", "weft")
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::StreamBody::new(late).boxed())
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .expect("the answer, not a reset");
        assert_eq!(response.status(), status, "{route}");
        response.into_body().collect().await.unwrap();
        // The same connection takes the next request: the server did not give up on it.
        sender.ready().await.expect("the connection is still open");
        let request = hyper::Request::get("/admin/plugins")
            .header("host", "weft")
            .body(http_body_util::Empty::new().boxed())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 401);
    }
    server.stop().await;
}
