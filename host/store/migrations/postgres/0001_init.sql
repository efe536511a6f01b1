-- Weft store schema (PostgreSQL). Keep semantically identical to migrations/sqlite.
-- Timestamps are UTC unix milliseconds (BIGINT). Text columns use COLLATE "C" so ordering and
-- range scans are bytewise, exactly as SQLite's BINARY collation.

CREATE TABLE plugins (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    active_version TEXT COLLATE "C",
    granted_json   TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE plugin_versions (
    plugin_id             TEXT COLLATE "C" NOT NULL REFERENCES plugins (id),
    version               TEXT COLLATE "C" NOT NULL,
    digest                TEXT   NOT NULL,
    manifest_toml         TEXT   NOT NULL,
    requested_grants_json TEXT   NOT NULL,
    component_path        TEXT   NOT NULL,
    signed_by             TEXT,
    created_at            BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

ALTER TABLE plugins ADD CONSTRAINT plugins_active_version_fkey
    FOREIGN KEY (id, active_version) REFERENCES plugin_versions (plugin_id, version);

CREATE TABLE tenants (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    did        TEXT    NOT NULL,
    bpn        TEXT,
    active     BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE enablements (
    tenant_id            TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    plugin_id            TEXT COLLATE "C" NOT NULL REFERENCES plugins (id),
    pinned_version       TEXT COLLATE "C",
    config_json          TEXT   NOT NULL,
    narrowed_grants_json TEXT,
    enabled_at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id),
    FOREIGN KEY (plugin_id, pinned_version) REFERENCES plugin_versions (plugin_id, version)
);
CREATE INDEX enablements_by_plugin ON enablements (plugin_id, pinned_version);

CREATE TABLE app_state (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    plugin_id TEXT COLLATE "C" NOT NULL REFERENCES plugins (id),
    key       TEXT COLLATE "C" NOT NULL,
    value     BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id, key)
);

-- Bytes (keys + values) held per (tenant, plugin); its row is also the write lock for that scope.
CREATE TABLE app_state_usage (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    plugin_id TEXT COLLATE "C" NOT NULL REFERENCES plugins (id),
    bytes     BIGINT NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (tenant_id, plugin_id)
);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    target      TEXT COLLATE "C" NOT NULL,
    detail_json TEXT   NOT NULL
);
CREATE INDEX audit_log_by_target ON audit_log (target, id);
