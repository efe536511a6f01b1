//! HTTP inside a plugin: requests and responses of the API and data entry points, with
//! streaming bodies, plus the client side used by [`crate::transfer::send`].
//!
//! The host delivers both tenant API requests and flow data requests through
//! `wasi:http/incoming-handler`; the SDK turns them into a [`Request`] whose body is a
//! streaming [`std::io::Read`] ([`IncomingBody`]) and sends the [`Response`] a handler
//! returns, streaming its [`Body`] in chunks the WASI stream accepts.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use weft_sdk::http::{Request, Response, Router};
//!
//! #[derive(serde::Deserialize)]
//! struct Greeting { name: String }
//!
//! fn api(req: Request) -> Response {
//!     Router::new()
//!         .post("/greet", |mut req, _| {
//!             let g: Greeting = req.json()?; // capped at DEFAULT_BODY_LIMIT
//!             Ok(Response::json(200, &serde_json::json!({ "hello": g.name })))
//!         })
//!         .get("/items/{id}", |req, params| {
//!             let id = params.get("id").unwrap_or_default().to_owned();
//!             let verbose = req.query("verbose").is_some();
//!             Ok(Response::text(200, format!("item {id} verbose={verbose}")))
//!         })
//!         .post("/upload", |mut req, _| {
//!             // Stream the body without holding it.
//!             let mut buf = [0u8; 4096];
//!             let mut total = 0usize;
//!             loop {
//!                 let n = req.body().read(&mut buf)?;
//!                 if n == 0 { break; }
//!                 total += n;
//!             }
//!             Ok(Response::json(200, &serde_json::json!({ "received": total })))
//!         })
//!         .get("/download", |_, _| {
//!             // Stream a response body produced on the fly.
//!             Ok(Response::stream(200, |out: &mut dyn Write| {
//!                 for i in 0..1000 {
//!                     writeln!(out, "line {i}")?;
//!                 }
//!                 Ok(())
//!             }))
//!         })
//!         .handle(req)
//! }
//! # let _ = api;
//! ```

mod router;
pub(crate) mod wasi;

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use router::{Params, Router, match_path};

use crate::{Error, Result};

/// Default cap for [`Request::json`] and [`Request::bytes`]: request bodies read whole
/// must fit comfortably in a plugin's memory; stream larger ones through [`Request::body`].
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Largest chunk written to a WASI output stream at once, and the largest buffer a
/// streamed body is copied through. Each write is still cut to the stream's `check-write`
/// permit (Weft permits 256 KiB per write on HTTP bodies); fewer, larger writes mean fewer
/// host calls and hand-offs per byte streamed.
pub const MAX_WRITE_CHUNK: usize = 256 * 1024;

/// The buffer a streamed body starts with; it grows to [`MAX_WRITE_CHUNK`] once a read
/// fills it, so a small body costs a fresh instance little memory.
const FIRST_WRITE_CHUNK: usize = 16 * 1024;

/// Largest chunk requested from a WASI input stream per read: bounds the guest buffer
/// each read allocates while keeping round trips few.
pub const MAX_READ_CHUNK: usize = 64 * 1024;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    /// Any other method, as sent.
    Other(String),
}

impl Method {
    /// The method name (upper case for the standard ones).
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(m) => m,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a method name; standard methods ignore case, anything else is [`Method::Other`].
impl FromStr for Method {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            _ => Method::Other(s.to_owned()),
        })
    }
}

/// HTTP header fields: names are kept lower-case, values as bytes, order preserved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// No fields.
    pub fn new() -> Self {
        Headers::default()
    }

    /// The first value of `name` (case-insensitive), if it is valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `name` (case-insensitive), as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// All values of `name` (case-insensitive).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Replaces every value of `name` with `value`.
    pub fn insert(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Adds a value for `name`, keeping the existing ones.
    pub fn append(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.entries.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// All fields in order, names lower-case.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn from_entries(entries: Vec<(String, Vec<u8>)>) -> Self {
        let mut h = Headers::new();
        for (n, v) in entries {
            h.append(&n, v);
        }
        h
    }

    pub(crate) fn into_entries(self) -> Vec<(String, Vec<u8>)> {
        self.entries
    }
}

/// A body being received: a streaming [`Read`] over the request (or client response) body.
///
/// Reads block until data arrives; `Ok(0)` means the body ended.
pub struct IncomingBody {
    inner: Option<Box<dyn Read>>,
}

impl fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingBody").finish_non_exhaustive()
    }
}

