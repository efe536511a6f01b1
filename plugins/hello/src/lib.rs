//! `hello`: the well-behaved fixture plugin; it exercises every import and export of the
//! `weft:plugin` world so host tests can drive each one over HTTP.
//!
//! Tenant API (`handle_api`), paths relative to the app's mount point:
//!
//! | Route | Does |
//! |---|---|
//! | `GET /whoami` | tenant, entry point and plugin id/version as JSON |
//! | `GET /config` | the tenant's plugin configuration |
//! | `PUT/GET/DELETE /state/{key}` | `state.set/get/delete`; PUT stores `?value=` or else the body, GET answers the raw bytes (404 when absent) |
//! | `GET /state?prefix=` | `state.list` through every page |
//! | `POST /cas/{key}` | `state.compare-and-set` with `{"expected": str?, "new": str}` |
//! | `POST /memory?value=X`, `GET /memory` | write/read a static in guest memory (a fresh instance reads nothing) |
//! | `POST /mgmt` | `management.send` with `{"method","path","query"?,"body"?}` |
//! | `POST /wait`, `POST /watch` | `management.wait-for-state` / `watch` |
//! | `POST /log` | `log.write` with `{"level","message","fields"?}` |
//! | `GET /version` | the JSON string `"1"`, or `"2"` when built with feature `v2` |
//! | `POST /echo` | streams the request body back |
//! | `GET /transfer/{flow}/address` | `transfer.counterparty-address` |
//! | `POST /transfer/{flow}/{prepared,started,completed,errored}` | the `transfer` reports |
//! | `GET /transfer/{flow}/fetch?path=/x` | `transfer.send`, streaming the counterparty's answer back |
//!
//! Import outcomes of `/mgmt`, `/wait`, `/watch` and `/transfer/...` are answered 200 with
//! either the result or `{"error": "<wit case>", "message": ...}`, so tests can assert the
//! exact variant the host returned. Malformed requests to hello itself get 4xx.
//!
//! Data entry (`handle_data`): `GET` streams `?bytes=N` (default 1024) bytes of
//! [`pattern_byte`] in chunks; `POST`/`PUT` count the received bytes: `{"received": n}`.
//!
//! Data-flow hooks accept everything synchronously, except agreement id `async` (pending)
//! and `reject` (rejected); each signal is recorded in state as `flow/{id}`. Events store
//! their id in `last-event`. `on_enable` writes `enabled` = the running version,
//! `on_disable` writes `disabled`, `on_upgrade` writes `upgraded-from`.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_sdk::events::Event;
use weft_sdk::flows::{DataAddress, DataFlow, Decision};
use weft_sdk::http::{ClientRequest, Method, Params, Request, Response, Router};
use weft_sdk::management::{self, ProcessKind};
use weft_sdk::{Error, Plugin, Result, context, log, state, transfer};

/// The compile-time version `GET /version` reports.
pub const VERSION: &str = if cfg!(feature = "v2") { "2" } else { "1" };

/// Bytes a data `GET` streams without `?bytes=`.
pub const DEFAULT_PATTERN_BYTES: u64 = 1024;

/// Entries `GET /state` returns at most: keeps the answer small; it says when it stopped.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// Agreement id whose flows are accepted asynchronously (pending).
pub const ASYNC_AGREEMENT: &str = "async";

/// Agreement id whose flows are rejected.
pub const REJECT_AGREEMENT: &str = "reject";

/// Guest memory written by `POST /memory`; must never be seen by another call.
static MEMORY: Mutex<Option<String>> = Mutex::new(None);

/// The byte at `offset` of the data pattern: `a..z` repeating.
pub fn pattern_byte(offset: u64) -> u8 {
    // `offset % 26` is below 26, so the cast cannot truncate.
    b'a' + (offset % 26) as u8
}

/// Longest run [`fill_pattern`] copies at once.
const PATTERN_RUN: usize = 4096;

