-- Weft store schema (SQLite). Keep semantically identical to migrations/postgres.
-- Timestamps are UTC unix milliseconds (INTEGER). Text compares bytewise (BINARY collation).

CREATE TABLE plugins (
    id             TEXT    NOT NULL PRIMARY KEY,
    active_version TEXT,
    granted_json   TEXT,
    created_at     INTEGER NOT NULL,
    FOREIGN KEY (id, active_version) REFERENCES plugin_versions (plugin_id, version)
);

CREATE TABLE plugin_versions (
    plugin_id             TEXT    NOT NULL REFERENCES plugins (id),
    version               TEXT    NOT NULL,
    digest                TEXT    NOT NULL,
    manifest_toml         TEXT    NOT NULL,
    requested_grants_json TEXT    NOT NULL,
    component_path        TEXT    NOT NULL,
    signed_by             TEXT,
    created_at            INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

CREATE TABLE tenants (
    id         TEXT    NOT NULL PRIMARY KEY,
    did        TEXT    NOT NULL,
    bpn        TEXT,
    active     BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE enablements (
    tenant_id            TEXT    NOT NULL REFERENCES tenants (id),
    plugin_id            TEXT    NOT NULL REFERENCES plugins (id),
    pinned_version       TEXT,
    config_json          TEXT    NOT NULL,
    narrowed_grants_json TEXT,
    enabled_at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id),
    FOREIGN KEY (plugin_id, pinned_version) REFERENCES plugin_versions (plugin_id, version)
);
CREATE INDEX enablements_by_plugin ON enablements (plugin_id, pinned_version);

CREATE TABLE app_state (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    plugin_id TEXT NOT NULL REFERENCES plugins (id),
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id, key)
);

-- Bytes (keys + values) held per (tenant, plugin); its row is also the write lock for that scope.
CREATE TABLE app_state_usage (
    tenant_id TEXT    NOT NULL REFERENCES tenants (id),
    plugin_id TEXT    NOT NULL REFERENCES plugins (id),
    bytes     INTEGER NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (tenant_id, plugin_id)
);

CREATE TABLE audit_log (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    detail_json TEXT    NOT NULL
);
CREATE INDEX audit_log_by_target ON audit_log (target, id);
