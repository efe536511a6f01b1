//! Calling a plugin: every call gets a fresh `Store` and instance (nothing of one tenant
//! survives into the next call), a memory cap summed over all memories, a guest-CPU
//! deadline (epochs) and a wall-clock timeout. Traps and limit hits come back as a typed
//! [`CallError`] naming the limit, the plugin and the tenant; the host never crashes.

use crate::bindings::data_flows::{DataFlow, Decision};
use crate::bindings::events::Event;
use crate::call::{CallContext, HostState, LimitHit};
use crate::config::CallLimits;
use crate::plugin::LoadedPlugin;
use crate::runtime::Runtime;
use crate::services::GuestError;
use crate::unread::LeftUnread;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot::error::RecvError;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A lifecycle operation.
#[derive(Debug, Clone)]
pub enum LifecycleOp {
    Enable,
    Disable,
    Upgrade { previous_version: String },
}

/// A DPS signal for the `data-flows` export.
#[derive(Debug, Clone)]
pub enum FlowSignal {
    Prepare(DataFlow),
    Start(DataFlow),
    Started(DataFlow),
    Suspend(DataFlow, Option<String>),
    Resume(DataFlow),
    Terminate(DataFlow, Option<String>),
    Completed(DataFlow),
}

/// What a `data-flows` hook answered.
#[derive(Debug, Clone)]
pub enum FlowOutcome {
    /// `prepare` / `start` answered with a decision.
    Decision(Decision),
    /// Any other signal was accepted.
    Accepted,
}

/// Why a call failed (the guest's own `error` variant is not a failure of the call).
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}@{version} ({entry}) for tenant {tenant}: {kind}")]
pub struct CallError {
    pub plugin: String,
    pub version: String,
    pub tenant: String,
    pub entry: &'static str,
    pub kind: CallErrorKind,
}

/// The cause of a [`CallError`].
#[derive(Debug, thiserror::Error)]
pub enum CallErrorKind {
    #[error(transparent)]
    Limit(LimitHit),
    #[error("guest trapped: {0}")]
    Trap(String),
    /// Every pooled instance slot is in use; retry shortly.
    #[error("no instance slot free")]
    Busy,
    #[error("could not instantiate: {0}")]
    Instantiate(String),
    #[error("host error: {0}")]
    Host(String),
    #[error("the plugin sent no HTTP response")]
    NoResponse,
}

impl CallError {
    /// Whether the call hit one of its limits (as opposed to a guest bug).
    pub fn limit(&self) -> Option<LimitHit> {
        match self.kind {
            CallErrorKind::Limit(hit) => Some(hit),
            _ => None,
        }
    }
}

/// Tenant and entry point of a call, for errors.
type Who = (String, &'static str);

/// Classifies a wasmtime error of a call.
fn classify(err: &wasmtime::Error, limits: CallLimits, stderr: &str) -> CallErrorKind {
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return CallErrorKind::Limit(*hit);
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return CallErrorKind::Busy;
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt | Trap::OutOfFuel => CallErrorKind::Limit(LimitHit::Cpu {
                limit_ms: limits.cpu_ms,
            }),
            other => {
                let panic = stderr
                    .lines()
                    .find(|l| l.contains("panicked"))
                    .unwrap_or("")
                    .trim();
                if panic.is_empty() {
                    CallErrorKind::Trap(other.to_string())
                } else {
                    CallErrorKind::Trap(format!("{other} ({panic})"))
                }
            }
        };
    }
    CallErrorKind::Host(format!("{err:#}"))
}

/// Runs one export call on a fresh instance, with all limits. A macro rather than a
/// function taking an async closure, so the resulting future stays `Send`.
macro_rules! run_export {
    ($rt:expr, $plugin:expr, $call:expr, $export:ident, |$store:ident, $inst:ident| $body:expr) => {{
        let rt: &Runtime = $rt;
        let plugin: &LoadedPlugin = $plugin;
        let call: CallContext = $call;
        let who: Who = (
            call.tenant.participant_context_id.clone(),
            call.entry.name(),
        );
        let (mut store, limits) = rt.new_store(plugin, call);
        let work = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            let $inst = plugin.exports.$export.load(&mut store, &instance)?;
            let $store = &mut store;
            $body
        };
        let outcome = tokio::time::timeout(Duration::from_millis(limits.wall_ms), work).await;
        rt.finish(plugin, &who, limits, &store, outcome)
    }};
}

