//! Loading a plugin: read → sha256 → strict manifest → signature → compile once (or reuse
//! the precompiled artifact) → check it fits the world → `InstancePre`, ready to call.

use crate::bindings::exports::wasi::http::incoming_handler;
use crate::bindings::{data_flows, events, lifecycle};
use crate::call::HostState;
use crate::config::{CallLimits, MAX_COMPONENT_BYTES};
use crate::manifest::{Manifest, ManifestError};
use crate::runtime::Runtime;
use crate::signature::{self, SignatureError};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use wasmtime::component::{Component, InstancePre};

/// A plugin version compiled, checked and pre-instantiated.
pub struct LoadedPlugin {
    pub manifest: Manifest,
    /// Hex sha256 of the component bytes.
    pub digest: String,
    /// The trusted publisher that signed it, if signed.
    pub signed_by: Option<String>,
    /// Limits every call of this version runs with (unless a call narrows them).
    pub limits: CallLimits,
    /// Whether the machine code came from the precompiled cache.
    pub from_cache: bool,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) exports: ExportIndices,
    /// The manifest's version as text, formatted once (every call names it).
    version_text: String,
}

/// Where each exported interface sits in the component, looked up once at load.
///
/// A call loads (and type-checks) only the interface it calls: loading the whole world
/// per call type-checked a dozen functions with their records and variants, about a
/// quarter of a fresh instance's cost in the `weft bench` B2 profile.
#[derive(Clone)]
pub(crate) struct ExportIndices {
    pub(crate) lifecycle: lifecycle::GuestIndices,
    pub(crate) data_flows: data_flows::GuestIndices,
    pub(crate) events: events::GuestIndices,
    pub(crate) http: incoming_handler::GuestIndices,
}

impl ExportIndices {
    fn new(pre: &InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(ExportIndices {
            lifecycle: lifecycle::GuestIndices::new(pre)?,
            data_flows: data_flows::GuestIndices::new(pre)?,
            events: events::GuestIndices::new(pre)?,
            http: incoming_handler::GuestIndices::new(pre)?,
        })
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.manifest.id)
            .field("version", &self.manifest.version.to_string())
            .field("digest", &self.digest)
            .finish()
    }
}

impl LoadedPlugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn version(&self) -> String {
        self.version_text.clone()
    }
}

/// Why a plugin was refused. Nothing already loaded is affected by a refusal.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("component is {size} bytes, more than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("signature refused: {0}")]
    Signature(#[from] SignatureError),
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error("component does not fit the weft:plugin world: {0}")]
    WrongWorld(String),
    #[error("precompiled cache: {0}")]
    Cache(String),
    #[error("internal error while loading: {0}")]
    Internal(String),
}

/// Hex sha256 of a component.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The inputs of one load.
pub struct LoadRequest<'a> {
    pub wasm: &'a [u8],
    pub manifest: &'a str,
    pub signature: Option<&'a [u8]>,
}

impl Runtime {
    /// Loads a plugin version. CPU-heavy (compilation); async callers should use
    /// [`Runtime::load_async`].
    pub fn load(&self, req: LoadRequest<'_>) -> Result<Arc<LoadedPlugin>, LoadError> {
        if req.wasm.len() > MAX_COMPONENT_BYTES {
            return Err(LoadError::TooLarge {
                size: req.wasm.len(),
                max: MAX_COMPONENT_BYTES,
            });
        }
        let digest = digest(req.wasm);
        let manifest = Manifest::parse(req.manifest)?;
        let signed_by = signature::verify(&self.config().signatures, &digest, req.signature)?;
        let (component, from_cache) = self.compile_cached(req.wasm, &digest)?;
        let instance_pre = self
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        // Finds every export of the world (the check that the component fits it).
        let exports = ExportIndices::new(&instance_pre)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let limits =
            manifest.effective_limits(self.config().default_limits, self.config().max_limits);
        Ok(Arc::new(LoadedPlugin {
            version_text: manifest.version.to_string(),
            manifest,
            digest,
            signed_by,
            limits,
            from_cache,
            pre: instance_pre,
            exports,
        }))
    }

    /// [`Runtime::load`] on the blocking pool.
    pub async fn load_async(
        self: &Arc<Self>,
        wasm: Vec<u8>,
        manifest: String,
        signature: Option<Vec<u8>>,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let rt = self.clone();
        tokio::task::spawn_blocking(move || {
            rt.load(LoadRequest {
                wasm: &wasm,
                manifest: &manifest,
                signature: signature.as_deref(),
            })
        })
        .await
        .map_err(|e| LoadError::Internal(format!("load task failed: {e}")))?
    }

    fn artifact_path(&self, dir: &Path, digest: &str) -> PathBuf {
        dir.join(format!("{digest}-{}.cwasm", self.engine_hash()))
    }

    /// Returns the component, from the precompiled cache when a valid artifact exists.
    fn compile_cached(&self, wasm: &[u8], digest: &str) -> Result<(Component, bool), LoadError> {
        let Some(dir) = self.config().cache_dir.clone() else {
            return Ok((self.compile(wasm)?, false));
        };
        let path = self.artifact_path(&dir, digest);
        if path.exists() {
            match deserialize_artifact(self.engine(), &path) {
                Ok(component) => {
                    self.stats().cache_loads.fetch_add(1, Ordering::Relaxed);
                    return Ok((component, true));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unusable precompiled artifact: {e:#}")
                }
            }
        }
        let component = self.compile(wasm)?;
        let bytes = component
            .serialize()
            .map_err(|e| LoadError::Cache(format!("{e:#}")))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| LoadError::Cache(format!("{}: {e}", dir.display())))?;
        // Write then rename, so a crash never leaves a truncated artifact under the key.
        let tmp = dir.join(format!(".{digest}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| LoadError::Cache(format!("{}: {e}", path.display())))?;
        Ok((component, false))
    }

    fn compile(&self, wasm: &[u8]) -> Result<Component, LoadError> {
        self.stats().compiles.fetch_add(1, Ordering::Relaxed);
        Component::new(self.engine(), wasm)
            .map_err(|e| LoadError::InvalidComponent(format!("{e:#}")))
    }
}

/// Maps a precompiled artifact.
#[allow(unsafe_code)]
fn deserialize_artifact(engine: &wasmtime::Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the artifact was produced by `Component::serialize` of this host, into the
    // host's own cache directory (not writable by plugins or tenants), under a name that
    // includes the engine's compatibility hash. wasmtime still checks its header and
    // refuses artifacts of another version or configuration.
    unsafe { Component::deserialize_file(engine, path) }
}
