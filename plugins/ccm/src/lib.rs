//! `ccm`: Catena-X Company Certificate Management (CX-0135 v2.4.0) as a Weft plugin, both
//! roles in one; one tenant is one BPNL (ccm.md §9).
//!
//! - **Enable** bootstraps, idempotently, the access policy `ccm-access` (Membership, optional
//!   BPN list), the usage policy `ccm-usage` (FrameworkAgreement DataExchangeGovernance:1.0 +
//!   UsagePurpose cx.ccm.base:1), the CCMAPI notification asset (§4.1) and its contract
//!   definition ([`provider::bootstrap`]).
//! - **Provider**: certificate CRUD, publish (one §4.2 asset per certificate), serving pulls,
//!   answering `request`, tracking shares from `status` ([`provider`], [`data`]).
//! - **Consumer**: pulls by `documentId` or filter, `push` and `available` receipt, `status`
//!   feedback and `request` messages ([`consumer`]).
//! - The tenant API is in [`api`]; the DPS hooks in [`flows`]; state keys in [`store`].
//!
//! Logic takes its connector I/O through [`edc::Connector`], so `cargo test -p ccm` runs the
//! provider and consumer flows natively against a scripted two-tenant dataspace.

pub mod api;
pub mod check;
pub mod config;
pub mod consumer;
pub mod data;
pub mod edc;
pub mod flows;
pub mod message;
pub mod model;
pub mod notify;
pub mod pdf;
pub mod policy;
pub mod provider;
pub mod shares;
pub mod store;
pub mod vocab;

#[cfg(test)]
mod tests;

use std::rc::Rc;

use weft_sdk::events::Event;
use weft_sdk::flows::{DataFlow, Decision};
use weft_sdk::http::{Request, Response};
use weft_sdk::{Plugin, Result};

use crate::config::Settings;
use crate::edc::Host;

/// The plugin.
pub struct Ccm;

impl Plugin for Ccm {
    fn on_enable() -> Result<()> {
        let settings = Settings::load()?;
        let report = provider::bootstrap(&Host, &settings)?;
        weft_sdk::info!("ccm bootstrapped"; bpnl = settings.bpnl, resources = report.resources.len());
        Ok(())
    }

    fn on_upgrade(previous_version: String) -> Result<()> {
        weft_sdk::info!("ccm upgraded"; from = previous_version);
        Self::on_enable()
    }

    fn on_prepare(flow: DataFlow) -> Result<Decision> {
        flows::on_prepare(&flow)
    }

    fn on_start(flow: DataFlow) -> Result<Decision> {
        flows::on_start(&flow)
    }

    fn on_started(flow: DataFlow) -> Result<()> {
        flows::on_started(&flow)
    }

    fn on_suspend(_flow: DataFlow, _reason: Option<String>) -> Result<()> {
        Ok(())
    }

    fn on_resume(_flow: DataFlow) -> Result<()> {
        Ok(())
    }

    fn on_terminate(flow: DataFlow, _reason: Option<String>) -> Result<()> {
        flows::on_end(&flow)
    }

    fn on_completed(flow: DataFlow) -> Result<()> {
        flows::on_end(&flow)
    }

    fn on_event(event: Event) -> Result<()> {
        consumer::on_event(&Host, &event)
    }

    fn handle_api(request: Request) -> Response {
        api::router(Rc::new(Host)).handle(request)
    }

    fn handle_data(flow_id: String, request: Request) -> Response {
        data::handle(&Host, &flow_id, request)
    }
}

weft_sdk::export_plugin!(Ccm);
