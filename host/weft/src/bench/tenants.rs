//! B6: many tenants with `hello` enabled through the admin API (each enable runs the app's
//! `on-enable`), each touched once through the tenant API, then idle: the host's RSS and
//! the cost per tenant.
//!
//! The host runs as a child `weft serve` (this binary) so its RSS is the host's alone;
//! when this process is not the `weft` binary (unit tests) it measures its own Weft, which
//! says nothing about absolute RSS and is reported without a verdict.

use super::env::{self, Env};
use super::measure::{Rss, mib, rss_of};
use super::{Plan, Row, Verdict};
use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The target for the idle host with all tenants enabled.
const TARGET_RSS: u64 = 200 << 20;

/// Admin and tenant requests in flight while setting up (the admin API serialises
/// changes anyway; a few in flight hide the client's round trips).
const SETUP_CONCURRENCY: usize = 8;

/// How long the host idles before RSS is read (lets allocator and pool settle).
const IDLE: Duration = Duration::from_secs(3);

/// How long the child host may take to answer `/healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A tmpfs the child's data directory goes to when present: the setup writes ~5 SQLite
/// transactions per tenant and this VM's fsync takes milliseconds. RSS is what B6
/// measures, and tmpfs pages are not part of the process's RSS.
const TMPFS: &str = "/dev/shm";

/// The tenant of index `i`.
fn tenant_id(i: usize) -> String {
    format!("b6-{i:05}")
}

/// Where the measured host runs.
enum Host {
    Child {
        child: Box<tokio::process::Child>,
        pid: u32,
        base: String,
        log: PathBuf,
        _dir: tempfile::TempDir,
    },
    InProcess {
        base: String,
    },
}

impl Host {
    fn base(&self) -> &str {
        match self {
            Host::Child { base, .. } | Host::InProcess { base } => base,
        }
    }

    fn rss(&self) -> Rss {
        match self {
            Host::Child { pid, .. } => rss_of(Some(*pid)),
            Host::InProcess { .. } => rss_of(None),
        }
    }

