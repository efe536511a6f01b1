//! `weft sandbox`: Weft on embedded defaults (SQLite under the data directory) against the
//! local dataspace stand-in, with demo tenants and the bundled plugins installed and
//! enabled. Writes `sandbox.json` with every URL and ready tokens, prints `curl` lines,
//! and runs until SIGINT/SIGTERM.
//!
//! Weft is configured exactly as for a real deployment (issuer, JWKS URL, claim mode,
//! Management API URL): nothing in the host knows it talks to the stand-in.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use weft_sandbox::{ClaimMode, ClientSpec, ParticipantSpec, Sandbox, SandboxConfig};

/// Lifetime of the demo tokens written to `sandbox.json`: long enough for an afternoon
/// of trying things, short enough that a leaked file does not grant access for long.
pub const DEMO_TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// Scopes a demo tenant's token carries: its apps and its Management API.
const TENANT_SCOPES: [&str; 3] = ["weft:apps", "management-api:read", "management-api:write"];

/// A demo tenant of the sandbox.
struct DemoTenant {
    id: &'static str,
    name: &'static str,
    bpn: &'static str,
    /// Bundled plugins enabled for it.
    apps: &'static [&'static str],
}

const DEMO_TENANTS: [DemoTenant; 3] = [
    DemoTenant {
        id: "supplier",
        name: "Supplier",
        bpn: "BPNL00000000SUPP",
        apps: &["hello", "ccm"],
    },
    DemoTenant {
        id: "oem",
        name: "OEM",
        bpn: "BPNL000000000OEM",
        apps: &["hello", "ccm"],
    },
    // For the DPS test kit or any control plane: every http-pull/push flow is accepted.
    DemoTenant {
        id: "dps-test",
        name: "DPS test",
        bpn: "BPNL00000000DPST",
        apps: &["dps-conformance"],
    },
];

#[derive(clap::Args)]
pub struct SandboxArgs {
    /// Where Weft keeps its SQLite store, plugins, cache and `sandbox.json`.
    #[arg(long, env = "WEFT_SANDBOX_DATA_DIR", default_value = "data/sandbox")]
    pub data_dir: PathBuf,
    /// Weft's port (0 = any free port; the chosen one is printed and written).
    #[arg(long, env = "WEFT_SANDBOX_PORT", default_value_t = 0)]
    pub port: u16,
    /// Identity provider port (0 = any).
    #[arg(long, default_value_t = 0)]
    idp_port: u16,
    /// Control plane Management API port (0 = any).
    #[arg(long, default_value_t = 0)]
    management_port: u16,
    /// Control plane signaling port (0 = any).
    #[arg(long, default_value_t = 0)]
    signaling_port: u16,
    /// Token claims: `subject` (current EDC) or `participant-context` (EDC-V v4alpha era).
    #[arg(long, default_value = "subject")]
    claim_mode: String,
    /// Log format.
    #[arg(long, env = "WEFT_LOG_FORMAT")]
    log_format: Option<crate::logging::LogFormat>,
}

/// Options of a sandbox stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub data_dir: PathBuf,
    pub port: u16,
    pub idp_port: u16,
    pub management_port: u16,
    pub signaling_port: u16,
    pub claim_mode: ClaimMode,
}

impl StackOptions {
    /// Any free ports, subject claims, the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> StackOptions {
        StackOptions {
            data_dir: data_dir.into(),
            port: 0,
            idp_port: 0,
            management_port: 0,
            signaling_port: 0,
            claim_mode: ClaimMode::Subject,
        }
    }
}

/// A running sandbox: the dataspace stand-in plus Weft, provisioned.
pub struct Stack {
    /// Weft's base URL.
    pub base: String,
    /// The stand-in (identity provider and control plane).
    pub dataspace: weft_sandbox::RunningSandbox,
    /// The Weft application.
    pub weft: weft_server::Weft,
    /// What `sandbox.json` holds.
    pub description: Value,
    /// Where `sandbox.json` was written.
    pub description_file: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    assembled: crate::wiring::Assembled,
}

