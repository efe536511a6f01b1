//! Opening the store: picks the backend from the URL, configures the pool (WAL, foreign keys
//! and busy timeout on SQLite; an optional schema on PostgreSQL) and runs the migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection};

use crate::error::{Result, StoreError};
use crate::reader::Readers;
use crate::writer::{Writer, WriterOptions};
use crate::{Backend, SqliteBackend, Store};

/// Pooled SQLite connections, for reads (WAL lets them read in parallel); writes have one
/// more connection, the writer's.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Pooled PostgreSQL connections per replica: enough for concurrent tenants, far below the
/// server's default `max_connections` (100) so several replicas fit.
pub const PG_MAX_CONNECTIONS: u32 = 10;
/// How long SQLite waits for a lock another connection holds (another process writing the
/// same file, a checkpoint) before failing with "database is locked".
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free pooled connection (or a write for the writer) before
/// failing.
pub const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest PostgreSQL schema name (the server's identifier limit).
const MAX_SCHEMA_NAME_BYTES: usize = 63;

/// How to open the store; [`Default`] is right for most callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// PostgreSQL only: the schema to keep every table in (created if missing); `None` uses the
    /// server's default `search_path`. Lowercase ASCII letters, digits and `_`.
    pub schema: Option<String>,
    /// Pool size; `None` takes [`SQLITE_MAX_CONNECTIONS`] or [`PG_MAX_CONNECTIONS`].
    pub max_connections: Option<u32>,
    /// How long a call waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for another.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            schema: None,
            max_connections: None,
            acquire_timeout: POOL_ACQUIRE_TIMEOUT,
            busy_timeout: SQLITE_BUSY_TIMEOUT,
        }
    }
}

impl Store {
    /// Opens the store at `url` and brings its schema up to date.
    ///
    /// `sqlite://path?mode=rwc` (a file, created if missing), `sqlite::memory:` (one private
    /// scratch database, not durable, deleted with the last clone of the store) or
    /// `postgres://…`/`postgresql://…`.
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Opens a PostgreSQL store whose tables live in `schema` (created if missing), so several
    /// stores can share one database without seeing each other.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Store> {
        Self::connect_with(
            url,
            StoreOptions {
                schema: Some(schema.to_owned()),
                ..StoreOptions::default()
            },
        )
        .await
    }

    /// Opens the store at `url` with explicit options.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store> {
        if url.starts_with("sqlite:") {
            if options.schema.is_some() {
                return Err(StoreError::Invalid(
                    "a schema can only be chosen on PostgreSQL".into(),
                ));
            }
            connect_sqlite(url, &options).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            connect_postgres(url, &options).await
        } else {
            Err(StoreError::Invalid(
                "store URL must start with sqlite: or postgres://".into(),
            ))
        }
    }
}

async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Store> {
    let mut connect = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad SQLite URL: {e}")))?;
    // A private database is a scratch file rather than SQLite's `:memory:`, which exists
    // only inside one connection: the pool and the writer need to share it.
    let scratch = if is_sqlite_memory(url) {
        let dir = tempfile::Builder::new()
            .prefix("weft-store-")
            .tempdir()
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        connect = SqliteConnectOptions::new()
            .filename(dir.path().join("weft.db"))
            .create_if_missing(true);
        Some(Arc::new(dir))
    } else {
        None
    };
    let durable = scratch.is_none();
    let connect = connect
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout)
        .journal_mode(SqliteJournalMode::Wal)
        // Durable on power loss: an acknowledged signal or flow must survive. (The pool
        // writes only the migrations; every other write goes to the writer, set alike.)
        .synchronous(if durable {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Off
        });
    let pool = SqlitePoolOptions::new()
        .acquire_timeout(options.acquire_timeout)
        // A connection to a local file cannot drop out from under the pool, so the ping
        // before each checkout (a round trip to the connection's worker thread) buys
        // nothing; sqlx still checks a connection when it comes back.
        .test_before_acquire(false)
        .max_connections(options.max_connections.unwrap_or(SQLITE_MAX_CONNECTIONS))
        .connect_with(connect.clone())
        .await?;
    sqlx::migrate!("migrations/sqlite").run(&pool).await?;
    let writer = Writer::open(
        connect.get_filename(),
        WriterOptions {
            busy_timeout: options.busy_timeout,
            queue_timeout: options.acquire_timeout,
            durable,
        },
    )?;
    Ok(Store::new(Backend::Sqlite(SqliteBackend {
        pool,
        writer: Arc::new(writer),
        readers: Arc::new(Readers::new(connect.get_filename())),
        _scratch: scratch,
    })))
}

/// Whether a SQLite URL names an in-memory (private, throw-away) database.
fn is_sqlite_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

async fn connect_postgres(url: &str, options: &StoreOptions) -> Result<Store> {
    let mut connect = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    if let Some(schema) = &options.schema {
        check_schema_name(schema)?;
        let mut conn = PgConnection::connect_with(&connect).await?;
        let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut conn)
            .await;
        conn.close().await?;
        created?;
        // A startup parameter, so it holds on every pooled connection, including new ones.
        connect = connect.options([("search_path", schema.as_str())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.unwrap_or(PG_MAX_CONNECTIONS))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await?;
    sqlx::migrate!("migrations/postgres").run(&pool).await?;
    Ok(Store::new(Backend::Postgres(pool)))
}

/// Drops a PostgreSQL schema with everything in it: the end of a throw-away store made
/// with [`StoreOptions::schema`] (benchmarks, tests). Close the store first.
pub async fn drop_postgres_schema(url: &str, schema: &str) -> Result<()> {
    check_schema_name(schema)?;
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    let mut conn = PgConnection::connect_with(&connect).await?;
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await;
    conn.close().await?;
    dropped.map(|_| ()).map_err(Into::into)
}

/// Schema names are spliced into SQL, so only plain identifiers are allowed.
fn check_schema_name(schema: &str) -> Result<()> {
    let mut bytes = schema.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && schema.len() <= MAX_SCHEMA_NAME_BYTES {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "schema name must be 1 to {MAX_SCHEMA_NAME_BYTES} of [a-z0-9_], not starting with a digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_memory_urls() {
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(is_sqlite_memory("sqlite://:memory:"));
        assert!(is_sqlite_memory("sqlite://x.db?mode=memory"));
        assert!(!is_sqlite_memory("sqlite://data/weft.db?mode=rwc"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("weft_test_1").is_ok());
        assert!(check_schema_name("").is_err());
        assert!(check_schema_name("1abc").is_err());
        assert!(check_schema_name("a\"; drop").is_err());
        assert!(check_schema_name(&"a".repeat(64)).is_err());
    }
}