/// The pattern from phase 0, long enough that a run can start at any phase.
static PATTERN_TABLE: [u8; PATTERN_RUN + 26] = {
    let mut table = [0u8; PATTERN_RUN + 26];
    let mut i = 0;
    while i < table.len() {
        table[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    table
};

/// Fills `buf` with the pattern bytes from `offset` on (copies, not a division per byte).
pub fn fill_pattern(mut offset: u64, buf: &mut [u8]) {
    for run in buf.chunks_mut(PATTERN_RUN) {
        let phase = (offset % 26) as usize;
        run.copy_from_slice(&PATTERN_TABLE[phase..phase + run.len()]);
        offset += run.len() as u64;
    }
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
        fill_pattern(self.offset, &mut buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// The plugin.
pub struct Hello;

fn outcome<T: Serialize>(result: Result<T>) -> Response {
    match result {
        Ok(value) => Response::json(200, &value),
        Err(e) => Response::json(200, &e),
    }
}

fn record_signal(flow: &DataFlow, signal: &str) -> Result<()> {
    weft_sdk::info!("data flow signal {signal}"; flow = flow.id, agreement = flow.agreement_id);
    state::set(&format!("flow/{}", flow.id), signal.as_bytes())
}

fn decide(flow: &DataFlow, signal: &str) -> Result<Decision> {
    let decision = match flow.agreement_id.as_str() {
        ASYNC_AGREEMENT => Decision::Pending,
        REJECT_AGREEMENT => Decision::Reject(format!(
            "agreement `{REJECT_AGREEMENT}` is refused by hello"
        )),
        _ => Decision::Accept(None),
    };
    let label = match &decision {
        Decision::Accept(_) => "accepted",
        Decision::Pending => "pending",
        Decision::Reject(_) => "rejected",
    };
    record_signal(flow, &format!("{signal}:{label}"))?;
    Ok(decision)
}

impl Plugin for Hello {
    fn on_enable() -> Result<()> {
        state::set("enabled", context::plugin().version.as_bytes())
    }

    fn on_disable() -> Result<()> {
        state::set("disabled", context::plugin().version.as_bytes())
    }

    fn on_upgrade(previous_version: String) -> Result<()> {
        state::set("upgraded-from", previous_version.as_bytes())
    }

    fn on_prepare(flow: DataFlow) -> Result<Decision> {
        decide(&flow, "prepare")
    }

    fn on_start(flow: DataFlow) -> Result<Decision> {
        decide(&flow, "start")
    }

    fn on_started(flow: DataFlow) -> Result<()> {
        record_signal(&flow, "started")
    }

    fn on_suspend(flow: DataFlow, _reason: Option<String>) -> Result<()> {
        record_signal(&flow, "suspended")
    }

    fn on_resume(flow: DataFlow) -> Result<()> {
        record_signal(&flow, "resumed")
    }

    fn on_terminate(flow: DataFlow, _reason: Option<String>) -> Result<()> {
        record_signal(&flow, "terminated")
    }

    fn on_completed(flow: DataFlow) -> Result<()> {
        record_signal(&flow, "completed")
    }

    fn on_event(event: Event) -> Result<()> {
        weft_sdk::debug!("event"; id = event.id, subject = event.subject, attempt = event.attempt);
        state::set("last-event", event.id.as_bytes())
    }

    fn handle_api(request: Request) -> Response {
        api().handle(request)
    }

    fn handle_data(flow_id: String, request: Request) -> Response {
        data(&flow_id, request).unwrap_or_else(Response::from)
    }
}

weft_sdk::export_plugin!(Hello);

/// The tenant API router.
pub fn api() -> Router {
    Router::new()
        .get("/whoami", |_, _| whoami())
        .get("/config", |_, _| {
            Ok(Response::json(200, &context::config::<Value>()?))
        })
        .get("/state", list_state)
        .put("/state/{key}", put_state)
        .get("/state/{key}", get_state)
        .delete("/state/{key}", delete_state)
        .post("/cas/{key}", cas)
        .post("/memory", write_memory)
        .get("/memory", |_, _| {
            Ok(Response::json(200, &json!({ "value": read_memory() })))
        })
        .post("/mgmt", mgmt)
        .post("/wait", wait)
        .post("/watch", watch)
        .post("/log", write_log)
        .get("/version", |_, _| Ok(Response::json(200, VERSION)))
        .post("/echo", |req, _| Ok(echo(req)))
        .get("/transfer/{flow}/address", |_, p| {
            Ok(outcome(transfer::counterparty_address(p.require("flow")?)))
        })
        .get("/transfer/{flow}/fetch", fetch)
        .post("/transfer/{flow}/{report}", report)
}

fn whoami() -> Result<Response> {
    let plugin = context::plugin();
    Ok(Response::json(
        200,
        &json!({
            "tenant": context::tenant(),
            "entryPoint": context::entry_point().name(),
            "plugin": { "id": plugin.id, "version": plugin.version },
            "build": VERSION,
        }),
    ))
}

fn put_state(mut req: Request, p: Params) -> Result<Response> {
    let value = match req.query("value") {
        Some(v) => v.into_bytes(),
        None => req.bytes()?,
    };
    state::set(p.require("key")?, &value)?;
    Ok(Response::new(204))
}

fn get_state(_: Request, p: Params) -> Result<Response> {
    let key = p.require("key")?;
    match state::get(key)? {
        Some(value) => Ok(Response::bytes(200, value)),
        None => Err(Error::NotFound(format!("key `{key}` is not set"))),
    }
}

fn delete_state(_: Request, p: Params) -> Result<Response> {
    let existed = state::delete(p.require("key")?)?;
    Ok(Response::json(200, &json!({ "deleted": existed })))
}

fn list_state(req: Request, _: Params) -> Result<Response> {
    let prefix = req.query("prefix").unwrap_or_default();
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in state::list(&prefix) {
        if entries.len() == MAX_LIST_ENTRIES {
            truncated = true;
            break;
        }
        let (key, value) = entry?;
        entries.push(json!({ "key": key, "value": String::from_utf8_lossy(&value) }));
    }
    Ok(Response::json(
        200,
        &json!({ "entries": entries, "truncated": truncated }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    expected: Option<String>,
    new: String,
}

fn cas(mut req: Request, p: Params) -> Result<Response> {
    let body: CasBody = req.json()?;
    let swapped = state::compare_and_set(
        p.require("key")?,
        body.expected.as_deref().map(str::as_bytes),
        body.new.as_bytes(),
    )?;
    Ok(Response::json(200, &json!({ "swapped": swapped })))
}

fn read_memory() -> Option<String> {
    MEMORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

fn write_memory(req: Request, _: Params) -> Result<Response> {
    let value = req
        .query("value")
        .ok_or_else(|| Error::invalid("query parameter `value` is required"))?;
    *MEMORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(value.clone());
    Ok(Response::json(200, &json!({ "stored": value })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MgmtBody {
    method: String,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    body: Option<Value>,
}

fn mgmt(mut req: Request, _: Params) -> Result<Response> {
    let body: MgmtBody = req.json()?;
    let mut request = management::Request::new(body.method.parse()?, body.path);
    for (name, value) in body.query {
        request = request.query(name, value);
    }
    if let Some(json_body) = &body.body {
        request = request.json(json_body)?;
    }
    Ok(outcome(request.send().map(|r| {
        let parsed = serde_json::from_str::<Value>(&r.body).unwrap_or(Value::String(r.body));
        json!({ "status": r.status, "body": parsed })
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WaitBody {
    kind: ProcessKind,
    id: String,
    states: Vec<String>,
    timeout_ms: u64,
}

fn wait(mut req: Request, _: Params) -> Result<Response> {
    let body: WaitBody = req.json()?;
    let states: Vec<&str> = body.states.iter().map(String::as_str).collect();
    let timeout = std::time::Duration::from_millis(body.timeout_ms);
    Ok(outcome(
        management::wait_for_state(body.kind, &body.id, &states, timeout)
            .map(|state| json!({ "state": state })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    kind: ProcessKind,
    id: String,
    correlation: String,
}

fn watch(mut req: Request, _: Params) -> Result<Response> {
    let body: WatchBody = req.json()?;
    Ok(outcome(
        management::watch(body.kind, &body.id, &body.correlation)
            .map(|()| json!({ "watching": body.id })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogBody {
    level: log::Level,
    message: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

fn write_log(mut req: Request, _: Params) -> Result<Response> {
    let body: LogBody = req.json()?;
    let fields: Vec<(&str, &str)> = body
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    log::write(body.level, &body.message, &fields);
    Ok(Response::new(204))
}

fn echo(req: Request) -> Response {
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    Response::reader(200, req.into_body()).with_header("content-type", content_type)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    address: Option<DataAddress>,
    reason: Option<String>,
}

fn report(mut req: Request, p: Params) -> Result<Response> {
    let flow = p.require("flow")?;
    let raw = req.bytes()?;
    let body: ReportBody = if raw.is_empty() {
        ReportBody::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid(format!("malformed JSON body: {e}")))?
    };
    let result = match p.require("report")? {
        "prepared" => transfer::prepared(flow, body.address.as_ref()),
        "started" => transfer::started(flow, body.address.as_ref()),
        "completed" => transfer::completed(flow),
        "errored" => transfer::errored(flow, body.reason.as_deref().unwrap_or("errored by hello")),
        other => return Err(Error::NotFound(format!("no transfer report `{other}`"))),
    };
    Ok(outcome(result.map(|()| json!({ "reported": true }))))
}

fn fetch(req: Request, p: Params) -> Result<Response> {
    let path = req.query("path").unwrap_or_else(|| "/".to_owned());
    match transfer::send(p.require("flow")?, ClientRequest::get(path)) {
        Ok(response) => Ok(Response::reader(response.status, response.body)),
        Err(e) => Ok(Response::json(200, &e)),
    }
}

fn data(flow_id: &str, mut req: Request) -> Result<Response> {
    match req.method() {
        Method::Get => {
            let n = req
                .query_parse::<u64>("bytes")?
                .unwrap_or(DEFAULT_PATTERN_BYTES);
            weft_sdk::info!("serving pattern"; flow = flow_id, bytes = n);
            Ok(Response::reader(200, Pattern::new(n))
                .with_header("content-type", "application/octet-stream")
                .with_header("content-length", n.to_string()))
        }
        Method::Post | Method::Put => {
            let mut buf = vec![0u8; weft_sdk::http::MAX_READ_CHUNK];
            let mut received: u64 = 0;
            loop {
                match req.body().read(&mut buf)? {
                    0 => break,
                    n => received += n as u64,
                }
            }
            weft_sdk::info!("received data"; flow = flow_id, bytes = received);
            Ok(Response::json(
                200,
                &json!({ "received": received, "flow": flow_id }),
            ))
        }
        other => Err(Error::Invalid(format!(
            "method {other} is not supported on flow data"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use weft_sdk::context::EntryPoint;
    use weft_sdk::flows::{FlowRole, FlowState, TransferMode};
    use weft_sdk::http::IncomingBody;
    use weft_sdk::testing;

    use super::*;

    fn call(req: Request) -> (u16, Vec<u8>) {
        let r = Hello::handle_api(req);
        (r.status(), r.into_body_bytes(1 << 20).unwrap())
    }

    fn call_json(req: Request) -> (u16, Value) {
        let (s, b) = call(req);
        (s, serde_json::from_slice(&b).unwrap())
    }

    fn flow(agreement: &str) -> DataFlow {
        DataFlow {
            id: "f1".into(),
            message_id: "m1".into(),
            participant_id: "p".into(),
            counter_party_id: "c".into(),
            dataspace_context: "dc".into(),
            agreement_id: agreement.into(),
            dataset_id: "ds".into(),
            profile: "https://w3id.org/dspace-sig/profile/http-pull".into(),
            role: FlowRole::Provider,
            mode: TransferMode::Pull,
            state: FlowState::Initialized,
            claims: "{}".into(),
            labels: vec![],
            metadata: "{}".into(),
            data_address: None,
        }
    }

    #[test]
    fn version_is_the_build_constant() {
        let (status, body) = call_json(Request::new(Method::Get, "/version"));
        assert_eq!(status, 200);
        assert_eq!(body, if cfg!(feature = "v2") { "2" } else { "1" });
    }

    #[test]
    fn whoami_reports_tenant_entry_point_and_plugin() {
        testing::reset();
        testing::set_plugin("hello", "0.1.0");
        let (status, body) = call_json(Request::new(Method::Get, "/whoami"));
        assert_eq!(status, 200);
        assert_eq!(body["tenant"]["participantContextId"], "test-tenant");
        assert_eq!(body["entryPoint"], "api");
        assert_eq!(body["plugin"], json!({"id": "hello", "version": "0.1.0"}));
    }

    #[test]
    fn state_routes_round_trip_and_list() {
        testing::reset();
        let put = Request::new(Method::Put, "/state/a%2Fb")
            .with_body(IncomingBody::from_bytes(b"one".to_vec()));
        assert_eq!(call(put).0, 204);
        assert_eq!(
            testing::state().get("a/b").map(Vec::as_slice),
            Some(&b"one"[..])
        );
        assert_eq!(
            call(Request::new(Method::Get, "/state/a%2Fb")),
            (200, b"one".to_vec())
        );
        assert_eq!(call(Request::new(Method::Get, "/state/missing")).0, 404);
        assert_eq!(
            call(Request::new(Method::Put, "/state/q?value=from%20query")).0,
            204
        );
        assert_eq!(
            call(Request::new(Method::Get, "/state/q")),
            (200, b"from query".to_vec())
        );

        state::set("b", b"two").unwrap();
        let (_, listed) = call_json(Request::new(Method::Get, "/state?prefix=a"));
        assert_eq!(listed["entries"], json!([{"key": "a/b", "value": "one"}]));

        let (_, deleted) = call_json(Request::new(Method::Delete, "/state/a%2Fb"));
        assert_eq!(deleted["deleted"], true);
        let (_, deleted) = call_json(Request::new(Method::Delete, "/state/a%2Fb"));
        assert_eq!(deleted["deleted"], false);
    }

    #[test]
    fn cas_swaps_only_on_expected_value() {
        testing::reset();
        let cas = |body: &str| {
            call_json(
                Request::new(Method::Post, "/cas/k")
                    .with_body(IncomingBody::from_bytes(body.as_bytes().to_vec())),
            )
        };
        assert_eq!(cas(r#"{"expected": null, "new": "1"}"#).1["swapped"], true);
        assert_eq!(cas(r#"{"expected": "0", "new": "2"}"#).1["swapped"], false);
        assert_eq!(cas(r#"{"expected": "1", "new": "2"}"#).1["swapped"], true);
        assert_eq!(cas(r#"{"expected": "1", "nope": "2"}"#).0, 400);
    }

    #[test]
    fn memory_route_writes_a_static() {
        let (status, _) = call_json(Request::new(Method::Post, "/memory?value=secret"));
        assert_eq!(status, 200);
        assert_eq!(
            call_json(Request::new(Method::Get, "/memory")).1["value"],
            "secret"
        );
        assert_eq!(call(Request::new(Method::Post, "/memory")).0, 400);
    }

    #[test]
    fn echo_streams_the_body_back() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let req =
            Request::new(Method::Post, "/echo").with_body(IncomingBody::from_bytes(body.clone()));
        assert_eq!(call(req), (200, body));
    }

    #[test]
    fn mgmt_forwards_and_reports_results_and_errors() {
        testing::reset();
        testing::set_management_handler(|r| {
            if r.path == "forbidden" {
                return Err(Error::AccessDenied("management-api:write".into()));
            }
            Ok(management::Response {
                status: 200,
                body: format!(r#"{{"path":"{}","q":{}}}"#, r.path, r.query.len()),
            })
        });
        let send = |body: Value| {
            call_json(
                Request::new(Method::Post, "/mgmt")
                    .with_body(IncomingBody::from_bytes(body.to_string().into_bytes())),
            )
        };
        let (status, ok) = send(
            json!({"method": "post", "path": "assets", "query": {"a": "1"}, "body": {"@id": "x"}}),
        );
        assert_eq!(status, 200);
        assert_eq!(
            ok,
            json!({"status": 200, "body": {"path": "assets", "q": 1}})
        );
        let (_, denied) = send(json!({"method": "GET", "path": "forbidden"}));
        assert_eq!(denied["error"], "access-denied");
        assert_eq!(send(json!({"method": "TRACE", "path": "x"})).0, 400);
    }

    #[test]
    fn data_get_streams_the_pattern_and_post_counts() {
        testing::reset();
        testing::set_entry_point(EntryPoint::Data("f1".into()));
        let r = Hello::handle_data("f1".into(), Request::new(Method::Get, "/?bytes=10000"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("content-length"), Some("10000"));
        let body = r.into_body_bytes(20_000).unwrap();
        assert_eq!(body.len(), 10_000);
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, b)| *b == pattern_byte(i as u64))
        );
        assert_eq!(&body[..3], b"abc");

        let default = Hello::handle_data("f1".into(), Request::new(Method::Get, "/"));
        assert_eq!(default.into_body_bytes(20_000).unwrap().len(), 1024);
        assert_eq!(
            Hello::handle_data("f1".into(), Request::new(Method::Get, "/?bytes=x")).status(),
            400
        );

        let post = Request::new(Method::Post, "/")
            .with_body(IncomingBody::from_reader(Pattern::new(123_457)));
        let r = Hello::handle_data("f1".into(), post);
        let body: Value = serde_json::from_slice(&r.into_body_bytes(1000).unwrap()).unwrap();
        assert_eq!(body["received"], 123_457);
    }

    #[test]
    fn flow_decisions_follow_the_agreement() {
        testing::reset();
        assert_eq!(
            Hello::on_start(flow("any")).unwrap(),
            Decision::Accept(None)
        );
        assert_eq!(
            Hello::on_prepare(flow(ASYNC_AGREEMENT)).unwrap(),
            Decision::Pending
        );
        assert!(matches!(
            Hello::on_start(flow(REJECT_AGREEMENT)).unwrap(),
            Decision::Reject(_)
        ));
        Hello::on_completed(flow("any")).unwrap();
        assert_eq!(
            testing::state().get("flow/f1").map(Vec::as_slice),
            Some(&b"completed"[..])
        );
    }

    #[test]
    fn lifecycle_and_events_write_state() {
        testing::reset();
        testing::set_plugin("hello", "0.2.0");
        Hello::on_enable().unwrap();
        Hello::on_upgrade("0.1.0".into()).unwrap();
        Hello::on_event(Event {
            id: "ev-1".into(),
            kind: weft_sdk::events::EventKind::Timer,
            subject: "tick".into(),
            correlation: None,
            payload: "{}".into(),
            attempt: 1,
        })
        .unwrap();
        let s = testing::state();
        assert_eq!(s.get("enabled").map(Vec::as_slice), Some(&b"0.2.0"[..]));
        assert_eq!(
            s.get("upgraded-from").map(Vec::as_slice),
            Some(&b"0.1.0"[..])
        );
        assert_eq!(s.get("last-event").map(Vec::as_slice), Some(&b"ev-1"[..]));
    }

    #[test]
    fn transfer_reports_reach_the_host() {
        testing::reset();
        let (_, r) = call_json(Request::new(Method::Post, "/transfer/f9/completed"));
        assert_eq!(r["reported"], true);
        assert_eq!(
            testing::reports(),
            vec![("f9".to_owned(), transfer::Report::Completed)]
        );
        assert_eq!(
            call(Request::new(Method::Post, "/transfer/f9/bogus")).0,
            404
        );
        let (_, missing) = call_json(Request::new(Method::Get, "/transfer/f9/fetch"));
        assert_eq!(missing["error"], "unavailable");
    }
}
