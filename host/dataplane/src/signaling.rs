//! The Data Plane Signaling endpoints of every participant context, under `/dps/{ctx}`:
//! `POST /dataflows/prepare|start`, `POST /dataflows/{id}/started|suspend|resume|terminate|completed`,
//! `GET /dataflows/{id}/status`, `PUT /controlplanes`, `DELETE /controlplanes/{id}`.
//!
//! Every request is authenticated as one of the context's control planes first (401),
//! then its body is read with a size cap (413) and validated (400). Replies are
//! DataFlowStatusMessages: 202 with `Location` for PREPARING/STARTING, 200 otherwise.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::auth::Caller;
use crate::engine::{Ack, Engine, Initial, Signal, segment};
use crate::error::DpsError;
use crate::model::{
    ControlPlaneRegistrationIn, FlowMessageIn, SignalIn, StatusMessage, StatusResponse,
};

type Shared = State<Arc<Engine>>;

/// The signaling routes (state applied).
pub(crate) fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/dps/{ctx}/dataflows/prepare", post(prepare))
        .route("/dps/{ctx}/dataflows/start", post(start))
        .route("/dps/{ctx}/dataflows/{id}/started", post(started))
        .route("/dps/{ctx}/dataflows/{id}/suspend", post(suspend))
        .route("/dps/{ctx}/dataflows/{id}/resume", post(resume))
        .route("/dps/{ctx}/dataflows/{id}/terminate", post(terminate))
        .route("/dps/{ctx}/dataflows/{id}/completed", post(completed))
        .route("/dps/{ctx}/dataflows/{id}/status", get(status))
        .route("/dps/{ctx}/controlplanes", put(register))
        .route("/dps/{ctx}/controlplanes/{cp}", delete(unregister))
        .with_state(engine)
}

/// Reads a body up to `limit` bytes: 413 beyond.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, DpsError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(DpsError::TooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(DpsError::TooLarge(limit)),
        Err(e) => Err(DpsError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

async fn authenticate(engine: &Engine, ctx: &str, headers: &HeaderMap) -> Result<Caller, DpsError> {
    let authorization =
        match headers.get(header::AUTHORIZATION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                DpsError::Unauthorized("the Authorization header is not ASCII".into())
            })?),
        };
    engine.authenticate(ctx, authorization).await
}

/// A DataFlowStatusMessage reply: 202 + Location for pending states.
fn ack_response(uri: &Uri, ack: Ack) -> Response {
    let mut message = StatusMessage::new(&ack.flow_id, ack.state);
    message.data_address = ack.data_address;
    if ack.state.is_pending() {
        // `…/dataflows/prepare` → `…/dataflows/{id}/status`, wherever the router is mounted.
        let path = uri.path();
        let base = path.rsplit_once('/').map_or("", |(b, _)| b);
        let location = format!("{base}/{}/status", segment(&ack.flow_id));
        let mut response = (StatusCode::ACCEPTED, axum::Json(message)).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        response
    } else {
        (StatusCode::OK, axum::Json(message)).into_response()
    }
}

fn reply(result: Result<Response, DpsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn initial(
    engine: &Engine,
    ctx: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    kind: Initial,
) -> Result<Response, DpsError> {
    let caller = authenticate(engine, ctx, headers).await?;
    let bytes = read_body(headers, body, engine.config.max_signal_body_bytes).await?;
    let message = FlowMessageIn::parse(&bytes)?.validate(engine.config.allow_insecure_endpoints)?;
    let ack = engine.initial(ctx, &caller, kind, message).await?;
    Ok(ack_response(uri, ack))
}

async fn prepare(
    State(engine): Shared,
    Path(ctx): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(initial(&engine, &ctx, &uri, &headers, body, Initial::Prepare).await)
}

async fn start(
    State(engine): Shared,
    Path(ctx): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(initial(&engine, &ctx, &uri, &headers, body, Initial::Start).await)
}

/// Which signal a path names.
#[derive(Clone, Copy)]
enum Kind {
    Started,
    Suspend,
    Resume,
    Terminate,
    Completed,
}

async fn signal(
    engine: &Engine,
    ctx: &str,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    kind: Kind,
) -> Result<Response, DpsError> {
    authenticate(engine, ctx, headers).await?;
    let bytes = read_body(headers, body, engine.config.max_signal_body_bytes).await?;
    // `/completed` may come with an empty body or `{}` (the test kit sends `{}`).
    let input = SignalIn::parse(&bytes, matches!(kind, Kind::Completed))?;
    let normalized =
        |a: Option<crate::model::WireDataAddress>| a.map(crate::model::WireDataAddress::normalized);
    let signal = match kind {
        Kind::Completed => Signal::Completed {
            message_id: input.message_id(true)?,
        },
        Kind::Started => Signal::Started {
            message_id: required_id(&input)?,
            address: normalized(input.data_address),
        },
        Kind::Suspend => Signal::Suspend {
            message_id: required_id(&input)?,
            reason: input.reason(),
        },
        Kind::Resume => Signal::Resume {
            message_id: required_id(&input)?,
            address: normalized(input.data_address),
        },
        Kind::Terminate => Signal::Terminate {
            message_id: required_id(&input)?,
            reason: input.reason(),
        },
    };
    let ack = engine.signal(ctx, id, signal).await?;
    Ok(ack_response(uri, ack))
}

fn required_id(input: &SignalIn) -> Result<String, DpsError> {
    input
        .message_id(false)?
        .ok_or_else(|| DpsError::BadRequest("`messageId` is required".into()))
}

macro_rules! signal_handler {
    ($name:ident, $kind:expr) => {
        async fn $name(
            State(engine): Shared,
            Path((ctx, id)): Path<(String, String)>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            reply(signal(&engine, &ctx, &id, &uri, &headers, body, $kind).await)
        }
    };
}

signal_handler!(started, Kind::Started);
signal_handler!(suspend, Kind::Suspend);
signal_handler!(resume, Kind::Resume);
signal_handler!(terminate, Kind::Terminate);
signal_handler!(completed, Kind::Completed);

async fn status(
    State(engine): Shared,
    Path((ctx, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    reply(
        async {
            authenticate(&engine, &ctx, &headers).await?;
            let state = engine.status(&ctx, &id).await?;
            Ok(axum::Json(StatusResponse {
                data_flow_id: id.clone(),
                state,
            })
            .into_response())
        }
        .await,
    )
}

async fn register(
    State(engine): Shared,
    Path(ctx): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    reply(
        async {
            let caller = authenticate(&engine, &ctx, &headers).await?;
            let bytes = read_body(&headers, body, engine.config.max_signal_body_bytes).await?;
            let message = ControlPlaneRegistrationIn::parse(&bytes)?;
            let id = message.controlplane_id.clone().unwrap_or_default();
            let created = engine
                .register_control_plane(&ctx, &caller, message)
                .await?;
            Ok(
                axum::Json(serde_json::json!({ "controlplaneId": id, "created": created }))
                    .into_response(),
            )
        }
        .await,
    )
}

async fn unregister(
    State(engine): Shared,
    Path((ctx, cp)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    reply(
        async {
            let caller = authenticate(&engine, &ctx, &headers).await?;
            engine.delete_control_plane(&ctx, &caller, &cp).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
