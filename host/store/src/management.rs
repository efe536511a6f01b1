//! Durable records of the Management API bridge (`weft-management`): the last state seen of
//! each contract negotiation and transfer process, the event outbox that makes delivery to
//! apps at-least-once, `management.watch` registrations, and Weft's data-plane registrations.
//!
//! The outbox is claimed with a lease, so several replicas can share it: a claimed event is
//! invisible to other claimers until its lease runs out (a crashed replica's events come back).

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::{OptionalExtension, named_params};
use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::records::{from_millis, now, to_millis};
use crate::{Backend, Store, validate};

/// Most outbox events one claim returns, whatever the caller asks: bounds one batch.
pub const MAX_EVENT_CLAIM: u32 = 500;
/// Most watches one listing returns, whatever the caller asks.
pub const MAX_WATCH_PAGE: u32 = 1000;
/// Longest error text kept with an outbox event; the full text is in the host's log.
pub const MAX_EVENT_ERROR_BYTES: usize = 2048;

/// The last state seen of one control-plane process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessState {
    pub process_id: String,
    /// The EDC state name, e.g. `FINALIZED`.
    pub state: String,
    /// The process's `stateTimestamp` as text (empty when the control plane sent none); tells
    /// a second visit of the same state (STARTED, SUSPENDED, STARTED) from a repeat.
    pub state_timestamp: String,
}

/// An event to put into the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Stable id: the same event seen twice is stored once.
    pub id: String,
    pub tenant_id: String,
    pub plugin_id: String,
    /// `contract-negotiation`, `transfer-process`, `process-state-changed` or `timer`.
    pub kind: String,
    /// The state carried by the kind (empty for timers).
    pub state: String,
    pub subject: String,
    pub correlation: Option<String>,
    pub payload_json: String,
}

/// Where an outbox event is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventStatus {
    Pending,
    Delivered,
    Failed,
}

impl EventStatus {
    fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
            EventStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(EventStatus::Pending),
            "delivered" => Ok(EventStatus::Delivered),
            "failed" => Ok(EventStatus::Failed),
            other => Err(StoreError::corrupt(format_args!(
                "unknown event status {other:?}"
            ))),
        }
    }
}

/// An event in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: String,
    pub tenant_id: String,
    pub plugin_id: String,
    pub kind: String,
    pub state: String,
    pub subject: String,
    pub correlation: Option<String>,
    pub payload_json: String,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub status: EventStatus,
    /// When the next attempt is due (pending events).
    pub next_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A `management.watch` registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub tenant_id: String,
    pub plugin_id: String,
    /// `contract-negotiation` or `transfer-process`.
    pub kind: String,
    pub process_id: String,
    pub correlation: String,
}

/// A stored watch with its age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRecord {
    pub watch: Watch,
    pub created_at: OffsetDateTime,
}

/// Weft's data-plane registration for one tenant, as last sent to the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPlaneRegistration {
    pub tenant_id: String,
    pub dataplane_id: String,
    pub endpoint: String,
    /// The profiles registered (JSON array text).
    pub profiles_json: String,
    pub registered_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: String,
    tenant_id: String,
    plugin_id: String,
    kind: String,
    state: String,
    subject: String,
    correlation: Option<String>,
    payload_json: String,
    attempts: i64,
    status: String,
    next_at: i64,
    last_error: Option<String>,
    created_at: i64,
}

impl OutboxRow {
    /// Reads a row of [`OUTBOX_COLUMNS`], in order.
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
        Ok(OutboxRow {
            id: r.get(0)?,
            tenant_id: r.get(1)?,
            plugin_id: r.get(2)?,
            kind: r.get(3)?,
            state: r.get(4)?,
            subject: r.get(5)?,
            correlation: r.get(6)?,
            payload_json: r.get(7)?,
            attempts: r.get(8)?,
            status: r.get(9)?,
            next_at: r.get(10)?,
            last_error: r.get(11)?,
            created_at: r.get(12)?,
        })
    }

    fn into_event(self) -> Result<OutboxEvent> {
        Ok(OutboxEvent {
            id: self.id,
            tenant_id: self.tenant_id,
            plugin_id: self.plugin_id,
            kind: self.kind,
            state: self.state,
            subject: self.subject,
            correlation: self.correlation,
            payload_json: self.payload_json,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            status: EventStatus::parse(&self.status)?,
            next_at: from_millis(self.next_at)?,
            last_error: self.last_error,
            created_at: from_millis(self.created_at)?,
        })
    }
}