    async fn stop(self) {
        if let Host::Child { mut child, .. } = self {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// The `weft` binary, when this process is it.
fn weft_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_stem()?.to_str()?;
    (name == "weft").then_some(exe)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(l.local_addr()?.port())
}

fn data_dir() -> anyhow::Result<tempfile::TempDir> {
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("weft-bench-b6-");
        b
    };
    if Path::new(TMPFS).is_dir()
        && let Ok(dir) = builder.tempdir_in(TMPFS)
    {
        return Ok(dir);
    }
    Ok(builder.tempdir()?)
}

async fn start_child(env: &Env, exe: &Path) -> anyhow::Result<Host> {
    let dir = data_dir()?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let config = crate::config::WeftConfig {
        config_version: crate::config::CONFIG_VERSION,
        listen,
        server: weft_server::ServerConfig::with_data_dir(dir.path().join("data")),
        auth: env.auth.clone(),
        runtime: Default::default(),
        log: crate::logging::LogConfig {
            format: crate::logging::LogFormat::Text,
            level: "warn".into(),
        },
        management: None,
        // Assembled like a deployment: with the data plane (this benchmark as the
        // control plane of every context).
        data_plane: Some(env::data_plane_config(
            &format!("http://{listen}"),
            &env.callback_endpoint,
            &env.cp_authorization,
        )?),
    };
    let config_path = dir.path().join("weft.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let log = dir.path().join("weft.log");
    let out = std::fs::File::create(&log)?;
    let child = tokio::process::Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} serve", exe.display()))?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("the child host exited at once"))?;
    let host = Host::Child {
        child: Box::new(child),
        pid,
        base: format!("http://{listen}"),
        log,
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        let up = env
            .http
            .get(format!("{}/healthz", host.base()))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return Ok(host);
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            let text = match &host {
                Host::Child { log, .. } => std::fs::read_to_string(log).unwrap_or_default(),
                Host::InProcess { .. } => String::new(),
            };
            host.stop().await;
            bail!("the child host did not come up: {text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `f` for every tenant index with a few in flight; the first error ends it.
async fn for_each_tenant<F, Fut>(count: usize, offset: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut stream = futures::stream::iter((offset..offset + count).map(tenant_id))
        .map(&f)
        .buffer_unordered(SETUP_CONCURRENCY);
    while let Some(result) = stream.next().await {
        result?;
    }
    Ok(())
}

pub(crate) async fn run(plan: &Plan, env: &Env) -> anyhow::Result<Row> {
    let host = match weft_binary().filter(|_| plan.child_host) {
        Some(exe) => start_child(env, &exe).await?,
        None => Host::InProcess { base: env.base() },
    };
    let outcome = measure(plan, env, &host).await;
    let log_tail = match &host {
        Host::Child { log, .. } => std::fs::read_to_string(log)
            .ok()
            .map(|t| t.lines().rev().take(5).collect::<Vec<_>>().join(" | ")),
        Host::InProcess { .. } => None,
    };
    let child = matches!(host, Host::Child { .. });
    host.stop().await;
    let mut row = outcome.map_err(|e| match &log_tail {
        Some(tail) if !tail.is_empty() => e.context(format!("child log: {tail}")),
        _ => e,
    })?;
    if !child {
        row.verdict = Verdict::NotAvailable(
            "in-process host: RSS includes the benchmark itself (run the weft binary)".into(),
        );
    }
    Ok(row)
}

async fn measure(plan: &Plan, env: &Env, host: &Host) -> anyhow::Result<Row> {
    let child = matches!(host, Host::Child { .. });
    let base = host.base().to_string();
    let http = &env.http;
    let token = env.admin_token.as_str();
    // In-process, the shared Weft already has hello; a child host starts empty. Tenant
    // ids of an in-process run start after any an earlier run created.
    let offset = if child {
        env::upload(http, &base, token, &weft_bundle::HELLO, true).await?;
        0
    } else {
        1_000_000
    };
    let touch_path = |ctx: &str| format!("{base}/tenants/{ctx}/apps/hello/whoami");
    // One tenant first, so one-time costs (first instance, caches) are in the baseline.
    let warm = tenant_id(offset + plan.tenants);
    env::create_tenant(http, &base, token, &warm, None).await?;
    env::enable(http, &base, token, &warm, "hello").await?;
    touch(http, &touch_path(&warm), token).await?;
    tokio::time::sleep(IDLE).await;
    let before = host.rss();

    let started = Instant::now();
    let base_ref = base.as_str();
    for_each_tenant(plan.tenants, offset, |ctx| async move {
        env::create_tenant(http, base_ref, token, &ctx, None).await?;
        env::enable(http, base_ref, token, &ctx, "hello").await?;
        Ok(())
    })
    .await?;
    let setup = started.elapsed();
    let started = Instant::now();
    for_each_tenant(plan.tenants, offset, |ctx| {
        let url = touch_path(&ctx);
        async move { touch(http, &url, token).await }
    })
    .await?;
    let touched = started.elapsed();
    tokio::time::sleep(IDLE).await;
    let after = host.rss();

    let n = plan.tenants.max(1) as u64;
    let per_tenant = after.now.saturating_sub(before.now) / n;
    let verdict = Verdict::of(after.now <= TARGET_RSS);
    let notes = vec![
        format!(
            "host: {}; each tenant created and hello enabled through the admin API \
             (on-enable runs), then one whoami through the tenant API; RSS read after {} s idle",
            if child {
                "child `weft serve` (data directory on tmpfs when available)"
            } else {
                "this process (in-process Weft)"
            },
            IDLE.as_secs()
        ),
        format!(
            "setup: {} tenants in {:.1} s ({:.0}/s), touched in {:.1} s ({:.0}/s)",
            plan.tenants,
            setup.as_secs_f64(),
            plan.tenants as f64 / setup.as_secs_f64().max(1e-9),
            touched.as_secs_f64(),
            plan.tenants as f64 / touched.as_secs_f64().max(1e-9)
        ),
        format!(
            "RSS with 1 tenant {:.1} MiB → with {} more {:.1} MiB (peak {:.1} MiB); per tenant {:.2} KiB",
            mib(before.now),
            plan.tenants,
            mib(after.now),
            mib(after.peak),
            per_tenant as f64 / 1024.0
        ),
    ];
    Ok(Row {
        id: "B6",
        scenario: format!("{} tenants enabled, idle", plan.tenants),
        weft: format!(
            "RSS {:.1} MiB, {:.2} KiB/tenant",
            mib(after.now),
            per_tenant as f64 / 1024.0
        ),
        baseline: format!("1 tenant: {:.1} MiB", mib(before.now)),
        ratio: "—".into(),
        target: format!("RSS ≤ {} MiB", TARGET_RSS >> 20),
        verdict,
        figures: json!({
            "tenants": plan.tenants,
            "rss_before_bytes": before.now,
            "rss_after_bytes": after.now,
            "rss_peak_bytes": after.peak,
            "per_tenant_bytes": per_tenant,
            "setup_s": setup.as_secs_f64(),
            "child_host": child,
        }),
        notes,
    })
}

async fn touch(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let resp = http.get(url).bearer_auth(token).send().await?;
    let status = resp.status();
    if !status.is_success() {
        bail!("{url}: {status} {}", resp.text().await.unwrap_or_default());
    }
    Ok(())
}
