//! Asset ownership: which app of a tenant created an asset through the Management API
//! bridge. The data plane routes flows on that asset to it.

use crate::error::Result;
use crate::records::{now, to_millis};
use crate::{Store, validate};

impl Store {
    /// Records that `plugin` created `asset` for `tenant` (the latest creator wins).
    pub async fn set_asset_owner(&self, tenant: &str, asset: &str, plugin: &str) -> Result<()> {
        validate::id("tenant id", tenant)?;
        validate::id("asset id", asset)?;
        validate::id("plugin id", plugin)?;
        let at = to_millis(now())?;
        self.execute(
            "INSERT INTO asset_owners (tenant_id, asset_id, plugin_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, asset_id) \
             DO UPDATE SET plugin_id = excluded.plugin_id, created_at = excluded.created_at",
            args![tenant, asset, plugin, at],
        )
        .await?;
        Ok(())
    }

    /// The app that created an asset of a tenant, if one did through Weft.
    pub async fn asset_owner(&self, tenant: &str, asset: &str) -> Result<Option<String>> {
        validate::id("tenant id", tenant)?;
        validate::id("asset id", asset)?;
        with_pool!(self, |pool| {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT plugin_id FROM asset_owners WHERE tenant_id = $1 AND asset_id = $2",
            )
            .bind(tenant)
            .bind(asset)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(p,)| p))
        })
    }

    /// Forgets an asset's owner (the asset was deleted); returns whether one was recorded.
    pub async fn delete_asset_owner(&self, tenant: &str, asset: &str) -> Result<bool> {
        validate::id("tenant id", tenant)?;
        validate::id("asset id", asset)?;
        let deleted = self
            .execute(
                "DELETE FROM asset_owners WHERE tenant_id = $1 AND asset_id = $2",
                args![tenant, asset],
            )
            .await?;
        Ok(deleted > 0)
    }
}
