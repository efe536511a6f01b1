//! The public data endpoint, `ANY /data/{flowId}/{*rest}`: a counterparty pulling from a
//! provider flow or pushing into a consumer flow, with the flow's bearer token.
//!
//! The token (only its SHA-256 is stored) resolves to exactly one (tenant, flow); the path
//! must name that flow, and the flow must be in a state that exchanges data. The request
//! then streams through the owning app's `data` entry (`Entry::Data(flowId)`), without the
//! `Authorization` header, and the app's response streams back while the call runs.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::http::{HeaderName, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use percent_encoding::percent_decode_str;
use weft_runtime::Entry;
use weft_runtime::config::CallLimits;
use weft_runtime::unread::drain;

use crate::auth::bearer;
use crate::directory::TenantApp;
use crate::engine::{Engine, MAX_TOKEN_CHARS, call_failure, data_allowed, token_hash};
use crate::error::DpsError;
use crate::model::{FlowState, Mode, Role};

/// Request headers never passed to the app: credentials and hop-by-hop fields.
const STRIPPED_HEADERS: [HeaderName; 8] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

/// Largest body of a GET or HEAD data request; it is read and ignored.
pub const MAX_IGNORED_BODY_BYTES: usize = 64 * 1024;

/// The data routes (state applied).
pub(crate) fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/data/{*path}", any(serve))
        .with_state(engine)
}

async fn serve(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match admit(&engine, &parts).await {
        Ok(admitted) => match data(&engine, admitted, parts, body).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        },
        Err(e) => {
            // Read first, so the refusal is not lost to a reset under a client still writing.
            drain(body).await;
            e.into_response()
        }
    }
}

/// A data request that passed the token and flow checks.
struct Admitted {
    flow_id: String,
    path_and_query: String,
    tenant_id: String,
    app: TenantApp,
}

/// Splits `/data/{flow}{suffix}` into the decoded flow id and the raw suffix.
fn split_path(uri: &Uri) -> Result<(String, String), DpsError> {
    let path = uri.path();
    let rest = path
        .strip_prefix("/data/")
        .ok_or_else(|| DpsError::NotFound("not a data path".into()))?;
    let (segment, suffix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let flow = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| DpsError::BadRequest("the flow id in the path is not UTF-8".into()))?;
    if flow.is_empty() {
        return Err(DpsError::NotFound("no flow id in the path".into()));
    }
    let suffix = if suffix.is_empty() { "/" } else { suffix };
    let path_and_query = match uri.query() {
        Some(q) => format!("{suffix}?{q}"),
        None => suffix.to_owned(),
    };
    Ok((flow.into_owned(), path_and_query))
}

/// Checks the token, the flow and its owning app; touches no body.
async fn admit(engine: &Engine, parts: &Parts) -> Result<Admitted, DpsError> {
    let (flow_id, path_and_query) = split_path(&parts.uri)?;
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or_else(|| DpsError::Unauthorized("a bearer token is required".into()))?;
    if token.len() > MAX_TOKEN_CHARS {
        return Err(DpsError::Unauthorized("the token is not valid".into()));
    }
    let owner = engine
        .store
        .flow_for_token(&token_hash(token))
        .await?
        .ok_or_else(|| {
            DpsError::Unauthorized("the token is not valid (unknown or revoked)".into())
        })?;
    if owner.flow_id != flow_id {
        return Err(DpsError::Forbidden(
            "the token does not grant access to this flow".into(),
        ));
    }
    let flow = engine
        .store
        .get_flow(&owner.tenant_id, &flow_id)
        .await?
        .ok_or_else(|| {
            DpsError::Unauthorized("the token is not valid (unknown or revoked)".into())
        })?;
    let state = FlowState::parse(&flow.state).unwrap_or(FlowState::Terminated);
    let role = Role::parse(&flow.role).unwrap_or(Role::Provider);
    let mode = Mode::parse(&flow.mode).unwrap_or(Mode::Pull);
    if !data_allowed(role, mode, state) {
        return Err(DpsError::Forbidden(format!(
            "data flow {flow_id} is {state}; it exchanges no data now"
        )));
    }
    let app = engine
        .apps_for(&owner.tenant_id)
        .await?
        .into_iter()
        .find(|a| a.plugin.id() == flow.plugin_id)
        .ok_or_else(|| DpsError::Unavailable("the app serving this flow is not enabled".into()))?;
    Ok(Admitted {
        flow_id,
        path_and_query,
        tenant_id: owner.tenant_id,
        app,
    })
}

/// Streams an admitted request through the owning app's `data` entry.
async fn data(
    engine: &Engine,
    admitted: Admitted,
    mut parts: Parts,
    body: Body,
) -> Result<Response, DpsError> {
    let Admitted {
        flow_id,
        path_and_query,
        tenant_id,
        app,
    } = admitted;
    for name in &STRIPPED_HEADERS {
        parts.headers.remove(name);
    }
    let authority = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| "localhost".to_owned());
    parts.uri = format!("http://{authority}{path_and_query}")
        .parse()
        .map_err(|_| DpsError::BadRequest("the request path or Host header is malformed".into()))?;
    let body = if matches!(parts.method, Method::GET | Method::HEAD) {
        // A GET/HEAD body means nothing: read it to its end before the app answers, so the
        // connection is not closed under a client still finishing its (empty) body.
        Limited::new(body, MAX_IGNORED_BODY_BYTES)
            .collect()
            .await
            .map_err(|_| DpsError::TooLarge(MAX_IGNORED_BODY_BYTES))?;
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
            .boxed_unsync()
    };
    let request = hyper::Request::from_parts(parts, body);

    let mut call = app.call.clone();
    call.entry = Entry::Data(flow_id.clone());
    let limits = engine.config.data_calls;
    call.limits = Some(CallLimits {
        memory_bytes: app.plugin.limits.memory_bytes,
        cpu_ms: limits.cpu_ms,
        wall_ms: limits.wall_ms,
    });
    tracing::debug!(target: "weft::dataplane", tenant = %tenant_id, flow = %flow_id, plugin = app.plugin.id(), "data request");
    let response = engine
        .apps
        .runtime()
        .handle_http(app.plugin.clone(), call, request)
        .await
        .map_err(call_failure)?;
    Ok(response.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_flow_and_suffix() {
        let uri: Uri = "/data/f%201/a/b?x=1".parse().unwrap();
        assert_eq!(
            split_path(&uri).unwrap(),
            ("f 1".to_owned(), "/a/b?x=1".to_owned())
        );
        let uri: Uri = "/data/f1?bytes=3".parse().unwrap();
        assert_eq!(
            split_path(&uri).unwrap(),
            ("f1".to_owned(), "/?bytes=3".to_owned())
        );
        let uri: Uri = "/data/".parse().unwrap();
        assert!(split_path(&uri).is_err());
    }
}
