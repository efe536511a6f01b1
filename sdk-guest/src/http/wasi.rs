//! Glue between the SDK's HTTP types and `wasi:http` 0.2 resources: streaming readers
//! and writers over WASI streams that respect back-pressure and child-resource order.
//!
//! Compiled on every target (so it is type-checked natively) but only called on wasm32.

use std::io::{self, Read, Write};

use super::{
    Body, ClientRequest, ClientResponse, Headers, IncomingBody, MAX_READ_CHUNK, MAX_WRITE_CHUNK,
    Method, Request, Response,
};
use crate::wit::wasi::http::types as wt;
use crate::wit::wasi::io::poll::Pollable;
use crate::wit::wasi::io::streams::{InputStream, OutputStream, StreamError};
use crate::{Error, Result};

pub(crate) fn method_from_wasi(m: wt::Method) -> Method {
    match m {
        wt::Method::Get => Method::Get,
        wt::Method::Head => Method::Head,
        wt::Method::Post => Method::Post,
        wt::Method::Put => Method::Put,
        wt::Method::Delete => Method::Delete,
        wt::Method::Connect => Method::Connect,
        wt::Method::Options => Method::Options,
        wt::Method::Trace => Method::Trace,
        wt::Method::Patch => Method::Patch,
        wt::Method::Other(s) => Method::Other(s),
    }
}

pub(crate) fn method_to_wasi(m: &Method) -> wt::Method {
    match m {
        Method::Get => wt::Method::Get,
        Method::Head => wt::Method::Head,
        Method::Post => wt::Method::Post,
        Method::Put => wt::Method::Put,
        Method::Delete => wt::Method::Delete,
        Method::Connect => wt::Method::Connect,
        Method::Options => wt::Method::Options,
        Method::Trace => wt::Method::Trace,
        Method::Patch => wt::Method::Patch,
        Method::Other(s) => wt::Method::Other(s.clone()),
    }
}

fn stream_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"),
        StreamError::LastOperationFailed(err) => io::Error::other(err.to_debug_string()),
    }
}

/// The resource an incoming body came from, kept alive until the body is dropped.
pub(crate) enum Owner {
    Request(#[allow(dead_code)] wt::IncomingRequest),
    Response(#[allow(dead_code)] wt::IncomingResponse),
}

/// A blocking [`Read`] over an `incoming-body`'s `input-stream`.
///
/// Field order is drop order and matters: the pollable is a child of the stream, the
/// stream a child of the body; dropping a parent first traps.
struct WasiReader {
    pollable: Option<Pollable>,
    stream: Option<InputStream>,
    body: Option<wt::IncomingBody>,
    _owner: Owner,
}

impl WasiReader {
    fn new(body: wt::IncomingBody, owner: Owner) -> Result<Self> {
        let stream = body
            .stream()
            .map_err(|()| Error::Internal("incoming body stream already taken".to_owned()))?;
        Ok(WasiReader {
            pollable: None,
            stream: Some(stream),
            body: Some(body),
            _owner: owner,
        })
    }

    fn close(&mut self) {
        self.pollable = None;
        self.stream = None;
        if let Some(body) = self.body.take() {
            // Ends the body; trailers are not exposed.
            drop(wt::IncomingBody::finish(body));
        }
    }
}

impl Read for WasiReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = u64::try_from(buf.len().min(MAX_READ_CHUNK)).unwrap_or(4096);
        loop {
            let Some(stream) = &self.stream else {
                return Ok(0);
            };
            match stream.read(want) {
                Ok(bytes) if bytes.is_empty() => {
                    // Nothing available yet: wait on the stream's pollable, then retry.
                    self.pollable
                        .get_or_insert_with(|| stream.subscribe())
                        .block();
                }
                Ok(bytes) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    return Ok(n);
                }
                Err(StreamError::Closed) => {
                    self.close();
                    return Ok(0);
                }
                Err(e) => return Err(stream_error(e)),
            }
        }
    }
}

/// Buffer for bodies an app produces through a writer: small enough to cost little in a
/// fresh instance's memory, large enough that small writes are batched.
const PRODUCED_BODY_BUFFER: usize = 16 * 1024;

/// A [`Write`] over an `output-stream` that waits for `check-write` permits and writes
/// at most [`MAX_WRITE_CHUNK`] bytes at a time.
struct WasiWriter<'a> {
    // Declared first so it is dropped before the stream it was derived from.
    pollable: Option<Pollable>,
    stream: &'a OutputStream,
}

