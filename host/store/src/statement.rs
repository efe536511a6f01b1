//! One write statement, written once for both backends: on SQLite it runs on the writer
//! (so every SQLite write takes the one writer and none meets it in SQLite's busy handler),
//! on PostgreSQL on the pool.

use std::borrow::Cow;

use crate::error::{Result, StoreError, on_fk, on_sqlite_fk};
use crate::{Backend, Store};

/// A value bound to a statement's `$n` parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Arg {
        Arg::Text(v.clone())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}

impl Store {
    /// Runs one write statement with `args` bound to `$1`, `$2`, …; the number of rows it
    /// changed.
    pub(crate) async fn execute(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
    ) -> Result<u64> {
        self.execute_or(sql, args, default_fk_conflict).await
    }

    /// [`Store::execute`], with a foreign-key violation reported as `on_fk_violation()`
    /// (instead of a conflict).
    pub(crate) async fn execute_or(
        &self,
        sql: impl Into<Cow<'static, str>>,
        args: Vec<Arg>,
        on_fk_violation: impl FnOnce() -> StoreError + Send + 'static,
    ) -> Result<u64> {
        let sql = sql.into();
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                sqlite
                    .writer
                    .write(move |conn| {
                        let mut statement = bind_sqlite(conn, &sql, args)?;
                        let changed = statement
                            .raw_execute()
                            .map_err(|e| on_sqlite_fk(e, on_fk_violation))?;
                        Ok(changed as u64)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let done = bind_postgres(sqlx::query(&sql), args)
                    .execute(pool)
                    .await
                    .map_err(|e| on_fk(e, on_fk_violation))?;
                Ok(done.rows_affected())
            }
        }
    }

    /// Runs an `INSERT … RETURNING id`; the id.
    pub(crate) async fn insert_returning_id(
        &self,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<i64> {
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                sqlite
                    .writer
                    .write(move |conn| {
                        let mut statement = bind_sqlite(conn, sql, args)?;
                        let mut rows = statement.raw_query();
                        let row = rows.next()?.ok_or_else(|| {
                            StoreError::Database("the insert returned no id".into())
                        })?;
                        Ok(row.get(0)?)
                    })
                    .await
            }
            Backend::Postgres(pool) => {
                let row = bind_postgres(sqlx::query(sql), args)
                    .fetch_one(pool)
                    .await?;
                Ok(sqlx::Row::try_get(&row, 0)?)
            }
        }
    }
}

/// Prepares `sql` on the writer's connection (cached) with `args` bound by name.
fn bind_sqlite<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    args: Vec<Arg>,
) -> Result<rusqlite::CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    for (i, arg) in args.into_iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = statement.parameter_index(&name)?.ok_or_else(|| {
            StoreError::Database(format!("statement has no parameter {name}").into())
        })?;
        match arg {
            Arg::Text(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Int(v) => statement.raw_bind_parameter(index, v)?,
            Arg::Bool(v) => statement.raw_bind_parameter(index, v)?,
        }
    }
    Ok(statement)
}

/// Binds `args` to a PostgreSQL query, `$1` first.
fn bind_postgres(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    args.into_iter().fold(query, |query, arg| match arg {
        Arg::Text(v) => query.bind(v),
        Arg::Int(v) => query.bind(v),
        Arg::Bool(v) => query.bind(v),
    })
}

fn default_fk_conflict() -> StoreError {
    StoreError::Conflict("a referenced record is missing or still referenced".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn arguments_bind_by_number_not_position_and_extra_ones_fail() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let changed = store
            .execute(
                "INSERT INTO tenants (did, id, bpn, active, created_at) \
                 VALUES ($2, $1, NULL, $3, $4)",
                args!["t1", "did:web:t1", true, 0_i64],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
        let tenant = store.get_tenant("t1").await.unwrap().unwrap();
        assert_eq!((tenant.did.as_str(), tenant.active), ("did:web:t1", true));
        let extra = store
            .execute(
                "UPDATE tenants SET active = $2 WHERE id = $1",
                args!["t1", false, 7_i64],
            )
            .await;
        assert!(matches!(extra, Err(StoreError::Database(_))), "{extra:?}");
        assert!(store.get_tenant("t1").await.unwrap().unwrap().active);
    }
}
