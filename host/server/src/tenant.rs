//! The tenant API: `/tenants/{ctx}/apps` lists what a tenant enabled, and
//! `/tenants/{ctx}/apps/{app}/…` forwards to the app's `wasi:http` handler (entry `api`), with
//! the tenant's config and effective grants, streaming both bodies under the caps.

use crate::app::Inner;
use crate::auth::require_tenant;
use crate::body::{CappedBody, GuardedBody, drain};
use crate::error::ApiError;
use crate::limits::Refusal;
use crate::model::EnablementView;
use crate::routes::{PluginResponse, call_error};
use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderName, StatusCode, Uri, header};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use weft_auth::Principal;
use weft_runtime::Entry;

/// Request headers never shown to an app: the caller's credentials (the host already
/// checked them; an app acting with them could reach other services as the caller) and
/// hop-by-hop headers of this connection.
const STRIPPED_REQUEST_HEADERS: [&str; 9] = [
    "authorization",
    "proxy-authorization",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Authority an app sees when the client sent no `Host` (HTTP/1.0).
const DEFAULT_AUTHORITY: &str = "localhost";

/// What a tenant enabled.
#[utoipa::path(get, path = "/tenants/{ctx}/apps", tag = "tenant",
    params(("ctx" = String, Path, description = "participant context id")),
    responses((status = 200, body = Vec<EnablementView>), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_apps(
    State(inner): State<Arc<Inner>>,
    Extension(who): Extension<Principal>,
    Path(ctx): Path<String>,
) -> Result<axum::Json<Vec<EnablementView>>, ApiError> {
    require_tenant(&inner.auth, &who, &ctx)?;
    let tenant = inner
        .store
        .get_tenant(&ctx)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unknown participant context {ctx}")))?;
    if !tenant.active {
        return Err(ApiError::forbidden(format!(
            "participant context {ctx} is deactivated"
        )));
    }
    Ok(axum::Json(inner.enablement_views(&ctx).await?))
}

/// The part of the raw (still percent-encoded) path below `/tenants/{ctx}/apps/{app}`, with
/// the query: what the app sees as its request path.
fn app_path(uri: &Uri) -> String {
    let path = uri.path();
    // "", "tenants", ctx, "apps", app, rest…
    let rest = path.splitn(6, '/').nth(5).unwrap_or("");
    let mut out = format!("/{rest}");
    if let Some(q) = uri.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Forward a request to the app (any method).
///
/// The app sees the path below `/tenants/{ctx}/apps/{app}`; its answer streams back
/// unchanged. Errors of Weft itself have the JSON error shape.
#[utoipa::path(post, path = "/tenants/{ctx}/apps/{app}/{path}", tag = "tenant",
    params(("ctx" = String, Path), ("app" = String, Path), ("path" = String, Path)),
    responses((status = 200, description = "the app's answer"),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody), (status = 413, body = crate::model::ErrorBody),
        (status = 429, body = crate::model::ErrorBody), (status = 502, body = crate::model::ErrorBody),
        (status = 503, body = crate::model::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn forward(
    State(inner): State<Arc<Inner>>,
    Extension(who): Extension<Principal>,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut head, body) = request.into_parts();
    let params = match Path::<HashMap<String, String>>::from_request_parts(&mut head, &inner).await
    {
        Ok(Path(p)) => p,
        Err(rejection) => return Err(ApiError::bad_request(rejection.body_text())),
    };
    let request = Request::from_parts(head, body);
    let (Some(ctx), Some(app)) = (params.get("ctx"), params.get("app")) else {
        return Err(ApiError::not_found("no such route"));
    };
    require_tenant(&inner.auth, &who, ctx)?;
    let resolved = inner.resolve(ctx, app, Entry::Api).await?;
    let permit = inner.limiter.admit(ctx).map_err(|refusal| {
        tracing::info!(tenant = %ctx, app = %app, ?refusal, "tenant limit hit");
        let message = match refusal {
            Refusal::Rate { .. } => "request rate limit of this participant context exceeded",
            Refusal::Concurrency => "too many concurrent calls for this participant context",
        };
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message)
            .with_retry_after(refusal.retry_after_secs())
    })?;
    let cap = inner.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap) {
        drain(request.into_body()).await;
        return Err(ApiError::too_large(format!(
            "request bodies are at most {cap} bytes"
        )));
    }

    let (parts, body) = request.into_parts();
    let authority = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(DEFAULT_AUTHORITY)
        .to_string();
    let uri: Uri = format!("http://{authority}{}", app_path(&parts.uri))
        .parse()
        .map_err(|_| {
            ApiError::bad_request("the request's Host header or path is not a valid URI")
        })?;
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(http::Version::HTTP_11);
    if let Some(headers) = builder.headers_mut() {
        for (name, value) in &parts.headers {
            if !STRIPPED_REQUEST_HEADERS.contains(&name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    let (body, overflow) = CappedBody::new(body, cap);
    let app_request = builder
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("cannot forward this request: {e}")))?;

    let outcome = inner
        .runtime
        .handle_http(resolved.plugin, resolved.call, app_request)
        .await;
    if overflow.hit() {
        return Err(ApiError::too_large(format!(
            "request bodies are at most {cap} bytes"
        )));
    }
    let response = outcome.map_err(call_error)?;
    let (mut parts, body) = response.into_parts();
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        parts.headers.remove(HeaderName::from_static(name));
    }
    parts.extensions.insert(PluginResponse);
    Ok(Response::from_parts(
        parts,
        Body::new(GuardedBody::new(body, permit)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_sees_the_path_below_its_prefix() {
        let cases = [
            ("/tenants/a/apps/hello", "/"),
            ("/tenants/a/apps/hello/", "/"),
            ("/tenants/a/apps/hello/state/k?x=1", "/state/k?x=1"),
            (
                "/tenants/a/apps/hello/..%2F..%2Fb/state",
                "/..%2F..%2Fb/state",
            ),
            ("/tenants/a/apps/hello/a//b", "/a//b"),
        ];
        for (uri, want) in cases {
            assert_eq!(app_path(&uri.parse().unwrap()), want, "{uri}");
        }
    }
}
