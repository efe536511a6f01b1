-- Weft data plane (DPS) tables (PostgreSQL). Keep semantically identical to migrations/sqlite.
-- Flows are keyed by (tenant, flow id): two participant contexts may see the same process id.
-- Tenants are not foreign keys here: the data plane refuses unknown contexts before writing.

CREATE TABLE dps_flows (
    tenant_id                 TEXT COLLATE "C" NOT NULL,
    id                        TEXT COLLATE "C" NOT NULL,
    plugin_id                 TEXT    NOT NULL,
    role                      TEXT    NOT NULL,
    mode                      TEXT    NOT NULL,
    state                     TEXT    NOT NULL,
    profile                   TEXT    NOT NULL,
    message_id                TEXT    NOT NULL,
    participant_id            TEXT    NOT NULL,
    counter_party_id          TEXT    NOT NULL,
    dataspace_context         TEXT    NOT NULL,
    agreement_id              TEXT    NOT NULL,
    dataset_id                TEXT    NOT NULL,
    claims_json               TEXT    NOT NULL,
    labels_json               TEXT    NOT NULL,
    metadata_json             TEXT    NOT NULL,
    control_plane_id          TEXT,
    callback_address          TEXT,
    counterparty_address_json TEXT,
    own_address_json          TEXT,
    version                   BIGINT  NOT NULL,
    created_at                BIGINT  NOT NULL,
    updated_at                BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE dps_flow_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT COLLATE "C" NOT NULL,
    flow_id     TEXT COLLATE "C" NOT NULL,
    at          BIGINT  NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    message_id  TEXT,
    detail_json TEXT    NOT NULL
);
CREATE INDEX dps_flow_history_by_flow ON dps_flow_history (tenant_id, flow_id, id);

-- Per-flow bearer tokens, only as SHA-256 hashes (hex).
CREATE TABLE dps_tokens (
    token_hash TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id  TEXT COLLATE "C" NOT NULL,
    flow_id    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX dps_tokens_by_flow ON dps_tokens (tenant_id, flow_id);

CREATE TABLE dps_control_planes (
    tenant_id          TEXT COLLATE "C" NOT NULL,
    id                 TEXT COLLATE "C" NOT NULL,
    endpoint           TEXT    NOT NULL,
    authorization_json TEXT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- The callback outbox: rows live until the control plane acknowledged them (or gave up: dead).
CREATE TABLE dps_callbacks (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL,
    flow_id         TEXT COLLATE "C" NOT NULL,
    kind            TEXT    NOT NULL,
    body_json       TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    last_error      TEXT,
    dead            BOOLEAN NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX dps_callbacks_due ON dps_callbacks (dead, next_attempt_at, id);
CREATE INDEX dps_callbacks_by_flow ON dps_callbacks (tenant_id, flow_id, id);
