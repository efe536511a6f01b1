//! The real backend: calls the host's `weft:plugin` imports and converts types.

use crate::context::{EntryPoint, PluginInfo, Tenant};
use crate::flows::{DataAddress, Property};
use crate::http::{ClientRequest, ClientResponse};
use crate::log::Level;
use crate::management::{self, Method, ProcessKind};
use crate::state::Page;
use crate::transfer::Report;
use crate::wit::weft::plugin as w;
use crate::{Error, Result};

pub(crate) fn address_to_wit(a: &DataAddress) -> w::types::DataAddress {
    w::types::DataAddress {
        endpoint_type: a.endpoint_type.clone(),
        endpoint: a.endpoint.clone(),
        endpoint_properties: a
            .endpoint_properties
            .iter()
            .map(|p| w::types::Property {
                name: p.name.clone(),
                value: p.value.clone(),
            })
            .collect(),
    }
}

pub(crate) fn address_from_wit(a: w::types::DataAddress) -> DataAddress {
    DataAddress {
        endpoint_type: a.endpoint_type,
        endpoint: a.endpoint,
        endpoint_properties: a
            .endpoint_properties
            .into_iter()
            .map(|p| Property {
                name: p.name,
                value: p.value,
            })
            .collect(),
    }
}

pub(crate) fn tenant() -> Tenant {
    let t = w::context::tenant();
    Tenant {
        participant_context_id: t.participant_context_id,
        did: t.did,
        bpn: t.bpn,
    }
}

pub(crate) fn config() -> String {
    w::context::config()
}

pub(crate) fn entry_point() -> EntryPoint {
    match w::context::entry_point() {
        w::context::Entry::Api => EntryPoint::Api,
        w::context::Entry::Data(flow) => EntryPoint::Data(flow),
        w::context::Entry::Lifecycle => EntryPoint::Lifecycle,
        w::context::Entry::DataFlows => EntryPoint::DataFlows,
        w::context::Entry::Events => EntryPoint::Events,
    }
}

pub(crate) fn plugin() -> PluginInfo {
    let (id, version) = w::context::plugin();
    PluginInfo { id, version }
}

pub(crate) fn state_get(key: &str) -> Result<Option<Vec<u8>>> {
    Ok(w::state::get(key)?)
}

pub(crate) fn state_set(key: &str, value: &[u8]) -> Result<()> {
    Ok(w::state::set(key, value)?)
}

pub(crate) fn state_delete(key: &str) -> Result<bool> {
    Ok(w::state::delete(key)?)
}

pub(crate) fn state_compare_and_set(
    key: &str,
    expected: Option<&[u8]>,
    new: &[u8],
) -> Result<bool> {
    Ok(w::state::compare_and_set(key, expected, new)?)
}

pub(crate) fn state_list(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page> {
    let page = w::state::list_prefix(prefix, cursor, limit)?;
    Ok(Page {
        entries: page.entries,
        next_cursor: page.next_cursor,
    })
}

pub(crate) fn management_send(request: &management::Request) -> Result<management::Response> {
    let method = match request.method {
        Method::Get => w::management::Method::Get,
        Method::Post => w::management::Method::Post,
        Method::Put => w::management::Method::Put,
        Method::Patch => w::management::Method::Patch,
        Method::Delete => w::management::Method::Delete,
    };
    let raw = w::management::Request {
        method,
        path: request.path.clone(),
        query: request
            .query
            .iter()
            .map(|(name, value)| w::types::Property {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: request.body.clone(),
    };
    let response = w::management::send(&raw)?;
    Ok(management::Response {
        status: response.status,
        body: response.body,
    })
}

fn kind_to_wit(kind: ProcessKind) -> w::management::ProcessKind {
    match kind {
        ProcessKind::ContractNegotiation => w::management::ProcessKind::ContractNegotiation,
        ProcessKind::TransferProcess => w::management::ProcessKind::TransferProcess,
    }
}

pub(crate) fn management_wait_for_state(
    kind: ProcessKind,
    id: &str,
    states: &[&str],
    timeout_ms: u32,
) -> Result<String> {
    let states: Vec<String> = states.iter().map(|s| (*s).to_owned()).collect();
    Ok(w::management::wait_for_state(
        kind_to_wit(kind),
        id,
        &states,
        timeout_ms,
    )?)
}

pub(crate) fn management_watch(kind: ProcessKind, id: &str, correlation: &str) -> Result<()> {
    Ok(w::management::watch(kind_to_wit(kind), id, correlation)?)
}

pub(crate) fn transfer_send(flow_id: &str, request: ClientRequest) -> Result<ClientResponse> {
    crate::http::wasi::client_send(flow_id, request)
}

pub(crate) fn transfer_counterparty_address(flow_id: &str) -> Result<Option<DataAddress>> {
    Ok(w::transfer::counterparty_address(flow_id)?.map(address_from_wit))
}

pub(crate) fn transfer_report(flow_id: &str, report: Report) -> Result<()> {
    let result = match report {
        Report::Prepared(a) => {
            w::transfer::prepared(flow_id, a.as_ref().map(address_to_wit).as_ref())
        }
        Report::Started(a) => {
            w::transfer::started(flow_id, a.as_ref().map(address_to_wit).as_ref())
        }
        Report::Completed => w::transfer::completed(flow_id),
        Report::Errored(reason) => w::transfer::errored(flow_id, &reason),
    };
    result.map_err(Error::from)
}

pub(crate) fn log_write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let level = match level {
        Level::Trace => w::log::Level::Trace,
        Level::Debug => w::log::Level::Debug,
        Level::Info => w::log::Level::Info,
        Level::Warn => w::log::Level::Warn,
        Level::Error => w::log::Level::Error,
    };
    let fields: Vec<w::types::Property> = fields
        .iter()
        .map(|(name, value)| w::types::Property {
            name: (*name).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    w::log::write(level, message, &fields);
}
