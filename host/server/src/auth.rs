//! Bearer-token authentication for every API route, and the authorization rules of the admin
//! and tenant APIs. Clients learn only "unauthorized" or "forbidden"; the log says why.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use weft_auth::{Authenticator, Principal, Role};
use weft_runtime::unread::drain;

/// Validates the bearer token and puts the [`Principal`] into the request extensions.
pub(crate) async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str());
    let value = match header {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            tracing::info!(target: "weft::auth", path = %request.uri().path(), "token refused: authorization header is not visible ASCII");
            drain(request.into_body()).await;
            return axum::response::IntoResponse::into_response(ApiError::unauthorized());
        }
        None => None,
    };
    match auth.authenticate_header(value).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => {
            if e.is_idp_unavailable() {
                tracing::warn!(target: "weft::auth", path = %request.uri().path(), "token refused: {e}");
            } else {
                tracing::info!(target: "weft::auth", path = %request.uri().path(), "token refused: {e}");
            }
            drain(request.into_body()).await;
            axum::response::IntoResponse::into_response(ApiError::unauthorized())
        }
    }
}

/// The admin API: role admin, or a provisioner holding the admin scope. Participants never.
pub(crate) fn require_admin(auth: &Authenticator, p: &Principal) -> Result<(), ApiError> {
    let allowed = match p.role {
        Role::Admin => true,
        Role::Provisioner => p.has_scope(auth.admin_scope()),
        Role::Participant => false,
    };
    if allowed {
        Ok(())
    } else {
        tracing::info!(target: "weft::auth", subject = %p.subject, role = %p.role, "admin API refused: not an admin");
        Err(ApiError::forbidden("this token may not use the admin API"))
    }
}

/// Middleware form of [`require_admin`] for the `/admin` routes.
pub(crate) async fn admin_only(
    State(auth): State<Authenticator>,
    request: Request,
    next: Next,
) -> Response {
    let Some(principal) = request.extensions().get::<Principal>() else {
        return axum::response::IntoResponse::into_response(ApiError::unauthorized());
    };
    if let Err(e) = require_admin(&auth, principal) {
        return axum::response::IntoResponse::into_response(e);
    }
    next.run(request).await
}

/// The tenant API: an admin may act for any participant context; otherwise the token must be
/// a participant's for exactly `ctx` and carry the apps scope.
pub(crate) fn require_tenant(
    auth: &Authenticator,
    p: &Principal,
    ctx: &str,
) -> Result<(), ApiError> {
    let refused = |why: &str| {
        tracing::info!(target: "weft::auth", subject = %p.subject, role = %p.role, ctx, "tenant API refused: {why}");
        Err(ApiError::forbidden(
            "this token may not act for this participant context",
        ))
    };
    match p.role {
        Role::Admin => Ok(()),
        Role::Provisioner => refused("provisioners never touch tenant resources"),
        Role::Participant => {
            if p.participant_context_id.as_deref() != Some(ctx) {
                return refused("token is for another participant context");
            }
            if !p.has_scope(auth.apps_scope()) {
                return refused("token lacks the apps scope");
            }
            Ok(())
        }
    }
}
