//! Weft's registration as each tenant's DPS data plane (edcv.md §1.5, dps.md §3): one
//! registration per participant context, `dataplaneId` = `{prefix}{ctx}`, endpoint
//! `{public-url}/dps/{ctx}/dataflows`, the union of the profiles of the tenant's enabled apps,
//! sent as both `profiles` (DPS) and `transferTypes` (EDC), in the v5beta form or JAD's
//! v4alpha form. The server calls [`ManagementClient::sync_dataplane`] whenever a tenant's
//! enablements change.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tokio::time::Instant;
use weft_runtime::manifest::Manifest;

use crate::client::{Exchange, ManagementClient, segment};
use crate::config::RegistrationForm;
use crate::error::ManagementError;

/// What was registered for a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub dataplane_id: String,
    pub endpoint: String,
    pub profiles: Vec<String>,
}

/// What [`ManagementClient::sync_dataplane`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Registered or updated.
    Registered(Registration),
    /// The stored registration already has these profiles.
    Unchanged,
    /// No profiles remain: the registration was removed.
    Removed,
    /// No profiles and nothing registered.
    Nothing,
}

/// The union of the DPS profiles a set of enabled apps declares.
pub fn dataplane_profiles<'a>(
    manifests: impl IntoIterator<Item = &'a Manifest>,
) -> BTreeSet<String> {
    manifests
        .into_iter()
        .filter_map(|m| m.data_plane.as_ref())
        .flat_map(|dp| dp.profiles.iter().cloned())
        .collect()
}

impl ManagementClient {
    /// Weft's `dataplaneId` for `ctx`.
    pub fn dataplane_id(&self, ctx: &str) -> String {
        format!("{}{ctx}", self.config().dataplane.id_prefix)
    }

    /// Weft's signaling endpoint for `ctx` (`{public-url}/dps/{ctx}/dataflows`).
    pub fn dataplane_endpoint(&self, ctx: &str) -> Result<String, ManagementError> {
        let public = self.config().public_url.as_deref().ok_or_else(|| {
            ManagementError::NotConfigured(
                "public-url (the data-plane endpoint the control plane calls)".into(),
            )
        })?;
        Ok(format!(
            "{}/dps/{}/dataflows",
            public.trim_end_matches('/'),
            segment(ctx)
        ))
    }

    /// The method, URL and body that register `profiles` for `ctx` in the configured form.
    pub fn dataplane_registration(
        &self,
        ctx: &str,
        profiles: &BTreeSet<String>,
    ) -> Result<(reqwest::Method, String, Value), ManagementError> {
        let config = self.config();
        let dp = &config.dataplane;
        let id = self.dataplane_id(ctx);
        let endpoint = self.dataplane_endpoint(ctx)?;
        let profiles: Vec<&String> = profiles.iter().collect();
        let transfer_types: BTreeSet<&String> = profiles
            .iter()
            .copied()
            .chain(
                profiles
                    .iter()
                    .flat_map(|p| dp.transfer_types.get(*p).into_iter().flatten()),
            )
            .collect();
        Ok(match config.registration_form() {
            RegistrationForm::V5beta => {
                let mut body = json!({
                    "dataplaneId": id,
                    "endpoint": endpoint,
                    "profiles": profiles,
                    "transferTypes": transfer_types,
                    "labels": dp.labels,
                });
                if let Some(auth) = &dp.authorization {
                    body["authorization"] = auth.0.clone();
                }
                (
                    reqwest::Method::PUT,
                    format!("{}/dataplanes", self.tenant_base(ctx)),
                    body,
                )
            }
            RegistrationForm::JadV4alpha => {
                let body = json!({
                    "id": id,
                    "url": endpoint,
                    "allowedSourceTypes": profiles,
                    "allowedTransferTypes": transfer_types,
                });
                let url = format!(
                    "{}/v4alpha/dataplanes/{}",
                    config.base_url.trim_end_matches('/'),
                    segment(ctx)
                );
                (reqwest::Method::POST, url, body)
            }
        })
    }

    fn registration_scopes(&self) -> &[String] {
        self.config()
            .dataplane
            .scopes
            .as_deref()
            .unwrap_or(&self.config().write_scopes)
    }

    fn registration_deadline(&self) -> Instant {
        Instant::now() + std::time::Duration::from_millis(self.config().limits.deadline_ms)
    }

