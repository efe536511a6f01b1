//! Typed Management API helpers on top of [`crate::management`] and [`crate::models`]:
//! idempotent "ensure" calls for bootstrap (409 means it exists), catalog queries with
//! offer selection, negotiate-and-wait, and transfers.
//!
//! ```no_run
//! use weft_sdk::edc;
//! use weft_sdk::models::{Asset, Criterion, ContractDefinition};
//! # fn demo() -> weft_sdk::Result<()> {
//! edc::ensure_asset(&Asset::new("cert-1").property("name", "ISO 9001"))?;
//! edc::ensure_contract_definition(
//!     &ContractDefinition::new("cert-1-def", "access", "usage").selecting(Criterion::asset_id("cert-1")),
//! )?;
//! # Ok(()) }
//! ```

use crate::management::{self, Method, ProcessKind};
use crate::models::{
    Asset, Catalog, CatalogRequest, ContractDefinition, ContractNegotiation, ContractRequest,
    IdResponse, PolicyDefinition, TerminateRequest, TransferProcess, TransferRequest,
};
use crate::{Error, Result};
use serde::Serialize;
use std::time::Duration;

/// Default bound of [`negotiate_and_wait`] and [`wait_transfer_started`].
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);

/// What an ensure call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// Created now, with this id.
    Created(String),
    /// Existed already (the control plane answered 409).
    Exists,
}

fn failure(what: &str, status: u16, body: &str) -> Error {
    let detail = crate::models::ApiError::parse_all(body)
        .into_iter()
        .map(|e| e.message)
        .collect::<Vec<_>>()
        .join("; ");
    let text = format!(
        "{what}: control plane answered {status}: {}",
        if detail.is_empty() { body } else { &detail }
    );
    match status {
        401 | 403 => Error::AccessDenied(text),
        404 => Error::NotFound(text),
        409 => Error::Conflict(text),
        400..=499 => Error::Invalid(text),
        _ => Error::Unavailable(text),
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::Internal(format!("serializing a Management API body: {e}")))
}

/// Creates a resource unless it exists.
pub fn ensure<T: Serialize>(collection: &str, body: &T) -> Result<Ensured> {
    let response = management::send(Method::Post, collection, Some(&to_value(body)?))?;
    match response.status {
        200..=299 => Ok(Ensured::Created(response.json::<IdResponse>()?.id)),
        409 => Ok(Ensured::Exists),
        status => Err(failure(
            &format!("creating in {collection}"),
            status,
            &response.body,
        )),
    }
}

/// Creates an asset unless it exists.
pub fn ensure_asset(asset: &Asset) -> Result<Ensured> {
    ensure("assets", asset)
}

/// Creates a policy definition unless it exists.
pub fn ensure_policy(policy: &PolicyDefinition) -> Result<Ensured> {
    ensure("policydefinitions", policy)
}

/// Creates a contract definition unless it exists.
pub fn ensure_contract_definition(definition: &ContractDefinition) -> Result<Ensured> {
    ensure("contractdefinitions", definition)
}

/// Deletes a resource; a missing one is fine.
pub fn delete(collection: &str, id: &str) -> Result<()> {
    let response = management::send(Method::Delete, &format!("{collection}/{id}"), None)?;
    match response.status {
        200..=299 | 404 => Ok(()),
        status => Err(failure(
            &format!("deleting {collection}/{id}"),
            status,
            &response.body,
        )),
    }
}

/// Asks a counterparty's catalog.
pub fn catalog(request: &CatalogRequest) -> Result<Catalog> {
    let response = management::send(Method::Post, "catalog/request", Some(&to_value(request)?))?;
    if !response.is_success() {
        return Err(failure("catalog request", response.status, &response.body));
    }
    response.json()
}

/// Starts a negotiation and waits for it to end; returns the contract agreement id, or
/// [`Error::Conflict`] with the control plane's reason when it ends TERMINATED.
pub fn negotiate_and_wait(request: &ContractRequest, timeout: Duration) -> Result<String> {
    let response = management::send(
        Method::Post,
        "contractnegotiations",
        Some(&to_value(request)?),
    )?;
    if !response.is_success() {
        return Err(failure(
            "starting a negotiation",
            response.status,
            &response.body,
        ));
    }
    let id = response.json::<IdResponse>()?.id;
    let state = management::wait_for_state(
        ProcessKind::ContractNegotiation,
        &id,
        &["FINALIZED", "TERMINATED"],
        timeout,
    )?;
    let negotiation: ContractNegotiation = {
        let r = management::get(&format!("contractnegotiations/{id}"))?;
        if !r.is_success() {
            return Err(failure("reading a negotiation", r.status, &r.body));
        }
        r.json()?
    };
    if state != "FINALIZED" {
        return Err(Error::Conflict(format!(
            "negotiation {id} ended {state}: {}",
            negotiation
                .error_detail
                .unwrap_or_else(|| "no reason given".into())
        )));
    }
    negotiation.contract_agreement_id.ok_or_else(|| {
        Error::Internal(format!(
            "negotiation {id} is FINALIZED without an agreement"
        ))
    })
}

/// Starts a transfer; returns its id.
pub fn start_transfer(request: &TransferRequest) -> Result<String> {
    let response = management::send(Method::Post, "transferprocesses", Some(&to_value(request)?))?;
    if !response.is_success() {
        return Err(failure(
            "starting a transfer",
            response.status,
            &response.body,
        ));
    }
    Ok(response.json::<IdResponse>()?.id)
}

/// Waits until a transfer is STARTED (then its DataAddress has reached this data plane's
/// `/started` hook, and `transfer::send` can use it); errors when it ends otherwise.
pub fn wait_transfer_started(id: &str, timeout: Duration) -> Result<TransferProcess> {
    let state = management::wait_for_state(
        ProcessKind::TransferProcess,
        id,
        &["STARTED", "COMPLETED", "TERMINATED"],
        timeout,
    )?;
    let r = management::get(&format!("transferprocesses/{id}"))?;
    if !r.is_success() {
        return Err(failure("reading a transfer", r.status, &r.body));
    }
    let process: TransferProcess = r.json()?;
    if state != "STARTED" {
        return Err(Error::Conflict(format!(
            "transfer {id} ended {state}: {}",
            process
                .error_detail
                .clone()
                .unwrap_or_else(|| "no reason given".into())
        )));
    }
    Ok(process)
}

/// Terminates a transfer.
pub fn terminate_transfer(id: &str, reason: &str) -> Result<()> {
    let body = to_value(&TerminateRequest::transfer(reason))?;
    let r = management::send(
        Method::Post,
        &format!("transferprocesses/{id}/terminate"),
        Some(&body),
    )?;
    match r.status {
        200..=299 | 409 => Ok(()),
        status => Err(failure(
            &format!("terminating transfer {id}"),
            status,
            &r.body,
        )),
    }
}
