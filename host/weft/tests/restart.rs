//! Kill the real `weft serve` process and start it again on the same SQLite file: plugins,
//! versions, grants, tenants, enablements and state are back, and calls work without a
//! recompile (the precompiled artifact is reused, not rewritten).

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};
use weft_sandbox::{ParticipantSpec, Sandbox, SandboxConfig};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// The child is moved into `Server`, whose `Drop` kills and reaps it on every path.
#[allow(clippy::zombie_processes)]
async fn start(config: &std::path::Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--config"])
        .arg(config)
        .env("WEFT__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weft starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("weft did not become healthy");
}

fn artifacts(dir: &std::path::Path) -> Vec<(std::path::PathBuf, SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_weft_comes_back_with_everything() {
    let dataspace = Sandbox::start(SandboxConfig {
        participants: vec![ParticipantSpec::new("acme", "did:web:localhost:acme")],
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let urls = dataspace.urls().clone();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("weft.toml");
    std::fs::write(
        &config,
        format!(
            "config-version = 1\n[server]\ndata-dir = {data:?}\n[auth]\nissuer = {:?}\njwks-url = {:?}\nclaim-mode = \"subject\"\n",
            urls.issuer, urls.jwks
        ),
    )
    .unwrap();
    let admin = dataspace.admin_token().unwrap();
    let tenant = dataspace.tenant_token("acme", &["weft:apps"]).unwrap();
    let http = reqwest::Client::new();
    let port = free_port();

    let server = start(&config, port).await;
    let base = server.base.clone();
    let manifest = weft_bundle::HELLO.manifest;
    let asks = weft_runtime::manifest::Manifest::parse(manifest)
        .unwrap()
        .capabilities;
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(weft_bundle::HELLO.wasm.to_vec()).file_name("h.wasm"),
        )
        .text("manifest", manifest.to_string())
        .text("grants", serde_json::to_string(&asks).unwrap());
    let r = http
        .post(format!("{base}/admin/plugins"))
        .bearer_auth(&admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{base}/admin/tenants"))
        .bearer_auth(&admin)
        .json(&json!({"id": "acme", "did": "did:web:localhost:acme", "bpn": "BPNL000000000009"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = http
        .put(format!("{base}/admin/tenants/acme/apps/hello"))
        .bearer_auth(&admin)
        .json(&json!({"config": {"greeting": "kept"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = http
        .put(format!(
            "{base}/tenants/acme/apps/hello/state/k?value=survives"
        ))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let before = artifacts(&data.join("cache"));
    assert_eq!(before.len(), 1, "one precompiled artifact");

    // SIGKILL: no graceful shutdown.
    drop(server);
    let server = start(&config, port).await;
    let base = server.base.clone();

    let plugins: Value = http
        .get(format!("{base}/admin/plugins"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(plugins.to_string().contains("\"hello\""), "{plugins}");
    let apps: Value = http
        .get(format!("{base}/tenants/acme/apps"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps[0]["app"], "hello", "{apps}");
    assert_eq!(apps[0]["config"]["greeting"], "kept");
    let state = http
        .get(format!("{base}/tenants/acme/apps/hello/state/k"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert!(state.status().is_success());
    assert!(state.text().await.unwrap().contains("survives"));
    let config_seen: Value = http
        .get(format!("{base}/tenants/acme/apps/hello/config"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config_seen["greeting"], "kept", "{config_seen}");
    // The artifact was mapped, not rebuilt: same file, same modification time.
    assert_eq!(artifacts(&data.join("cache")), before);
    drop(server);
    dataspace.shutdown().await;
}
