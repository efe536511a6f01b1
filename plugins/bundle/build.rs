//! Builds every plugin crate under `plugins/` (a directory with a `weft.toml`) for
//! `wasm32-wasip2` with the `plugin` profile, plus the feature variants in [`VARIANTS`],
//! and tells the library where each component is (`WEFT_BUNDLE_<CRATE>` env vars).
//!
//! The inner cargo uses its own target directory (`target/plugins`) so it never waits on
//! the outer build's lock, and runs with the outer cargo's wrapper/flag variables removed
//! so they cannot leak into the wasm build. Variants build into the same directory (their
//! dependencies are shared, only the plugin crate itself is rebuilt), so every component
//! is copied into `OUT_DIR` right after the build that produced it.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The target plugins are built for.
const TARGET: &str = "wasm32-wasip2";

/// The workspace profile for plugin builds (small, optimised components).
const PROFILE: &str = "plugin";

/// Variables the outer cargo (or clippy, or make) sets that must not reach the inner
/// build: flags and wrappers for the host target, its jobserver, its target dir.
const LEAKY_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
];

/// An extra build of one plugin with features.
struct Variant {
    krate: &'static str,
    features: &'static str,
    env_suffix: &'static str,
}

/// Feature variants: `hello` v2 is the upgrade/rollback target.
const VARIANTS: &[Variant] = &[Variant {
    krate: "hello",
    features: "v2",
    env_suffix: "_V2",
}];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: building the bundled plugins failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let workspace = manifest_dir
        .join("../..")
        .canonicalize()
        .map_err(|e| format!("workspace root: {e}"))?;
    let plugins = discover(&workspace.join("plugins"))?;

    for path in ["wit", "sdk-guest", "plugins", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    for (dir, _) in &plugins {
        for file in ["src", "Cargo.toml", "weft.toml"] {
            println!("cargo:rerun-if-changed={}", dir.join(file).display());
        }
    }

    ensure_target();

    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let main_dir = workspace.join("target").join("plugins");
    let mut args: Vec<String> = Vec::new();
    for (_, krate) in &plugins {
        args.push("-p".into());
        args.push(krate.clone());
    }
    cargo_build(&workspace, &main_dir, &args)?;
    for (_, krate) in &plugins {
        export_path(krate, "", &main_dir, &out_dir)?;
    }

    for v in VARIANTS {
        let args = ["-p", v.krate, "--features", v.features].map(String::from);
        cargo_build(&workspace, &main_dir, &args)?;
        export_path(v.krate, v.env_suffix, &main_dir, &out_dir)?;
    }
    Ok(())
}

/// Plugin crates: workspace members under `plugins/` holding a `weft.toml`, with their
/// package names, sorted by directory. A directory that is not (yet) a workspace member
/// is skipped, since cargo could not build it.
fn discover(plugins_dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let root = plugins_dir.parent().unwrap_or(plugins_dir);
    let root_toml = root.join("Cargo.toml");
    let root_doc: toml::Table = fs::read_to_string(&root_toml)
        .map_err(|e| format!("{}: {e}", root_toml.display()))?
        .parse()
        .map_err(|e| format!("{}: {e}", root_toml.display()))?;
    let members: Vec<PathBuf> = root_doc
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .map(|m| {
            m.iter()
                .filter_map(|v| v.as_str())
                .map(|p| root.join(p))
                .collect()
        })
        .unwrap_or_default();
    let entries =
        fs::read_dir(plugins_dir).map_err(|e| format!("{}: {e}", plugins_dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let dir = entry.map_err(|e| e.to_string())?.path();
        if !dir.join("weft.toml").is_file() || !members.contains(&dir) {
            continue;
        }
        let cargo_toml = dir.join("Cargo.toml");
        let text = fs::read_to_string(&cargo_toml)
            .map_err(|e| format!("{}: {e}", cargo_toml.display()))?;
        let doc: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", cargo_toml.display()))?;
        let name = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| format!("{}: no [package] name", cargo_toml.display()))?;
        found.push((dir, name.to_owned()));
    }
    found.sort();
    Ok(found)
}

/// Installs the wasm target through rustup when it is missing.
fn ensure_target() {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match listed {
        Ok(out) if out.status.success() => {
            let installed = String::from_utf8_lossy(&out.stdout);
            if installed.lines().any(|l| l.trim() == TARGET) {
                return;
            }
            match Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()
            {
                Ok(s) if s.success() => {}
                Ok(s) => println!(
                    "cargo:warning=`rustup target add {TARGET}` failed ({s}); the plugin build will fail"
                ),
                Err(e) => println!("cargo:warning=could not run `rustup target add {TARGET}`: {e}"),
            }
        }
        Ok(out) => println!(
            "cargo:warning=`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => println!(
            "cargo:warning=rustup not found: make sure the {TARGET} target is installed for this toolchain, or the plugin build fails"
        ),
    }
}

fn cargo_build(workspace: &Path, target_dir: &Path, extra: &[String]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["--profile", PROFILE, "--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        .args(extra);
    for var in LEAKY_ENV {
        cmd.env_remove(var);
    }
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("running {shown}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{shown} exited with {}:\n{stderr}", out.status));
    }
    for line in stderr.lines().filter(|l| l.starts_with("warning")) {
        println!("cargo:warning=plugin build: {line}");
    }
    Ok(())
}

/// Copies a component just built into `out_dir` and tells the library where it is:
/// `WEFT_BUNDLE_<CRATE><suffix>`.
fn export_path(krate: &str, suffix: &str, target_dir: &Path, out_dir: &Path) -> Result<(), String> {
    let file = krate.replace('-', "_");
    let wasm = target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{file}.wasm"));
    if !wasm.is_file() {
        return Err(format!("{} was not produced", wasm.display()));
    }
    let var = format!("WEFT_BUNDLE_{}{suffix}", file.to_ascii_uppercase());
    let copy = out_dir.join(format!("{}.wasm", var.to_ascii_lowercase()));
    fs::copy(&wasm, &copy).map_err(|e| format!("copying {}: {e}", wasm.display()))?;
    println!("cargo:rustc-env={var}={}", copy.display());
    Ok(())
}
