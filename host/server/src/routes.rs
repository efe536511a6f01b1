//! The router: which routes need which token, the JSON error shape on every path (axum's own
//! rejections included), header caps, and graceful serving.

use crate::app::Inner;
use crate::error::ApiError;
use crate::{admin, auth, tenant};
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use weft_runtime::{CallError, CallErrorKind};

/// Largest JSON body of an admin request (grants, tenants, enablement config).
pub const MAX_ADMIN_JSON_BYTES: usize = 1 << 20;

/// `Retry-After` when a plugin hit a limit or no instance slot was free.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// `Retry-After` when an enabled app has no loaded version (an operator must act).
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 30;

/// Marks a response produced by a plugin, so error bodies it chose are passed unchanged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PluginResponse;

/// A JSON body whose rejections answer in Weft's error shape.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid-body",
        _ => "bad-request",
    };
    ApiError::new(status, code, rejection.body_text())
}

/// Query parameters whose rejections answer in Weft's error shape.
pub(crate) struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
}

/// A failed plugin call as the client sees it; details stay in the log.
pub(crate) fn call_error(err: CallError) -> ApiError {
    match &err.kind {
        CallErrorKind::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "no capacity to run the app right now; retry shortly",
        )
        .with_retry_after(BUSY_RETRY_AFTER_SECS),
        CallErrorKind::Limit(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "app-limit",
            "the app exceeded a resource limit while answering",
        )
        .with_retry_after(BUSY_RETRY_AFTER_SECS),
        CallErrorKind::Trap(_) | CallErrorKind::NoResponse | CallErrorKind::Instantiate(_) => {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "app-failed",
                "the app failed to answer; the details are in the server log",
            )
        }
        CallErrorKind::Host(_) => ApiError::internal(&err),
    }
}

/// Answers 431 when the request's headers are larger than the cap.
async fn header_cap(
    axum::extract::State(max): axum::extract::State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let total: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if total > max {
        tracing::info!(path = %request.uri().path(), total, max, "request headers too large");
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!("request headers are larger than {max} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Gives axum's own error answers (unknown route, wrong method, bad path) the JSON shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<PluginResponse>().is_some()
    {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    let message = status.canonical_reason().unwrap_or("error").to_string();
    let mut fixed = ApiError::new(status, code, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = response.headers().get(&name) {
            fixed.headers_mut().insert(name, v.clone());
        }
    }
    fixed
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    let doc = crate::openapi::document();
    axum::Json(doc).into_response()
}

/// Builds the router of one application.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    let authn = inner.auth.clone();
    let admin_routes = Router::new()
        .route("/admin/plugins", get(admin::list_plugins))
        .route(
            "/admin/plugins",
            post(admin::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/admin/plugins/{id}", get(admin::get_plugin))
        .route(
            "/admin/plugins/{id}/versions/{version}",
            get(admin::get_version).delete(admin::delete_version),
        )
        .route(
            "/admin/plugins/{id}/versions/{version}/activate",
            post(admin::activate),
        )
        .route(
            "/admin/plugins/{id}/grants",
            get(admin::get_grants).put(admin::put_grants),
        )
        .route(
            "/admin/tenants",
            get(admin::list_tenants).post(admin::create_tenant),
        )
        .route("/admin/tenants/{ctx}", get(admin::get_tenant))
        .route(
            "/admin/tenants/{ctx}/deactivate",
            post(admin::deactivate_tenant),
        )
        .route(
            "/admin/tenants/{ctx}/activate",
            post(admin::activate_tenant),
        )
        .route(
            "/admin/tenants/{ctx}/apps/{app}",
            put(admin::enable)
                .delete(admin::disable)
                .get(admin::get_enablement),
        )
        .route("/admin/audit", get(admin::audit))
        .route_layer(middleware::from_fn_with_state(
            authn.clone(),
            auth::admin_only,
        ))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_JSON_BYTES));
    let tenant_routes = Router::new()
        .route("/tenants/{ctx}/apps", get(tenant::list_apps))
        .route("/tenants/{ctx}/apps/{app}", any(tenant::forward))
        .route("/tenants/{ctx}/apps/{app}/", any(tenant::forward))
        .route("/tenants/{ctx}/apps/{app}/{*rest}", any(tenant::forward));
    // Everything but the two public documents needs a valid token, unknown paths included,
    // so probing without a token learns nothing about which routes exist.
    let protected = admin_routes
        .merge(tenant_routes)
        .fallback(not_found)
        .with_state(inner.clone())
        .layer(middleware::from_fn_with_state(authn, auth::authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .fallback_service(protected)
        .layer(middleware::from_fn_with_state(
            inner.config.max_header_bytes,
            header_cap,
        ))
        .layer(middleware::map_response(json_errors))
}

/// Serves `app` on `listener` until `shutdown` completes, then lets calls in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
