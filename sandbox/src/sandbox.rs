//! Entry points: start the identity provider and the control plane on loopback listeners, hand
//! back their URLs and handles, and shut them down.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ClaimMode, ClientSpec, ParticipantSpec, Role, SandboxConfig};
use crate::controlplane::{ApiVersion, ControlPlane, ControlPlaneConfig};
use crate::error::SandboxError;
use crate::idp::{Idp, IdpConfig, MintSpec};

/// How long shutdown waits for open connections before aborting the servers.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `sub` of admin tokens in subject mode (CONN's `OauthServer` uses the same).
pub const ADMIN_SUBJECT: &str = "admin-subject";
/// The cross-tenant scope of subject mode.
pub const ADMIN_SCOPE: &str = "management-api:admin";

/// Every URL a client of the sandbox needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxUrls {
    /// Identity provider base URL.
    pub idp: String,
    /// `iss` of its tokens.
    pub issuer: String,
    /// Token endpoint (client credentials, token exchange).
    pub token: String,
    /// JWKS.
    pub jwks: String,
    /// OIDC discovery document.
    pub discovery: String,
    /// Management API base (`…/api/mgmt`); append `/{version}/participants/{pc}/…`.
    pub management: String,
    /// DSP base (`…/api/dsp`); a context's address is `{dsp}/{pc}/2025-1`.
    pub dsp: String,
    /// Signaling callback base (`…/api/signaling`); data planes call
    /// `{signaling}/transfers/{id}/dataflow/{op}`.
    pub signaling: String,
}

impl SandboxUrls {
    /// `{management}/{version}/participants/{pc}`.
    pub fn management_for(&self, version: ApiVersion, pc: &str) -> String {
        format!("{}/{}/participants/{pc}", self.management, version.as_str())
    }

    /// The DSP counter-party address of a participant context.
    pub fn dsp_address(&self, pc: &str) -> String {
        format!("{}/{pc}/2025-1", self.dsp)
    }
}

/// The stand-in.
#[derive(Debug)]
pub struct Sandbox;

async fn bind(
    config: &SandboxConfig,
    port: u16,
    what: &'static str,
) -> Result<TcpListener, SandboxError> {
    let addr = SocketAddr::new(config.bind, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Bind {
            what,
            addr: addr.to_string(),
            source,
        })
}

fn base_url(listener: &TcpListener) -> Result<String, SandboxError> {
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        what: "local address of",
        addr: String::new(),
        source,
    })?;
    Ok(format!("http://{addr}"))
}

impl Sandbox {
    /// Bind the listeners, seed clients and participants, and serve until shutdown.
    pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
        let idp_listener = bind(&config, config.idp_port, "identity provider").await?;
        let mgmt_listener = bind(&config, config.management_port, "management").await?;
        let signaling_listener = bind(&config, config.signaling_port, "signaling").await?;
        let idp_base = base_url(&idp_listener)?;
        let mgmt_base = base_url(&mgmt_listener)?;
        let signaling_base = base_url(&signaling_listener)?;

        let idp = Idp::new(IdpConfig {
            base_url: idp_base.clone(),
            issuer: config.issuer.clone(),
            claim_mode: config.claim_mode,
            token_lifetime: Duration::from_secs(config.token_lifetime_secs),
            audience: config.audience.clone(),
        })?;
        let urls = SandboxUrls {
            idp: idp_base,
            issuer: idp.issuer().to_owned(),
            token: idp.token_url(),
            jwks: idp.jwks_url(),
            discovery: idp.discovery_url(),
            management: format!("{mgmt_base}/api/mgmt"),
            dsp: format!("{mgmt_base}/api/dsp"),
            signaling: format!("{signaling_base}/api/signaling"),
        };
        let control_plane = ControlPlane::new(
            ControlPlaneConfig {
                management_url: urls.management.clone(),
                dsp_url: urls.dsp.clone(),
                signaling_url: urls.signaling.clone(),
                claim_mode: config.claim_mode,
                signaling_auth: config.signaling_auth.clone(),
                dataplane_authorization: config.dataplane_authorization.clone(),
                dataspace_context: config.dataspace_context.clone(),
            },
            idp.clone(),
        )?;
        for client in config.clients {
            idp.register_client(client);
        }
        for participant in config.participants {
            control_plane.register_participant(participant);
        }

        let (shutdown, signal) = watch::channel(false);
        let serve = |listener: TcpListener, router: axum::Router| {
            let mut signal = signal.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                };
                if let Err(error) = axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(%error, "sandbox server failed");
                }
            })
        };
        let servers = vec![
            serve(idp_listener, idp.router()),
            serve(mgmt_listener, control_plane.management_router()),
            serve(signaling_listener, control_plane.signaling_router()),
        ];
        Ok(RunningSandbox {
            urls,
            idp,
            control_plane,
            claim_mode: config.claim_mode,
            shutdown,
            servers,
        })
    }
}

/// A started sandbox. Dropping it stops the servers; [`RunningSandbox::shutdown`] also waits.
#[derive(Debug)]
pub struct RunningSandbox {
    urls: SandboxUrls,
    idp: Idp,
    control_plane: ControlPlane,
    claim_mode: ClaimMode,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn urls(&self) -> &SandboxUrls {
        &self.urls
    }

    pub fn idp(&self) -> &Idp {
        &self.idp
    }

    pub fn control_plane(&self) -> &ControlPlane {
        &self.control_plane
    }

    pub fn claim_mode(&self) -> ClaimMode {
        self.claim_mode
    }

    /// Register (or replace) an OAuth2 client of the identity provider.
    pub fn register_client(&self, client: ClientSpec) {
        self.idp.register_client(client);
    }

    /// Create (or replace) a participant context in the control plane.
    pub fn register_participant(&self, participant: ParticipantSpec) {
        self.control_plane.register_participant(participant);
    }

    /// A token for a registered client, as `client_credentials` with all its scopes would give.
    pub fn token_for_client(&self, client_id: &str) -> Result<String, SandboxError> {
        Ok(self.idp.mint_for_client(client_id)?)
    }

    /// A tenant token for `pc` with `scopes`, in the configured claim mode
    /// (`participant_context_id` + `role=participant`, or `sub`).
    pub fn tenant_token(&self, pc: &str, scopes: &[&str]) -> Result<String, SandboxError> {
        Ok(self.idp.mint(&MintSpec::participant(pc, scopes))?)
    }

    /// An admin token: role `admin` (participant-context mode) or scope `management-api:admin`
    /// with `sub` `admin-subject` (subject mode, as CONN's test IdP does).
    pub fn admin_token(&self) -> Result<String, SandboxError> {
        Ok(self.idp.mint(&MintSpec::service(
            ADMIN_SUBJECT,
            Role::Admin,
            &[ADMIN_SCOPE],
        ))?)
    }

    /// Stop accepting connections and wait (at most [`SHUTDOWN_GRACE`]) for the servers.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for server in std::mem::take(&mut self.servers) {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for server in &self.servers {
            server.abort();
        }
    }
}