impl Write for WasiWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let permit = self.stream.check_write().map_err(stream_error)?;
            if permit == 0 {
                let stream = self.stream;
                self.pollable
                    .get_or_insert_with(|| stream.subscribe())
                    .block();
                continue;
            }
            let n = buf
                .len()
                .min(MAX_WRITE_CHUNK)
                .min(usize::try_from(permit).unwrap_or(MAX_WRITE_CHUNK));
            self.stream.write(&buf[..n]).map_err(stream_error)?;
            return Ok(n);
        }
    }

    /// Nothing to do: an HTTP body stream hands every write to the host at once (its
    /// `flush` only reports whether the reader is gone, and the reader of a body with a
    /// `content-length` may go right after the last byte, which is no error).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams `body` into `out` and finishes it. On error the body is dropped unfinished,
/// which tells the host the message is incomplete.
fn write_body(body: Body, out: wt::OutgoingBody) -> io::Result<()> {
    let stream = out
        .write()
        .map_err(|()| io::Error::other("outgoing body stream already taken"))?;
    finish_body(body, out, stream)
}

/// Streams `body` into `stream`, drops the stream and finishes `out`.
fn finish_body(body: Body, out: wt::OutgoingBody, stream: OutputStream) -> io::Result<()> {
    {
        let mut writer = WasiWriter {
            pollable: None,
            stream: &stream,
        };
        match body {
            // A body produced in pieces is buffered, so many small writes cost one host
            // call per buffer; bytes and readers already write in large chunks.
            Body::Writer(produce) => {
                let mut buffered = io::BufWriter::with_capacity(PRODUCED_BODY_BUFFER, &mut writer);
                produce(&mut buffered)?;
                buffered.flush()?;
            }
            other => other.write_to(&mut writer)?,
        }
    }
    // The stream is a child of the body: it must be gone before the body is finished.
    drop(stream);
    wt::OutgoingBody::finish(out, None)
        .map_err(|e| io::Error::other(format!("finishing body: {e:?}")))
}

fn fields(headers: Headers) -> Result<wt::Fields> {
    wt::Fields::from_list(&headers.into_entries())
        .map_err(|e| Error::Invalid(format!("header rejected by the host: {e:?}")))
}

/// Converts the host's incoming request into a [`Request`] with a streaming body.
pub(crate) fn request_from_wasi(request: wt::IncomingRequest) -> Result<Request> {
    let method = method_from_wasi(request.method());
    let path_and_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
    // `headers()` is a child of the request; the temporary is dropped right here.
    let headers = Headers::from_entries(request.headers().entries());
    let body = LazyRequestBody {
        request: Some(request),
        reader: None,
    };
    Ok(Request::from_parts(
        method,
        &path_and_query,
        headers,
        IncomingBody::from_reader(body),
    ))
}

/// An incoming request's body, taken from the host on the first read: a handler that
/// never reads it (most `GET`s) costs no body, stream or trailer resources.
struct LazyRequestBody {
    // Declared first so a reader (a child of the request) is dropped before it.
    reader: Option<WasiReader>,
    request: Option<wt::IncomingRequest>,
}

impl Read for LazyRequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.is_none() {
            let Some(request) = self.request.take() else {
                return Ok(0);
            };
            let body = request
                .consume()
                .map_err(|()| io::Error::other("request body already consumed"))?;
            let reader = WasiReader::new(body, Owner::Request(request))
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.reader = Some(reader);
        }
        match &mut self.reader {
            Some(reader) => reader.read(buf),
            None => Ok(0),
        }
    }
}

fn plain_500() -> wt::OutgoingResponse {
    let response = wt::OutgoingResponse::new(wt::Fields::new());
    // 500 is always a valid status.
    let _ = response.set_status_code(500);
    response
}

