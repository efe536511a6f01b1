//! Data Plane Signaling records: data flows with their history, per-flow bearer tokens (only
//! their SHA-256 hashes), control-plane registrations, and the callback outbox.
//!
//! A flow changes only through [`Store::update_flow`], one transaction that moves the flow
//! (optimistically: the caller names the version it read), appends its history, revokes or
//! adds tokens and queues callbacks, so an acknowledged signal and its callbacks are durable
//! together or not at all. State names and JSON columns are opaque text to the store; the
//! data plane crate gives them meaning.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, named_params};
use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::records::{from_millis, now, to_millis};
use crate::{Backend, Store, validate};

/// Most callbacks one [`Store::due_callbacks`] call returns, whatever the caller asks.
pub const MAX_CALLBACK_BATCH: u32 = 1000;

/// A data flow as stored. `version` increases with every update (optimistic concurrency).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// The participant context the flow belongs to.
    pub tenant_id: String,
    /// The data flow id (the control plane's process id).
    pub id: String,
    /// The app that owns the flow.
    pub plugin_id: String,
    /// `provider` or `consumer`.
    pub role: String,
    /// `pull` or `push`.
    pub mode: String,
    /// The DPS state name (`STARTED`, ...).
    pub state: String,
    pub profile: String,
    /// The id of the last signal message applied.
    pub message_id: String,
    pub participant_id: String,
    pub counter_party_id: String,
    pub dataspace_context: String,
    pub agreement_id: String,
    pub dataset_id: String,
    pub claims_json: String,
    pub labels_json: String,
    pub metadata_json: String,
    /// The control plane that sent the flow's signals (callbacks go there).
    pub control_plane_id: Option<String>,
    /// A legacy `callbackAddress` from the signal, preferred for callbacks when set.
    pub callback_address: Option<String>,
    /// The counterparty's DataAddress, secrets included (never shown to apps).
    pub counterparty_address_json: Option<String>,
    /// The DataAddress this data plane handed out, without its token.
    pub own_address_json: Option<String>,
    /// Set by the store: 1 on creation, +1 per update.
    pub version: i64,
    pub created_at: OffsetDateTime,
    /// Set by the store on every update.
    pub updated_at: OffsetDateTime,
}

/// One history entry to append: what happened to a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEvent {
    /// The state before (`None` on creation).
    pub from_state: Option<String>,
    /// The state after (equal to `from_state` for events that change no state).
    pub to_state: String,
    /// What happened (`prepare`, `report:completed`, ...).
    pub event: String,
    /// The signal message id, when a signal caused it.
    pub message_id: Option<String>,
    /// Details (JSON text).
    pub detail_json: String,
}

/// One stored history entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowHistoryRecord {
    /// Increases with every entry.
    pub id: i64,
    pub at: OffsetDateTime,
    pub from_state: Option<String>,
    pub to_state: String,
    pub event: String,
    pub message_id: Option<String>,
    pub detail_json: String,
}

/// A callback to queue in the outbox with a flow update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCallback {
    /// `prepared`, `started`, `completed` or `errored`.
    pub kind: String,
    /// The DataFlowStatusMessage to send (JSON text).
    pub body_json: String,
    /// Not delivered before this time.
    pub not_before: OffsetDateTime,
}

/// A queued callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackRecord {
    pub id: i64,
    pub tenant_id: String,
    pub flow_id: String,
    pub kind: String,
    pub body_json: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    /// Given up: never delivered again.
    pub dead: bool,
    pub created_at: OffsetDateTime,
}

/// A control plane registered for one participant context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlaneRecord {
    pub tenant_id: String,
    pub id: String,
    /// The control plane's callback base URL.
    pub endpoint: String,
    /// The registration's `authorization` object (JSON text), if any.
    pub authorization_json: Option<String>,
    /// Kept from the first registration on replace.
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Which flow a bearer token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowToken {
    pub tenant_id: String,
    pub flow_id: String,
}

/// Everything one flow transition changes, applied atomically by [`Store::update_flow`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowUpdate {
    /// The flow's new contents. `version` must be the version read; the mutable columns
    /// are `state`, `message_id`, `control_plane_id`, `callback_address`,
    /// `counterparty_address_json` and `own_address_json`. Version 0 is a flow not stored
    /// yet: it is inserted whole (as version 1), [`StoreError::Conflict`] if the id is taken,
    /// so a new flow costs one transaction.
    pub flow: FlowRecord,
    /// History entries to append, in order.
    pub events: Vec<FlowEvent>,
    /// Delete every token of the flow (before adding `add_token_hash`).
    pub revoke_tokens: bool,
    /// A new token's SHA-256 hash (64 lowercase hex digits).
    pub add_token_hash: Option<String>,
    /// Callbacks to queue, in order.
    pub callbacks: Vec<NewCallback>,
}