    /// Registers (or re-registers, replacing) Weft as `ctx`'s data plane for `profiles`.
    pub async fn register_dataplane(
        &self,
        ctx: &str,
        profiles: &BTreeSet<String>,
    ) -> Result<Registration, ManagementError> {
        if profiles.is_empty() {
            return Err(ManagementError::Request(
                "a data-plane registration needs at least one profile".into(),
            ));
        }
        let (method, url, body) = self.dataplane_registration(ctx, profiles)?;
        let response = self
            .execute(Exchange {
                ctx,
                method,
                url,
                query: Vec::new(),
                body: Some(body.to_string()),
                scopes: self.registration_scopes(),
                // Registration replaces by id: repeating it is harmless.
                idempotent: true,
                deadline: self.registration_deadline(),
            })
            .await?;
        if !(200..300).contains(&response.status) {
            tracing::warn!(ctx, status = response.status, body = %crate::client::excerpt(&response.body),
                "data-plane registration refused");
            return Err(ManagementError::Rejected {
                status: response.status,
                detail: crate::client::excerpt(&response.body),
            });
        }
        let registration = Registration {
            dataplane_id: self.dataplane_id(ctx),
            endpoint: self.dataplane_endpoint(ctx)?,
            profiles: profiles.iter().cloned().collect(),
        };
        if let Some(store) = self.store() {
            let profiles_json =
                serde_json::to_string(&registration.profiles).unwrap_or_else(|_| "[]".into());
            store
                .mgmt_put_dataplane(
                    ctx,
                    &registration.dataplane_id,
                    &registration.endpoint,
                    &profiles_json,
                )
                .await?;
        }
        tracing::info!(ctx, dataplane = registration.dataplane_id, profiles = ?registration.profiles,
            "registered as the tenant's data plane");
        Ok(registration)
    }

    /// Removes Weft's registration for `ctx`. Returns whether the control plane had one. The
    /// JAD v4alpha form has no removal endpoint: the registration is only forgotten locally.
    pub async fn unregister_dataplane(&self, ctx: &str) -> Result<bool, ManagementError> {
        let removed = match self.config().registration_form() {
            RegistrationForm::JadV4alpha => {
                tracing::warn!(
                    ctx,
                    "the v4alpha (JAD) registration cannot be removed from the control plane"
                );
                false
            }
            RegistrationForm::V5beta => {
                let url = format!(
                    "{}/dataplanes/{}",
                    self.tenant_base(ctx),
                    segment(&self.dataplane_id(ctx))
                );
                let response = self
                    .execute(Exchange {
                        ctx,
                        method: reqwest::Method::DELETE,
                        url,
                        query: Vec::new(),
                        body: None,
                        scopes: self.registration_scopes(),
                        idempotent: true,
                        deadline: self.registration_deadline(),
                    })
                    .await?;
                match response.status {
                    200..=299 => true,
                    404 => false,
                    status => {
                        return Err(ManagementError::Rejected {
                            status,
                            detail: crate::client::excerpt(&response.body),
                        });
                    }
                }
            }
        };
        if let Some(store) = self.store() {
            store.mgmt_delete_dataplane(ctx).await?;
        }
        Ok(removed)
    }

    /// Brings `ctx`'s registration in line with `profiles` (the union over its enabled apps):
    /// registers or updates when they differ from what was last registered, removes the
    /// registration when none remain. Without a store it always re-registers.
    pub async fn sync_dataplane(
        &self,
        ctx: &str,
        profiles: &BTreeSet<String>,
    ) -> Result<SyncOutcome, ManagementError> {
        let stored = match self.store() {
            Some(store) => store.mgmt_dataplane(ctx).await?,
            None => None,
        };
        if profiles.is_empty() {
            return if stored.is_some() || self.store().is_none() {
                self.unregister_dataplane(ctx).await?;
                Ok(SyncOutcome::Removed)
            } else {
                Ok(SyncOutcome::Nothing)
            };
        }
        if let Some(stored) = stored {
            let same_profiles = serde_json::from_str::<BTreeSet<String>>(&stored.profiles_json)
                .is_ok_and(|p| &p == profiles);
            if same_profiles
                && stored.dataplane_id == self.dataplane_id(ctx)
                && stored.endpoint == self.dataplane_endpoint(ctx)?
            {
                return Ok(SyncOutcome::Unchanged);
            }
        }
        Ok(SyncOutcome::Registered(
            self.register_dataplane(ctx, profiles).await?,
        ))
    }
}
