//! Hot-load from a directory: `NAME.wasm` + `NAME.toml` (+ optional `NAME.wasm.sig`)
//! pairs are loaded and activated when they appear or change. A bad pair is logged and
//! skipped; what is already published stays as it is.

use crate::plugin::digest;
use crate::registry::Registry;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Quiet period after the last file event before rescanning: editors and `cp` write a
/// file in several steps, and loading a half-written component would only fail.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// The outcome of loading one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    Activated { id: String, version: String },
    Unchanged { id: String, version: String },
    Refused { file: PathBuf, reason: String },
}

/// Loads every pair in `dir` and activates what is new. Returns what happened per pair.
pub async fn scan_dir(registry: &Registry, dir: &Path) -> std::io::Result<Vec<ScanOutcome>> {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    manifests.sort();
    let mut out = Vec::new();
    for manifest_path in manifests {
        let wasm_path = manifest_path.with_extension("wasm");
        out.push(load_pair(registry, &manifest_path, &wasm_path).await);
    }
    Ok(out)
}

async fn load_pair(registry: &Registry, manifest_path: &Path, wasm_path: &Path) -> ScanOutcome {
    let refused = |reason: String| {
        tracing::warn!(file = %manifest_path.display(), "plugin not loaded: {reason}");
        ScanOutcome::Refused {
            file: manifest_path.to_path_buf(),
            reason,
        }
    };
    let manifest = match std::fs::read_to_string(manifest_path) {
        Ok(m) => m,
        Err(e) => return refused(format!("cannot read manifest: {e}")),
    };
    let wasm = match std::fs::read(wasm_path) {
        Ok(w) => w,
        Err(e) => return refused(format!("cannot read {}: {e}", wasm_path.display())),
    };
    let signature = std::fs::read(wasm_path.with_extension("wasm.sig")).ok();
    // Skip the compile when this exact version is already installed and active.
    if let Ok(parsed) = crate::manifest::Manifest::parse(&manifest) {
        let version = parsed.version.to_string();
        if let Some(active) = registry.active(&parsed.id)
            && active.version() == version
            && active.digest == digest(&wasm)
        {
            return ScanOutcome::Unchanged {
                id: parsed.id,
                version,
            };
        }
    }
    let plugin = match registry.install(wasm, manifest, signature).await {
        Ok(p) => p,
        Err(e) => return refused(e.to_string()),
    };
    match registry.activate(plugin.id(), &plugin.version()) {
        Ok(p) => {
            tracing::info!(plugin = p.id(), version = %p.version(), digest = %p.digest, "plugin activated");
            ScanOutcome::Activated {
                id: p.id().to_string(),
                version: p.version(),
            }
        }
        Err(e) => refused(e.to_string()),
    }
}

/// A running directory watch; dropping it stops watching.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Scans `dir` once, then rescans after every burst of changes until dropped.
pub async fn watch_dir(registry: Arc<Registry>, dir: PathBuf) -> notify::Result<DirWatch> {
    scan_dir(&registry, &dir).await.map_err(notify::Error::io)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until the directory has been quiet for a moment.
            loop {
                match tokio::time::timeout(WATCH_DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if let Err(e) = scan_dir(&registry, &dir).await {
                tracing::warn!(dir = %dir.display(), "plugin directory scan failed: {e}");
            }
        }
    });
    Ok(DirWatch {
        _watcher: watcher,
        task,
    })
}
