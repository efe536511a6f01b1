-- Management API bridge (weft-management), SQLite. Keep semantically identical to
-- migrations/postgres. Timestamps are UTC unix milliseconds (INTEGER).
--
-- No foreign keys to `tenants`/`plugins`: these rows describe what the control plane and the
-- event pipeline did, and must outlive (and be pruned independently of) enablements.

-- The last state seen of each negotiation / transfer process, per tenant: the poller and the
-- callback endpoint compare against it, so a restart re-delivers nothing already seen.
CREATE TABLE mgmt_process_states (
    tenant_id       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    process_id      TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    state_timestamp TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, process_id)
);
CREATE INDEX mgmt_process_states_by_age ON mgmt_process_states (updated_at);

-- (tenant, kind) pairs whose first full poll is done: before it, what the poller sees is the
-- past, recorded without events.
CREATE TABLE mgmt_poll_baselines (
    tenant_id      TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    established_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

-- Events to deliver to an app's `events` export (at-least-once). The id is stable, so the same
-- event seen twice (callback and poll, two replicas) is stored once.
CREATE TABLE mgmt_event_outbox (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    plugin_id    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    correlation  TEXT,
    payload_json TEXT    NOT NULL,
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    next_at      INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX mgmt_event_outbox_due ON mgmt_event_outbox (status, next_at);
CREATE INDEX mgmt_event_outbox_by_age ON mgmt_event_outbox (updated_at);

-- `management.watch` registrations: deliver `process-state-changed` when the process settles.
CREATE TABLE mgmt_watches (
    tenant_id   TEXT    NOT NULL,
    plugin_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    process_id  TEXT    NOT NULL,
    correlation TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, plugin_id, kind, process_id, correlation)
);
CREATE INDEX mgmt_watches_by_process ON mgmt_watches (tenant_id, kind, process_id);

-- Weft's data-plane registration with the control plane, one per tenant.
CREATE TABLE mgmt_dataplanes (
    tenant_id     TEXT    NOT NULL PRIMARY KEY,
    dataplane_id  TEXT    NOT NULL,
    endpoint      TEXT    NOT NULL,
    profiles_json TEXT    NOT NULL,
    registered_at INTEGER NOT NULL
);
