//! The `management` import's backend: tenant-scoped Management API calls.
//!
//! A plugin's request path is relative to its tenant; the client builds
//! `{base}/{version}/participants/{ctx}/{path}`, attaches the tenant's token, adds the JSON-LD
//! management context to object bodies that lack one, and enforces a deadline, read-only
//! retries and a response size cap. Non-2xx answers below 500 come back as a response with
//! their status (a plugin treats 409 on create as "exists"); what a plugin cannot act on
//! becomes an error variant.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;
use weft_runtime::bindings::management::{
    Method, ProcessKind, Request as MgmtRequest, Response as MgmtResponse,
};
use weft_runtime::services::ManagementBackend;
use weft_runtime::{CallContext, GuestError};
use weft_store::Store;

use crate::callback::CallbackAuth;
use crate::config::{ConfigError, ManagementConfig};
use crate::process::Process;
use crate::token::TokenProvider;

/// The JSON-LD context of management bodies (edcv.md §1.1).
pub const MANAGEMENT_CONTEXT: &str = "https://w3id.org/edc/connector/management/v2";

/// Most watches one tenant may hold at once: each costs a state check per watch interval.
pub const MAX_WATCHES_PER_TENANT: u64 = 1_000;

/// Longest `watch` correlation accepted; it is an app's own key, not a payload.
pub const MAX_CORRELATION_BYTES: usize = 1_024;

/// Longest process id accepted in `wait-for-state` and `watch`.
pub const MAX_PROCESS_ID_BYTES: usize = 256;

/// How much of an unexpected control-plane answer is logged.
const LOGGED_BODY_CHARS: usize = 512;

/// Components percent-encoded in a path segment built from a participant context id.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');

/// A participant context id as one URL path segment.
pub(crate) fn segment(ctx: &str) -> String {
    percent_encoding::utf8_percent_encode(ctx, SEGMENT).to_string()
}

/// Cuts text for a log line.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(LOGGED_BODY_CHARS).collect()
}

/// One HTTP exchange with the control plane.
pub(crate) struct Exchange<'a> {
    pub ctx: &'a str,
    pub method: reqwest::Method,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub body: Option<String>,
    pub scopes: &'a [String],
    /// Reads may be retried; writes are sent once.
    pub idempotent: bool,
    pub deadline: Instant,
}

struct Inner {
    config: ManagementConfig,
    http: reqwest::Client,
    tokens: TokenProvider,
    store: Option<Store>,
    wake: Arc<Notify>,
    callbacks: Option<CallbackAuth>,
}

/// The Management API client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct ManagementClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementClient")
            .field("base_url", &self.inner.config.base_url)
            .field("version", &self.inner.config.version)
            .finish_non_exhaustive()
    }
}

fn http_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// The first `message` of an EDC error array, for error texts.
fn edc_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| match v {
        Value::Array(items) => items
            .first()
            .and_then(|i| i.get("message"))
            .and_then(Value::as_str),
        Value::Object(o) => o
            .get("message")
            .or_else(|| o.get("error"))
            .and_then(Value::as_str),
        _ => None,
    });
    excerpt(message.unwrap_or("no details"))
}

/// The error variant for a non-2xx answer the host itself cannot pass on as a response.
pub(crate) fn status_error(status: u16, body: &str, what: &str) -> GuestError {
    let detail = edc_message(body);
    match status {
        400 | 422 => GuestError::Invalid(format!("the control plane refused {what}: {detail}")),
        403 => GuestError::AccessDenied(format!("the control plane denied {what}: {detail}")),
        404 => GuestError::NotFound(what.to_owned()),
        409 => GuestError::Conflict(format!("{what}: {detail}")),
        _ => GuestError::Internal(format!("the control plane answered {status} for {what}")),
    }
}

/// Reads a response body, or `None` when it is larger than `cap`.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