const OUTBOX_COLUMNS: &str = "id, tenant_id, plugin_id, kind, state, subject, correlation, \
     payload_json, attempts, status, next_at, last_error, created_at";

fn millis_after(delay: Duration) -> Result<i64> {
    let now = to_millis(now())?;
    let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    Ok(now.saturating_add(delay))
}

fn cut_error(error: &str) -> String {
    let mut end = error.len().min(MAX_EVENT_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].replace('\0', " ")
}

const INSERT_PROCESS_STATE: &str = "INSERT INTO mgmt_process_states \
     (tenant_id, kind, process_id, state, state_timestamp, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (tenant_id, kind, process_id) DO NOTHING RETURNING updated_at";
const CHANGE_PROCESS_STATE: &str = "UPDATE mgmt_process_states \
     SET state = $4, state_timestamp = $5, updated_at = $6 \
     WHERE tenant_id = $1 AND kind = $2 AND process_id = $3 \
     AND (state <> $4 OR state_timestamp <> $5) RETURNING updated_at";

fn check_process(tenant: &str, kind: &str, process: &str) -> Result<()> {
    validate::id("tenant id", tenant)?;
    validate::id("process kind", kind)?;
    validate::id("process id", process)
}

impl Store {
    /// Every stored process state of one tenant and kind, by process id.
    pub async fn mgmt_process_states(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<HashMap<String, ProcessState>> {
        validate::id("tenant id", tenant)?;
        validate::id("process kind", kind)?;
        with_pool!(self, |pool| {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT process_id, state, state_timestamp FROM mgmt_process_states \
                 WHERE tenant_id = $1 AND kind = $2",
            )
            .bind(tenant)
            .bind(kind)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(process_id, state, state_timestamp)| {
                    (
                        process_id.clone(),
                        ProcessState {
                            process_id,
                            state,
                            state_timestamp,
                        },
                    )
                })
                .collect())
        })
    }

    /// Records the state of a process; returns whether it differs from what was stored (a
    /// process seen for the first time counts as changed). Atomic against concurrent callers:
    /// of two callers recording the same change, exactly one gets `true`.
    pub async fn mgmt_put_process_state(
        &self,
        tenant: &str,
        kind: &str,
        state: &ProcessState,
    ) -> Result<bool> {
        check_process(tenant, kind, &state.process_id)?;
        validate::text("state", &state.state)?;
        validate::text("state timestamp", &state.state_timestamp)?;
        let at = to_millis(now())?;
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                let (tenant, kind, state) = (tenant.to_owned(), kind.to_owned(), state.clone());
                sqlite
                    .writer
                    .write(move |conn| {
                        let params = named_params! {
                            "$1": tenant,
                            "$2": kind,
                            "$3": state.process_id,
                            "$4": state.state,
                            "$5": state.state_timestamp,
                            "$6": at,
                        };
                        let inserted = conn
                            .prepare_cached(INSERT_PROCESS_STATE)?
                            .query_row(params, |r| r.get::<_, i64>(0))
                            .optional()?;
                        if inserted.is_some() {
                            return Ok(true);
                        }
                        let changed = conn
                            .prepare_cached(CHANGE_PROCESS_STATE)?
                            .query_row(params, |r| r.get::<_, i64>(0))
                            .optional()?;
                        Ok(changed.is_some())
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                // Both statements take the same arguments.
                let query = |sql| {
                    sqlx::query_as::<_, (i64,)>(sql)
                        .bind(tenant)
                        .bind(kind)
                        .bind(&state.process_id)
                        .bind(&state.state)
                        .bind(&state.state_timestamp)
                        .bind(at)
                };
                let mut tx = pool.begin().await?;
                // Create the row if missing, else take its lock with the conditional update.
                let inserted = query(INSERT_PROCESS_STATE).fetch_optional(&mut *tx).await?;
                if inserted.is_some() {
                    tx.commit().await?;
                    return Ok(true);
                }
                let changed = query(CHANGE_PROCESS_STATE).fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                Ok(changed.is_some())
            }
        }
    }

    /// Forgets process states not updated since `before`; returns how many.
    pub async fn mgmt_prune_process_states(&self, before: OffsetDateTime) -> Result<u64> {
        let before = to_millis(before)?;
        self.execute(
            "DELETE FROM mgmt_process_states WHERE updated_at < $1",
            args![before],
        )
        .await
    }

    /// Whether the first full poll of (tenant, kind) is done.
    pub async fn mgmt_has_baseline(&self, tenant: &str, kind: &str) -> Result<bool> {
        validate::id("tenant id", tenant)?;
        validate::id("process kind", kind)?;
        with_pool!(self, |pool| {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT established_at FROM mgmt_poll_baselines WHERE tenant_id = $1 AND kind = $2",
            )
            .bind(tenant)
            .bind(kind)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }

    /// Marks the first full poll of (tenant, kind) as done (idempotent).
    pub async fn mgmt_set_baseline(&self, tenant: &str, kind: &str) -> Result<()> {
        validate::id("tenant id", tenant)?;
        validate::id("process kind", kind)?;
        let at = to_millis(now())?;
        self.execute(
            "INSERT INTO mgmt_poll_baselines (tenant_id, kind, established_at) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id, kind) DO NOTHING",
            args![tenant, kind, at],
        )
        .await?;
        Ok(())
    }

    /// Adds an event to the outbox, due now. Returns false (changing nothing) when an event
    /// with this id is already there, whatever its status.
    pub async fn mgmt_enqueue_event(&self, event: &NewEvent) -> Result<bool> {
        validate::id("event id", &event.id)?;
        validate::id("tenant id", &event.tenant_id)?;
        validate::id("plugin id", &event.plugin_id)?;
        validate::id("event kind", &event.kind)?;
        validate::text("event state", &event.state)?;
        validate::text("event subject", &event.subject)?;
        if let Some(c) = &event.correlation {
            validate::text("correlation", c)?;
        }
        validate::json("event payload", &event.payload_json)?;
        let at = to_millis(now())?;
        let inserted = self
            .execute(
                "INSERT INTO mgmt_event_outbox (id, tenant_id, plugin_id, kind, state, subject, \
                 correlation, payload_json, attempts, status, next_at, lease_until, last_error, \
                 created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 'pending', $9, 0, NULL, $9, $9) \
                 ON CONFLICT (id) DO NOTHING",
                args![
                    &event.id,
                    &event.tenant_id,
                    &event.plugin_id,
                    &event.kind,
                    &event.state,
                    &event.subject,
                    &event.correlation,
                    &event.payload_json,
                    at
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Claims up to `limit` pending events that are due and not leased, oldest due first,
    /// leasing them for `lease`. Until the lease runs out no other claim returns them.
    pub async fn mgmt_claim_events(&self, lease: Duration, limit: u32) -> Result<Vec<OutboxEvent>> {
        if limit == 0 {
            return Err(StoreError::Invalid("limit must be at least 1".into()));
        }
        let limit = i64::from(limit.min(MAX_EVENT_CLAIM));
        let now_ms = to_millis(now())?;
        let until = millis_after(lease)?;
        let sql = format!(
            "UPDATE mgmt_event_outbox SET lease_until = $2 \
             WHERE id IN (SELECT id FROM mgmt_event_outbox \
                 WHERE status = 'pending' AND next_at <= $1 AND lease_until <= $1 \
                 ORDER BY next_at, id LIMIT $3) \
             AND status = 'pending' AND lease_until <= $1 \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let rows: Vec<OutboxRow> = match &self.backend {
            Backend::Sqlite(sqlite) => {
                sqlite
                    .writer
                    .write(move |conn| {
                        let mut claim = conn.prepare_cached(&sql)?;
                        let rows = claim.query_map(
                            named_params! {"$1": now_ms, "$2": until, "$3": limit},
                            OutboxRow::from_sqlite,
                        )?;
                        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
                    })
                    .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_as(&sql)
                    .bind(now_ms)
                    .bind(until)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        let mut events = rows
            .into_iter()
            .map(OutboxRow::into_event)
            .collect::<Result<Vec<_>>>()?;
        events.sort_by(|a, b| (a.next_at, &a.id).cmp(&(b.next_at, &b.id)));
        Ok(events)
    }

    /// One outbox event, whatever its status.
    pub async fn mgmt_event(&self, id: &str) -> Result<Option<OutboxEvent>> {
        validate::id("event id", id)?;
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM mgmt_event_outbox WHERE id = $1");
        with_pool!(self, |pool| {
            let row: Option<OutboxRow> = sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?;
            row.map(OutboxRow::into_event).transpose()
        })
    }

    /// Outbox events of one tenant (any status), oldest first, at most `limit`.
    pub async fn mgmt_events_of(&self, tenant: &str, limit: u32) -> Result<Vec<OutboxEvent>> {
        validate::id("tenant id", tenant)?;
        let limit = i64::from(limit.clamp(1, MAX_EVENT_CLAIM));
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM mgmt_event_outbox WHERE tenant_id = $1 \
             ORDER BY created_at, id LIMIT $2"
        );
        with_pool!(self, |pool| {
            let rows: Vec<OutboxRow> = sqlx::query_as(&sql)
                .bind(tenant)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(OutboxRow::into_event).collect()
        })
    }

    /// Records the end of a delivery attempt: `Delivered` or `Failed` end the event's life,
    /// `Pending` schedules the next attempt after `retry_in`. `attempts` is the number made.
    pub async fn mgmt_finish_attempt(
        &self,
        id: &str,
        status: EventStatus,
        attempts: u32,
        retry_in: Duration,
        error: Option<&str>,
    ) -> Result<()> {
        validate::id("event id", id)?;
        let at = to_millis(now())?;
        let next_at = millis_after(retry_in)?;
        let error = error.map(cut_error);
        let updated = self
            .execute(
                "UPDATE mgmt_event_outbox SET status = $2, attempts = $3, next_at = $4, \
                 lease_until = 0, last_error = $5, updated_at = $6 WHERE id = $1",
                args![
                    id,
                    status.as_str(),
                    i64::from(attempts),
                    next_at,
                    &error,
                    at
                ],
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound(format!("event {id}")));
        }
        Ok(())
    }

    /// Removes delivered and failed events last updated before `before`; returns how many.
    /// Pending events are never pruned.
    pub async fn mgmt_prune_events(&self, before: OffsetDateTime) -> Result<u64> {
        let before = to_millis(before)?;
        self.execute(
            "DELETE FROM mgmt_event_outbox WHERE status <> 'pending' AND updated_at < $1",
            args![before],
        )
        .await
    }

    /// Adds a watch (idempotent: the same watch again changes nothing).
    pub async fn mgmt_add_watch(&self, watch: &Watch) -> Result<()> {
        check_process(&watch.tenant_id, &watch.kind, &watch.process_id)?;
        validate::id("plugin id", &watch.plugin_id)?;
        validate::text("correlation", &watch.correlation)?;
        let at = to_millis(now())?;
        self.execute(
            "INSERT INTO mgmt_watches \
             (tenant_id, plugin_id, kind, process_id, correlation, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, plugin_id, kind, process_id, correlation) DO NOTHING",
            args![
                &watch.tenant_id,
                &watch.plugin_id,
                &watch.kind,
                &watch.process_id,
                &watch.correlation,
                at
            ],
        )
        .await?;
        Ok(())
    }

    /// How many watches a tenant holds.
    pub async fn mgmt_count_watches(&self, tenant: &str) -> Result<u64> {
        validate::id("tenant id", tenant)?;
        with_pool!(self, |pool| {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM mgmt_watches WHERE tenant_id = $1")
                    .bind(tenant)
                    .fetch_one(pool)
                    .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Watches, oldest first, at most `limit` (capped at [`MAX_WATCH_PAGE`]); with `process`,
    /// only those on that (tenant, kind, process id).
    pub async fn mgmt_watches(
        &self,
        process: Option<(&str, &str, &str)>,
        limit: u32,
    ) -> Result<Vec<WatchRecord>> {
        let limit = i64::from(limit.clamp(1, MAX_WATCH_PAGE));
        let columns = "tenant_id, plugin_id, kind, process_id, correlation, created_at";
        type Row = (String, String, String, String, String, i64);
        let rows: Vec<Row> = match process {
            Some((tenant, kind, id)) => {
                check_process(tenant, kind, id)?;
                let sql = format!(
                    "SELECT {columns} FROM mgmt_watches \
                     WHERE tenant_id = $1 AND kind = $2 AND process_id = $3 \
                     ORDER BY created_at LIMIT $4"
                );
                with_pool!(self, |pool| {
                    sqlx::query_as(&sql)
                        .bind(tenant)
                        .bind(kind)
                        .bind(id)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                })
            }
            None => {
                let sql =
                    format!("SELECT {columns} FROM mgmt_watches ORDER BY created_at LIMIT $1");
                with_pool!(self, |pool| {
                    sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?
                })
            }
        };
        rows.into_iter()
            .map(
                |(tenant_id, plugin_id, kind, process_id, correlation, created_at)| {
                    Ok(WatchRecord {
                        watch: Watch {
                            tenant_id,
                            plugin_id,
                            kind,
                            process_id,
                            correlation,
                        },
                        created_at: from_millis(created_at)?,
                    })
                },
            )
            .collect()
    }

    /// Removes a watch; returns whether it existed (false when another replica was first).
    pub async fn mgmt_remove_watch(&self, watch: &Watch) -> Result<bool> {
        check_process(&watch.tenant_id, &watch.kind, &watch.process_id)?;
        validate::id("plugin id", &watch.plugin_id)?;
        validate::text("correlation", &watch.correlation)?;
        let deleted = self
            .execute(
                "DELETE FROM mgmt_watches WHERE tenant_id = $1 AND plugin_id = $2 AND kind = $3 \
                 AND process_id = $4 AND correlation = $5",
                args![
                    &watch.tenant_id,
                    &watch.plugin_id,
                    &watch.kind,
                    &watch.process_id,
                    &watch.correlation
                ],
            )
            .await?;
        Ok(deleted == 1)
    }

    /// Records (or replaces) a tenant's data-plane registration, stamped now.
    pub async fn mgmt_put_dataplane(
        &self,
        tenant: &str,
        dataplane_id: &str,
        endpoint: &str,
        profiles_json: &str,
    ) -> Result<()> {
        validate::id("tenant id", tenant)?;
        validate::id("dataplane id", dataplane_id)?;
        validate::text("endpoint", endpoint)?;
        validate::json("profiles", profiles_json)?;
        let at = to_millis(now())?;
        self.execute(
            "INSERT INTO mgmt_dataplanes \
             (tenant_id, dataplane_id, endpoint, profiles_json, registered_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET \
             dataplane_id = excluded.dataplane_id, endpoint = excluded.endpoint, \
             profiles_json = excluded.profiles_json, registered_at = excluded.registered_at",
            args![tenant, dataplane_id, endpoint, profiles_json, at],
        )
        .await?;
        Ok(())
    }

    /// A tenant's data-plane registration, if any.
    pub async fn mgmt_dataplane(&self, tenant: &str) -> Result<Option<DataPlaneRegistration>> {
        validate::id("tenant id", tenant)?;
        with_pool!(self, |pool| {
            let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
                "SELECT tenant_id, dataplane_id, endpoint, profiles_json, registered_at \
                 FROM mgmt_dataplanes WHERE tenant_id = $1",
            )
            .bind(tenant)
            .fetch_optional(pool)
            .await?;
            row.map(
                |(tenant_id, dataplane_id, endpoint, profiles_json, registered_at)| {
                    Ok(DataPlaneRegistration {
                        tenant_id,
                        dataplane_id,
                        endpoint,
                        profiles_json,
                        registered_at: from_millis(registered_at)?,
                    })
                },
            )
            .transpose()
        })
    }

    /// Forgets a tenant's data-plane registration; returns whether there was one.
    pub async fn mgmt_delete_dataplane(&self, tenant: &str) -> Result<bool> {
        validate::id("tenant id", tenant)?;
        let deleted = self
            .execute(
                "DELETE FROM mgmt_dataplanes WHERE tenant_id = $1",
                args![tenant],
            )
            .await?;
        Ok(deleted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite in memory, plus PostgreSQL in a throw-away schema when
    /// `WEFT_TEST_POSTGRES_URL` is set (as the crate's storage suite does).
    async fn run<F>(test: F)
    where
        F: AsyncFn(&Store),
    {
        test(&Store::connect("sqlite::memory:").await.unwrap()).await;
        if let Ok(url) = std::env::var("WEFT_TEST_POSTGRES_URL") {
            use sqlx::Connection;
            let schema = format!("weft_mgmt_{}", uuid::Uuid::new_v4().simple());
            let store = Store::connect_with_schema(&url, &schema).await.unwrap();
            test(&store).await;
            store.close().await;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    fn event(id: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            tenant_id: "t1".into(),
            plugin_id: "p1".into(),
            kind: "contract-negotiation".into(),
            state: "FINALIZED".into(),
            subject: "n1".into(),
            correlation: None,
            payload_json: "{}".into(),
        }
    }

    #[tokio::test]
    async fn process_state_changes_are_detected_once() {
        run(process_state_changes_are_detected_once_on).await;
    }

    async fn process_state_changes_are_detected_once_on(s: &Store) {
        let st = |state: &str, ts: &str| ProcessState {
            process_id: "n1".into(),
            state: state.into(),
            state_timestamp: ts.into(),
        };
        assert!(
            s.mgmt_put_process_state("t1", "cn", &st("REQUESTED", "1"))
                .await
                .unwrap()
        );
        assert!(
            !s.mgmt_put_process_state("t1", "cn", &st("REQUESTED", "1"))
                .await
                .unwrap()
        );
        assert!(
            s.mgmt_put_process_state("t1", "cn", &st("FINALIZED", "2"))
                .await
                .unwrap()
        );
        // The same state again, entered anew (new timestamp), is a change.
        assert!(
            s.mgmt_put_process_state("t1", "cn", &st("FINALIZED", "3"))
                .await
                .unwrap()
        );
        // Another tenant's process with the same id is separate.
        assert!(
            s.mgmt_put_process_state("t2", "cn", &st("FINALIZED", "3"))
                .await
                .unwrap()
        );
        let states = s.mgmt_process_states("t1", "cn").await.unwrap();
        assert_eq!(states["n1"].state, "FINALIZED");
        assert_eq!(states.len(), 1);
        assert!(!s.mgmt_has_baseline("t1", "cn").await.unwrap());
        s.mgmt_set_baseline("t1", "cn").await.unwrap();
        s.mgmt_set_baseline("t1", "cn").await.unwrap();
        assert!(s.mgmt_has_baseline("t1", "cn").await.unwrap());
        assert!(!s.mgmt_has_baseline("t2", "cn").await.unwrap());
    }

    #[tokio::test]
    async fn outbox_claims_lease_and_finishes() {
        run(outbox_claims_lease_and_finishes_on).await;
    }

    async fn outbox_claims_lease_and_finishes_on(s: &Store) {
        assert!(s.mgmt_enqueue_event(&event("e1")).await.unwrap());
        assert!(!s.mgmt_enqueue_event(&event("e1")).await.unwrap());
        assert!(s.mgmt_enqueue_event(&event("e2")).await.unwrap());
        let claimed = s
            .mgmt_claim_events(Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(claimed[0].attempts, 0);
        // Leased: a second claim sees nothing.
        assert!(
            s.mgmt_claim_events(Duration::from_secs(60), 10)
                .await
                .unwrap()
                .is_empty()
        );
        s.mgmt_finish_attempt("e1", EventStatus::Delivered, 1, Duration::ZERO, None)
            .await
            .unwrap();
        s.mgmt_finish_attempt("e2", EventStatus::Pending, 1, Duration::ZERO, Some("boom"))
            .await
            .unwrap();
        let again = s
            .mgmt_claim_events(Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, "e2");
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("boom"));
        // Delivered events keep their id, so the same event is not enqueued again.
        assert!(!s.mgmt_enqueue_event(&event("e1")).await.unwrap());
        assert_eq!(
            s.mgmt_event("e1").await.unwrap().unwrap().status,
            EventStatus::Delivered
        );
        // An expired lease gives the event back.
        s.mgmt_finish_attempt("e2", EventStatus::Pending, 2, Duration::ZERO, None)
            .await
            .unwrap();
        let leased = s.mgmt_claim_events(Duration::ZERO, 10).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(
            s.mgmt_claim_events(Duration::ZERO, 10).await.unwrap().len(),
            1
        );
        // A retry in the future is not due.
        s.mgmt_finish_attempt(
            "e2",
            EventStatus::Pending,
            3,
            Duration::from_secs(3600),
            None,
        )
        .await
        .unwrap();
        assert!(
            s.mgmt_claim_events(Duration::ZERO, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            s.mgmt_finish_attempt("nope", EventStatus::Failed, 1, Duration::ZERO, None)
                .await,
            Err(StoreError::NotFound(_))
        ));
        let far = now() + time::Duration::hours(1);
        assert_eq!(s.mgmt_prune_events(far).await.unwrap(), 1);
        assert_eq!(s.mgmt_events_of("t1", 10).await.unwrap().len(), 1);
        assert!(
            s.mgmt_enqueue_event(&NewEvent {
                payload_json: "{".into(),
                ..event("e3")
            })
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn watches_and_dataplanes() {
        run(watches_and_dataplanes_on).await;
    }

    async fn watches_and_dataplanes_on(s: &Store) {
        let w = Watch {
            tenant_id: "t1".into(),
            plugin_id: "p1".into(),
            kind: "contract-negotiation".into(),
            process_id: "n1".into(),
            correlation: "c".into(),
        };
        s.mgmt_add_watch(&w).await.unwrap();
        s.mgmt_add_watch(&w).await.unwrap();
        assert_eq!(s.mgmt_count_watches("t1").await.unwrap(), 1);
        assert_eq!(s.mgmt_count_watches("t2").await.unwrap(), 0);
        let found = s
            .mgmt_watches(Some(("t1", "contract-negotiation", "n1")), 10)
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert!(
            s.mgmt_watches(Some(("t2", "contract-negotiation", "n1")), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.mgmt_watches(None, 10).await.unwrap()[0].watch, w);
        assert!(s.mgmt_remove_watch(&w).await.unwrap());
        assert!(!s.mgmt_remove_watch(&w).await.unwrap());

        assert!(s.mgmt_dataplane("t1").await.unwrap().is_none());
        s.mgmt_put_dataplane("t1", "weft-t1", "http://x/dps/t1/dataflows", "[\"a\"]")
            .await
            .unwrap();
        s.mgmt_put_dataplane(
            "t1",
            "weft-t1",
            "http://x/dps/t1/dataflows",
            "[\"a\",\"b\"]",
        )
        .await
        .unwrap();
        let reg = s.mgmt_dataplane("t1").await.unwrap().unwrap();
        assert_eq!(reg.profiles_json, "[\"a\",\"b\"]");
        assert!(s.mgmt_delete_dataplane("t1").await.unwrap());
        assert!(!s.mgmt_delete_dataplane("t1").await.unwrap());
    }
}