impl Runtime {
    /// A fresh store for one call, with every limit armed.
    fn new_store(
        &self,
        plugin: &LoadedPlugin,
        mut call: CallContext,
    ) -> (Store<HostState>, CallLimits) {
        let ceiling = self.config().max_limits;
        let limits = call.limits.map_or(plugin.limits, |l| l.min(ceiling));
        call.plugin_id = plugin.id().to_string();
        call.plugin_version = plugin.version();
        let tick_ms = self.config().epoch_tick_ms.max(1);
        let state = HostState::new(Arc::new(call), self.services().clone(), limits, tick_ms);
        let mut store = Store::new(self.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // The CPU meter: the callback runs only when guest code observes that the epoch
        // passed its deadline, so it counts ticks during which the guest ran; time in
        // host calls is not charged. Yielding keeps a busy guest from holding a worker
        // thread for its whole budget.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > state.cpu_tick_budget {
                return Err(LimitHit::Cpu {
                    limit_ms: state.cpu_limit_ms,
                }
                .into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        self.stats().calls.fetch_add(1, Ordering::Relaxed);
        (store, limits)
    }

    fn call_error(&self, plugin: &LoadedPlugin, who: &Who, kind: CallErrorKind) -> CallError {
        self.stats().failed_calls.fetch_add(1, Ordering::Relaxed);
        let err = CallError {
            plugin: plugin.id().to_string(),
            version: plugin.version(),
            tenant: who.0.clone(),
            entry: who.1,
            kind,
        };
        tracing::warn!(plugin = %err.plugin, version = %err.version, tenant = %err.tenant, entry = err.entry, "call failed: {}", err.kind);
        err
    }

    /// Maps the outcome of an export call (value, trap, or wall-clock timeout).
    fn finish<R>(
        &self,
        plugin: &LoadedPlugin,
        who: &Who,
        limits: CallLimits,
        store: &Store<HostState>,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, CallError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let kind = classify(&e, limits, &store.data().stderr_text());
                Err(self.call_error(plugin, who, kind))
            }
            Err(_) => {
                let kind = CallErrorKind::Limit(LimitHit::WallClock {
                    limit_ms: limits.wall_ms,
                });
                Err(self.call_error(plugin, who, kind))
            }
        }
    }

    /// Calls a `lifecycle` hook.
    pub async fn lifecycle(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        op: LifecycleOp,
    ) -> Result<Result<(), GuestError>, CallError> {
        run_export!(self, plugin, call, lifecycle, |store, l| {
            match op {
                LifecycleOp::Enable => l.call_on_enable(store).await,
                LifecycleOp::Disable => l.call_on_disable(store).await,
                LifecycleOp::Upgrade { previous_version } => {
                    l.call_on_upgrade(store, &previous_version).await
                }
            }
        })
    }

    /// Calls a `data-flows` hook.
    pub async fn data_flow(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        signal: FlowSignal,
    ) -> Result<Result<FlowOutcome, GuestError>, CallError> {
        run_export!(self, plugin, call, data_flows, |store, d| {
            let accepted = |r: Result<(), GuestError>| r.map(|()| FlowOutcome::Accepted);
            Ok(match signal {
                FlowSignal::Prepare(f) => d
                    .call_on_prepare(store, &f)
                    .await?
                    .map(FlowOutcome::Decision),
                FlowSignal::Start(f) => {
                    d.call_on_start(store, &f).await?.map(FlowOutcome::Decision)
                }
                FlowSignal::Started(f) => accepted(d.call_on_started(store, &f).await?),
                FlowSignal::Suspend(f, r) => {
                    accepted(d.call_on_suspend(store, &f, r.as_deref()).await?)
                }
                FlowSignal::Resume(f) => accepted(d.call_on_resume(store, &f).await?),
                FlowSignal::Terminate(f, r) => {
                    accepted(d.call_on_terminate(store, &f, r.as_deref()).await?)
                }
                FlowSignal::Completed(f) => accepted(d.call_on_completed(store, &f).await?),
            })
        })
    }

    /// Calls the `events` export.
    pub async fn event(
        &self,
        plugin: &LoadedPlugin,
        call: CallContext,
        event: Event,
    ) -> Result<Result<(), GuestError>, CallError> {
        run_export!(self, plugin, call, events, |store, e| {
            e.call_on_event(store, &event).await
        })
    }

