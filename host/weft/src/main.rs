//! The `weft` binary: `serve` runs the host from a config file, `sandbox` runs it with the
//! local dataspace stand-in on embedded defaults.

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the host allocates and frees many small, short-lived
/// buffers per request across threads (a store per call, JSON, HTTP heads), where glibc's
/// arenas spent about a tenth of B4's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "A multi-tenant WebAssembly host for dataspace apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host from a configuration file.
    Serve(weft::ServeArgs),
    /// Run Weft with a local identity provider and control plane stand-in, demo tenants
    /// and the bundled plugins.
    Sandbox(weft::sandbox::SandboxArgs),
    /// Measure Weft's costs against raw-wasmtime and native baselines (use a release build).
    Bench(weft::bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => weft::serve(args).await,
            Command::Sandbox(args) => weft::sandbox::run(args).await,
            Command::Bench(args) => weft::bench::run(args).await,
        }
    })
}
