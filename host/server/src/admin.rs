//! The admin API (CSP operator): plugin uploads, versions and activation, the CSP's grants,
//! tenants and their enablements, and the audit log. Every change is audited.
//!
//! Changes take the application's admin lock, so the store (the source of truth) and the
//! in-memory registry always move together; a refused change leaves both untouched.

use crate::app::{Inner, effective_grants, parse_grants};
use crate::body::{capped_stream, drain};
use crate::error::ApiError;
use crate::model::*;
use crate::routes::{JsonBody, QueryParams, call_error};
use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use weft_auth::Principal;
use weft_runtime::config::{MAX_COMPONENT_BYTES, MAX_MANIFEST_BYTES};
use weft_runtime::grants::Grants;
use weft_runtime::{CallContext, Entry, LifecycleOp, LoadError, LoadedPlugin, Tenant};
use weft_store::{
    AuditEntry, AuditFilter, EnablementRecord, PluginRecord, PluginVersionRecord, TenantRecord, now,
};

/// Largest signature field of an upload (a base64 ed25519 signature is 88 bytes).
pub const MAX_SIGNATURE_BYTES: usize = 1 << 10;

/// Largest grants field of an upload.
pub const MAX_GRANTS_FIELD_BYTES: usize = 64 << 10;

type AppState = State<Arc<Inner>>;

impl Inner {
    /// Records an admin action; a failure to record is logged (the change already happened).
    async fn audit(&self, actor: &Principal, action: &str, target: String, detail: Value) {
        let entry = AuditEntry {
            actor: actor.subject.clone(),
            action: action.to_string(),
            target,
            detail_json: detail.to_string(),
        };
        if let Err(e) = self.store.audit(&entry).await {
            tracing::error!(action, target = %entry.target, "could not write the audit log: {e}");
        }
    }

    fn version_view(
        &self,
        plugin: &PluginRecord,
        csp: &Grants,
        v: PluginVersionRecord,
        with_manifest: bool,
    ) -> VersionView {
        let asks: Grants = parse_grants(Some(&v.requested_grants_json), "requested grants");
        VersionView {
            active: plugin.active_version.as_deref() == Some(v.version.as_str()),
            loaded: self.registry.version(&v.plugin_id, &v.version).is_some(),
            missing_grants: csp.missing(&asks),
            asks,
            manifest: with_manifest.then_some(v.manifest_toml),
            version: v.version,
            digest: v.digest,
            signed_by: v.signed_by,
            created_at: ts(v.created_at),
        }
    }

    async fn plugin_view(&self, plugin: PluginRecord) -> Result<PluginView, ApiError> {
        let csp = parse_grants(plugin.granted_json.as_deref(), "CSP grants");
        let versions = self
            .store
            .list_versions(&plugin.id)
            .await?
            .into_iter()
            .map(|v| self.version_view(&plugin, &csp, v, false))
            .collect();
        Ok(PluginView {
            granted: plugin
                .granted_json
                .as_deref()
                .map(|j| parse_grants(Some(j), "CSP grants")),
            id: plugin.id,
            active_version: plugin.active_version,
            created_at: ts(plugin.created_at),
            versions,
        })
    }