/// Whether a response with this status carries a body (and so a `content-length`).
fn has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// Sends `response` through `out`, streaming its body. Failures after the head was sent
/// can only be logged.
///
/// A body held in memory that the host's buffer takes whole is written and finished
/// before the head is handed over, so the host has the complete response at once: it
/// goes out in one write, with no hand-off back to the guest.
pub(crate) fn send_response(response: Response, out: wt::ResponseOutparam) {
    let (status, mut headers, body) = response.into_parts();
    if let Body::Bytes(bytes) = &body
        && has_body(status)
        && headers.get_bytes("content-length").is_none()
    {
        headers.insert("content-length", bytes.len().to_string());
    }
    let outgoing = match fields(headers) {
        Ok(fields) => {
            let outgoing = wt::OutgoingResponse::new(fields);
            if outgoing.set_status_code(status).is_ok() {
                outgoing
            } else {
                crate::error!("handler returned an invalid HTTP status"; status = status);
                plain_500()
            }
        }
        Err(e) => {
            crate::error!("handler returned invalid response headers"; error = e);
            plain_500()
        }
    };
    let out_body = match outgoing.body() {
        Ok(b) => b,
        Err(()) => {
            wt::ResponseOutparam::set(out, Ok(plain_500()));
            return;
        }
    };
    let stream = match out_body.write() {
        Ok(stream) => stream,
        Err(()) => {
            wt::ResponseOutparam::set(out, Ok(plain_500()));
            return;
        }
    };
    let written = match &body {
        Body::Empty => Ok(true),
        Body::Bytes(bytes) => write_if_taken(&stream, bytes),
        _ => Ok(false),
    };
    match written {
        Ok(true) => {
            drop(stream);
            match wt::OutgoingBody::finish(out_body, None) {
                Ok(()) => wt::ResponseOutparam::set(out, Ok(outgoing)),
                Err(e) => {
                    crate::error!("finishing the response body failed"; error = format!("{e:?}"));
                    wt::ResponseOutparam::set(out, Ok(plain_500()));
                }
            }
        }
        Ok(false) => {
            wt::ResponseOutparam::set(out, Ok(outgoing));
            if let Err(e) = finish_body(body, out_body, stream) {
                crate::warn!("response body not completed"; error = e);
            }
        }
        Err(e) => {
            crate::warn!("response body not completed"; error = e);
            wt::ResponseOutparam::set(out, Ok(plain_500()));
        }
    }
}

/// Writes `bytes` into `stream` if it takes them whole without waiting (one write within
/// the current permit). Returns whether it did; if not, nothing was written.
fn write_if_taken(stream: &OutputStream, bytes: &[u8]) -> io::Result<bool> {
    let permit = stream.check_write().map_err(stream_error)?;
    if bytes.len() > MAX_WRITE_CHUNK || u64::try_from(bytes.len()).unwrap_or(u64::MAX) > permit {
        return Ok(false);
    }
    if !bytes.is_empty() {
        stream.write(bytes).map_err(stream_error)?;
    }
    Ok(true)
}

/// Sends `request` to flow `flow_id`'s counterparty through `transfer.send`, streams its
/// body, and waits for the response head.
pub(crate) fn client_send(flow_id: &str, request: ClientRequest) -> Result<ClientResponse> {
    let outgoing = wt::OutgoingRequest::new(fields(request.headers)?);
    outgoing
        .set_method(&method_to_wasi(&request.method))
        .map_err(|()| Error::Invalid(format!("invalid method `{}`", request.method)))?;
    outgoing
        .set_path_with_query(Some(&request.path_and_query))
        .map_err(|()| Error::Invalid(format!("invalid path `{}`", request.path_and_query)))?;
    let out_body = outgoing
        .body()
        .map_err(|()| Error::Internal("outgoing request body already taken".to_owned()))?;
    // An empty body is finished before the request leaves, so a counterparty that answers
    // and closes at once (a GET) cannot make the call fail on a body nobody reads.
    let pending_body = if matches!(request.body, Body::Empty) {
        wt::OutgoingBody::finish(out_body, None)
            .map_err(|e| Error::Internal(format!("finishing an empty body: {e:?}")))?;
        None
    } else {
        Some(out_body)
    };
    let future = crate::wit::weft::plugin::transfer::send(flow_id, outgoing, None)?;
    // A body the counterparty stopped reading is only an error if no answer came back.
    let body_error = pending_body.and_then(|out| write_body(request.body, out).err());
    {
        let pollable = future.subscribe();
        pollable.block();
    }
    let incoming = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => {
            return Err(Error::Unavailable(match body_error {
                Some(e) => format!("sending request body: {e} (counterparty: {code:?})"),
                None => format!("counterparty request failed: {code:?}"),
            }));
        }
        Some(Err(())) => return Err(Error::Internal("response already taken".to_owned())),
        None => {
            return Err(Error::Internal(
                "response not ready after waiting".to_owned(),
            ));
        }
    };
    let status = incoming.status();
    let headers = Headers::from_entries(incoming.headers().entries());
    let body = incoming
        .consume()
        .map_err(|()| Error::Internal("response body already consumed".to_owned()))?;
    let reader = WasiReader::new(body, Owner::Response(incoming))?;
    Ok(ClientResponse {
        status,
        headers,
        body: IncomingBody::from_reader(reader),
    })
}
