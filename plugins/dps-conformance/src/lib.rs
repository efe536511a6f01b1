//! `dps-conformance`: the fixture app behind Weft's Data Plane Signaling conformance tests
//! and the sandbox tenant the official DPS test kit can be pointed at.
//!
//! It accepts every flow of the `http-pull` and `http-push` profiles for any dataset and
//! follows the Java SDK test-kit conventions on the agreement id:
//!
//! | agreementId | Behaviour |
//! |---|---|
//! | `async` | `prepare`/`start` answer `pending`; the app completes them asynchronously (below) |
//! | `complete` | the app reports `completed` on its own: in `on-start` (provider) and `on-started` (consumer) |
//! | `async-later` | `prepare`/`start` answer `pending` and nothing else; a test reports later through the API |
//! | `reject` | `prepare`/`start` are refused |
//! | anything else | accepted synchronously |
//!
//! **How `async` completes.** The contract only calls an app when something happens, and
//! for an asynchronous `prepare` or `start` nothing else happens until the data plane
//! calls the control plane back. So the app reports `prepared`/`started` through the
//! `transfer` import during the very hook call that answers `pending`. The host holds
//! reports made during a flow's own hook until the hook's answer is persisted and
//! acknowledged (202 PREPARING/STARTING), then applies them and sends the `/prepared` or
//! `/started` callback. A real app would report later, from an event or a data request;
//! that path is exercised with `async-later` and `POST /report/...`.
//!
//! Data entry (`handle_data`): `GET` streams `?bytes=N` bytes (default
//! [`DEFAULT_PULL_BYTES`]) of the pattern `a..z` without holding them; `POST`/`PUT` count
//! the pushed bytes, streamed, and add them to state `pushed/{flow}`. Every data answer
//! names the tenant and flow in `x-weft-tenant` / `x-weft-flow`.
//!
//! Tenant API (`handle_api`), for tests:
//!
//! | Route | Does |
//! |---|---|
//! | `GET /hooks/{flow}` | the data-flow hooks the app saw for the flow, with their arguments |
//! | `GET /pushed/{flow}` | `{"total": n}`: bytes pushed into the flow so far |
//! | `GET /address/{flow}` | `transfer.counterparty-address` |
//! | `GET /fetch/{flow}?path=/x` | `transfer.send` GET, streaming the counterparty's answer back |
//! | `POST /push/{flow}?bytes=N` | `transfer.send` POST of N pattern bytes to the counterparty |
//! | `POST /report/{flow}/{prepared,started,completed,errored}` | the `transfer` reports |

use std::io::{self, Read};

use serde_json::{Value, json};
use weft_sdk::flows::{DataAddress, DataFlow, Decision, FlowRole};
use weft_sdk::http::{ClientRequest, Method, Params, Request, Response, Router};
use weft_sdk::{Error, Plugin, Result, context, state, transfer};

/// Agreement id whose `prepare`/`start` complete asynchronously.
pub const ASYNC_AGREEMENT: &str = "async";

/// Agreement id whose flows the app completes on its own.
pub const COMPLETE_AGREEMENT: &str = "complete";

/// Agreement id whose `prepare`/`start` stay pending until a test reports.
pub const ASYNC_LATER_AGREEMENT: &str = "async-later";

/// Agreement id whose flows are refused.
pub const REJECT_AGREEMENT: &str = "reject";

/// Bytes a data `GET` streams without `?bytes=`.
pub const DEFAULT_PULL_BYTES: u64 = 1024;

/// Hooks recorded per flow at most: keeps the state value small.
pub const MAX_RECORDED_HOOKS: usize = 32;

/// Chunk size for counting pushed bytes: bounds the guest buffer.
const READ_CHUNK: usize = 16 * 1024;

/// The byte at `offset` of the data pattern: `a..z` repeating.
pub fn pattern_byte(offset: u64) -> u8 {
    // `offset % 26` is below 26, so the cast cannot truncate.
    b'a' + (offset % 26) as u8
}