impl Stack {
    /// Starts the stand-in and Weft, provisions the demo tenants and writes `sandbox.json`.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        std::fs::create_dir_all(&options.data_dir)
            .with_context(|| format!("creating {}", options.data_dir.display()))?;
        let data_dir = options.data_dir.canonicalize()?;
        let claim_mode = options.claim_mode;

        // The dataspace stand-in: identity provider and control plane.
        let mut sandbox_config = SandboxConfig {
            idp_port: options.idp_port,
            management_port: options.management_port,
            signaling_port: options.signaling_port,
            claim_mode,
            token_lifetime_secs: DEMO_TOKEN_LIFETIME_SECS,
            ..SandboxConfig::default()
        };
        for t in &DEMO_TENANTS {
            // What Catena-X policies check: membership, the framework agreement and the
            // purpose the participant signed up for.
            sandbox_config.participants.push(
                ParticipantSpec::new(t.id, did(t.id))
                    .with_bpn(t.bpn)
                    .with_attribute("MembershipCredential", "active")
                    .with_attribute("FrameworkAgreement", "DataExchangeGovernance:1.0")
                    .with_attribute("UsagePurpose", "cx.ccm.base:1"),
            );
            sandbox_config.clients.push(ClientSpec::participant(
                format!("{}-client", t.id),
                format!("{}-secret", t.id),
                t.id,
                &TENANT_SCOPES,
            ));
        }
        // Static tokens between the control plane and Weft's data plane, both ways.
        let signal_auth = format!("Bearer {}", random_hex(24));
        let callback_auth = format!("Bearer {}", random_hex(24));
        sandbox_config.dataplane_authorization = Some(signal_auth.clone());
        sandbox_config.signaling_auth = weft_sandbox::SignalingAuth::StaticToken {
            authorization: callback_auth.clone(),
        };
        let dataspace = Sandbox::start(sandbox_config)
            .await
            .context("starting the dataspace stand-in")?;
        let urls = dataspace.urls().clone();

