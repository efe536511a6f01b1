//! Data Plane Signaling, control-plane side (dps.md §1): the client that POSTs to registered data
//! planes (`<endpoint>/prepare`, `/start`, `/{id}/started|suspend|resume|terminate|completed`) and
//! the callback API (`/transfers/{id}/dataflow/prepared|started|completed|errored`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::ControlPlane;
use super::model::{DataPlane, FlowPhase, Side, TransferState};
use crate::config::SignalingAuth;
use crate::error::{ApiError, ErrorDetail};
use crate::jsonld::{self, DSP_CONTEXT};

/// Signaling callback paths, relative to the signaling base.
pub(super) fn routes() -> Router<ControlPlane> {
    Router::new()
        .route(
            "/api/signaling/transfers/{id}/dataflow/{op}",
            post(callback),
        )
        .route("/api/signaling/transfers/{id}/agreement", get(agreement))
}

/// A failed call to a data plane.
#[derive(Debug, thiserror::Error)]
pub(super) enum SignalError {
    #[error("data plane `{dataplane}` unreachable: {source}")]
    Unreachable {
        dataplane: String,
        source: reqwest::Error,
    },
    #[error("data plane `{dataplane}` answered {status}: {body}")]
    Rejected {
        dataplane: String,
        status: u16,
        body: String,
    },
    #[error("token request for data plane `{0}` failed: {1}")]
    Token(String, String),
}

impl ControlPlane {
    /// The `Authorization` value for calls to `dataplane`: a client-credentials token when its
    /// registration carries an `oauth2_client_credentials` profile, else the configured value.
    async fn dataplane_authorization(
        &self,
        dataplane: &DataPlane,
    ) -> Result<Option<String>, SignalError> {
        let Some(auth) = dataplane.authorization.as_ref().and_then(Value::as_object) else {
            return Ok(self.config().dataplane_authorization.clone());
        };
        if auth.get("type").and_then(Value::as_str) != Some("oauth2_client_credentials") {
            return Ok(self.config().dataplane_authorization.clone());
        }
        let field = |n: &str| {
            auth.get(n)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", field("clientId")),
            ("client_secret", field("clientSecret")),
        ];
        let token_error = |e: String| SignalError::Token(dataplane.id.clone(), e);
        let response = self
            .http()
            .post(field("tokenEndpoint"))
            .form(&form)
            .send()
            .await
            .map_err(|e| token_error(e.to_string()))?;
        if !response.status().is_success() {
            return Err(token_error(format!("status {}", response.status())));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| token_error(e.to_string()))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| token_error("no access_token".into()))?;
        Ok(Some(format!("Bearer {token}")))
    }

    /// POST `body` to `{endpoint}/{path}`; the answer's JSON body, if any.
    pub(super) async fn signal(
        &self,
        dataplane: &DataPlane,
        path: &str,
        body: &Value,
    ) -> Result<Option<Value>, SignalError> {
        let url = format!("{}/{path}", dataplane.endpoint);
        let mut request = self.http().post(&url).json(body);
        if let Some(auth) = self.dataplane_authorization(dataplane).await? {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let response = request
            .send()
            .await
            .map_err(|source| SignalError::Unreachable {
                dataplane: dataplane.id.clone(),
                source,
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(SignalError::Rejected {
                dataplane: dataplane.id.clone(),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).ok())
    }

    /// Check a callback's credentials for the transfer signalled to `dataplane_id`.
    fn check_callback_auth(
        &self,
        headers: &HeaderMap,
        dataplane_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match &self.config().signaling_auth {
            SignalingAuth::None => Ok(()),
            SignalingAuth::StaticToken { authorization } => {
                if presented == Some(authorization.as_str()) {
                    Ok(())
                } else {
                    Err(ApiError::unauthorized("invalid callback credentials"))
                }
            }
            SignalingAuth::IdpJwt => {
                let token = presented
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
                let claims = self
                    .idp()
                    .verify(token.trim())
                    .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))?;
                if claims.sub().is_some() && claims.sub() == dataplane_id {
                    Ok(())
                } else {
                    Err(ApiError::unauthorized(
                        "token subject is not the data plane of this transfer",
                    ))
                }
            }
        }
    }
}