impl ManagementClient {
    /// A client for `config`. With a `store`, `management.watch` registrations are kept
    /// durably (the [`crate::EventHub`] delivers them); without, `watch` is `unavailable`.
    pub fn new(
        config: ManagementConfig,
        store: Option<Store>,
    ) -> Result<ManagementClient, ConfigError> {
        config.validate()?;
        let tokens = TokenProvider::new(config.identity.clone())?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid(format!("HTTP client for the control plane: {e}")))?;
        let callbacks = CallbackAuth::from_config(&config)?;
        Ok(ManagementClient {
            inner: Arc::new(Inner {
                config,
                http,
                tokens,
                store,
                wake: Arc::new(Notify::new()),
                callbacks,
            }),
        })
    }

    pub fn config(&self) -> &ManagementConfig {
        &self.inner.config
    }

    /// The token cache (for metrics: [`TokenProvider::idp_requests`]).
    pub fn tokens(&self) -> &TokenProvider {
        &self.inner.tokens
    }

    pub fn store(&self) -> Option<&Store> {
        self.inner.store.as_ref()
    }

    pub(crate) fn callbacks(&self) -> Option<&CallbackAuth> {
        self.inner.callbacks.as_ref()
    }

    /// Woken when a watch is added, so the event hub checks it without waiting a full interval.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// `{base}/{version}/participants/{ctx}`: the only prefix tenant calls go to.
    pub fn tenant_base(&self, ctx: &str) -> String {
        format!(
            "{}/{}/participants/{}",
            self.inner.config.base_url.trim_end_matches('/'),
            self.inner.config.version.as_str(),
            segment(ctx)
        )
    }

    /// The callback address EDC should notify for `ctx`'s processes, when callbacks are
    /// configured. It carries a token valid for this context only.
    pub fn callback_address(&self, ctx: &str) -> Option<String> {
        self.inner.callbacks.as_ref().map(|c| c.url(ctx))
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.inner.config.limits.deadline_ms)
    }

    /// Sends one request as tenant `ctx`, exactly as a plugin's `management.send` does (the
    /// path is checked again here). Grants are the caller's business: the runtime checks a
    /// plugin's before calling [`ManagementBackend::send`].
    pub async fn send_as(
        &self,
        ctx: &str,
        request: MgmtRequest,
    ) -> Result<MgmtResponse, GuestError> {
        if ctx.is_empty() {
            return Err(GuestError::Invalid(
                "the call has no participant context".into(),
            ));
        }
        let write = weft_runtime::classify_management_path(request.method, &request.path)?;
        let body = self.prepare_body(ctx, request.method, &request.path, request.body)?;
        let config = &self.inner.config;
        let scopes = if write {
            &config.write_scopes
        } else {
            &config.read_scopes
        };
        self.execute(Exchange {
            ctx,
            method: http_method(request.method),
            url: format!("{}/{}", self.tenant_base(ctx), request.path),
            query: request
                .query
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect(),
            body,
            scopes,
            idempotent: !write,
            deadline: self.deadline(),
        })
        .await
    }

    /// Adds the management `@context` to a JSON object body without one and, for new
    /// negotiations and transfers, Weft's callback address. Other JSON passes unchanged.
    fn prepare_body(
        &self,
        ctx: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Option<String>, GuestError> {
        let Some(text) = body else {
            return Ok(None);
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            GuestError::Invalid(format!(
                "the management request body is not valid JSON: {e}"
            ))
        })?;
        let Value::Object(mut object) = value else {
            return Ok(Some(text));
        };
        let mut changed = false;
        if !object.contains_key("@context") {
            object.insert("@context".into(), json!([MANAGEMENT_CONTEXT]));
            changed = true;
        }
        let topic = match path {
            "contractnegotiations" => Some("contract.negotiation"),
            "transferprocesses" => Some("transfer.process"),
            _ => None,
        };
        if let (Method::Post, Some(topic), Some(auth)) =
            (method, topic, self.inner.callbacks.as_ref())
            && self.inner.config.events.inject_callbacks
        {
            changed |= add_callback(&mut object, &auth.url(ctx), topic, auth.prefix());
        }
        if changed {
            Ok(Some(Value::Object(object).to_string()))
        } else {
            Ok(Some(text))
        }
    }

    /// One exchange with the control plane: token, request, 401 refresh, read retries.
    pub(crate) async fn execute(&self, ex: Exchange<'_>) -> Result<MgmtResponse, GuestError> {
        let limits = &self.inner.config.limits;
        let mut retries_left = if ex.idempotent {
            limits.read_retries
        } else {
            0
        };
        let mut backoff = Duration::from_millis(limits.retry_backoff_ms);
        let mut refreshed = false;
        loop {
            let token = self
                .inner
                .tokens
                .token(ex.ctx, ex.scopes, ex.deadline)
                .await?;
            let attempt_deadline = (Instant::now()
                + Duration::from_millis(limits.request_timeout_ms))
            .min(ex.deadline);
            let mut builder = self
                .inner
                .http
                .request(ex.method.clone(), &ex.url)
                .bearer_auth(token.secret())
                .header(reqwest::header::ACCEPT, "application/json");
            if !ex.query.is_empty() {
                builder = builder.query(&ex.query);
            }
            if let Some(body) = &ex.body {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let cap = limits.max_response_bytes;
            let exchange = async {
                let response = builder.send().await?;
                let status = response.status().as_u16();
                let body = read_capped(response, cap).await?;
                Ok::<_, reqwest::Error>((status, body))
            };
            let problem = match tokio::time::timeout_at(attempt_deadline, exchange).await {
                Ok(Ok((401, _))) if !refreshed => {
                    // The token may have been revoked or expired early: one fresh token.
                    refreshed = true;
                    let invalidate = self.inner.tokens.invalidate(ex.ctx, ex.scopes, &token);
                    // Bounded like everything else; on timeout the next token call fails too.
                    let _ = tokio::time::timeout_at(ex.deadline, invalidate).await;
                    tracing::debug!(
                        ctx = ex.ctx,
                        "control plane answered 401; renewing the token once"
                    );
                    continue;
                }
                Ok(Ok((401, _))) => {
                    tracing::warn!(ctx = ex.ctx, url = %ex.url, "control plane refused a fresh token (401)");
                    return Err(GuestError::AccessDenied(
                        "the control plane refused this tenant's credentials".into(),
                    ));
                }
                Ok(Ok((status, body))) if status >= 500 || status == 429 => {
                    let text = body
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    tracing::warn!(ctx = ex.ctx, url = %ex.url, status, body = %excerpt(&text), "control plane error");
                    format!("the control plane answered {status}")
                }
                Ok(Ok((status, None))) => {
                    tracing::warn!(ctx = ex.ctx, url = %ex.url, status, cap, "control plane response over the size cap");
                    return Err(GuestError::LimitExceeded(format!(
                        "the control plane's response is larger than {cap} bytes"
                    )));
                }
                Ok(Ok((status, Some(body)))) => {
                    let body = String::from_utf8(body)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    return Ok(MgmtResponse { status, body });
                }
                Ok(Err(e)) => {
                    tracing::warn!(ctx = ex.ctx, url = %ex.url, "control plane unreachable: {}", e.without_url());
                    "the control plane cannot be reached".to_owned()
                }
                Err(_) => {
                    tracing::warn!(ctx = ex.ctx, url = %ex.url, "control plane did not answer in time");
                    "the control plane did not answer in time".to_owned()
                }
            };
            if retries_left > 0 && Instant::now() + backoff < ex.deadline {
                retries_left -= 1;
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                continue;
            }
            return Err(GuestError::Unavailable(problem));
        }
    }

    /// A host-side read of a tenant resource (`GET {path}`), as JSON.
    pub(crate) async fn get_json(
        &self,
        ctx: &str,
        path: &str,
        deadline: Instant,
    ) -> Result<Value, GuestError> {
        let response = self
            .execute(Exchange {
                ctx,
                method: reqwest::Method::GET,
                url: format!("{}/{path}", self.tenant_base(ctx)),
                query: Vec::new(),
                body: None,
                scopes: &self.inner.config.read_scopes,
                idempotent: true,
                deadline,
            })
            .await?;
        if !(200..300).contains(&response.status) {
            return Err(status_error(response.status, &response.body, path));
        }
        serde_json::from_str(&response.body).map_err(|_| {
            tracing::warn!(ctx, path, body = %excerpt(&response.body), "control plane answered non-JSON");
            GuestError::Internal(format!("the control plane answered {path} with invalid JSON"))
        })
    }

    /// A host-side query (`POST {path}` with a QuerySpec), as a JSON array.
    pub(crate) async fn query(
        &self,
        ctx: &str,
        path: &str,
        query_spec: &Value,
        deadline: Instant,
    ) -> Result<Vec<Value>, GuestError> {
        let response = self
            .execute(Exchange {
                ctx,
                method: reqwest::Method::POST,
                url: format!("{}/{path}", self.tenant_base(ctx)),
                query: Vec::new(),
                body: Some(query_spec.to_string()),
                scopes: &self.inner.config.read_scopes,
                idempotent: true,
                deadline,
            })
            .await?;
        if !(200..300).contains(&response.status) {
            return Err(status_error(response.status, &response.body, path));
        }
        match serde_json::from_str(&response.body) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(GuestError::Internal(format!(
                "the control plane answered {path} without a JSON array"
            ))),
        }
    }

    /// The current state of a process (`GET {kind}/{id}/state`).
    pub async fn process_state(
        &self,
        ctx: &str,
        process: Process,
        id: &str,
        deadline: Instant,
    ) -> Result<String, GuestError> {
        let path = format!("{}/{}/state", process.path(), segment(id));
        let value = self.get_json(ctx, &path, deadline).await?;
        value
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                GuestError::Internal(format!("{process} {id}: the state answer names no state"))
            })
    }

    /// The whole process object (`GET {kind}/{id}`).
    pub async fn process(
        &self,
        ctx: &str,
        process: Process,
        id: &str,
        deadline: Instant,
    ) -> Result<Value, GuestError> {
        let path = format!("{}/{}", process.path(), segment(id));
        self.get_json(ctx, &path, deadline).await
    }

    /// Polls a process's state until it is one of `states` or `timeout` passes.
    pub async fn wait_for(
        &self,
        ctx: &str,
        process: Process,
        id: &str,
        states: &[String],
        timeout: Duration,
    ) -> Result<String, GuestError> {
        check_process_id(id)?;
        let limits = &self.inner.config.limits;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(limits.wait_poll_initial_ms);
        let max_pause =
            Duration::from_millis(limits.wait_poll_max_ms.max(limits.wait_poll_initial_ms));
        let mut last: Option<String> = None;
        loop {
            match self.process_state(ctx, process, id, deadline).await {
                Ok(state) => {
                    if states.iter().any(|s| s.eq_ignore_ascii_case(&state)) {
                        return Ok(state);
                    }
                    last = Some(state);
                }
                // Transient trouble: keep waiting until the deadline.
                Err(GuestError::Unavailable(_) | GuestError::Internal(_)) => {}
                Err(other) => return Err(other),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(GuestError::Unavailable(format!(
                    "{process} {id} did not reach {} within {} ms (last state: {})",
                    states.join("/"),
                    timeout.as_millis(),
                    last.as_deref().unwrap_or("unknown")
                )));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(max_pause);
        }
    }

    /// Registers a watch for `plugin` in `ctx`: checks the process belongs to the tenant,
    /// then stores the watch for the event hub.
    pub async fn add_watch(
        &self,
        ctx: &str,
        plugin: &str,
        process: Process,
        id: &str,
        correlation: &str,
    ) -> Result<(), GuestError> {
        check_process_id(id)?;
        if correlation.len() > MAX_CORRELATION_BYTES || correlation.contains('\0') {
            return Err(GuestError::Invalid(format!(
                "a watch correlation is at most {MAX_CORRELATION_BYTES} bytes, without NUL"
            )));
        }
        let Some(store) = &self.inner.store else {
            return Err(GuestError::Unavailable(
                "watches are not configured on this host".into(),
            ));
        };
        let store_error = |e: weft_store::StoreError| {
            tracing::error!(ctx, plugin, "watch store failed: {e}");
            GuestError::Internal("the host could not store the watch".into())
        };
        if store.mgmt_count_watches(ctx).await.map_err(store_error)? >= MAX_WATCHES_PER_TENANT {
            return Err(GuestError::LimitExceeded(format!(
                "this tenant already holds {MAX_WATCHES_PER_TENANT} watches"
            )));
        }
        // Proves the process exists and is this tenant's (the control plane checks ownership).
        self.process_state(ctx, process, id, self.deadline())
            .await?;
        let watch = weft_store::management::Watch {
            tenant_id: ctx.to_owned(),
            plugin_id: plugin.to_owned(),
            kind: process.kind().to_owned(),
            process_id: id.to_owned(),
            correlation: correlation.to_owned(),
        };
        store.mgmt_add_watch(&watch).await.map_err(store_error)?;
        self.inner.wake.notify_one();
        Ok(())
    }
}