        // Weft, configured like any deployment.
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            options.port,
        ))
        .await
        .context("binding Weft's port")?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut auth = weft_auth::AuthConfig::new(urls.issuer.clone(), urls.jwks.clone());
        auth.claim_mode = match claim_mode {
            ClaimMode::Subject => weft_auth::ClaimMode::Subject,
            ClaimMode::ParticipantContext => weft_auth::ClaimMode::ParticipantContext,
        };
        let server = weft_server::ServerConfig::with_data_dir(&data_dir);
        let runtime = weft_runtime::config::RuntimeConfig::default();
        let management = management_config(&urls.management, &urls.token, &base, &data_dir)?;
        let data_plane = data_plane_config(&base, &urls.signaling, &signal_auth, &callback_auth)?;
        let assembled = crate::wiring::Assembled::build(
            weft_server::WeftOptions::new(server, auth, runtime),
            crate::wiring::Parts {
                management: Some(management),
                data_plane: Some(data_plane),
            },
        )
        .await?;
        let weft = assembled.weft.clone();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(weft_server::serve(listener, weft.router(), async move {
            let _ = stop_rx.await;
        }));

        let admin_token = dataspace.admin_token()?;
        let dsp = |id: &str| dataspace.urls().dsp_address(id);
        let app_config = |t: &DemoTenant, app: &str| match app {
            // CCM knows its own DSP address (for senderFeedbackUrl) and its partners.
            "ccm" => {
                let partners: serde_json::Map<String, Value> = DEMO_TENANTS
                    .iter()
                    .filter(|p| p.id != t.id && p.apps.contains(&"ccm"))
                    .map(|p| {
                        (
                            p.bpn.to_string(),
                            json!({"dspAddress": dsp(p.id), "did": did(p.id)}),
                        )
                    })
                    .collect();
                json!({"bpnl": t.bpn, "dspAddress": dsp(t.id), "partners": partners})
            }
            _ => json!({}),
        };
        provision(&base, &admin_token, app_config)
            .await
            .context("provisioning the demo tenants")?;
        // Register the data plane of the tenants just enabled now, not at the next periodic
        // reconcile (which ran before they existed): pulls must work as soon as we return.
        if let Some(client) = &assembled.management {
            crate::wiring::reconcile_dataplanes(&weft, client)
                .await
                .context("registering the demo tenants' data plane")?;
        }

        let mut tenants = serde_json::Map::new();
        for t in &DEMO_TENANTS {
            tenants.insert(
                t.id.to_string(),
                json!({
                    "name": t.name,
                    "participantContextId": t.id,
                    "did": did(t.id),
                    "bpn": t.bpn,
                    "token": dataspace.tenant_token(t.id, &TENANT_SCOPES)?,
                    "clientId": format!("{}-client", t.id),
                    "clientSecret": format!("{}-secret", t.id),
                    "apps": format!("{base}/tenants/{}/apps", t.id),
                    "managementApi": format!("{}/v5beta/participants/{}", urls.management, t.id),
                    "dps": format!("{base}/dps/{}", t.id),
                    "dsp": dataspace.urls().dsp_address(t.id),
                }),
            );
        }
        let description = json!({
            "weft": {
                "base": base,
                "admin": format!("{base}/admin"),
                "tenants": format!("{base}/tenants"),
                "openapi": format!("{base}/openapi.json"),
                "publicData": format!("{base}/data"),
                "dpsAuthorization": signal_auth,
            },
            "identityProvider": {
                "issuer": urls.issuer,
                "token": urls.token,
                "jwks": urls.jwks,
                "discovery": urls.discovery,
            },
            "controlPlane": {
                "management": urls.management,
                "dsp": urls.dsp,
                "signaling": urls.signaling,
            },
            "adminToken": admin_token,
            "tenants": tenants,
        });
        let description_file = data_dir.join("sandbox.json");
        std::fs::write(&description_file, serde_json::to_vec_pretty(&description)?)
            .with_context(|| format!("writing {}", description_file.display()))?;
        Ok(Stack {
            base,
            dataspace,
            weft,
            description,
            description_file,
            stop,
            server,
            assembled,
        })
    }

    /// Stops Weft and the stand-in.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        drop(self.assembled);
        self.weft.close().await;
        self.dataspace.shutdown().await;
    }
}

/// Runs `weft sandbox` until SIGINT/SIGTERM.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    crate::logging::init(&crate::logging::LogConfig {
        format: args.log_format.unwrap_or_default(),
        level: "info".into(),
    });
    let claim_mode = match args.claim_mode.as_str() {
        "subject" => ClaimMode::Subject,
        "participant-context" => ClaimMode::ParticipantContext,
        other => bail!("--claim-mode must be `subject` or `participant-context`, not {other:?}"),
    };
    let stack = Stack::start(StackOptions {
        data_dir: args.data_dir,
        port: args.port,
        idp_port: args.idp_port,
        management_port: args.management_port,
        signaling_port: args.signaling_port,
        claim_mode,
    })
    .await?;
    print_intro(&stack.base, &stack.description_file, &stack.description);
    crate::shutdown_signal().await;
    stack.shutdown().await;
    Ok(())
}