    async fn plugin_record(&self, id: &str) -> Result<PluginRecord, ApiError> {
        self.store
            .get_plugin(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("unknown plugin {id}")))
    }

    async fn tenant_record(&self, ctx: &str) -> Result<TenantRecord, ApiError> {
        self.store
            .get_tenant(ctx)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("unknown participant context {ctx}")))
    }

    fn enablement_view(&self, e: EnablementRecord, csp: &Grants) -> EnablementView {
        let loaded = match &e.pinned_version {
            Some(v) => self.registry.version(&e.plugin_id, v),
            None => self.registry.active(&e.plugin_id),
        };
        let narrowed = e
            .narrowed_grants_json
            .as_deref()
            .map(|j| parse_grants(Some(j), "narrowed grants"));
        EnablementView {
            version: loaded.as_ref().map(|p| p.version()),
            effective_grants: loaded
                .as_ref()
                .map(|p| effective_grants(&p.manifest.capabilities, csp, narrowed.as_ref())),
            config: serde_json::from_str(&e.config_json).unwrap_or(Value::Null),
            narrowed_grants: narrowed,
            pinned_version: e.pinned_version,
            enabled_at: ts(e.enabled_at),
            app: e.plugin_id,
        }
    }

    pub(crate) async fn enablement_views(
        &self,
        ctx: &str,
    ) -> Result<Vec<EnablementView>, ApiError> {
        let mut out = Vec::new();
        for e in self.store.list_enablements_for_tenant(ctx).await? {
            let csp = self.csp_grants(&e.plugin_id).await?;
            out.push(self.enablement_view(e, &csp));
        }
        Ok(out)
    }

    /// Points `id` at `version` in the store and the registry; returns the previous active
    /// version. The caller holds the admin lock.
    async fn switch_active(&self, id: &str, version: &str) -> Result<Option<String>, ApiError> {
        let previous = self.plugin_record(id).await?.active_version;
        self.store.set_active_version(id, Some(version)).await?;
        if let Err(e) = self.registry.activate(id, version) {
            // Keep the store and the registry in step: put the store back.
            if let Err(undo) = self.store.set_active_version(id, previous.as_deref()).await {
                tracing::error!(
                    plugin = id,
                    "could not undo the activation in the store: {undo}"
                );
            }
            return Err(ApiError::internal(format!(
                "registry activate {id}@{version}: {e}"
            )));
        }
        Ok(previous)
    }

    /// Calls `on-upgrade` for every tenant that follows the active version of `id`.
    async fn upgrade_hooks(
        &self,
        plugin: &Arc<LoadedPlugin>,
        previous: Option<&str>,
    ) -> Vec<HookFailure> {
        let Some(previous) = previous.filter(|p| *p != plugin.version()) else {
            return Vec::new();
        };
        let mut failures = Vec::new();
        let enablements = match self.store.list_enablements_for_plugin(plugin.id()).await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(
                    plugin = plugin.id(),
                    "could not list enablements for upgrade hooks: {e}"
                );
                return failures;
            }
        };
        let csp = match self.csp_grants(plugin.id()).await {
            Ok(g) => g,
            Err(e) => {
                failures.push(HookFailure {
                    tenant: "*".into(),
                    error: e.message,
                });
                return failures;
            }
        };
        for e in enablements
            .into_iter()
            .filter(|e| e.pinned_version.is_none())
        {
            let tenant = match self.store.get_tenant(&e.tenant_id).await {
                Ok(Some(t)) if t.active => t,
                Ok(_) => continue,
                Err(err) => {
                    failures.push(HookFailure {
                        tenant: e.tenant_id.clone(),
                        error: err.to_string(),
                    });
                    continue;
                }
            };
            let narrowed = e
                .narrowed_grants_json
                .as_deref()
                .map(|j| parse_grants(Some(j), "narrowed grants"));
            let call = lifecycle_call(
                &tenant,
                &e.config_json,
                effective_grants(&plugin.manifest.capabilities, &csp, narrowed.as_ref()),
            );
            let op = LifecycleOp::Upgrade {
                previous_version: previous.to_string(),
            };
            if let Err(err) = run_hook(&self.runtime, plugin, call, op).await {
                tracing::warn!(plugin = plugin.id(), tenant = %tenant.id, "on-upgrade failed: {}", err.message);
                failures.push(HookFailure {
                    tenant: tenant.id,
                    error: err.message,
                });
            }
        }
        failures
    }

    /// Deletes a component file unless another stored version still uses the digest.
    async fn remove_component_if_unused(&self, digest: &str) {
        let plugins = match self.store.list_plugins().await {
            Ok(p) => p,
            Err(e) => return tracing::warn!("keeping component {digest}: {e}"),
        };
        for p in plugins {
            match self.store.list_versions(&p.id).await {
                Ok(versions) if versions.iter().any(|v| v.digest == digest) => return,
                Ok(_) => {}
                Err(e) => return tracing::warn!("keeping component {digest}: {e}"),
            }
        }
        let dir = self.config.plugins_dir();
        for path in [
            dir.join(format!("{digest}.wasm")),
            self.signature_path(digest),
        ] {
            if let Err(e) = tokio::fs::remove_file(&path).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), "could not remove component file: {e}");
            }
        }
    }
}

