//! App key-value state scoped to (tenant, plugin), with a value-size limit and a byte quota.
//!
//! Every write runs in one transaction that first upserts the scope's `app_state_usage` row:
//! on PostgreSQL that row lock serialises the writers of one scope, on SQLite the one writer
//! thread serialises all writers. So the usage total and compare-and-set are exact under concurrency.

use rusqlite::{OptionalExtension, named_params};

use crate::error::{Result, StoreError, on_fk, on_sqlite_fk};
use crate::records::{MAX_STATE_PAGE, StateLimits};
use crate::{Backend, Store, validate};

/// Bytes a key-value pair counts against the quota.
fn entry_bytes(key: &str, value_len: usize) -> i64 {
    // Both lengths are bounded far below i64::MAX by the checks before any write.
    i64::try_from(key.len().saturating_add(value_len)).unwrap_or(i64::MAX)
}

fn check_scope(tenant: &str, plugin: &str) -> Result<()> {
    validate::id("tenant id", tenant)?;
    validate::id("plugin id", plugin)
}

fn check_value(value: &[u8], limits: &StateLimits) -> Result<()> {
    if u64::try_from(value.len()).unwrap_or(u64::MAX) > limits.max_value_bytes {
        return Err(StoreError::QuotaExceeded(format!(
            "value of {} bytes is larger than the limit of {} bytes",
            value.len(),
            limits.max_value_bytes
        )));
    }
    Ok(())
}

/// What a write changes: refused when it grows the total beyond the quota. A write that does
/// not grow the total is allowed even over quota (after the quota was lowered), so an app can
/// always shrink its state.
fn check_total(usage: i64, new_usage: i64, limits: &StateLimits) -> Result<()> {
    let max = i64::try_from(limits.max_total_bytes).unwrap_or(i64::MAX);
    if new_usage > max && new_usage > usage {
        return Err(StoreError::QuotaExceeded(format!(
            "state would hold {new_usage} bytes, over the quota of {max} bytes"
        )));
    }
    Ok(())
}

/// The scope's new usage if the write goes ahead; `None` when a compare-and-set finds
/// another value than `expected`.
fn plan_write(
    key: &str,
    expected: Option<Option<&[u8]>>,
    old: Option<&[u8]>,
    usage: i64,
    value: &[u8],
    limits: &StateLimits,
) -> Result<Option<i64>> {
    if let Some(expected) = expected
        && expected != old
    {
        return Ok(None);
    }
    let old_bytes = old.map_or(0, |v| entry_bytes(key, v.len()));
    let new_usage = usage - old_bytes + entry_bytes(key, value.len());
    check_total(usage, new_usage, limits)?;
    Ok(Some(new_usage))
}

fn missing_scope(tenant: &str, plugin: &str) -> impl FnOnce() -> StoreError {
    let message = format!("tenant {tenant} or plugin {plugin}");
    move || StoreError::NotFound(message)
}

/// Locks the scope's usage row (creating it) and returns the bytes it holds.
const LOCK_USAGE: &str = "INSERT INTO app_state_usage (tenant_id, plugin_id, bytes) \
     VALUES ($1, $2, 0) ON CONFLICT (tenant_id, plugin_id) \
     DO UPDATE SET bytes = app_state_usage.bytes RETURNING bytes";
/// SQLite: [`LOCK_USAGE`] that also returns the current value, one statement instead of two.
/// Safe there because the writer is alone; PostgreSQL must read the value only after the
/// row lock is held (its statement snapshot predates the wait).
const LOCK_USAGE_READ_VALUE: &str = "INSERT INTO app_state_usage (tenant_id, plugin_id, bytes) \
     VALUES ($1, $2, 0) ON CONFLICT (tenant_id, plugin_id) \
     DO UPDATE SET bytes = app_state_usage.bytes RETURNING bytes, \
     (SELECT value FROM app_state WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3)";
/// Locks the scope's usage row if it exists and returns its bytes.
const LOCK_USAGE_IF_ANY: &str = "UPDATE app_state_usage SET bytes = bytes \
     WHERE tenant_id = $1 AND plugin_id = $2 RETURNING bytes";
const DELETE_VALUE: &str = "DELETE FROM app_state \
     WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3 RETURNING value";
const SET_USAGE: &str =
    "UPDATE app_state_usage SET bytes = $3 WHERE tenant_id = $1 AND plugin_id = $2";
