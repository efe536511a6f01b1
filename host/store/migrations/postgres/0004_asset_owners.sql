-- Which app created which asset of a tenant, so the data plane can route a flow on that
-- asset to its owner (before falling back to the manifests' dataset selectors).
-- No foreign keys: the asset lives in the control plane, not here.
CREATE TABLE asset_owners (
    tenant_id  TEXT   NOT NULL,
    asset_id   TEXT   NOT NULL,
    plugin_id  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, asset_id)
);
