//! The `weft` binary's library: configuration, logging, `serve` and `sandbox`, so the
//! end-to-end tests and benchmarks drive exactly what the binary runs.

pub mod bench;
pub mod config;
pub mod logging;
pub mod overrides;
pub mod sandbox;
pub mod wiring;

use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `weft serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML, `config-version = 1`).
    #[arg(long, env = "WEFT_CONFIG", default_value = "weft.toml")]
    pub config: PathBuf,
    /// Watch this directory for `NAME.wasm` + `NAME.toml` plugin pairs and hot-load them.
    #[arg(long, env = "WEFT_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Log format (overrides `[log] format`).
    #[arg(long, env = "WEFT_LOG_FORMAT")]
    pub log_format: Option<logging::LogFormat>,
}

/// Runs `weft serve` until SIGINT/SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = config::WeftConfig::load(&args.config)?;
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    logging::init(&config.log);
    let options = weft_server::WeftOptions::new(
        config.server.clone(),
        config.auth.clone(),
        config.runtime.clone(),
    );
    let parts = wiring::Parts {
        management: config.management.clone(),
        data_plane: config.data_plane.clone(),
    };
    let assembled = wiring::Assembled::build(options, parts).await?;
    let weft = assembled.weft.clone();
    let _watch = match &args.plugins {
        Some(dir) => Some(
            weft_runtime::watch::watch_dir(weft.registry().clone(), dir.clone())
                .await
                .with_context(|| format!("watching {}", dir.display()))?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "weft is serving");
    weft_server::serve(listener, weft.router(), shutdown_signal()).await?;
    drop(assembled);
    weft.close().await;
    tracing::info!("weft stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
