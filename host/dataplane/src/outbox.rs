//! The callback worker: delivers queued `/prepared`, `/started`, `/completed` and
//! `/errored` callbacks to the flow's control plane, retrying with exponential backoff until
//! a 2xx. The queue is the store's outbox, so callbacks survive a restart; a claim (lease)
//! keeps two replicas from sending the same callback at once, and a flow's callbacks go out
//! in the order they were queued.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use weft_store::flows::CallbackRecord;

use crate::auth::KnownControlPlane;
use crate::config::{CALLBACK_BATCH, CALLBACK_CONCURRENCY};
use crate::engine::{Engine, segment};

/// Extra time a claimed callback stays leased beyond the request timeout, so a slow
/// worker's claim never lapses while its request is still running.
pub(crate) const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// Delay after the store failed before the worker tries again.
pub(crate) const STORE_RETRY: Duration = Duration::from_secs(1);

/// Runs the worker until the task is aborted.
pub(crate) async fn run(engine: Arc<Engine>) {
    loop {
        let delay = match deliver_due(&engine).await {
            Ok(true) => continue,
            Ok(false) => next_delay(&engine).await,
            Err(e) => {
                tracing::error!(target: "weft::dataplane", "callback outbox unavailable: {e}");
                STORE_RETRY
            }
        };
        tokio::select! {
            () = engine.wake.notified() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// How long to sleep: until the next queued callback is due, at most the poll interval.
async fn next_delay(engine: &Engine) -> Duration {
    let poll = Duration::from_millis(engine.config.callbacks.poll_ms.max(1));
    match engine.store.next_callback_due().await {
        Ok(Some(at)) => {
            let until = at - weft_store::now();
            Duration::try_from(until)
                .unwrap_or(Duration::ZERO)
                .min(poll)
        }
        Ok(None) => poll,
        Err(e) => {
            tracing::error!(target: "weft::dataplane", "callback outbox unavailable: {e}");
            STORE_RETRY
        }
    }
}

/// Delivers one batch of due callbacks; `true` when the batch was full (more may wait).
async fn deliver_due(engine: &Arc<Engine>) -> Result<bool, weft_store::StoreError> {
    let due = engine
        .store
        .due_callbacks(weft_store::now(), CALLBACK_BATCH)
        .await?;
    let full = due.len() == CALLBACK_BATCH as usize;
    futures::stream::iter(due)
        .for_each_concurrent(CALLBACK_CONCURRENCY, |cb| async move {
            deliver(engine, cb).await
        })
        .await;
    Ok(full)
}

async fn deliver(engine: &Engine, cb: CallbackRecord) {
    let timeout = Duration::from_millis(engine.config.callbacks.timeout_ms);
    let lease = weft_store::now() + timeout + LEASE_MARGIN;
    match engine
        .store
        .claim_callback(cb.id, cb.next_attempt_at, lease)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(target: "weft::dataplane", "could not claim callback {}: {e}", cb.id);
            return;
        }
    }
    match send(engine, &cb, timeout).await {
        Ok(()) => {
            tracing::info!(target: "weft::dataplane", tenant = %cb.tenant_id, flow = %cb.flow_id, kind = %cb.kind,
                attempts = cb.attempts + 1, "callback delivered");
            if let Err(e) = engine.store.finish_callback(cb.id).await {
                tracing::error!(target: "weft::dataplane", "delivered callback {} could not be removed (it will be sent again): {e}", cb.id);
            }
        }
        Err(reason) => {
            let attempts = cb.attempts + 1;
            let config = &engine.config.callbacks;
            let dead = attempts >= i64::from(config.max_attempts);
            let backoff = config.backoff_ms(u32::try_from(attempts).unwrap_or(u32::MAX));
            let next = weft_store::now() + Duration::from_millis(backoff);
            if dead {
                tracing::error!(target: "weft::dataplane", tenant = %cb.tenant_id, flow = %cb.flow_id, kind = %cb.kind,
                    attempts, "callback given up: {reason}");
            } else {
                tracing::warn!(target: "weft::dataplane", tenant = %cb.tenant_id, flow = %cb.flow_id, kind = %cb.kind,
                    attempts, retry_in_ms = backoff, "callback failed: {reason}");
            }
            if let Err(e) = engine
                .store
                .reschedule_callback(cb.id, attempts, next, &reason, dead)
                .await
            {
                tracing::error!(target: "weft::dataplane", "could not reschedule callback {}: {e}", cb.id);
            }
        }
    }
}

/// Sends one callback; `Err` says why it must be retried.
async fn send(engine: &Engine, cb: &CallbackRecord, timeout: Duration) -> Result<(), String> {
    let flow = match engine.store.get_flow(&cb.tenant_id, &cb.flow_id).await {
        Ok(Some(f)) => f,
        // The flow was discarded: nobody is waiting for this callback.
        Ok(None) => return Ok(()),
        Err(e) => return Err(format!("store: {e}")),
    };
    let known = engine
        .control_planes(&cb.tenant_id)
        .await
        .map_err(|e| e.to_string())?;
    let control_plane: Option<&KnownControlPlane> = flow
        .control_plane_id
        .as_deref()
        .and_then(|id| known.iter().find(|c| c.id == id))
        .or_else(|| known.first());
    let base = match (&flow.callback_address, control_plane) {
        (Some(address), _) => address.clone(),
        (None, Some(cp)) => cp.endpoint.clone(),
        (None, None) => {
            return Err("no control plane is registered for the participant context".into());
        }
    };
    let url = format!(
        "{}/transfers/{}/dataflow/{}",
        base.trim_end_matches('/'),
        segment(&flow.id),
        cb.kind
    );
    let authorization = match control_plane {
        Some(cp) => {
            engine
                .auth
                .callback_authorization(&cb.tenant_id, cp)
                .await?
        }
        None => None,
    };
    let mut request = engine
        .http
        .post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(cb.body_json.clone())
        .timeout(timeout);
    if let Some(value) = authorization {
        let mut value = http::HeaderValue::from_str(&value)
            .map_err(|_| "the callback authorization is not a header value")?;
        value.set_sensitive(true);
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if matches!(status.as_u16(), 401 | 403)
        && let Some(cp) = control_plane
    {
        engine.auth.forget_token(&cb.tenant_id, cp).await;
    }
    Err(format!("POST {url} answered {status}"))
}