fn lifecycle_call(tenant: &TenantRecord, config_json: &str, grants: Grants) -> CallContext {
    let mut call = CallContext::new(
        Tenant {
            participant_context_id: tenant.id.clone(),
            did: tenant.did.clone(),
            bpn: tenant.bpn.clone(),
        },
        Entry::Lifecycle,
    );
    call.config_json = config_json.to_string();
    call.grants = Arc::new(grants);
    call
}

/// Runs a lifecycle hook; the guest's refusal is a 422 carrying its message.
async fn run_hook(
    runtime: &Arc<weft_runtime::Runtime>,
    plugin: &Arc<LoadedPlugin>,
    call: CallContext,
    op: LifecycleOp,
) -> Result<(), ApiError> {
    match runtime.lifecycle(plugin, call, op).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(guest)) => Err(ApiError::unprocessable(
            "hook-refused",
            format!("the app refused: {guest:?}"),
        )),
        Err(e) => Err(call_error(e)),
    }
}

fn load_error(err: LoadError) -> ApiError {
    match err {
        LoadError::TooLarge { .. } => ApiError::too_large(err.to_string()),
        LoadError::Manifest(_) => ApiError::unprocessable("invalid-manifest", err.to_string()),
        LoadError::Signature(_) => ApiError::unprocessable("signature-refused", err.to_string()),
        LoadError::InvalidComponent(_) => {
            ApiError::unprocessable("invalid-component", err.to_string())
        }
        LoadError::WrongWorld(_) => ApiError::unprocessable("wrong-world", err.to_string()),
        LoadError::Cache(_) | LoadError::Internal(_) => ApiError::internal(err),
    }
}

fn grants_missing(id: &str, version: &str, missing: Vec<String>) -> ApiError {
    ApiError::conflict(format!(
        "{id}@{version} asks for capabilities the CSP has not granted; grant them with PUT /admin/plugins/{id}/grants first"
    ))
    .with("missing_grants", json!(missing))
    .with_code("grants-missing")
}

impl ApiError {
    fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = code;
        self
    }
}

/// The parts of an upload.
#[derive(Default)]
struct Upload {
    component: Option<Vec<u8>>,
    manifest: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    grants: Option<Vec<u8>>,
}

/// Reads the multipart upload with a cap on the whole body and on each field. After the
/// first problem the rest is still read (and dropped), so the client gets the answer.
async fn read_upload(request: Request, cap: u64) -> Result<Upload, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap) {
        drain(request.into_body()).await;
        return Err(ApiError::too_large(format!(
            "uploads are at most {cap} bytes"
        )));
    }
    let (parts, body) = request.into_parts();
    let (stream, overflow) = capped_stream(body, cap);
    let request = Request::from_parts(parts, Body::from_stream(stream));
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|r| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data upload: {}",
            r.body_text()
        ))
    })?;
    let too_large = |cap: u64| ApiError::too_large(format!("uploads are at most {cap} bytes"));
    let mut upload = Upload::default();
    let mut failure: Option<ApiError> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(if overflow.hit() {
                    too_large(cap)
                } else {
                    failure.unwrap_or_else(|| {
                        ApiError::bad_request(format!(
                            "malformed multipart body: {}",
                            e.body_text()
                        ))
                    })
                });
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let mut discard: Option<Vec<u8>> = None;
        let (slot, limit) = match name.as_str() {
            "component" => (
                &mut upload.component,
                MAX_COMPONENT_BYTES.min(usize::try_from(cap).unwrap_or(usize::MAX)),
            ),
            "manifest" => (&mut upload.manifest, MAX_MANIFEST_BYTES),
            "signature" => (&mut upload.signature, MAX_SIGNATURE_BYTES),
            "grants" => (&mut upload.grants, MAX_GRANTS_FIELD_BYTES),
            _ => {
                failure.get_or_insert_with(|| {
                    ApiError::bad_request(format!(
                        "unknown form field {name:?} (expected component, manifest, signature, grants)"
                    ))
                });
                // Still read it, below, and drop it.
                (&mut discard, 0)
            }
        };
        if slot.is_some() {
            failure.get_or_insert_with(|| {
                ApiError::bad_request(format!("form field {name:?} given twice"))
            });
        }
        let mut buf = Vec::new();
        let mut over = false;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if over || buf.len() + chunk.len() > limit {
                        over = true;
                        buf = Vec::new();
                    } else {
                        buf.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(if overflow.hit() {
                        too_large(cap)
                    } else {
                        failure.unwrap_or_else(|| {
                            ApiError::bad_request(format!(
                                "malformed multipart body: {}",
                                e.body_text()
                            ))
                        })
                    });
                }
            }
        }
        if over && limit > 0 {
            failure.get_or_insert_with(|| {
                ApiError::too_large(format!("form field {name:?} is larger than {limit} bytes"))
            });
        }
        if limit > 0 && slot.is_none() {
            *slot = Some(buf);
        }
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(upload),
    }
}

