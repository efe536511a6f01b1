//! Glue behind [`crate::export_plugin!`]: adapts a [`Plugin`] to the generated export
//! traits, converting between WIT and SDK types. Not public API.

use std::marker::PhantomData;

use crate::backend::wasm::{address_from_wit, address_to_wit};
use crate::context::EntryPoint;
use crate::events::{Event, EventKind};
use crate::flows::{DataFlow, Decision, FlowRole, FlowState, TransferMode};
use crate::http::{Response, wasi};
use crate::wit::exports::wasi::http::incoming_handler;
use crate::wit::exports::weft::plugin::{data_flows as df, events as ev, lifecycle};
use crate::wit::wasi::http::types::{IncomingRequest, ResponseOutparam};
use crate::wit::weft::plugin::types::Error as WitError;
use crate::{Error, Plugin};

/// Implements every export trait of the world for `P`.
pub struct Adapter<P>(PhantomData<P>);

/// The SDK version as a fixed-size array, for the `weft-sdk-version` custom section.
pub const fn version_bytes<const N: usize>() -> [u8; N] {
    let src = crate::SDK_VERSION.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < src.len() {
        out[i] = src[i];
        i += 1;
    }
    out
}

fn wit_result<T>(r: crate::Result<T>) -> Result<T, WitError> {
    r.map_err(WitError::from)
}

impl<P: Plugin> lifecycle::Guest for Adapter<P> {
    fn on_enable() -> Result<(), WitError> {
        wit_result(P::on_enable())
    }

    fn on_disable() -> Result<(), WitError> {
        wit_result(P::on_disable())
    }

    fn on_upgrade(previous_version: String) -> Result<(), WitError> {
        wit_result(P::on_upgrade(previous_version))
    }
}

fn flow_from_wit(f: df::DataFlow) -> DataFlow {
    DataFlow {
        id: f.id,
        message_id: f.message_id,
        participant_id: f.participant_id,
        counter_party_id: f.counter_party_id,
        dataspace_context: f.dataspace_context,
        agreement_id: f.agreement_id,
        dataset_id: f.dataset_id,
        profile: f.profile,
        role: match f.role {
            df::FlowRole::Provider => FlowRole::Provider,
            df::FlowRole::Consumer => FlowRole::Consumer,
        },
        mode: match f.mode {
            df::TransferMode::Pull => TransferMode::Pull,
            df::TransferMode::Push => TransferMode::Push,
        },
        state: match f.state {
            df::FlowState::Initialized => FlowState::Initialized,
            df::FlowState::Preparing => FlowState::Preparing,
            df::FlowState::Prepared => FlowState::Prepared,
            df::FlowState::Starting => FlowState::Starting,
            df::FlowState::Started => FlowState::Started,
            df::FlowState::Suspended => FlowState::Suspended,
            df::FlowState::Completed => FlowState::Completed,
            df::FlowState::Terminated => FlowState::Terminated,
        },
        claims: f.claims,
        labels: f.labels,
        metadata: f.metadata,
        data_address: f.data_address.map(address_from_wit),
    }
}

fn decision_to_wit(d: crate::Result<Decision>) -> Result<df::Decision, WitError> {
    match d {
        Ok(Decision::Accept(address)) => {
            Ok(df::Decision::Accept(address.as_ref().map(address_to_wit)))
        }
        Ok(Decision::Pending) => Ok(df::Decision::Pending),
        Ok(Decision::Reject(reason)) => Ok(df::Decision::Reject(reason)),
        Err(e) => Err(e.into()),
    }
}

impl<P: Plugin> df::Guest for Adapter<P> {
    fn on_prepare(flow: df::DataFlow) -> Result<df::Decision, WitError> {
        decision_to_wit(P::on_prepare(flow_from_wit(flow)))
    }

    fn on_start(flow: df::DataFlow) -> Result<df::Decision, WitError> {
        decision_to_wit(P::on_start(flow_from_wit(flow)))
    }

    fn on_started(flow: df::DataFlow) -> Result<(), WitError> {
        wit_result(P::on_started(flow_from_wit(flow)))
    }

    fn on_suspend(flow: df::DataFlow, reason: Option<String>) -> Result<(), WitError> {
        wit_result(P::on_suspend(flow_from_wit(flow), reason))
    }

    fn on_resume(flow: df::DataFlow) -> Result<(), WitError> {
        wit_result(P::on_resume(flow_from_wit(flow)))
    }

    fn on_terminate(flow: df::DataFlow, reason: Option<String>) -> Result<(), WitError> {
        wit_result(P::on_terminate(flow_from_wit(flow), reason))
    }

    fn on_completed(flow: df::DataFlow) -> Result<(), WitError> {
        wit_result(P::on_completed(flow_from_wit(flow)))
    }
}

impl<P: Plugin> ev::Guest for Adapter<P> {
    fn on_event(event: ev::Event) -> Result<(), WitError> {
        let kind = match event.kind {
            ev::EventKind::ContractNegotiation(s) => EventKind::ContractNegotiation(s),
            ev::EventKind::TransferProcess(s) => EventKind::TransferProcess(s),
            ev::EventKind::ProcessStateChanged(s) => EventKind::ProcessStateChanged(s),
            ev::EventKind::Timer => EventKind::Timer,
        };
        wit_result(P::on_event(Event {
            id: event.id,
            kind,
            subject: event.subject,
            correlation: event.correlation,
            payload: event.payload,
            attempt: event.attempt,
        }))
    }
}

impl<P: Plugin> incoming_handler::Guest for Adapter<P> {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = match wasi::request_from_wasi(request) {
            Err(e) => Response::error(&e),
            Ok(request) => match crate::context::entry_point() {
                EntryPoint::Api => P::handle_api(request),
                EntryPoint::Data(flow_id) => P::handle_data(flow_id, request),
                other => Response::error(&Error::Internal(format!(
                    "HTTP request delivered for the `{}` entry point",
                    other.name()
                ))),
            },
        };
        wasi::send_response(response, response_out);
    }
}