    /// Serves an HTTP request (tenant API or data) through `wasi:http/incoming-handler`.
    ///
    /// Returns as soon as the guest sets the response; the body keeps streaming from the
    /// still-running call, which stays under the call's limits (a wall-clock hit ends the
    /// body early).
    pub async fn handle_http<B>(
        self: &Arc<Self>,
        plugin: Arc<LoadedPlugin>,
        call: CallContext,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, CallError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let who: Who = (
            call.tenant.participant_context_id.clone(),
            call.entry.name(),
        );
        let (mut store, limits) = self.new_store(&plugin, call);
        let request = request.map(LeftUnread::new);
        let (sender, mut receiver) = tokio::sync::oneshot::channel();
        let prepared = (|| -> wasmtime::Result<_> {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok((req, out))
        })();
        let (req, out) = match prepared {
            Ok(parts) => parts,
            Err(e) => {
                return Err(self.call_error(&plugin, &who, CallErrorKind::Host(format!("{e:#}"))));
            }
        };
        let rt = self.clone();
        let task_plugin = plugin.clone();
        let task_who = who.clone();
        let mut work = Uncancelled::new(async move {
            let work = async {
                let instance = task_plugin.pre.instantiate_async(&mut store).await?;
                let handler = task_plugin.exports.http.load(&mut store, &instance)?;
                handler.call_handle(&mut store, req, out).await
            };
            match tokio::time::timeout(Duration::from_millis(limits.wall_ms), work).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    let kind = classify(&e, limits, &store.data().stderr_text());
                    Err(rt.call_error(&task_plugin, &task_who, kind))
                }
                Err(_) => {
                    let kind = CallErrorKind::Limit(LimitHit::WallClock {
                        limit_ms: limits.wall_ms,
                    });
                    Err(rt.call_error(&task_plugin, &task_who, kind))
                }
            }
        });
        // The call runs in this task until it either ends (the usual case for a body held
        // in memory, which the SDK finishes before handing over the head) or hands over a
        // response head while it still streams the body: then the rest of the call moves
        // to a task of its own and the response goes back at once.
        let ended = tokio::select! {
            biased;
            ended = &mut work => ended,
            head = &mut receiver => match head {
                Ok(head) => {
                    work.detach();
                    return self.http_head(&plugin, &who, Ok(head));
                }
                // The guest dropped the outparam unanswered: its call says why.
                Err(_) => work.await,
            },
        };
        match (receiver.try_recv(), ended) {
            (Ok(head), _) => self.http_head(&plugin, &who, Ok(head)),
            (Err(_), Ok(())) => Err(self.call_error(&plugin, &who, CallErrorKind::NoResponse)),
            (Err(_), Err(e)) => Err(e),
        }
    }

    /// The response head a guest handed over (or why none came).
    fn http_head(
        &self,
        plugin: &LoadedPlugin,
        who: &Who,
        head: Result<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>, RecvError>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, CallError> {
        match head {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(self.call_error(
                plugin,
                who,
                CallErrorKind::Trap(format!("guest answered with an error: {code:?}")),
            )),
            Err(_) => Err(self.call_error(plugin, who, CallErrorKind::NoResponse)),
        }
    }
}

/// A call that is never cancelled halfway: if whoever awaits it goes away first (an HTTP
/// client hung up), the rest of the call moves to a task of its own, so a guest's side
/// effects (state, Management API calls) are not cut off between two host calls.
struct Uncancelled<F: Future<Output: Send + 'static> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output: Send + 'static> + Send + 'static> Uncancelled<F> {
    fn new(call: F) -> Self {
        Uncancelled(Some(Box::pin(call)))
    }

    /// Lets the rest of the call run on a task of its own.
    fn detach(mut self) {
        if let Some(call) = self.0.take() {
            tokio::spawn(call);
        }
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Future for Uncancelled<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(call) = self.0.as_mut() else {
            // Polled after it ended: there is nothing more to give.
            return Poll::Pending;
        };
        let output = std::task::ready!(call.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(output)
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Drop for Uncancelled<F> {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(call);
                }
                Err(_) => tracing::warn!("a plugin call was dropped unfinished outside a runtime"),
            }
        }
    }
}