/// Upload a plugin version.
///
/// Stores the version and, when the CSP's grants cover what its manifest asks, activates it
/// (201). A version asking for more is stored but not activated (202, `missing_grants`).
/// Uploading a stored version again (same digest) changes nothing (200).
#[utoipa::path(post, path = "/admin/plugins", tag = "admin",
    params(UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "already stored", body = UploadView),
        (status = 201, description = "stored (and activated if covered)", body = UploadView),
        (status = 202, description = "stored, not activated: grants missing", body = UploadView),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn upload(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    QueryParams(query): QueryParams<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let upload = read_upload(request, inner.config.max_upload_bytes).await?;
    let component = upload
        .component
        .ok_or_else(|| ApiError::bad_request("the form field `component` is required"))?;
    let manifest = upload
        .manifest
        .ok_or_else(|| ApiError::bad_request("the form field `manifest` is required"))?;
    let manifest = String::from_utf8(manifest)
        .map_err(|_| ApiError::unprocessable("invalid-manifest", "the manifest is not UTF-8"))?;
    let grants = match &upload.grants {
        None => None,
        Some(bytes) => {
            let g: Grants = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::unprocessable("invalid-grants", format!("grants: {e}")))?;
            check_grants(&g, "grants")?;
            Some(g)
        }
    };
    let plugin = inner
        .runtime
        .load_async(
            component.clone(),
            manifest.clone(),
            upload.signature.clone(),
        )
        .await
        .map_err(load_error)?;
    let (id, version) = (plugin.id().to_string(), plugin.version());

    let guard = inner.admin.lock().await;
    if let Some(existing) = inner.store.get_version(&id, &version).await?
        && existing.digest != plugin.digest
    {
        return Err(ApiError::conflict(format!(
            "{id}@{version} already exists with another component (digest {}); publish a new version",
            existing.digest
        )));
    }
    let rel = Inner::component_rel_path(&plugin.digest);
    write_atomically(&inner.config.resolve(&rel), &component).await?;
    if let Some(sig) = &upload.signature {
        write_atomically(&inner.signature_path(&plugin.digest), sig).await?;
    }
    let record = PluginVersionRecord {
        plugin_id: id.clone(),
        version: version.clone(),
        digest: plugin.digest.clone(),
        manifest_toml: manifest,
        requested_grants_json: serde_json::to_string(&plugin.manifest.capabilities)
            .map_err(ApiError::internal)?,
        component_path: rel,
        signed_by: plugin.signed_by.clone(),
        created_at: now(),
    };
    let created = inner.store.put_plugin_version(&record).await?;
    if let Some(g) = &grants {
        inner
            .store
            .set_granted(&id, &serde_json::to_string(g).map_err(ApiError::internal)?)
            .await?;
    }
    let plugin = inner
        .registry
        .insert(plugin)
        .map_err(|e| ApiError::internal(format!("registry insert: {e}")))?;
    let csp = inner.csp_grants(&id).await?;
    let missing = csp.missing(&plugin.manifest.capabilities);
    // A new version is activated when covered; re-uploading a stored one is idempotent
    // (use the activate endpoint to switch), unless the plugin has no active version yet.
    let eligible = created || inner.registry.active(&id).is_none();
    let mut previous = None;
    let activated = if missing.is_empty() && query.activate.unwrap_or(true) && eligible {
        previous = inner.switch_active(&id, &version).await?;
        true
    } else {
        false
    };
    inner
        .audit(
            &who,
            "plugin.upload",
            format!("plugin/{id}/{version}"),
            json!({
                "digest": plugin.digest, "signed_by": plugin.signed_by, "activated": activated,
                "previous_version": previous, "missing_grants": missing, "grants_set": grants, "new": created,
            }),
        )
        .await;
    drop(guard);
    let upgrade_failures = if activated {
        inner.upgrade_hooks(&plugin, previous.as_deref()).await
    } else {
        Vec::new()
    };
    let status = if !missing.is_empty() {
        StatusCode::ACCEPTED
    } else if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = UploadView {
        plugin: id,
        version,
        digest: plugin.digest.clone(),
        activated,
        missing_grants: missing,
        upgrade_failures,
    };
    Ok((status, axum::Json(view)).into_response())
}