/// The Management API bridge of the sandbox: one OAuth2 client per demo tenant, as a
/// Keycloak-era CSP would configure it. The callback secret is random per data directory.
fn management_config(
    management: &str,
    token_url: &str,
    public_url: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<weft_management::ManagementConfig> {
    let secret_file = data_dir.join("callback-secret");
    if !secret_file.exists() {
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        std::fs::write(&secret_file, secret)?;
    }
    let clients = DEMO_TENANTS
        .iter()
        .map(|t| {
            toml::toml! {
                participant-context = (t.id)
                client-id = (format!("{}-client", t.id))
                client-secret = (format!("{}-secret", t.id))
            }
        })
        .collect::<Vec<_>>();
    let doc = toml::toml! {
        base-url = management
        version = "v5beta"
        public-url = public_url
        [identity]
        token-url = token_url
        [identity.grant]
        type = "client-credentials"
        clients = clients
        [events]
        callback-secret-file = (secret_file.display().to_string())
    };
    Ok(toml::Value::Table(doc).try_into()?)
}

/// The data plane of the sandbox: the stand-in's control plane is the control plane of
/// every context, with static tokens both ways.
fn data_plane_config(
    base: &str,
    signaling: &str,
    signal_auth: &str,
    callback_auth: &str,
) -> anyhow::Result<weft_dataplane::DataPlaneConfig> {
    let doc = toml::toml! {
        public-url = base
        // The stand-in speaks plain http on loopback.
        allow-insecure-endpoints = true
        [[control-planes]]
        id = "sandbox-control-plane"
        endpoint = signaling
        contexts = ["*"]
        authorization = { type = "static_token", authorization = signal_auth, callbackAuthorization = callback_auth }
    };
    Ok(toml::Value::Table(doc).try_into()?)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn did(id: &str) -> String {
    format!("did:web:localhost:{id}")
}

/// Creates the demo tenants, installs the bundled plugins and enables them, through
/// Weft's own admin API (idempotent across restarts on the same data directory).
async fn provision(
    base: &str,
    admin_token: &str,
    app_config: impl Fn(&DemoTenant, &str) -> Value,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for plugin in weft_bundle::all() {
        let asks = weft_runtime::manifest::Manifest::parse(plugin.manifest)?.capabilities;
        let form = reqwest::multipart::Form::new()
            .part(
                "component",
                reqwest::multipart::Part::bytes(plugin.wasm.to_vec()).file_name("plugin.wasm"),
            )
            .text("manifest", plugin.manifest.to_string())
            .text("grants", serde_json::to_string(&asks)?);
        let resp = http
            .post(format!("{base}/admin/plugins?activate=true"))
            .bearer_auth(admin_token)
            .multipart(form)
            .send()
            .await?;
        expect_ok(resp, &format!("installing {}", plugin.id)).await?;
    }
    for t in &DEMO_TENANTS {
        let resp = http
            .post(format!("{base}/admin/tenants"))
            .bearer_auth(admin_token)
            .json(&json!({"id": t.id, "did": did(t.id), "bpn": t.bpn}))
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::CONFLICT {
            expect_ok(resp, &format!("creating tenant {}", t.id)).await?;
        }
        for app in t.apps {
            let resp = http
                .put(format!("{base}/admin/tenants/{}/apps/{app}", t.id))
                .bearer_auth(admin_token)
                .json(&json!({"config": app_config(t, app)}))
                .send()
                .await?;
            expect_ok(resp, &format!("enabling {app} for {}", t.id)).await?;
        }
    }
    Ok(())
}

async fn expect_ok(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what}: {status} {body}");
    }
    Ok(body)
}

fn print_intro(base: &str, file: &std::path::Path, description: &Value) {
    let supplier_token = description["tenants"]["supplier"]["token"]
        .as_str()
        .unwrap_or("");
    println!(
        "\nWeft sandbox is running at {base}\n\
         Everything a script needs (URLs, tokens) is in {}\n\n\
         Try:\n\
         \x20 TOKEN=$(jq -r .tenants.supplier.token {})\n\
         \x20 curl -s -H \"Authorization: Bearer $TOKEN\" {base}/tenants/supplier/apps\n\
         \x20 curl -s -H \"Authorization: Bearer $TOKEN\" {base}/tenants/supplier/apps/hello/whoami\n\
         \x20 ADMIN=$(jq -r .adminToken {})\n\
         \x20 curl -s -H \"Authorization: Bearer $ADMIN\" {base}/admin/plugins\n\n\
         (supplier token: {}…)\nStop with Ctrl-C.",
        file.display(),
        file.display(),
        file.display(),
        &supplier_token[..supplier_token.len().min(16)],
    );
}
