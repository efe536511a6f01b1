//! Streaming bodies with caps: a request body that fails past its cap (and says so), a
//! response body that holds the tenant's concurrency permit until it ends, and draining of
//! refused uploads so the client reads the 413 instead of a connection reset.

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Most bytes of a refused request body read and discarded before answering, so the client
/// sees the error answer; beyond it the connection is closed.
pub const MAX_DRAIN_BYTES: u64 = 8 << 20;

/// Reads and discards up to [`MAX_DRAIN_BYTES`] of a body.
pub(crate) async fn drain(mut body: Body) {
    let mut seen = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(data) = f.data_ref() {
                    seen += data.len() as u64;
                }
                if seen > MAX_DRAIN_BYTES {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Set when a capped body went past its cap.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overflow(Arc<AtomicBool>);

impl Overflow {
    pub(crate) fn hit(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A request body that errors once more than `cap` bytes were read.
pub(crate) struct CappedBody {
    inner: Body,
    cap: u64,
    seen: u64,
    overflow: Overflow,
}

impl CappedBody {
    pub(crate) fn new(inner: Body, cap: u64) -> (CappedBody, Overflow) {
        let overflow = Overflow::default();
        (
            CappedBody {
                inner,
                cap,
                seen: 0,
                overflow: overflow.clone(),
            },
            overflow,
        )
    }
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.overflow.hit() {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                Some(self.cap),
            ))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len() as u64);
                    if self.seen > self.cap {
                        self.overflow.set();
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(self.cap)),
                        )));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!("tenant request body failed: {e}");
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpProtocolError)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A plugin's response body that keeps the tenant's concurrency permit until it is done.
pub(crate) struct GuardedBody {
    inner: HyperOutgoingBody,
    permit: Option<OwnedSemaphorePermit>,
}

impl GuardedBody {
    pub(crate) fn new(inner: HyperOutgoingBody, permit: OwnedSemaphorePermit) -> GuardedBody {
        GuardedBody {
            inner,
            permit: Some(permit),
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body as a stream of chunks that ends with an error after `cap` bytes; on overflow it
/// first drains what the client still sends (up to [`MAX_DRAIN_BYTES`]).
pub(crate) fn capped_stream(
    body: Body,
    cap: u64,
) -> (
    impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    Overflow,
) {
    let overflow = Overflow::default();
    let flag = overflow.clone();
    let stream = futures::stream::unfold((body, 0u64, false), move |(mut body, seen, done)| {
        let flag = flag.clone();
        async move {
            if done {
                return None;
            }
            match body.frame().await {
                None => None,
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), (body, seen, true))),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        return Some((Ok(Bytes::new()), (body, seen, false)));
                    };
                    let seen = seen.saturating_add(data.len() as u64);
                    if seen > cap {
                        flag.set();
                        drain(body).await;
                        return Some((
                            Err(std::io::Error::other(format!(
                                "body larger than {cap} bytes"
                            ))),
                            (Body::empty(), seen, true),
                        ));
                    }
                    Some((Ok(data), (body, seen, false)))
                }
            }
        }
    });
    (stream, overflow)
}