fn check_process_id(id: &str) -> Result<(), GuestError> {
    if id.is_empty() || id.len() > MAX_PROCESS_ID_BYTES || id.chars().any(char::is_control) {
        return Err(GuestError::Invalid(format!(
            "a process id is 1 to {MAX_PROCESS_ID_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// Appends Weft's callback address to `callbackAddresses` unless one of Weft's is there.
/// Returns whether the body changed.
fn add_callback(
    object: &mut Map<String, Value>,
    uri: &str,
    topic: &str,
    weft_prefix: &str,
) -> bool {
    let entry = json!({
        "@type": "CallbackAddress",
        "uri": uri,
        "events": [topic],
        "transactional": false,
    });
    let list = match object.remove("callbackAddresses") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
    };
    let ours = list.iter().any(|c| {
        c.get("uri")
            .and_then(Value::as_str)
            .is_some_and(|u| u.starts_with(weft_prefix))
    });
    let mut list = list;
    if !ours {
        list.push(entry);
    }
    object.insert("callbackAddresses".into(), Value::Array(list));
    !ours
}

impl ManagementClient {
    /// Remembers which app created an asset (and forgets it when the asset is deleted), so
    /// the data plane can route flows on the asset to that app. Failures are logged: the
    /// app's call already succeeded and the selectors of the manifests remain the fallback.
    async fn track_asset_owner(
        &self,
        ctx: &str,
        plugin: &str,
        method: weft_runtime::bindings::management::Method,
        path: &str,
        response: &MgmtResponse,
    ) {
        use weft_runtime::bindings::management::Method;
        let Some(store) = self.store() else { return };
        if !(200..300).contains(&response.status) {
            return;
        }
        let outcome = match (method, path.split('/').collect::<Vec<_>>().as_slice()) {
            (Method::Post, ["assets"]) => {
                let id = serde_json::from_str::<Value>(&response.body)
                    .ok()
                    .and_then(|v| v.get("@id").and_then(Value::as_str).map(str::to_owned));
                match id {
                    Some(id) => store.set_asset_owner(ctx, &id, plugin).await,
                    None => return,
                }
            }
            (Method::Delete, ["assets", id]) => store.delete_asset_owner(ctx, id).await.map(|_| ()),
            _ => return,
        };
        if let Err(e) = outcome {
            tracing::warn!(
                tenant = ctx,
                plugin,
                "could not record the asset's owner: {e}"
            );
        }
    }
}

#[async_trait]
impl ManagementBackend for ManagementClient {
    async fn send(
        &self,
        call: &CallContext,
        request: MgmtRequest,
    ) -> Result<MgmtResponse, GuestError> {
        let ctx = &call.tenant.participant_context_id;
        let (method, path) = (request.method, request.path.clone());
        let response = self.send_as(ctx, request).await?;
        self.track_asset_owner(ctx, &call.plugin_id, method, &path, &response)
            .await;
        Ok(response)
    }

    async fn wait_for_state(
        &self,
        call: &CallContext,
        kind: ProcessKind,
        id: &str,
        states: &[String],
        timeout: Duration,
    ) -> Result<String, GuestError> {
        self.wait_for(
            &call.tenant.participant_context_id,
            Process::from(kind),
            id,
            states,
            timeout,
        )
        .await
    }

    async fn watch(
        &self,
        call: &CallContext,
        kind: ProcessKind,
        id: &str,
        correlation: &str,
    ) -> Result<(), GuestError> {
        self.add_watch(
            &call.tenant.participant_context_id,
            &call.plugin_id,
            Process::from(kind),
            id,
            correlation,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("0123abcd"), "0123abcd");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(segment("did:web:x"), "did:web:x");
        assert_eq!(segment(".."), "..");
    }

    #[test]
    fn callback_is_added_once() {
        let mut o = Map::new();
        assert!(add_callback(
            &mut o,
            "https://w/events/pc?token=t",
            "transfer.process",
            "https://w/events/"
        ));
        assert!(!add_callback(
            &mut o,
            "https://w/events/pc?token=t",
            "transfer.process",
            "https://w/events/"
        ));
        assert_eq!(o["callbackAddresses"].as_array().unwrap().len(), 1);
        let mut o = Map::new();
        o.insert("callbackAddresses".into(), json!({"uri": "https://app/cb"}));
        assert!(add_callback(
            &mut o,
            "https://w/events/pc?token=t",
            "transfer.process",
            "https://w/events/"
        ));
        assert_eq!(o["callbackAddresses"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn edc_errors_are_summarised() {
        let e = status_error(404, "[]", "assets/x");
        assert!(matches!(e, GuestError::NotFound(s) if s == "assets/x"));
        let e = status_error(
            400,
            r#"[{"message":"bad id","type":"ValidationFailure"}]"#,
            "x",
        );
        assert!(matches!(e, GuestError::Invalid(s) if s.contains("bad id")));
        assert!(matches!(
            status_error(403, "{}", "x"),
            GuestError::AccessDenied(_)
        ));
        assert!(matches!(
            status_error(409, "{}", "x"),
            GuestError::Conflict(_)
        ));
        assert!(matches!(
            status_error(418, "{}", "x"),
            GuestError::Internal(_)
        ));
    }
}