impl IncomingBody {
    /// A body without content.
    pub fn empty() -> Self {
        IncomingBody { inner: None }
    }

    /// A body holding `bytes` (for tests and in-memory sources).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        IncomingBody::from_reader(io::Cursor::new(bytes.into()))
    }

    /// A body reading from `reader`.
    pub fn from_reader(reader: impl Read + 'static) -> Self {
        IncomingBody {
            inner: Some(Box::new(reader)),
        }
    }

    /// Reads the rest of the body; [`Error::LimitExceeded`] when it is longer than `limit`.
    pub fn read_bytes(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        self.by_ref().take(cap).read_to_end(&mut buf)?;
        if buf.len() > limit {
            return Err(Error::LimitExceeded(format!(
                "body is larger than {limit} bytes"
            )));
        }
        Ok(buf)
    }

    /// Reads the rest of the body as UTF-8 text, at most `limit` bytes.
    pub fn read_text(&mut self, limit: usize) -> Result<String> {
        String::from_utf8(self.read_bytes(limit)?)
            .map_err(|_| Error::Invalid("body is not valid UTF-8".to_owned()))
    }

    /// Reads the rest of the body as JSON, at most `limit` bytes.
    pub fn read_json<T: DeserializeOwned>(&mut self, limit: usize) -> Result<T> {
        let bytes = self.read_bytes(limit)?;
        if bytes.is_empty() {
            return Err(Error::Invalid("expected a JSON body, got none".to_owned()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("malformed JSON body: {e}")))
    }
}

impl Read for IncomingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Some(r) => r.read(buf),
            None => Ok(0),
        }
    }
}

/// A writer callback producing a streamed body.
pub type BodyFn = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()>>;

/// A body being sent.
#[derive(Default)]
pub enum Body {
    /// No content.
    #[default]
    Empty,
    /// Content held in memory.
    Bytes(Vec<u8>),
    /// Content streamed from a reader until it ends.
    Reader(Box<dyn Read>),
    /// Content produced by a callback writing into the stream.
    Writer(BodyFn),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Reader(_) => f.write_str("Body::Reader(..)"),
            Body::Writer(_) => f.write_str("Body::Writer(..)"),
        }
    }
}

