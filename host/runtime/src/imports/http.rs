//! Outbound `wasi:http` policy: deny by default, allow only hosts the CSP granted (and
//! the tenant kept), and let `transfer.send` reach a flow's counterparty with the
//! authorization the host holds.

use crate::config::{OUTGOING_BODY_BUFFER_CHUNKS, OUTGOING_BODY_CHUNK_BYTES};
use crate::grants::Grants;
use http::HeaderValue;
use http_body_util::BodyExt;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

type SendResult = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// A one-shot permission set by `transfer.send` for the request it is about to hand to
/// the outgoing handler.
#[derive(Debug)]
pub(crate) struct TransferTarget {
    pub(crate) authority: String,
    pub(crate) authorization: Option<String>,
}

/// The `WasiHttpHooks` of one call.
pub(crate) struct OutboundPolicy {
    grants: Arc<Grants>,
    pub(crate) transfer_target: Option<TransferTarget>,
}

impl OutboundPolicy {
    pub(crate) fn new(grants: Arc<Grants>) -> Self {
        OutboundPolicy {
            grants,
            transfer_target: None,
        }
    }
}

fn denied(reason: String) -> SendResult {
    tracing::info!(target: "weft::outbound", "outbound request denied: {reason}");
    Box::new(async { Err(Error::HttpRequestDenied) })
}

impl WasiHttpHooks for OutboundPolicy {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        OUTGOING_BODY_BUFFER_CHUNKS
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK_BYTES
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendResult {
        let uri = request.uri().clone();
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        match self.transfer_target.take() {
            Some(target) if target.authority == authority => {
                if let Some(auth) = target.authorization {
                    match HeaderValue::from_str(&auth) {
                        Ok(mut value) => {
                            value.set_sensitive(true);
                            request
                                .headers_mut()
                                .insert(http::header::AUTHORIZATION, value);
                        }
                        Err(_) => return denied("flow authorization is not a valid header".into()),
                    }
                }
            }
            Some(_) => return denied("transfer target changed".into()),
            None => {
                let scheme = uri.scheme_str().unwrap_or("https");
                let host = uri.host().unwrap_or_default();
                if !self.grants.allows_outbound(scheme, host, uri.port_u16()) {
                    return denied(format!("{scheme}://{authority} is not granted"));
                }
            }
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
            Ok((response.map(|b| b.map_err(|e: Error| e).boxed_unsync()), io))
        })
    }
}
