//! The plugin registry: versions of each plugin side by side, one of them active.
//!
//! Readers take a snapshot (`ArcSwap`), so looking up the active version never waits on a
//! writer, and a call holds an `Arc` of the version it started with: activating another
//! version or rolling back is a pointer swap that never fails or disturbs a call in flight.

use crate::plugin::{LoadError, LoadedPlugin};
use crate::runtime::Runtime;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Why a registry change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("plugin {0} is not installed")]
    UnknownPlugin(String),
    #[error("plugin {0} has no version {1}")]
    UnknownVersion(String, String),
    #[error("plugin {id} version {version} is already installed with another digest ({existing})")]
    VersionConflict {
        id: String,
        version: String,
        existing: String,
    },
    #[error("plugin {0} version {1} is active; activate another version first")]
    VersionActive(String, String),
}

/// One plugin's versions.
#[derive(Clone, Default)]
struct Slot {
    versions: BTreeMap<semver::Version, Arc<LoadedPlugin>>,
    active: Option<Arc<LoadedPlugin>>,
}

/// An immutable view of the registry.
#[derive(Clone, Default)]
struct Snapshot {
    plugins: BTreeMap<String, Slot>,
}

/// A summary of one installed plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSummary {
    pub id: String,
    pub versions: Vec<String>,
    pub active: Option<String>,
}

/// Installed plugins and their active versions.
pub struct Registry {
    runtime: Arc<Runtime>,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers; readers never take it.
    write: Mutex<()>,
}

impl Registry {
    pub fn new(runtime: Arc<Runtime>) -> Registry {
        Registry {
            runtime,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            write: Mutex::new(()),
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The active version of a plugin, if any.
    pub fn active(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.snapshot
            .load()
            .plugins
            .get(id)
            .and_then(|s| s.active.clone())
    }

    /// A specific version of a plugin.
    pub fn version(&self, id: &str, version: &str) -> Option<Arc<LoadedPlugin>> {
        let v = semver::Version::parse(version).ok()?;
        self.snapshot
            .load()
            .plugins
            .get(id)
            .and_then(|s| s.versions.get(&v).cloned())
    }

    /// Every plugin with its versions (oldest first) and active version.
    pub fn list(&self) -> Vec<PluginSummary> {
        self.snapshot
            .load()
            .plugins
            .iter()
            .map(|(id, slot)| PluginSummary {
                id: id.clone(),
                versions: slot.versions.keys().map(ToString::to_string).collect(),
                active: slot.active.as_ref().map(|p| p.version()),
            })
            .collect()
    }

    fn update<R>(
        &self,
        f: impl FnOnce(&mut Snapshot) -> Result<R, RegistryError>,
    ) -> Result<R, RegistryError> {
        let _writer = self
            .write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = Snapshot::clone(&self.snapshot.load());
        let out = f(&mut next)?;
        self.snapshot.store(Arc::new(next));
        Ok(out)
    }

    /// Adds a loaded version (not activated). Installing the same digest again is a no-op.
    pub fn insert(&self, plugin: Arc<LoadedPlugin>) -> Result<Arc<LoadedPlugin>, RegistryError> {
        self.update(|snap| {
            let slot = snap.plugins.entry(plugin.id().to_string()).or_default();
            match slot.versions.get(&plugin.manifest.version) {
                Some(existing) if existing.digest == plugin.digest => Ok(existing.clone()),
                Some(existing) => Err(RegistryError::VersionConflict {
                    id: plugin.id().to_string(),
                    version: plugin.version(),
                    existing: existing.digest.clone(),
                }),
                None => {
                    slot.versions
                        .insert(plugin.manifest.version.clone(), plugin.clone());
                    Ok(plugin)
                }
            }
        })
    }

    /// Loads (off the async threads) and inserts a version, without activating it.
    pub async fn install(
        &self,
        wasm: Vec<u8>,
        manifest: String,
        signature: Option<Vec<u8>>,
    ) -> Result<Arc<LoadedPlugin>, RegistryError> {
        let plugin = self.runtime.load_async(wasm, manifest, signature).await?;
        self.insert(plugin)
    }

    /// Makes a version the active one: a single pointer swap.
    pub fn activate(&self, id: &str, version: &str) -> Result<Arc<LoadedPlugin>, RegistryError> {
        let v = semver::Version::parse(version)
            .map_err(|_| RegistryError::UnknownVersion(id.to_string(), version.to_string()))?;
        self.update(|snap| {
            let slot = snap
                .plugins
                .get_mut(id)
                .ok_or_else(|| RegistryError::UnknownPlugin(id.to_string()))?;
            let plugin = slot.versions.get(&v).cloned().ok_or_else(|| {
                RegistryError::UnknownVersion(id.to_string(), version.to_string())
            })?;
            slot.active = Some(plugin.clone());
            Ok(plugin)
        })
    }

    /// Leaves a plugin installed but with no active version.
    pub fn deactivate(&self, id: &str) -> Result<(), RegistryError> {
        self.update(|snap| {
            let slot = snap
                .plugins
                .get_mut(id)
                .ok_or_else(|| RegistryError::UnknownPlugin(id.to_string()))?;
            slot.active = None;
            Ok(())
        })
    }

    /// Removes an inactive version. Calls already running on it finish normally.
    pub fn remove_version(&self, id: &str, version: &str) -> Result<(), RegistryError> {
        let v = semver::Version::parse(version)
            .map_err(|_| RegistryError::UnknownVersion(id.to_string(), version.to_string()))?;
        self.update(|snap| {
            let slot = snap
                .plugins
                .get_mut(id)
                .ok_or_else(|| RegistryError::UnknownPlugin(id.to_string()))?;
            if slot
                .active
                .as_ref()
                .is_some_and(|a| a.manifest.version == v)
            {
                return Err(RegistryError::VersionActive(
                    id.to_string(),
                    version.to_string(),
                ));
            }
            slot.versions.remove(&v).ok_or_else(|| {
                RegistryError::UnknownVersion(id.to_string(), version.to_string())
            })?;
            if slot.versions.is_empty() {
                snap.plugins.remove(id);
            }
            Ok(())
        })
    }
}
