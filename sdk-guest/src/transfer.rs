//! Data flows: reaching a flow's counterparty and reporting asynchronous outcomes (the
//! `weft:plugin/transfer` import).
//!
//! ```no_run
//! use std::io::Read;
//! use weft_sdk::http::ClientRequest;
//! use weft_sdk::transfer;
//!
//! let flow = "flow-1";
//! // Consumer pull: fetch from the provider's endpoint; the host adds the token.
//! let mut response = transfer::send(flow, ClientRequest::get("/data?part=1"))?;
//! let mut first = [0u8; 1024];
//! let n = response.body.read(&mut first)?;
//! weft_sdk::info!("got {n} bytes"; status = response.status);
//! transfer::completed(flow)?;
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use crate::flows::DataAddress;
use crate::http::{ClientRequest, ClientResponse};
use crate::{Result, backend};

/// Sends `request` to the counterparty endpoint of flow `flow_id` (the provider's endpoint
/// on a consumer pull flow, the consumer's on a provider push flow) and returns the
/// response with a streaming body.
pub fn send(flow_id: &str, request: ClientRequest) -> Result<ClientResponse> {
    backend::active::transfer_send(flow_id, request)
}

/// The flow's counterparty DataAddress without its secrets, if it has one.
pub fn counterparty_address(flow_id: &str) -> Result<Option<DataAddress>> {
    backend::active::transfer_counterparty_address(flow_id)
}

/// Reports that an asynchronous prepare finished (consumer). For push, `address` is where
/// the provider may push; `None` lets the host use its own public endpoint.
pub fn prepared(flow_id: &str, address: Option<&DataAddress>) -> Result<()> {
    backend::active::transfer_report(flow_id, Report::Prepared(address.cloned()))
}

/// Reports that an asynchronous start finished (provider). For pull, `None` lets the
/// host mint a token and use its own public data endpoint.
pub fn started(flow_id: &str, address: Option<&DataAddress>) -> Result<()> {
    backend::active::transfer_report(flow_id, Report::Started(address.cloned()))
}

/// Reports that the flow's data has been transferred completely.
pub fn completed(flow_id: &str) -> Result<()> {
    backend::active::transfer_report(flow_id, Report::Completed)
}

/// Reports a non-recoverable error; the control plane decides what follows.
pub fn errored(flow_id: &str, reason: &str) -> Result<()> {
    backend::active::transfer_report(flow_id, Report::Errored(reason.to_owned()))
}

/// An outcome reported through this module (recorded by the native test host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// [`prepared`].
    Prepared(Option<DataAddress>),
    /// [`started`].
    Started(Option<DataAddress>),
    /// [`completed`].
    Completed,
    /// [`errored`].
    Errored(String),
}