/// A reader producing `len` bytes of [`pattern_byte`] without holding them.
#[derive(Debug)]
pub struct Pattern {
    offset: u64,
    len: u64,
}

impl Pattern {
    /// A pattern of `len` bytes.
    pub fn new(len: u64) -> Self {
        Pattern { offset: 0, len }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.len - self.offset;
        let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern_byte(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The plugin.
pub struct DpsConformance;

fn record(flow: &DataFlow, hook: &str, extra: Value) -> Result<()> {
    let key = format!("hooks/{}", flow.id);
    let mut hooks: Vec<Value> = state::get_json(&key)?.unwrap_or_default();
    if hooks.len() < MAX_RECORDED_HOOKS {
        hooks.push(json!({ "hook": hook, "flow": flow, "extra": extra }));
        state::set_json(&key, &hooks)?;
    }
    Ok(())
}

/// Answers `prepare` (consumer) or `start` (provider).
fn decide(flow: &DataFlow, hook: &str) -> Result<Decision> {
    record(flow, hook, Value::Null)?;
    match flow.agreement_id.as_str() {
        REJECT_AGREEMENT => Ok(Decision::Reject(format!(
            "agreement `{REJECT_AGREEMENT}` is refused by dps-conformance"
        ))),
        ASYNC_AGREEMENT => {
            // Finish asynchronously: the host applies this report after acknowledging
            // the pending answer (see the crate docs).
            match flow.role {
                FlowRole::Consumer => transfer::prepared(&flow.id, None)?,
                FlowRole::Provider => transfer::started(&flow.id, None)?,
            }
            Ok(Decision::Pending)
        }
        ASYNC_LATER_AGREEMENT => Ok(Decision::Pending),
        COMPLETE_AGREEMENT if flow.role == FlowRole::Provider => {
            transfer::completed(&flow.id)?;
            Ok(Decision::Accept(None))
        }
        _ => Ok(Decision::Accept(None)),
    }
}

impl Plugin for DpsConformance {
    fn on_prepare(flow: DataFlow) -> Result<Decision> {
        decide(&flow, "prepare")
    }

    fn on_start(flow: DataFlow) -> Result<Decision> {
        decide(&flow, "start")
    }

    fn on_started(flow: DataFlow) -> Result<()> {
        record(&flow, "started", Value::Null)?;
        if flow.agreement_id == COMPLETE_AGREEMENT {
            transfer::completed(&flow.id)?;
        }
        Ok(())
    }

    fn on_suspend(flow: DataFlow, reason: Option<String>) -> Result<()> {
        record(&flow, "suspend", json!({ "reason": reason }))
    }

    fn on_resume(flow: DataFlow) -> Result<()> {
        record(&flow, "resume", Value::Null)
    }

    fn on_terminate(flow: DataFlow, reason: Option<String>) -> Result<()> {
        record(&flow, "terminate", json!({ "reason": reason }))
    }

    fn on_completed(flow: DataFlow) -> Result<()> {
        record(&flow, "completed", Value::Null)
    }

    fn handle_api(request: Request) -> Response {
        api().handle(request)
    }

    fn handle_data(flow_id: String, request: Request) -> Response {
        let tenant = context::tenant().participant_context_id;
        data(&flow_id, request)
            .unwrap_or_else(Response::from)
            .with_header("x-weft-tenant", tenant)
            .with_header("x-weft-flow", flow_id)
    }
}

weft_sdk::export_plugin!(DpsConformance);

/// Serves one data request of a flow.
fn data(flow_id: &str, mut req: Request) -> Result<Response> {
    match req.method() {
        Method::Get => {
            let len = req
                .query_parse::<u64>("bytes")?
                .unwrap_or(DEFAULT_PULL_BYTES);
            Ok(Response::reader(200, Pattern::new(len))
                .with_header("content-type", "application/octet-stream"))
        }
        Method::Post | Method::Put => {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut received: u64 = 0;
            loop {
                let n = req.body().read(&mut buf)?;
                if n == 0 {
                    break;
                }
                received += n as u64;
            }
            let key = format!("pushed/{flow_id}");
            let total = state::get_json::<u64>(&key)?.unwrap_or(0) + received;
            state::set_json(&key, &total)?;
            Ok(Response::json(
                200,
                &json!({ "received": received, "total": total }),
            ))
        }
        other => Err(Error::Invalid(format!(
            "method {other} is not served on data flows"
        ))),
    }
}

/// The tenant API router.
pub fn api() -> Router {
    Router::new()
        .get("/hooks/{flow}", |_, p| {
            let hooks: Vec<Value> =
                state::get_json(&format!("hooks/{}", p.require("flow")?))?.unwrap_or_default();
            Ok(Response::json(200, &hooks))
        })
        .get("/pushed/{flow}", |_, p| {
            let total: u64 =
                state::get_json(&format!("pushed/{}", p.require("flow")?))?.unwrap_or(0);
            Ok(Response::json(200, &json!({ "total": total })))
        })
        .get("/address/{flow}", |_, p| {
            Ok(outcome(
                transfer::counterparty_address(p.require("flow")?).map(|a| json!({ "address": a })),
            ))
        })
        .get("/fetch/{flow}", fetch)
        .post("/push/{flow}", push)
        .post("/report/{flow}/{report}", report)
}

/// Import outcomes are answered 200 with the result or `{"error": case, "message": ...}`,
/// so tests can assert the exact variant the host returned.
fn outcome(result: Result<Value>) -> Response {
    match result {
        Ok(value) => Response::json(200, &value),
        Err(e) => Response::json(200, &e),
    }
}

fn fetch(req: Request, p: Params) -> Result<Response> {
    let path = req.query("path").unwrap_or_else(|| "/".to_owned());
    match transfer::send(p.require("flow")?, ClientRequest::get(path)) {
        Ok(response) => Ok(Response::reader(response.status, response.body)),
        Err(e) => Ok(Response::json(502, &e)),
    }
}

fn push(req: Request, p: Params) -> Result<Response> {
    let len = req
        .query_parse::<u64>("bytes")?
        .unwrap_or(DEFAULT_PULL_BYTES);
    let path = req.query("path").unwrap_or_else(|| "/".to_owned());
    let request = ClientRequest::new(Method::Post, path)
        .with_header("content-type", "application/octet-stream")
        .with_body(weft_sdk::http::Body::Reader(Box::new(Pattern::new(len))));
    match transfer::send(p.require("flow")?, request) {
        Ok(response) => Ok(Response::reader(response.status, response.body)),
        Err(e) => Ok(Response::json(502, &e)),
    }
}

fn report(mut req: Request, p: Params) -> Result<Response> {
    let flow = p.require("flow")?;
    let raw = req.bytes()?;
    let body: Value = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid(format!("malformed JSON body: {e}")))?
    };
    let address: Option<DataAddress> = match body.get("address") {
        Some(a) if !a.is_null() => Some(
            serde_json::from_value(a.clone())
                .map_err(|e| Error::invalid(format!("malformed address: {e}")))?,
        ),
        _ => None,
    };
    let result = match p.require("report")? {
        "prepared" => transfer::prepared(flow, address.as_ref()),
        "started" => transfer::started(flow, address.as_ref()),
        "completed" => transfer::completed(flow),
        "errored" => transfer::errored(
            flow,
            body.get("reason")
                .and_then(Value::as_str)
                .unwrap_or("errored by dps-conformance"),
        ),
        other => return Err(Error::NotFound(format!("no transfer report `{other}`"))),
    };
    Ok(outcome(result.map(|()| json!({ "reported": true }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_streams_exactly_len_bytes() {
        let mut p = Pattern::new(30);
        let mut out = Vec::new();
        p.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 30);
        assert_eq!(&out[..3], b"abc");
        assert_eq!(out[26], b'a');
    }
}
