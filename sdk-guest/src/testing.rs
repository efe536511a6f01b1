//! An in-memory stand-in for the host, so plugin logic runs in plain native `cargo test`.
//!
//! Only on non-wasm targets. Each test thread has its own host (tests run in parallel
//! threads), starting from defaults: tenant `test-tenant`, config `{}`, entry point
//! [`EntryPoint::Api`], plugin `test-plugin` `0.0.0`, empty state, management and
//! transfer calls answered [`Error::Unavailable`] until a handler is set.
//!
//! ```no_run
//! use weft_sdk::{state, testing};
//!
//! testing::reset();
//! testing::set_config(r#"{"greeting":"hi"}"#);
//! state::set("k", b"v").unwrap();
//! assert_eq!(testing::state().get("k").map(Vec::as_slice), Some(&b"v"[..]));
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::context::{EntryPoint, PluginInfo, Tenant};
use crate::flows::DataAddress;
use crate::http::{ClientRequest, ClientResponse};
use crate::log::Level;
use crate::management::{self, ProcessKind};
use crate::transfer::Report;
use crate::{Error, Result};

type ManagementHandler = Rc<dyn Fn(&management::Request) -> Result<management::Response>>;
type TransferHandler = Rc<dyn Fn(&str, ClientRequest) -> Result<ClientResponse>>;

/// One record written through [`crate::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The level.
    pub level: Level,
    /// The message.
    pub message: String,
    /// The fields, in order.
    pub fields: Vec<(String, String)>,
}

pub(crate) struct Host {
    pub(crate) tenant: Tenant,
    pub(crate) config: String,
    pub(crate) entry_point: EntryPoint,
    pub(crate) plugin: PluginInfo,
    pub(crate) state: BTreeMap<String, Vec<u8>>,
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) reports: Vec<(String, Report)>,
    pub(crate) watches: Vec<(ProcessKind, String, String)>,
    pub(crate) addresses: BTreeMap<String, DataAddress>,
    pub(crate) management: Option<ManagementHandler>,
    pub(crate) transfer: Option<TransferHandler>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            tenant: Tenant {
                participant_context_id: "test-tenant".to_owned(),
                did: "did:web:test-tenant".to_owned(),
                bpn: None,
            },
            config: "{}".to_owned(),
            entry_point: EntryPoint::Api,
            plugin: PluginInfo {
                id: "test-plugin".to_owned(),
                version: "0.0.0".to_owned(),
            },
            state: BTreeMap::new(),
            logs: Vec::new(),
            reports: Vec::new(),
            watches: Vec::new(),
            addresses: BTreeMap::new(),
            management: None,
            transfer: None,
        }
    }
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

pub(crate) fn with<R>(f: impl FnOnce(&mut Host) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Restores the defaults (state, logs and handlers cleared).
pub fn reset() {
    with(|h| *h = Host::default());
}

/// Sets the tenant [`crate::context::tenant`] returns.
pub fn set_tenant(tenant: Tenant) {
    with(|h| h.tenant = tenant);
}

/// Sets the raw JSON configuration [`crate::context::config`] reads.
pub fn set_config(json: impl Into<String>) {
    let json = json.into();
    with(|h| h.config = json);
}

/// Sets the entry point [`crate::context::entry_point`] returns.
pub fn set_entry_point(entry_point: EntryPoint) {
    with(|h| h.entry_point = entry_point);
}

/// Sets the plugin id and version [`crate::context::plugin`] returns.
pub fn set_plugin(id: &str, version: &str) {
    with(|h| {
        h.plugin = PluginInfo {
            id: id.to_owned(),
            version: version.to_owned(),
        }
    });
}

/// A snapshot of the state.
pub fn state() -> BTreeMap<String, Vec<u8>> {
    with(|h| h.state.clone())
}

/// The log records written so far.
pub fn logs() -> Vec<LogRecord> {
    with(|h| h.logs.clone())
}

/// The flow outcomes reported through [`crate::transfer`] so far, as (flow id, report).
pub fn reports() -> Vec<(String, Report)> {
    with(|h| h.reports.clone())
}

/// The processes watched through [`crate::management::watch`], as (kind, id, correlation).
pub fn watches() -> Vec<(ProcessKind, String, String)> {
    with(|h| h.watches.clone())
}

/// Sets the counterparty address [`crate::transfer::counterparty_address`] returns.
pub fn set_counterparty_address(flow_id: &str, address: DataAddress) {
    with(|h| h.addresses.insert(flow_id.to_owned(), address));
}

/// Answers [`crate::management`] requests with `handler`.
pub fn set_management_handler(
    handler: impl Fn(&management::Request) -> Result<management::Response> + 'static,
) {
    with(|h| h.management = Some(Rc::new(handler)));
}

/// Answers [`crate::transfer::send`] with `handler`.
pub fn set_transfer_handler(
    handler: impl Fn(&str, ClientRequest) -> Result<ClientResponse> + 'static,
) {
    with(|h| h.transfer = Some(Rc::new(handler)));
}

pub(crate) fn management_handler() -> Result<ManagementHandler> {
    with(|h| h.management.clone()).ok_or_else(|| {
        Error::Unavailable(
            "no Management API in native tests (testing::set_management_handler)".to_owned(),
        )
    })
}

pub(crate) fn transfer_handler() -> Result<TransferHandler> {
    with(|h| h.transfer.clone()).ok_or_else(|| {
        Error::Unavailable(
            "no counterparty in native tests (testing::set_transfer_handler)".to_owned(),
        )
    })
}