const FLOW_COLUMNS: &str = "tenant_id, id, plugin_id, role, mode, state, profile, message_id, \
     participant_id, counter_party_id, dataspace_context, agreement_id, dataset_id, claims_json, \
     labels_json, metadata_json, control_plane_id, callback_address, counterparty_address_json, \
     own_address_json, version, created_at, updated_at";

static GET_FLOW: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {FLOW_COLUMNS} FROM dps_flows WHERE tenant_id = $1 AND id = $2")
});

const CALLBACK_COLUMNS: &str = "id, tenant_id, flow_id, kind, body_json, attempts, next_attempt_at, last_error, dead, created_at";

#[derive(sqlx::FromRow)]
struct FlowRow {
    tenant_id: String,
    id: String,
    plugin_id: String,
    role: String,
    mode: String,
    state: String,
    profile: String,
    message_id: String,
    participant_id: String,
    counter_party_id: String,
    dataspace_context: String,
    agreement_id: String,
    dataset_id: String,
    claims_json: String,
    labels_json: String,
    metadata_json: String,
    control_plane_id: Option<String>,
    callback_address: Option<String>,
    counterparty_address_json: Option<String>,
    own_address_json: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl FlowRow {
    /// Reads a row of [`FLOW_COLUMNS`], in order.
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<FlowRow> {
        Ok(FlowRow {
            tenant_id: r.get(0)?,
            id: r.get(1)?,
            plugin_id: r.get(2)?,
            role: r.get(3)?,
            mode: r.get(4)?,
            state: r.get(5)?,
            profile: r.get(6)?,
            message_id: r.get(7)?,
            participant_id: r.get(8)?,
            counter_party_id: r.get(9)?,
            dataspace_context: r.get(10)?,
            agreement_id: r.get(11)?,
            dataset_id: r.get(12)?,
            claims_json: r.get(13)?,
            labels_json: r.get(14)?,
            metadata_json: r.get(15)?,
            control_plane_id: r.get(16)?,
            callback_address: r.get(17)?,
            counterparty_address_json: r.get(18)?,
            own_address_json: r.get(19)?,
            version: r.get(20)?,
            created_at: r.get(21)?,
            updated_at: r.get(22)?,
        })
    }

    fn into_record(self) -> Result<FlowRecord> {
        Ok(FlowRecord {
            tenant_id: self.tenant_id,
            id: self.id,
            plugin_id: self.plugin_id,
            role: self.role,
            mode: self.mode,
            state: self.state,
            profile: self.profile,
            message_id: self.message_id,
            participant_id: self.participant_id,
            counter_party_id: self.counter_party_id,
            dataspace_context: self.dataspace_context,
            agreement_id: self.agreement_id,
            dataset_id: self.dataset_id,
            claims_json: self.claims_json,
            labels_json: self.labels_json,
            metadata_json: self.metadata_json,
            control_plane_id: self.control_plane_id,
            callback_address: self.callback_address,
            counterparty_address_json: self.counterparty_address_json,
            own_address_json: self.own_address_json,
            version: self.version,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    id: i64,
    at: i64,
    from_state: Option<String>,
    to_state: String,
    event: String,
    message_id: Option<String>,
    detail_json: String,
}

#[derive(sqlx::FromRow)]
struct CallbackRow {
    id: i64,
    tenant_id: String,
    flow_id: String,
    kind: String,
    body_json: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    dead: bool,
    created_at: i64,
}

impl CallbackRow {
    fn into_record(self) -> Result<CallbackRecord> {
        Ok(CallbackRecord {
            id: self.id,
            tenant_id: self.tenant_id,
            flow_id: self.flow_id,
            kind: self.kind,
            body_json: self.body_json,
            attempts: self.attempts,
            next_attempt_at: from_millis(self.next_attempt_at)?,
            last_error: self.last_error,
            dead: self.dead,
            created_at: from_millis(self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ControlPlaneRow {
    tenant_id: String,
    id: String,
    endpoint: String,
    authorization_json: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ControlPlaneRow {
    fn into_record(self) -> Result<ControlPlaneRecord> {
        Ok(ControlPlaneRecord {
            tenant_id: self.tenant_id,
            id: self.id,
            endpoint: self.endpoint,
            authorization_json: self.authorization_json,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
        })
    }
}

fn check_flow_key(tenant: &str, flow: &str) -> Result<()> {
    validate::id("tenant id", tenant)?;
    validate::id("flow id", flow)
}

fn check_flow(record: &FlowRecord) -> Result<()> {
    check_flow_key(&record.tenant_id, &record.id)?;
    validate::id("plugin id", &record.plugin_id)?;
    for (what, value) in [
        ("role", &record.role),
        ("mode", &record.mode),
        ("state", &record.state),
        ("profile", &record.profile),
        ("message id", &record.message_id),
        ("participant id", &record.participant_id),
        ("counter-party id", &record.counter_party_id),
        ("dataspace context", &record.dataspace_context),
        ("agreement id", &record.agreement_id),
        ("dataset id", &record.dataset_id),
    ] {
        validate::text(what, value)?;
    }
    validate::json("claims", &record.claims_json)?;
    validate::json("labels", &record.labels_json)?;
    validate::json("metadata", &record.metadata_json)?;
    for (what, value) in [
        ("control plane id", &record.control_plane_id),
        ("callback address", &record.callback_address),
    ] {
        if let Some(v) = value {
            validate::text(what, v)?;
        }
    }
    for (what, value) in [
        ("counterparty address", &record.counterparty_address_json),
        ("own address", &record.own_address_json),
    ] {
        if let Some(v) = value {
            validate::json(what, v)?;
        }
    }
    Ok(())
}

fn check_event(event: &FlowEvent) -> Result<()> {
    if let Some(from) = &event.from_state {
        validate::text("from state", from)?;
    }
    validate::text("to state", &event.to_state)?;
    validate::text("event", &event.event)?;
    if let Some(m) = &event.message_id {
        validate::text("message id", m)?;
    }
    validate::json("event detail", &event.detail_json)
}

fn not_found_flow(tenant: &str, flow: &str) -> StoreError {
    StoreError::NotFound(format!("data flow {flow} of tenant {tenant}"))
}

/// Why an update changed no row: the id is taken (a new flow), the flow is gone, or its
/// version moved on.
fn not_updated(flow: &FlowRecord, exists: bool) -> StoreError {
    if flow.version == 0 {
        StoreError::Conflict(format!(
            "data flow {} of tenant {} already exists",
            flow.id, flow.tenant_id
        ))
    } else if exists {
        StoreError::Conflict(format!(
            "data flow {} changed concurrently; read it again",
            flow.id
        ))
    } else {
        not_found_flow(&flow.tenant_id, &flow.id)
    }
}

/// The flow as stored by an update at `at`.
fn stored_flow(flow: &FlowRecord, at: i64) -> Result<FlowRecord> {
    let mut stored = flow.clone();
    stored.version = flow.version + 1;
    if flow.version == 0 {
        // Inserted with both times at its creation.
        stored.created_at = from_millis(to_millis(flow.created_at)?)?;
        stored.updated_at = stored.created_at;
    } else {
        stored.updated_at = from_millis(at)?;
    }
    Ok(stored)
}

const UPDATE_FLOW: &str = "UPDATE dps_flows SET state = $3, message_id = $4, \
     control_plane_id = $5, callback_address = $6, counterparty_address_json = $7, \
     own_address_json = $8, version = version + 1, updated_at = $9 \
     WHERE tenant_id = $1 AND id = $2 AND version = $10";
const FLOW_VERSION: &str = "SELECT version FROM dps_flows WHERE tenant_id = $1 AND id = $2";
const INSERT_EVENT: &str = "INSERT INTO dps_flow_history \
     (tenant_id, flow_id, at, from_state, to_state, event, message_id, detail_json) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const REVOKE_TOKENS: &str = "DELETE FROM dps_tokens WHERE tenant_id = $1 AND flow_id = $2";
const ADD_TOKEN: &str = "INSERT INTO dps_tokens (token_hash, tenant_id, flow_id, created_at) \
     VALUES ($1, $2, $3, $4)";
const ADD_CALLBACK: &str = "INSERT INTO dps_callbacks (tenant_id, flow_id, kind, body_json, \
     attempts, next_attempt_at, last_error, dead, created_at) \
     VALUES ($1, $2, $3, $4, 0, $5, NULL, FALSE, $6)";
const DELETE_FLOW: &str = "DELETE FROM dps_flows WHERE tenant_id = $1 AND id = $2 AND version = $3";
/// What a flow's deletion takes with it.
const DELETE_FLOW_PARTS: [&str; 3] = [
    "DELETE FROM dps_flow_history WHERE tenant_id = $1 AND flow_id = $2",
    "DELETE FROM dps_tokens WHERE tenant_id = $1 AND flow_id = $2",
    "DELETE FROM dps_callbacks WHERE tenant_id = $1 AND flow_id = $2",
];
const CONTROL_PLANE_CREATED: &str =
    "SELECT created_at FROM dps_control_planes WHERE tenant_id = $1 AND id = $2";
const PUT_CONTROL_PLANE: &str = "INSERT INTO dps_control_planes \
     (tenant_id, id, endpoint, authorization_json, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (tenant_id, id) DO UPDATE SET endpoint = excluded.endpoint, \
     authorization_json = excluded.authorization_json, updated_at = excluded.updated_at";

/// [`Store::update_flow`] on the SQLite writer.
fn sqlite_update_flow(
    conn: &Connection,
    update: &FlowUpdate,
    created_at: i64,
    at: i64,
) -> Result<FlowRecord> {
    let flow = &update.flow;
    let key = named_params! {"$1": flow.tenant_id, "$2": flow.id};
    let updated = if flow.version == 0 {
        conn.prepare_cached(&insert_flow_sql())?
            .execute(named_params! {
                "$1": flow.tenant_id,
                "$2": flow.id,
                "$3": flow.plugin_id,
                "$4": flow.role,
                "$5": flow.mode,
                "$6": flow.state,
                "$7": flow.profile,
                "$8": flow.message_id,
                "$9": flow.participant_id,
                "$10": flow.counter_party_id,
                "$11": flow.dataspace_context,
                "$12": flow.agreement_id,
                "$13": flow.dataset_id,
                "$14": flow.claims_json,
                "$15": flow.labels_json,
                "$16": flow.metadata_json,
                "$17": flow.control_plane_id,
                "$18": flow.callback_address,
                "$19": flow.counterparty_address_json,
                "$20": flow.own_address_json,
                "$21": created_at,
            })?
    } else {
        conn.prepare_cached(UPDATE_FLOW)?.execute(named_params! {
            "$1": flow.tenant_id,
            "$2": flow.id,
            "$3": flow.state,
            "$4": flow.message_id,
            "$5": flow.control_plane_id,
            "$6": flow.callback_address,
            "$7": flow.counterparty_address_json,
            "$8": flow.own_address_json,
            "$9": at,
            "$10": flow.version,
        })?
    };
    if updated == 0 {
        let exists = conn
            .prepare_cached(FLOW_VERSION)?
            .query_row(key, |r| r.get::<_, i64>(0))
            .optional()?;
        return Err(not_updated(flow, exists.is_some()));
    }
    let mut insert_event = conn.prepare_cached(INSERT_EVENT)?;
    for e in &update.events {
        insert_event.execute(named_params! {
            "$1": flow.tenant_id,
            "$2": flow.id,
            "$3": at,
            "$4": e.from_state,
            "$5": e.to_state,
            "$6": e.event,
            "$7": e.message_id,
            "$8": e.detail_json,
        })?;
    }
    if update.revoke_tokens {
        conn.prepare_cached(REVOKE_TOKENS)?.execute(key)?;
    }
    if let Some(hash) = &update.add_token_hash {
        conn.prepare_cached(ADD_TOKEN)?.execute(named_params! {
            "$1": hash, "$2": flow.tenant_id, "$3": flow.id, "$4": at,
        })?;
    }
    let mut add_callback = conn.prepare_cached(ADD_CALLBACK)?;
    for c in &update.callbacks {
        add_callback.execute(named_params! {
            "$1": flow.tenant_id,
            "$2": flow.id,
            "$3": c.kind,
            "$4": c.body_json,
            "$5": to_millis(c.not_before)?,
            "$6": at,
        })?;
    }
    stored_flow(flow, at)
}

/// [`Store::update_flow`] in a PostgreSQL transaction (the caller commits).
async fn postgres_update_flow(
    tx: &mut sqlx::PgConnection,
    update: &FlowUpdate,
    created_at: i64,
    at: i64,
) -> Result<FlowRecord> {
    let flow = &update.flow;
    let updated = if flow.version == 0 {
        sqlx::query(&insert_flow_sql())
            .bind(&flow.tenant_id)
            .bind(&flow.id)
            .bind(&flow.plugin_id)
            .bind(&flow.role)
            .bind(&flow.mode)
            .bind(&flow.state)
            .bind(&flow.profile)
            .bind(&flow.message_id)
            .bind(&flow.participant_id)
            .bind(&flow.counter_party_id)
            .bind(&flow.dataspace_context)
            .bind(&flow.agreement_id)
            .bind(&flow.dataset_id)
            .bind(&flow.claims_json)
            .bind(&flow.labels_json)
            .bind(&flow.metadata_json)
            .bind(&flow.control_plane_id)
            .bind(&flow.callback_address)
            .bind(&flow.counterparty_address_json)
            .bind(&flow.own_address_json)
            .bind(created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        sqlx::query(UPDATE_FLOW)
            .bind(&flow.tenant_id)
            .bind(&flow.id)
            .bind(&flow.state)
            .bind(&flow.message_id)
            .bind(&flow.control_plane_id)
            .bind(&flow.callback_address)
            .bind(&flow.counterparty_address_json)
            .bind(&flow.own_address_json)
            .bind(at)
            .bind(flow.version)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    if updated == 0 {
        let exists: Option<(i64,)> = sqlx::query_as(FLOW_VERSION)
            .bind(&flow.tenant_id)
            .bind(&flow.id)
            .fetch_optional(&mut *tx)
            .await?;
        return Err(not_updated(flow, exists.is_some()));
    }
    if !update.events.is_empty() {
        // One statement for all of a change's entries: one round trip to the server.
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO dps_flow_history \
             (tenant_id, flow_id, at, from_state, to_state, event, message_id, detail_json) ",
        );
        insert.push_values(&update.events, |mut row, e| {
            row.push_bind(&flow.tenant_id)
                .push_bind(&flow.id)
                .push_bind(at)
                .push_bind(&e.from_state)
                .push_bind(&e.to_state)
                .push_bind(&e.event)
                .push_bind(&e.message_id)
                .push_bind(&e.detail_json);
        });
        insert.build().execute(&mut *tx).await?;
    }
    if update.revoke_tokens {
        sqlx::query(REVOKE_TOKENS)
            .bind(&flow.tenant_id)
            .bind(&flow.id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(hash) = &update.add_token_hash {
        sqlx::query(ADD_TOKEN)
            .bind(hash)
            .bind(&flow.tenant_id)
            .bind(&flow.id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
    }
    for c in &update.callbacks {
        sqlx::query(ADD_CALLBACK)
            .bind(&flow.tenant_id)
            .bind(&flow.id)
            .bind(&c.kind)
            .bind(&c.body_json)
            .bind(to_millis(c.not_before)?)
            .bind(at)
            .execute(&mut *tx)
            .await?;
    }
    stored_flow(flow, at)
}

/// Inserts a new flow at version 1 (created and updated at `$21`), nothing when the id is
/// taken.
fn insert_flow_sql() -> String {
    format!(
        "INSERT INTO dps_flows ({FLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 1, $21, $21) \
         ON CONFLICT (tenant_id, id) DO NOTHING"
    )
}

impl Store {
    /// One flow.
    pub async fn get_flow(&self, tenant: &str, flow: &str) -> Result<Option<FlowRecord>> {
        check_flow_key(tenant, flow)?;
        if let Backend::Sqlite(sqlite) = &self.backend
            && let Some(row) = sqlite.readers.read(|c| {
                c.prepare_cached(&GET_FLOW)?
                    .query_row(
                        named_params! {"$1": tenant, "$2": flow},
                        FlowRow::from_sqlite,
                    )
                    .optional()
            })?
        {
            return row.map(FlowRow::into_record).transpose();
        }
        with_pool!(self, |pool| {
            let row: Option<FlowRow> = sqlx::query_as(&GET_FLOW)
                .bind(tenant)
                .bind(flow)
                .fetch_optional(pool)
                .await?;
            row.map(FlowRow::into_record).transpose()
        })
    }

    /// Applies one transition atomically (see [`FlowUpdate`]) and returns the flow as
    /// stored. [`StoreError::Conflict`] when the flow's version is no longer the one read
    /// (nothing changed), [`StoreError::NotFound`] when it is gone.
    pub async fn update_flow(&self, update: FlowUpdate) -> Result<FlowRecord> {
        let flow = &update.flow;
        check_flow(flow)?;
        for e in &update.events {
            check_event(e)?;
        }
        if let Some(hash) = &update.add_token_hash {
            validate::digest(hash)?;
        }
        for c in &update.callbacks {
            validate::text("callback kind", &c.kind)?;
            validate::json("callback body", &c.body_json)?;
            to_millis(c.not_before)?;
        }
        let at = to_millis(now())?;
        let created_at = to_millis(flow.created_at)?;
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                sqlite
                    .writer
                    .write(move |conn| sqlite_update_flow(conn, &update, created_at, at))
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let stored = postgres_update_flow(&mut tx, &update, created_at, at).await?;
                tx.commit().await?;
                Ok(stored)
            }
        }
    }

    /// Deletes a flow at `version` with its history, tokens and callbacks (a flow that was
    /// never acknowledged). Returns `false` when absent or at another version.
    pub async fn delete_flow(&self, tenant: &str, flow: &str, version: i64) -> Result<bool> {
        check_flow_key(tenant, flow)?;
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                let (tenant, flow) = (tenant.to_owned(), flow.to_owned());
                sqlite
                    .writer
                    .write(move |conn| {
                        let deleted = conn
                            .prepare_cached(DELETE_FLOW)?
                            .execute(named_params! {"$1": tenant, "$2": flow, "$3": version})?;
                        if deleted == 0 {
                            return Ok(false);
                        }
                        for sql in DELETE_FLOW_PARTS {
                            conn.prepare_cached(sql)?
                                .execute(named_params! {"$1": tenant, "$2": flow})?;
                        }
                        Ok(true)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let deleted = sqlx::query(DELETE_FLOW)
                    .bind(tenant)
                    .bind(flow)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Ok(false);
                }
                for sql in DELETE_FLOW_PARTS {
                    sqlx::query(sql)
                        .bind(tenant)
                        .bind(flow)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// A flow's history, oldest first.
    pub async fn flow_history(&self, tenant: &str, flow: &str) -> Result<Vec<FlowHistoryRecord>> {
        check_flow_key(tenant, flow)?;
        with_pool!(self, |pool| {
            let rows: Vec<HistoryRow> = sqlx::query_as(
                "SELECT id, at, from_state, to_state, event, message_id, detail_json \
                 FROM dps_flow_history WHERE tenant_id = $1 AND flow_id = $2 ORDER BY id",
            )
            .bind(tenant)
            .bind(flow)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|r| {
                    Ok(FlowHistoryRecord {
                        id: r.id,
                        at: from_millis(r.at)?,
                        from_state: r.from_state,
                        to_state: r.to_state,
                        event: r.event,
                        message_id: r.message_id,
                        detail_json: r.detail_json,
                    })
                })
                .collect()
        })
    }

    /// The flow a token hash belongs to, if the token is live.
    pub async fn flow_for_token(&self, token_hash: &str) -> Result<Option<FlowToken>> {
        validate::digest(token_hash)?;
        with_pool!(self, |pool| {
            let row: Option<(String, String)> =
                sqlx::query_as("SELECT tenant_id, flow_id FROM dps_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|(tenant_id, flow_id)| FlowToken { tenant_id, flow_id }))
        })
    }

    /// How many live tokens a flow has.
    pub async fn count_flow_tokens(&self, tenant: &str, flow: &str) -> Result<u64> {
        check_flow_key(tenant, flow)?;
        with_pool!(self, |pool| {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM dps_tokens WHERE tenant_id = $1 AND flow_id = $2",
            )
            .bind(tenant)
            .bind(flow)
            .fetch_one(pool)
            .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Registers or replaces a control plane (keyed by tenant and id; `created_at` of an
    /// existing registration is kept). Returns `true` when it was new.
    pub async fn put_control_plane(&self, record: &ControlPlaneRecord) -> Result<bool> {
        validate::id("tenant id", &record.tenant_id)?;
        validate::id("control plane id", &record.id)?;
        validate::text("endpoint", &record.endpoint)?;
        if let Some(a) = &record.authorization_json {
            validate::json("authorization", a)?;
        }
        let created_at = to_millis(record.created_at)?;
        let updated_at = to_millis(record.updated_at)?;
        let result = match &self.backend {
            Backend::Sqlite(sqlite) => {
                let record = record.clone();
                sqlite
                    .writer
                    .write(move |conn| {
                        let key = named_params! {"$1": record.tenant_id, "$2": record.id};
                        let existed = conn
                            .prepare_cached(CONTROL_PLANE_CREATED)?
                            .query_row(key, |r| r.get::<_, i64>(0))
                            .optional()?;
                        conn.prepare_cached(PUT_CONTROL_PLANE)?
                            .execute(named_params! {
                                "$1": record.tenant_id,
                                "$2": record.id,
                                "$3": record.endpoint,
                                "$4": record.authorization_json,
                                "$5": created_at,
                                "$6": updated_at,
                            })?;
                        Ok(existed.is_none())
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let existed: Option<(i64,)> = sqlx::query_as(CONTROL_PLANE_CREATED)
                    .bind(&record.tenant_id)
                    .bind(&record.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                sqlx::query(PUT_CONTROL_PLANE)
                    .bind(&record.tenant_id)
                    .bind(&record.id)
                    .bind(&record.endpoint)
                    .bind(&record.authorization_json)
                    .bind(created_at)
                    .bind(updated_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(existed.is_none())
            }
        };
        self.tenancy_changed();
        result
    }

    /// One control plane registration.
    pub async fn get_control_plane(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ControlPlaneRecord>> {
        validate::id("tenant id", tenant)?;
        validate::id("control plane id", id)?;
        with_pool!(self, |pool| {
            let row: Option<ControlPlaneRow> = sqlx::query_as(
                "SELECT tenant_id, id, endpoint, authorization_json, created_at, updated_at \
                 FROM dps_control_planes WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(ControlPlaneRow::into_record).transpose()
        })
    }

    /// A tenant's control planes, most recently registered first.
    pub async fn list_control_planes(&self, tenant: &str) -> Result<Vec<ControlPlaneRecord>> {
        validate::id("tenant id", tenant)?;
        with_pool!(self, |pool| {
            let rows: Vec<ControlPlaneRow> = sqlx::query_as(
                "SELECT tenant_id, id, endpoint, authorization_json, created_at, updated_at \
                 FROM dps_control_planes WHERE tenant_id = $1 ORDER BY updated_at DESC, id",
            )
            .bind(tenant)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(ControlPlaneRow::into_record).collect()
        })
    }

    /// Removes a control plane registration; `false` when there was none.
    pub async fn delete_control_plane(&self, tenant: &str, id: &str) -> Result<bool> {
        validate::id("tenant id", tenant)?;
        validate::id("control plane id", id)?;
        let result = self
            .execute(
                "DELETE FROM dps_control_planes WHERE tenant_id = $1 AND id = $2",
                args![tenant, id],
            )
            .await
            .map(|deleted| deleted > 0);
        self.tenancy_changed();
        result
    }

    /// Callbacks due at `at`, oldest first, at most `limit` (capped at
    /// [`MAX_CALLBACK_BATCH`]). Only the oldest live callback of each flow is returned, so
    /// a flow's callbacks are delivered in the order they were queued.
    pub async fn due_callbacks(
        &self,
        at: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<CallbackRecord>> {
        let at = to_millis(at)?;
        let limit = i64::from(limit.clamp(1, MAX_CALLBACK_BATCH));
        with_pool!(self, |pool| {
            let rows: Vec<CallbackRow> = sqlx::query_as(&format!(
                "SELECT {CALLBACK_COLUMNS} FROM dps_callbacks c \
                 WHERE c.dead = $1 AND c.next_attempt_at <= $2 AND NOT EXISTS \
                 (SELECT 1 FROM dps_callbacks p WHERE p.tenant_id = c.tenant_id \
                  AND p.flow_id = c.flow_id AND p.dead = $1 AND p.id < c.id) \
                 ORDER BY c.id LIMIT $3"
            ))
            .bind(false)
            .bind(at)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(CallbackRow::into_record).collect()
        })
    }

    /// When the earliest live callback is due, if any is queued.
    pub async fn next_callback_due(&self) -> Result<Option<OffsetDateTime>> {
        with_pool!(self, |pool| {
            let (next,): (Option<i64>,) =
                sqlx::query_as("SELECT MIN(next_attempt_at) FROM dps_callbacks WHERE dead = $1")
                    .bind(false)
                    .fetch_one(pool)
                    .await?;
            next.map(from_millis).transpose()
        })
    }

    /// Takes a callback for delivery: moves its next attempt to `lease_until` only if it is
    /// still at `seen_next_attempt_at`, so two workers never deliver it at once. `false` when
    /// another worker took it first (or it is gone).
    pub async fn claim_callback(
        &self,
        id: i64,
        seen_next_attempt_at: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        let seen = to_millis(seen_next_attempt_at)?;
        let lease = to_millis(lease_until)?;
        let claimed = self
            .execute(
                "UPDATE dps_callbacks SET next_attempt_at = $3 \
                 WHERE id = $1 AND next_attempt_at = $2 AND dead = $4",
                args![id, seen, lease, false],
            )
            .await?;
        Ok(claimed == 1)
    }

    /// Removes a delivered callback; `false` when it was already gone.
    pub async fn finish_callback(&self, id: i64) -> Result<bool> {
        let deleted = self
            .execute("DELETE FROM dps_callbacks WHERE id = $1", args![id])
            .await?;
        Ok(deleted == 1)
    }

    /// Records a failed delivery: the attempt count, when to try again, why it failed, and
    /// whether to give up (`dead`).
    pub async fn reschedule_callback(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_at: OffsetDateTime,
        last_error: &str,
        dead: bool,
    ) -> Result<()> {
        validate::text("last error", last_error)?;
        let next = to_millis(next_attempt_at)?;
        self.execute(
            "UPDATE dps_callbacks SET attempts = $2, next_attempt_at = $3, last_error = $4, \
             dead = $5 WHERE id = $1",
            args![id, attempts, next, last_error, dead],
        )
        .await?;
        Ok(())
    }

    /// A flow's queued callbacks (dead ones included), oldest first.
    pub async fn list_callbacks(&self, tenant: &str, flow: &str) -> Result<Vec<CallbackRecord>> {
        check_flow_key(tenant, flow)?;
        with_pool!(self, |pool| {
            let rows: Vec<CallbackRow> = sqlx::query_as(&format!(
                "SELECT {CALLBACK_COLUMNS} FROM dps_callbacks \
                 WHERE tenant_id = $1 AND flow_id = $2 ORDER BY id"
            ))
            .bind(tenant)
            .bind(flow)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(CallbackRow::into_record).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(id: &str) -> FlowRecord {
        let at = now();
        FlowRecord {
            tenant_id: "t1".into(),
            id: id.into(),
            plugin_id: "app".into(),
            role: "provider".into(),
            mode: "pull".into(),
            state: "INITIALIZED".into(),
            profile: "p".into(),
            message_id: "m1".into(),
            participant_id: "a".into(),
            counter_party_id: "b".into(),
            dataspace_context: "c".into(),
            agreement_id: "ag".into(),
            dataset_id: "ds".into(),
            claims_json: "{}".into(),
            labels_json: "[]".into(),
            metadata_json: "{}".into(),
            control_plane_id: None,
            callback_address: None,
            counterparty_address_json: None,
            own_address_json: None,
            version: 0,
            created_at: at,
            updated_at: at,
        }
    }

    fn event(to: &str) -> FlowEvent {
        FlowEvent {
            from_state: None,
            to_state: to.into(),
            event: "e".into(),
            message_id: None,
            detail_json: "{}".into(),
        }
    }

    fn callback(kind: &str) -> NewCallback {
        NewCallback {
            kind: kind.into(),
            body_json: "{}".into(),
            not_before: now(),
        }
    }

    const HASH: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[tokio::test]
    async fn a_new_flow_is_stored_whole_in_one_update() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let mut acked = flow("f2");
        acked.state = "STARTED".into();
        let insert = FlowUpdate {
            flow: acked,
            events: vec![event("INITIALIZED"), event("STARTED")],
            revoke_tokens: false,
            add_token_hash: Some(HASH.into()),
            callbacks: vec![callback("started")],
        };
        let stored = store.update_flow(insert.clone()).await.unwrap();
        assert_eq!(stored.version, 1);
        let read = store.get_flow("t1", "f2").await.unwrap().unwrap();
        assert_eq!((read.state.as_str(), read.version), ("STARTED", 1));
        assert_eq!(store.flow_history("t1", "f2").await.unwrap().len(), 2);
        assert!(store.flow_for_token(HASH).await.unwrap().is_some());
        assert_eq!(store.list_callbacks("t1", "f2").await.unwrap().len(), 1);
        // The same id again is a conflict and adds nothing.
        let again = store.update_flow(insert).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        assert_eq!(store.flow_history("t1", "f2").await.unwrap().len(), 2);
        assert_eq!(store.list_callbacks("t1", "f2").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn flows_move_atomically_with_tokens_history_and_callbacks() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let create = FlowUpdate {
            flow: flow("f1"),
            events: vec![event("INITIALIZED")],
            revoke_tokens: false,
            add_token_hash: None,
            callbacks: vec![],
        };
        let created = store.update_flow(create.clone()).await.unwrap();
        assert_eq!(created.version, 1);
        assert_eq!(
            store.get_flow("t1", "f1").await.unwrap(),
            Some(created.clone())
        );
        assert!(matches!(
            store.update_flow(create).await,
            Err(StoreError::Conflict(_))
        ));

        let mut next = created.clone();
        next.state = "STARTED".into();
        let update = FlowUpdate {
            flow: next,
            events: vec![event("STARTED")],
            revoke_tokens: true,
            add_token_hash: Some(HASH.into()),
            callbacks: vec![callback("started"), callback("completed")],
        };
        let stored = store.update_flow(update.clone()).await.unwrap();
        assert_eq!(stored.version, 2);
        assert_eq!(
            store.get_flow("t1", "f1").await.unwrap().unwrap().state,
            "STARTED"
        );
        assert_eq!(store.flow_history("t1", "f1").await.unwrap().len(), 2);
        let token = store.flow_for_token(HASH).await.unwrap().unwrap();
        assert_eq!(
            (token.tenant_id.as_str(), token.flow_id.as_str()),
            ("t1", "f1")
        );

        // A stale version changes nothing.
        let stale = store.update_flow(update.clone()).await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
        assert_eq!(store.flow_history("t1", "f1").await.unwrap().len(), 2);
        assert_eq!(store.list_callbacks("t1", "f1").await.unwrap().len(), 2);

        // Only the oldest callback of a flow is due; claims are exclusive.
        let due = store.due_callbacks(now(), 10).await.unwrap();
        assert_eq!(
            due.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
            ["started"]
        );
        let lease = now() + std::time::Duration::from_secs(60);
        assert!(
            store
                .claim_callback(due[0].id, due[0].next_attempt_at, lease)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_callback(due[0].id, due[0].next_attempt_at, lease)
                .await
                .unwrap()
        );
        assert!(
            store.due_callbacks(now(), 10).await.unwrap().is_empty(),
            "a leased callback holds its flow's queue"
        );
        assert!(store.finish_callback(due[0].id).await.unwrap());
        let due = store.due_callbacks(now(), 10).await.unwrap();
        assert_eq!(
            due.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
            ["completed"]
        );
        store
            .reschedule_callback(due[0].id, 1, now(), "boom", true)
            .await
            .unwrap();
        assert!(
            store.due_callbacks(now(), 10).await.unwrap().is_empty(),
            "dead callbacks are not due"
        );
        assert_eq!(store.next_callback_due().await.unwrap(), None);

        // Revocation, and deletion of a never-acknowledged flow.
        let mut revoke = update.clone();
        revoke.flow = stored.clone();
        revoke.add_token_hash = None;
        revoke.callbacks.clear();
        store.update_flow(revoke).await.unwrap();
        assert!(store.flow_for_token(HASH).await.unwrap().is_none());
        assert!(!store.delete_flow("t1", "f1", 1).await.unwrap());
        assert!(store.delete_flow("t1", "f1", 3).await.unwrap());
        assert!(store.get_flow("t1", "f1").await.unwrap().is_none());
        assert!(store.flow_history("t1", "f1").await.unwrap().is_empty());
        assert!(matches!(
            store.flow_for_token("not hex").await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn control_planes_are_replaced_listed_and_deleted() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let at = now();
        let mut cp = ControlPlaneRecord {
            tenant_id: "t1".into(),
            id: "cp".into(),
            endpoint: "https://cp/a".into(),
            authorization_json: None,
            created_at: at,
            updated_at: at,
        };
        assert!(store.put_control_plane(&cp).await.unwrap());
        cp.endpoint = "https://cp/b".into();
        cp.created_at = at + std::time::Duration::from_secs(5);
        assert!(!store.put_control_plane(&cp).await.unwrap());
        let listed = store.list_control_planes("t1").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].endpoint, "https://cp/b");
        assert_eq!(listed[0].created_at, at, "created_at survives a replace");
        assert!(store.list_control_planes("t2").await.unwrap().is_empty());
        assert!(store.delete_control_plane("t1", "cp").await.unwrap());
        assert!(!store.delete_control_plane("t1", "cp").await.unwrap());
    }
}