/// A new DPS message id.
pub(super) fn message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn conflict(id: &str, op: &str, state: TransferState) -> ApiError {
    ApiError::conflict(format!(
        "transfer process {id} in state {} cannot take a '{op}' callback",
        state.as_str()
    ))
}

async fn callback(
    State(cp): State<ControlPlane>,
    Path((id, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle_callback(&cp, &id, &op, &headers, &body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

fn handle_callback(
    cp: &ControlPlane,
    id: &str,
    op: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    if !matches!(op, "prepared" | "started" | "completed" | "errored") {
        return Err(ApiError::not_found("DataFlowCallback", op));
    }
    let (dataplane_id, side, state, flow) = {
        let store = cp.store();
        let t = store
            .transfer(id)
            .ok_or_else(|| ApiError::not_found("TransferProcess", id))?;
        (t.data_plane_id.clone(), t.side, t.state, t.flow)
    };
    cp.check_callback_auth(headers, dataplane_id.as_deref())?;
    let message: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        jsonld::parse_object(body).map_err(ApiError::validation)?
    };
    let data_address = message.get("dataAddress").filter(|v| !v.is_null()).cloned();
    if let Some(address) = &data_address
        && !address.is_object()
    {
        return Err(ApiError::validation(vec![
            ErrorDetail::new("'dataAddress' must be an object", "ValidationFailure")
                .with_path("dataAddress"),
        ]));
    }
    match op {
        "prepared" => {
            if side != Side::Consumer || state.is_final() || flow != FlowPhase::Preparing {
                return Err(conflict(id, op, state));
            }
            if cp.advance_flow(id, FlowPhase::Preparing, FlowPhase::Prepared) {
                tokio::spawn(cp.clone().consumer_prepared(id.to_owned(), data_address));
            }
            Ok(())
        }
        "started" => {
            if side != Side::Provider || state.is_final() || flow != FlowPhase::Starting {
                return Err(conflict(id, op, state));
            }
            if cp.advance_flow(id, FlowPhase::Starting, FlowPhase::Started) {
                tokio::spawn(cp.clone().provider_started(id.to_owned(), data_address));
            }
            Ok(())
        }
        "completed" => {
            if !matches!(state, TransferState::Started | TransferState::Suspended) {
                return Err(conflict(id, op, state));
            }
            cp.complete_transfer(id);
            Ok(())
        }
        _ => {
            let error = message
                .get("error")
                .and_then(jsonld::text)
                .unwrap_or_else(|| "unspecified error".into());
            tracing::warn!(transfer = id, %error, "data plane reported an error");
            if let Some(t) = cp.store().transfer_mut(id) {
                t.errored.push(error);
            }
            Ok(())
        }
    }
}

/// DPS `GET /transfers/{id}/agreement`: the DSP agreement of the transfer.
async fn agreement(
    State(cp): State<ControlPlane>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let store = cp.store();
        let t = store
            .transfer(&id)
            .ok_or_else(|| ApiError::not_found("TransferProcess", &id))?;
        cp.check_callback_auth(&headers, t.data_plane_id.as_deref())?;
        let agreement = store
            .tenant(&t.pc)
            .and_then(|tenant| tenant.agreements.get(&t.contract_id))
            .ok_or_else(|| ApiError::not_found("ContractAgreement", &t.contract_id))?;
        let mut out = agreement.policy.as_object().cloned().unwrap_or_default();
        out.insert("@context".into(), json!([DSP_CONTEXT]));
        out.insert("@id".into(), json!(agreement.id));
        out.insert("@type".into(), json!("Agreement"));
        out.insert("timestamp".into(), json!(agreement.signing_date));
        Ok::<_, ApiError>(Json(Value::Object(out)).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}