/// Writes a file through a temporary name, so a crash never leaves a truncated component.
async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), ApiError> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("component");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", tmp.display())))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

/// List plugins with their versions.
#[utoipa::path(get, path = "/admin/plugins", tag = "admin",
    responses((status = 200, body = Vec<PluginView>)), security(("bearer" = [])))]
pub(crate) async fn list_plugins(
    State(inner): AppState,
) -> Result<axum::Json<Vec<PluginView>>, ApiError> {
    let mut out = Vec::new();
    for p in inner.store.list_plugins().await? {
        out.push(inner.plugin_view(p).await?);
    }
    Ok(axum::Json(out))
}

/// One plugin with its versions.
#[utoipa::path(get, path = "/admin/plugins/{id}", tag = "admin",
    params(("id" = String, Path, description = "plugin id")),
    responses((status = 200, body = PluginView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_plugin(
    State(inner): AppState,
    Path(id): Path<String>,
) -> Result<axum::Json<PluginView>, ApiError> {
    let plugin = inner.plugin_record(&id).await?;
    Ok(axum::Json(inner.plugin_view(plugin).await?))
}

/// One version, with its manifest.
#[utoipa::path(get, path = "/admin/plugins/{id}/versions/{version}", tag = "admin",
    params(("id" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_version(
    State(inner): AppState,
    Path((id, version)): Path<(String, String)>,
) -> Result<axum::Json<VersionView>, ApiError> {
    let plugin = inner.plugin_record(&id).await?;
    let record = inner
        .store
        .get_version(&id, &version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plugin {id} has no version {version}")))?;
    let csp = parse_grants(plugin.granted_json.as_deref(), "CSP grants");
    Ok(axum::Json(inner.version_view(&plugin, &csp, record, true)))
}

/// Delete a version that is neither active nor pinned by a tenant.
#[utoipa::path(delete, path = "/admin/plugins/{id}/versions/{version}", tag = "admin",
    params(("id" = String, Path), ("version" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn delete_version(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path((id, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let _guard = inner.admin.lock().await;
    let record = inner
        .store
        .get_version(&id, &version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plugin {id} has no version {version}")))?;
    inner.store.delete_version(&id, &version).await?;
    if let Err(e) = inner.registry.remove_version(&id, &version) {
        tracing::debug!("registry had no loaded {id}@{version}: {e}");
    }
    inner.remove_component_if_unused(&record.digest).await;
    inner
        .audit(
            &who,
            "plugin.version.delete",
            format!("plugin/{id}/{version}"),
            json!({ "digest": record.digest }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Activate a version (or roll back to an older one): a pointer swap; calls in flight finish
/// on the version they started on. Refused with 409 while the CSP's grants do not cover it.
#[utoipa::path(post, path = "/admin/plugins/{id}/versions/{version}/activate", tag = "admin",
    params(("id" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = ActivationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn activate(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path((id, version)): Path<(String, String)>,
) -> Result<axum::Json<ActivationView>, ApiError> {
    let guard = inner.admin.lock().await;
    let record = inner
        .store
        .get_version(&id, &version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plugin {id} has no version {version}")))?;
    let csp = inner.csp_grants(&id).await?;
    let asks: Grants = parse_grants(Some(&record.requested_grants_json), "requested grants");
    let missing = csp.missing(&asks);
    if !missing.is_empty() {
        return Err(grants_missing(&id, &version, missing));
    }
    let plugin = inner.load_stored(&record).await?;
    let previous = inner.switch_active(&id, &version).await?;
    inner
        .audit(
            &who,
            "plugin.activate",
            format!("plugin/{id}/{version}"),
            json!({ "previous_version": previous }),
        )
        .await;
    drop(guard);
    let upgrade_failures = inner.upgrade_hooks(&plugin, previous.as_deref()).await;
    Ok(axum::Json(ActivationView {
        plugin: id,
        version,
        previous_version: previous,
        upgrade_failures,
    }))
}

async fn grants_view(inner: &Inner, id: &str) -> Result<GrantsView, ApiError> {
    inner.plugin_record(id).await?;
    let granted = inner.csp_grants(id).await?;
    let versions = inner
        .store
        .list_versions(id)
        .await?
        .into_iter()
        .map(|v| {
            let asks: Grants = parse_grants(Some(&v.requested_grants_json), "requested grants");
            VersionCoverage {
                missing_grants: granted.missing(&asks),
                version: v.version,
            }
        })
        .collect();
    Ok(GrantsView {
        plugin: id.to_string(),
        granted,
        versions,
    })
}

/// The CSP's grants for a plugin and which versions they cover.
#[utoipa::path(get, path = "/admin/plugins/{id}/grants", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = GrantsView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_grants(
    State(inner): AppState,
    Path(id): Path<String>,
) -> Result<axum::Json<GrantsView>, ApiError> {
    Ok(axum::Json(grants_view(&inner, &id).await?))
}

/// Replace the CSP's grants for a plugin (the second key). Calls use manifest ∩ grants ∩
/// tenant narrowing at once; a pending version can be activated once covered.
#[utoipa::path(put, path = "/admin/plugins/{id}/grants", tag = "admin",
    params(("id" = String, Path)),
    request_body(content = Object, description = "grants, the shape of a manifest's [capabilities]"),
    responses((status = 200, body = GrantsView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_grants(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(grants): JsonBody<Grants>,
) -> Result<axum::Json<GrantsView>, ApiError> {
    check_grants(&grants, "grants")?;
    let guard = inner.admin.lock().await;
    let previous = inner.plugin_record(&id).await?.granted_json;
    inner
        .store
        .set_granted(
            &id,
            &serde_json::to_string(&grants).map_err(ApiError::internal)?,
        )
        .await?;
    let previous: Option<Value> = previous.and_then(|p| serde_json::from_str(&p).ok());
    inner
        .audit(
            &who,
            "plugin.grants.set",
            format!("plugin/{id}"),
            json!({ "previous": previous, "granted": grants }),
        )
        .await;
    drop(guard);
    Ok(axum::Json(grants_view(&inner, &id).await?))
}

fn tenant_view(t: TenantRecord, apps: Option<Vec<EnablementView>>) -> TenantView {
    TenantView {
        id: t.id,
        did: t.did,
        bpn: t.bpn,
        active: t.active,
        created_at: ts(t.created_at),
        apps,
    }
}

/// Create a tenant (participant context).
#[utoipa::path(post, path = "/admin/tenants", tag = "admin",
    request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_tenant(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    JsonBody(req): JsonBody<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantView>), ApiError> {
    check_tenant_id(&req.id)?;
    check_did(&req.did)?;
    if let Some(bpn) = &req.bpn {
        check_bpn(bpn)?;
    }
    let record = TenantRecord {
        id: req.id,
        did: req.did,
        bpn: req.bpn,
        active: true,
        created_at: now(),
    };
    let _guard = inner.admin.lock().await;
    inner.store.create_tenant(&record).await?;
    inner
        .audit(
            &who,
            "tenant.create",
            format!("tenant/{}", record.id),
            json!({ "did": record.did, "bpn": record.bpn }),
        )
        .await;
    Ok((StatusCode::CREATED, axum::Json(tenant_view(record, None))))
}

/// List tenants.
#[utoipa::path(get, path = "/admin/tenants", tag = "admin",
    responses((status = 200, body = Vec<TenantView>)), security(("bearer" = [])))]
pub(crate) async fn list_tenants(
    State(inner): AppState,
) -> Result<axum::Json<Vec<TenantView>>, ApiError> {
    let tenants = inner.store.list_tenants().await?;
    Ok(axum::Json(
        tenants.into_iter().map(|t| tenant_view(t, None)).collect(),
    ))
}

/// One tenant with the apps it enabled.
#[utoipa::path(get, path = "/admin/tenants/{ctx}", tag = "admin",
    params(("ctx" = String, Path, description = "participant context id")),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_tenant(
    State(inner): AppState,
    Path(ctx): Path<String>,
) -> Result<axum::Json<TenantView>, ApiError> {
    let tenant = inner.tenant_record(&ctx).await?;
    let apps = inner.enablement_views(&ctx).await?;
    Ok(axum::Json(tenant_view(tenant, Some(apps))))
}

async fn set_tenant_active(
    inner: &Inner,
    who: &Principal,
    ctx: &str,
    active: bool,
) -> Result<TenantView, ApiError> {
    let _guard = inner.admin.lock().await;
    inner.store.set_tenant_active(ctx, active).await?;
    let action = if active {
        "tenant.activate"
    } else {
        "tenant.deactivate"
    };
    inner
        .audit(who, action, format!("tenant/{ctx}"), json!({}))
        .await;
    Ok(tenant_view(inner.tenant_record(ctx).await?, None))
}

/// Deactivate a tenant: its API calls are refused (403); data and enablements are kept.
#[utoipa::path(post, path = "/admin/tenants/{ctx}/deactivate", tag = "admin",
    params(("ctx" = String, Path)),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn deactivate_tenant(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path(ctx): Path<String>,
) -> Result<axum::Json<TenantView>, ApiError> {
    Ok(axum::Json(
        set_tenant_active(&inner, &who, &ctx, false).await?,
    ))
}

/// Re-activate a tenant.
#[utoipa::path(post, path = "/admin/tenants/{ctx}/activate", tag = "admin",
    params(("ctx" = String, Path)),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn activate_tenant(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path(ctx): Path<String>,
) -> Result<axum::Json<TenantView>, ApiError> {
    Ok(axum::Json(
        set_tenant_active(&inner, &who, &ctx, true).await?,
    ))
}

/// Enable (or reconfigure) an app for a tenant: runs the app's `on-enable` for the tenant
/// with the new config and grants; if it fails, nothing changes.
#[utoipa::path(put, path = "/admin/tenants/{ctx}/apps/{app}", tag = "admin",
    params(("ctx" = String, Path), ("app" = String, Path)),
    request_body = EnableRequest,
    responses((status = 200, body = EnablementView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn enable(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path((ctx, app)): Path<(String, String)>,
    JsonBody(req): JsonBody<EnableRequest>,
) -> Result<axum::Json<EnablementView>, ApiError> {
    if let Some(g) = &req.grants {
        check_grants(g, "grants")?;
    }
    let config = req.config.unwrap_or_else(|| json!({}));
    let config_json = config.to_string();
    let _guard = inner.admin.lock().await;
    let tenant = inner.tenant_record(&ctx).await?;
    if !tenant.active {
        return Err(ApiError::conflict(format!(
            "participant context {ctx} is deactivated"
        )));
    }
    let plugin_record = inner.plugin_record(&app).await?;
    let csp = parse_grants(plugin_record.granted_json.as_deref(), "CSP grants");
    let plugin = match &req.pinned_version {
        Some(v) => {
            let record =
                inner.store.get_version(&app, v).await?.ok_or_else(|| {
                    ApiError::not_found(format!("plugin {app} has no version {v}"))
                })?;
            let asks: Grants =
                parse_grants(Some(&record.requested_grants_json), "requested grants");
            let missing = csp.missing(&asks);
            if !missing.is_empty() {
                return Err(grants_missing(&app, v, missing));
            }
            inner.load_stored(&record).await?
        }
        None => inner.registry.active(&app).ok_or_else(|| {
            ApiError::conflict(format!(
                "app {app} has no active version; activate one or pin a version"
            ))
        })?,
    };
    let grants = effective_grants(&plugin.manifest.capabilities, &csp, req.grants.as_ref());
    let call = lifecycle_call(&tenant, &config_json, grants);
    run_hook(&inner.runtime, &plugin, call, LifecycleOp::Enable).await?;
    let record = EnablementRecord {
        tenant_id: ctx.clone(),
        plugin_id: app.clone(),
        pinned_version: req.pinned_version.clone(),
        config_json,
        narrowed_grants_json: match &req.grants {
            Some(g) => Some(serde_json::to_string(g).map_err(ApiError::internal)?),
            None => None,
        },
        enabled_at: now(),
    };
    inner.store.put_enablement(&record).await?;
    inner
        .audit(
            &who,
            "tenant.app.enable",
            format!("tenant/{ctx}/apps/{app}"),
            json!({ "version": plugin.version(), "pinned_version": req.pinned_version, "config": config, "narrowed_grants": req.grants }),
        )
        .await;
    Ok(axum::Json(inner.enablement_view(record, &csp)))
}

/// A tenant's enablement of one app.
#[utoipa::path(get, path = "/admin/tenants/{ctx}/apps/{app}", tag = "admin",
    params(("ctx" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = EnablementView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_enablement(
    State(inner): AppState,
    Path((ctx, app)): Path<(String, String)>,
) -> Result<axum::Json<EnablementView>, ApiError> {
    let e = inner
        .store
        .get_enablement(&ctx, &app)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("app {app} is not enabled for {ctx}")))?;
    let csp = inner.csp_grants(&app).await?;
    Ok(axum::Json(inner.enablement_view(e, &csp)))
}

/// Disable an app for a tenant: runs the app's `on-disable` first; if it fails the app stays
/// enabled (unless `force=true`). The tenant's app state is kept.
#[utoipa::path(delete, path = "/admin/tenants/{ctx}/apps/{app}", tag = "admin",
    params(("ctx" = String, Path), ("app" = String, Path), DisableQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn disable(
    State(inner): AppState,
    Extension(who): Extension<Principal>,
    Path((ctx, app)): Path<(String, String)>,
    QueryParams(query): QueryParams<DisableQuery>,
) -> Result<StatusCode, ApiError> {
    let force = query.force.unwrap_or(false);
    let _guard = inner.admin.lock().await;
    let tenant = inner.tenant_record(&ctx).await?;
    let e = inner
        .store
        .get_enablement(&ctx, &app)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("app {app} is not enabled for {ctx}")))?;
    let plugin = match &e.pinned_version {
        Some(v) => inner.registry.version(&app, v),
        None => inner.registry.active(&app),
    };
    let hook = match plugin {
        Some(plugin) => {
            let csp = inner.csp_grants(&app).await?;
            let narrowed = e
                .narrowed_grants_json
                .as_deref()
                .map(|j| parse_grants(Some(j), "narrowed grants"));
            let call = lifecycle_call(
                &tenant,
                &e.config_json,
                effective_grants(&plugin.manifest.capabilities, &csp, narrowed.as_ref()),
            );
            run_hook(&inner.runtime, &plugin, call, LifecycleOp::Disable).await
        }
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "app-unavailable",
            format!(
                "app {app} has no loaded version to run on-disable; use force=true to disable anyway"
            ),
        )),
    };
    if let Err(err) = &hook {
        if !force {
            return Err(err.clone());
        }
        tracing::warn!(tenant = %ctx, app = %app, "disabling despite a failed on-disable: {}", err.message);
    }
    inner.store.delete_enablement(&ctx, &app).await?;
    inner
        .audit(
            &who,
            "tenant.app.disable",
            format!("tenant/{ctx}/apps/{app}"),
            json!({ "forced": force, "hook_error": hook.err().map(|e| e.message) }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/audit", tag = "admin",
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditView>)), security(("bearer" = [])))]
pub(crate) async fn audit(
    State(inner): AppState,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<axum::Json<Vec<AuditView>>, ApiError> {
    let filter = AuditFilter {
        target_prefix: query.target_prefix,
        limit: query.limit.unwrap_or(weft_store::DEFAULT_AUDIT_PAGE),
        before_id: query.before_id,
    };
    let records = inner.store.list_audit(&filter).await?;
    Ok(axum::Json(
        records
            .into_iter()
            .map(|r| AuditView {
                id: r.id,
                at: ts(r.at),
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: serde_json::from_str(&r.detail_json).unwrap_or(Value::Null),
            })
            .collect(),
    ))
}
