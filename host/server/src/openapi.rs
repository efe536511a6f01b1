//! The OpenAPI document of the admin and tenant APIs, served at `/openapi.json`.

use crate::model::*;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Weft", description = "Admin API (CSP operator) and tenant API of the Weft plugin host. \
        Every route but /healthz and /openapi.json needs a bearer token from the CSP's identity provider. \
        Errors are JSON: {\"error\": code, \"message\": text}."),
    paths(
        crate::admin::upload, crate::admin::list_plugins, crate::admin::get_plugin, crate::admin::get_version,
        crate::admin::delete_version, crate::admin::activate, crate::admin::get_grants, crate::admin::put_grants,
        crate::admin::create_tenant, crate::admin::list_tenants, crate::admin::get_tenant,
        crate::admin::deactivate_tenant, crate::admin::activate_tenant, crate::admin::enable,
        crate::admin::get_enablement, crate::admin::disable, crate::admin::audit,
        crate::tenant::list_apps, crate::tenant::forward,
    ),
    components(schemas(
        ErrorBody, UploadForm, UploadView, HookFailure, PluginView, VersionView, ActivationView, GrantsView,
        VersionCoverage, CreateTenant, TenantView, EnableRequest, EnablementView, AuditView,
    )),
    modifiers(&BearerAuth),
    tags((name = "admin", description = "CSP operator: plugins, grants, tenants, enablements, audit"),
         (name = "tenant", description = "A tenant's apps"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_string());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
