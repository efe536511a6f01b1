//! Who the current call is for, and why: the `weft:plugin/context` import.
//!
//! ```no_run
//! use weft_sdk::context::{self, EntryPoint};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { greeting: String }
//!
//! let tenant = context::tenant();
//! let config: Config = context::config()?;
//! if let EntryPoint::Data(flow_id) = context::entry_point() {
//!     weft_sdk::info!("{} for flow {flow_id}", config.greeting; tenant = tenant.did);
//! }
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, backend};

/// The tenant (EDC participant context) a call acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The participant context id (opaque).
    pub participant_context_id: String,
    /// The tenant's dataspace identity (a DID such as `did:web:...`).
    pub did: String,
    /// The tenant's Catena-X business partner number (BPNL), when known.
    pub bpn: Option<String>,
}

/// Which of the plugin's entry points the host is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPoint {
    /// A tenant API request.
    Api,
    /// A data request of the flow with this id.
    Data(String),
    /// A lifecycle hook.
    Lifecycle,
    /// A data-flow (DPS signal) hook.
    DataFlows,
    /// An event hook.
    Events,
}

impl EntryPoint {
    /// A short name: `api`, `data`, `lifecycle`, `data-flows` or `events`.
    pub fn name(&self) -> &'static str {
        match self {
            EntryPoint::Api => "api",
            EntryPoint::Data(_) => "data",
            EntryPoint::Lifecycle => "lifecycle",
            EntryPoint::DataFlows => "data-flows",
            EntryPoint::Events => "events",
        }
    }

    /// The flow id of a data request.
    pub fn flow_id(&self) -> Option<&str> {
        match self {
            EntryPoint::Data(id) => Some(id),
            _ => None,
        }
    }
}

/// The running plugin's id and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin id from its manifest.
    pub id: String,
    /// The version running this call.
    pub version: String,
}

/// The tenant this call acts for.
pub fn tenant() -> Tenant {
    backend::active::tenant()
}

/// The plugin's configuration for this tenant as raw JSON (`{}` when none).
pub fn config_json() -> String {
    backend::active::config()
}

/// The plugin's configuration for this tenant, deserialized.
///
/// [`Error::Invalid`] when the configuration does not match `T`.
pub fn config<T: DeserializeOwned>() -> Result<T> {
    let raw = config_json();
    serde_json::from_str(&raw).map_err(|e| Error::Invalid(format!("plugin configuration: {e}")))
}

/// The entry point being served.
pub fn entry_point() -> EntryPoint {
    backend::active::entry_point()
}

/// The plugin's own id and the version running this call.
pub fn plugin() -> PluginInfo {
    backend::active::plugin()
}