const GET_VALUE: &str =
    "SELECT value FROM app_state WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3";
const PUT_VALUE: &str = "INSERT INTO app_state (tenant_id, plugin_id, key, value) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET value = excluded.value";

impl Store {
    /// The value under `key`, if any.
    pub async fn state_get(
        &self,
        tenant: &str,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        check_scope(tenant, plugin)?;
        validate::key(key)?;
        if let Backend::Sqlite(sqlite) = &self.backend
            && let Some(value) = sqlite.readers.read(|c| {
                c.prepare_cached(GET_VALUE)?
                    .query_row(named_params! {"$1": tenant, "$2": plugin, "$3": key}, |r| {
                        r.get(0)
                    })
                    .optional()
            })?
        {
            return Ok(value);
        }
        with_pool!(self, |pool| {
            let row: Option<(Vec<u8>,)> = sqlx::query_as(GET_VALUE)
                .bind(tenant)
                .bind(plugin)
                .bind(key)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|(value,)| value))
        })
    }

    /// Stores `value` under `key`. [`StoreError::QuotaExceeded`] (and nothing changed) when the
    /// value or the scope's new total is over `limits`; [`StoreError::NotFound`] when the tenant
    /// or the plugin does not exist.
    pub async fn state_set(
        &self,
        tenant: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        limits: StateLimits,
    ) -> Result<()> {
        self.write_state(tenant, plugin, key, None, value, limits)
            .await
            .map(|_| ())
    }

    /// Stores `new` under `key` only if the current value equals `expected` (`None`: the key
    /// is absent). Returns whether it stored. Atomic against concurrent writers.
    pub async fn state_compare_and_set(
        &self,
        tenant: &str,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        limits: StateLimits,
    ) -> Result<bool> {
        self.write_state(tenant, plugin, key, Some(expected), new, limits)
            .await
    }

    /// The write behind `state_set` (`expected` is `None`) and compare-and-set.
    async fn write_state(
        &self,
        tenant: &str,
        plugin: &str,
        key: &str,
        expected: Option<Option<&[u8]>>,
        value: &[u8],
        limits: StateLimits,
    ) -> Result<bool> {
        check_scope(tenant, plugin)?;
        validate::key(key)?;
        check_value(value, &limits)?;
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                let (tenant, plugin, key) = (tenant.to_owned(), plugin.to_owned(), key.to_owned());
                let expected = expected.map(|e| e.map(<[u8]>::to_vec));
                let value = value.to_vec();
                sqlite
                    .writer
                    .write(move |conn| {
                        // One statement: the writer is alone, nothing can change in between.
                        let (usage, old): (i64, Option<Vec<u8>>) = conn
                            .prepare_cached(LOCK_USAGE_READ_VALUE)?
                            .query_row(named_params! {"$1": tenant, "$2": plugin, "$3": key}, |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })
                            .map_err(|e| on_sqlite_fk(e, missing_scope(&tenant, &plugin)))?;
                        let expected = expected.as_ref().map(Option::as_deref);
                        let Some(new_usage) =
                            plan_write(&key, expected, old.as_deref(), usage, &value, &limits)?
                        else {
                            return Ok(false);
                        };
                        conn.prepare_cached(PUT_VALUE)?.execute(
                            named_params! {"$1": tenant, "$2": plugin, "$3": key, "$4": value},
                        )?;
                        conn.prepare_cached(SET_USAGE)?
                            .execute(named_params! {"$1": tenant, "$2": plugin, "$3": new_usage})?;
                        Ok(true)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let (usage,): (i64,) = sqlx::query_as(LOCK_USAGE)
                    .bind(tenant)
                    .bind(plugin)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| on_fk(e, missing_scope(tenant, plugin)))?;
                // Read after the row lock: the statement's snapshot must not predate it.
                let old: Option<(Vec<u8>,)> = sqlx::query_as(GET_VALUE)
                    .bind(tenant)
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                let old = old.map(|(v,)| v);
                let Some(new_usage) =
                    plan_write(key, expected, old.as_deref(), usage, value, &limits)?
                else {
                    return Ok(false);
                };
                sqlx::query(PUT_VALUE)
                    .bind(tenant)
                    .bind(plugin)
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SET_USAGE)
                    .bind(tenant)
                    .bind(plugin)
                    .bind(new_usage)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// Removes `key`. Returns whether it existed.
    pub async fn state_delete(&self, tenant: &str, plugin: &str, key: &str) -> Result<bool> {
        check_scope(tenant, plugin)?;
        validate::key(key)?;
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                let (tenant, plugin, key) = (tenant.to_owned(), plugin.to_owned(), key.to_owned());
                sqlite
                    .writer
                    .write(move |conn| {
                        let usage: Option<i64> = conn
                            .prepare_cached(LOCK_USAGE_IF_ANY)?
                            .query_row(named_params! {"$1": tenant, "$2": plugin}, |r| r.get(0))
                            .optional()?;
                        let Some(usage) = usage else {
                            return Ok(false);
                        };
                        let old: Option<Vec<u8>> = conn
                            .prepare_cached(DELETE_VALUE)?
                            .query_row(named_params! {"$1": tenant, "$2": plugin, "$3": key}, |r| {
                                r.get(0)
                            })
                            .optional()?;
                        let Some(old) = old else {
                            return Ok(false);
                        };
                        let new_usage = usage - entry_bytes(&key, old.len());
                        conn.prepare_cached(SET_USAGE)?
                            .execute(named_params! {"$1": tenant, "$2": plugin, "$3": new_usage})?;
                        Ok(true)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let usage: Option<(i64,)> = sqlx::query_as(LOCK_USAGE_IF_ANY)
                    .bind(tenant)
                    .bind(plugin)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((usage,)) = usage else {
                    return Ok(false);
                };
                let old: Option<(Vec<u8>,)> = sqlx::query_as(DELETE_VALUE)
                    .bind(tenant)
                    .bind(plugin)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((old,)) = old else {
                    return Ok(false);
                };
                sqlx::query(SET_USAGE)
                    .bind(tenant)
                    .bind(plugin)
                    .bind(usage - entry_bytes(key, old.len()))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// One page of the entries whose key starts with `prefix` (taken literally: `%` and `_` are
    /// ordinary characters), in byte order of the keys, after `cursor` (the `next_cursor` of
    /// the previous page). `limit` is capped at [`MAX_STATE_PAGE`]; the returned cursor is
    /// `None` on the last page.
    pub async fn state_list(
        &self,
        tenant: &str,
        plugin: &str,
        prefix: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<(String, Vec<u8>)>, Option<String>)> {
        check_scope(tenant, plugin)?;
        validate::text("prefix", prefix)?;
        if let Some(cursor) = &cursor {
            validate::text("cursor", cursor)?;
        }
        if limit == 0 {
            return Err(StoreError::Invalid("limit must be at least 1".into()));
        }
        let limit = limit.min(MAX_STATE_PAGE);
        // Start after the cursor when it lies within the prefix's range, else at the prefix.
        let (lower, lower_op) = match cursor {
            Some(cursor) if cursor.as_str() >= prefix => (cursor, ">"),
            _ => (prefix.to_owned(), ">="),
        };
        let upper = validate::prefix_upper_bound(prefix);
        let upper_clause = if upper.is_some() { "AND key < $5" } else { "" };
        let sql = format!(
            "SELECT key, value FROM app_state \
             WHERE tenant_id = $1 AND plugin_id = $2 AND key {lower_op} $3 {upper_clause} \
             ORDER BY key LIMIT $4"
        );
        let fetch = i64::from(limit) + 1;
        with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, (String, Vec<u8>)>(&sql)
                .bind(tenant)
                .bind(plugin)
                .bind(&lower)
                .bind(fetch);
            if let Some(upper) = &upper {
                query = query.bind(upper);
            }
            let mut rows = query.fetch_all(pool).await?;
            let next = if rows.len() > limit as usize {
                rows.truncate(limit as usize);
                rows.last().map(|(key, _)| key.clone())
            } else {
                None
            };
            Ok((rows, next))
        })
    }

    /// Bytes (keys + values) the (tenant, plugin) scope holds.
    pub async fn state_usage(&self, tenant: &str, plugin: &str) -> Result<u64> {
        check_scope(tenant, plugin)?;
        with_pool!(self, |pool| {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT bytes FROM app_state_usage WHERE tenant_id = $1 AND plugin_id = $2",
            )
            .bind(tenant)
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
            Ok(row.map_or(0, |(bytes,)| u64::try_from(bytes).unwrap_or(0)))
        })
    }
}