impl Body {
    /// Writes the whole body into `out` (in chunks, never holding a streamed body).
    pub fn write_to(self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Body::Empty => Ok(()),
            Body::Bytes(bytes) => out.write_all(&bytes),
            Body::Reader(mut reader) => {
                let mut buf = vec![0u8; FIRST_WRITE_CHUNK];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    out.write_all(&buf[..n])?;
                    if n == buf.len() && buf.len() < MAX_WRITE_CHUNK {
                        buf.resize(MAX_WRITE_CHUNK, 0);
                    }
                }
            }
            Body::Writer(produce) => produce(out),
        }
    }

    /// Collects the body in memory; [`Error::LimitExceeded`] past `limit` bytes (so an
    /// endless body ends). Meant for tests and small bodies.
    pub fn into_bytes(self, limit: usize) -> Result<Vec<u8>> {
        let mut sink = LimitedSink {
            buf: Vec::new(),
            limit,
        };
        match self.write_to(&mut sink) {
            Ok(()) => Ok(sink.buf),
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => Err(Error::LimitExceeded(
                format!("body is larger than {limit} bytes"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::Bytes(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::Bytes(s.into_bytes())
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Self {
        Body::Bytes(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Body {
    fn from(b: &[u8]) -> Self {
        Body::Bytes(b.to_vec())
    }
}

impl From<IncomingBody> for Body {
    fn from(b: IncomingBody) -> Self {
        Body::Reader(Box::new(b))
    }
}

struct LimitedSink {
    buf: Vec<u8>,
    limit: usize,
}

impl Write for LimitedSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "body limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An incoming request of the API or data entry point.
#[derive(Debug)]
pub struct Request {
    method: Method,
    path: String,
    query: String,
    headers: Headers,
    body: IncomingBody,
}

impl Request {
    /// A request for `path_and_query` (such as `/state/a?x=1`) with no headers or body.
    /// The host builds real ones; this is for tests.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_and_query, ""),
        };
        let path = if path.is_empty() { "/" } else { path };
        Request {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Headers::new(),
            body: IncomingBody::empty(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: IncomingBody) -> Self {
        self.body = body;
        self
    }

    pub(crate) fn from_parts(
        method: Method,
        path_and_query: &str,
        headers: Headers,
        body: IncomingBody,
    ) -> Self {
        let mut r = Request::new(method, path_and_query);
        r.headers = headers;
        r.body = body;
        r
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, still percent-encoded, always starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string (without `?`; empty when none).
    pub fn query_string(&self) -> &str {
        &self.query
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// All query parameters, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// Query parameter `name` parsed as `T`: `Ok(None)` when absent, [`Error::Invalid`]
    /// when it does not parse.
    pub fn query_parse<T: FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.query(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Error::Invalid(format!("query parameter `{name}` is malformed: `{v}`"))
            }),
        }
    }

    /// The first value of header `name` (case-insensitive), if UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// All headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body, to stream with [`Read`].
    pub fn body(&mut self) -> &mut IncomingBody {
        &mut self.body
    }

    /// Takes the body (for example to stream it into a response).
    pub fn into_body(self) -> IncomingBody {
        self.body
    }

    /// Reads the body as JSON, at most [`DEFAULT_BODY_LIMIT`] bytes.
    pub fn json<T: DeserializeOwned>(&mut self) -> Result<T> {
        self.body.read_json(DEFAULT_BODY_LIMIT)
    }

    /// Reads the body as JSON, at most `limit` bytes.
    pub fn json_limited<T: DeserializeOwned>(&mut self, limit: usize) -> Result<T> {
        self.body.read_json(limit)
    }

    /// Reads the body, at most [`DEFAULT_BODY_LIMIT`] bytes.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        self.body.read_bytes(DEFAULT_BODY_LIMIT)
    }
}

/// A response of the API or data entry point.
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Body,
}

impl Response {
    /// A response with `status` and no body. Statuses outside 100..=599 are sent as 500.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Headers::new(),
            body: Body::Empty,
        }
    }

    /// A JSON response.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => Response::new(status)
                .with_header("content-type", "application/json")
                .with_body(bytes),
            Err(e) => Response::error(&Error::Internal(format!("serializing response: {e}"))),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// An `application/octet-stream` response held in memory.
    pub fn bytes(status: u16, bytes: impl Into<Vec<u8>>) -> Self {
        Response::new(status)
            .with_header("content-type", "application/octet-stream")
            .with_body(bytes.into())
    }

    /// A response whose body `produce` writes, streamed as it is written.
    pub fn stream(
        status: u16,
        produce: impl FnOnce(&mut dyn Write) -> io::Result<()> + 'static,
    ) -> Self {
        Response::new(status).with_body(Body::Writer(Box::new(produce)))
    }

    /// A response streaming `reader` until it ends.
    pub fn reader(status: u16, reader: impl Read + 'static) -> Self {
        Response::new(status).with_body(Body::Reader(Box::new(reader)))
    }

    /// 404 with a JSON error body.
    pub fn not_found() -> Self {
        Response::error(&Error::NotFound("no such route".to_owned()))
    }

    /// An error answer: the status from [`Error::http_status`] and a JSON body
    /// `{"error": kind, "message": ...}`. Internal errors are logged and answered with
    /// an opaque message.
    pub fn error(error: &Error) -> Self {
        let status = error.http_status();
        if let Error::Internal(detail) = error {
            crate::log::write(
                crate::log::Level::Error,
                "internal error",
                &[("detail", detail)],
            );
            return Response::json(500, &Error::Internal("internal error".to_owned()));
        }
        Response::json(status, error)
    }

    /// Sets a header, replacing earlier values.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Mutable headers.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// Splits into status, headers and body.
    pub fn into_parts(self) -> (u16, Headers, Body) {
        (self.status, self.headers, self.body)
    }

    /// Collects the body in memory (tests): [`Error::LimitExceeded`] past `limit` bytes.
    pub fn into_body_bytes(self, limit: usize) -> Result<Vec<u8>> {
        self.body.into_bytes(limit)
    }
}

impl From<Error> for Response {
    fn from(e: Error) -> Self {
        Response::error(&e)
    }
}

/// A request to a flow's counterparty, sent with [`crate::transfer::send`].
///
/// Only the path and query are used; the host supplies scheme, authority and
/// authorization from the flow's DataAddress.
#[derive(Debug)]
pub struct ClientRequest {
    /// The method.
    pub method: Method,
    /// Path and query appended to the counterparty endpoint, such as `/items?page=2`.
    pub path_and_query: String,
    /// Request headers.
    pub headers: Headers,
    /// The body, streamed after the request is sent.
    pub body: Body,
}

impl ClientRequest {
    /// A request without headers or body.
    pub fn new(method: Method, path_and_query: impl Into<String>) -> Self {
        ClientRequest {
            method,
            path_and_query: path_and_query.into(),
            headers: Headers::new(),
            body: Body::Empty,
        }
    }

    /// `GET path_and_query`.
    pub fn get(path_and_query: impl Into<String>) -> Self {
        ClientRequest::new(Method::Get, path_and_query)
    }

    /// `POST path_and_query` with `body`.
    pub fn post(path_and_query: impl Into<String>, body: impl Into<Body>) -> Self {
        ClientRequest::new(Method::Post, path_and_query).with_body(body)
    }

    /// Sets a header, replacing earlier values.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }
}

/// The counterparty's answer; the body streams.
#[derive(Debug)]
pub struct ClientResponse {
    /// The HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Headers,
    /// The body, to stream with [`Read`].
    pub body: IncomingBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_splits_path_and_query_and_decodes_parameters() {
        let req =
            Request::new(Method::Get, "/state?prefix=a%20b&x=1&x=2").with_header("X-Thing", "yes");
        assert_eq!(req.path(), "/state");
        assert_eq!(req.query("prefix").as_deref(), Some("a b"));
        assert_eq!(req.query("x").as_deref(), Some("1"));
        assert_eq!(req.query("missing"), None);
        assert_eq!(req.header("x-thing"), Some("yes"));
        assert_eq!(req.query_parse::<u32>("x").unwrap(), Some(1));
        assert_eq!(
            req.query_parse::<u32>("prefix").unwrap_err().kind(),
            "invalid"
        );
        assert_eq!(Request::new(Method::Get, "").path(), "/");
    }

    #[test]
    fn json_body_is_capped() {
        let mut req = Request::new(Method::Post, "/")
            .with_body(IncomingBody::from_bytes(b"[1,2,3]".to_vec()));
        assert_eq!(req.json::<Vec<u8>>().unwrap(), vec![1, 2, 3]);

        let mut big =
            Request::new(Method::Post, "/").with_body(IncomingBody::from_bytes(vec![b' '; 11]));
        assert_eq!(
            big.json_limited::<u8>(10).unwrap_err().kind(),
            "limit-exceeded"
        );

        let mut exact = IncomingBody::from_bytes(b"1234567890".to_vec());
        assert_eq!(exact.read_json::<u64>(10).unwrap(), 1_234_567_890);

        let mut bad = IncomingBody::from_bytes(b"{".to_vec());
        assert_eq!(bad.read_json::<u8>(10).unwrap_err().kind(), "invalid");
        assert_eq!(
            IncomingBody::empty()
                .read_json::<u8>(10)
                .unwrap_err()
                .kind(),
            "invalid"
        );
    }

    #[test]
    fn response_bodies_collect_and_endless_ones_hit_the_limit() {
        let r = Response::json(201, &serde_json::json!({"a": 1}));
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get("Content-Type"), Some("application/json"));
        assert_eq!(r.into_body_bytes(100).unwrap(), br#"{"a":1}"#);

        let endless = Response::reader(200, io::repeat(b'x'));
        assert_eq!(
            endless.into_body_bytes(10_000).unwrap_err().kind(),
            "limit-exceeded"
        );

        let streamed = Response::stream(200, |w| {
            for _ in 0..3 {
                w.write_all(b"ab")?;
            }
            Ok(())
        });
        assert_eq!(streamed.into_body_bytes(6).unwrap(), b"ababab");
    }

    #[test]
    fn errors_map_to_statuses_and_internal_details_stay_hidden() {
        let r = Response::error(&Error::Conflict("exists".into()));
        assert_eq!(r.status(), 409);
        let body: serde_json::Value =
            serde_json::from_slice(&r.into_body_bytes(1000).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "conflict", "message": "exists"})
        );

        let r = Response::error(&Error::Internal("db password wrong".into()));
        assert_eq!(r.status(), 500);
        let text = String::from_utf8(r.into_body_bytes(1000).unwrap()).unwrap();
        assert!(!text.contains("password"), "{text}");
    }

    #[test]
    fn headers_are_case_insensitive_and_insert_replaces() {
        let mut h = Headers::new();
        h.append("Accept", "a");
        h.append("accept", "b");
        assert_eq!(h.get_all("ACCEPT").count(), 2);
        h.insert("Accept", "c");
        assert_eq!(h.get_all("accept").collect::<Vec<_>>(), vec![&b"c"[..]]);
        h.remove("accept");
        assert!(h.is_empty());
    }
}
