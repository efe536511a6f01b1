//! Weft's durable store: plugins and versions, tenants, enablements, app key-value state and the
//! audit log, on SQLite (embedded default) or PostgreSQL (several replicas), with `sqlx`;
//! SQLite's write transactions and hottest point reads use `rusqlite` (modules `writer`, `reader`).
//!
//! One API and one migration history for both backends (`migrations/sqlite`,
//! `migrations/postgres`, semantically identical). Timestamps are stored as UTC unix
//! milliseconds on both, so values read back are truncated to the millisecond (use [`now`]).
//!
//! Conventions: `get_*` return `Ok(None)` for an absent record and `list_*` an empty list;
//! mutations of absent records fail with [`StoreError::NotFound`]; bad input fails with
//! [`StoreError::Invalid`] before the database is touched.
//!
//! Tests: `cargo test -p weft-store` always runs the storage suite on SQLite; it also runs it on
//! PostgreSQL when `WEFT_TEST_POSTGRES_URL` is set (for example
//! `postgres://postgres@127.0.0.1:5432/test`), each test in its own throw-away schema.

/// Runs `$body` once per backend, with `$pool` bound to that backend's pool: for reads
/// (writes go through [`Store::execute`] or a transaction, on SQLite's [`writer`]). The SQL
/// in `$body` must be valid on both (`$n` placeholders work on SQLite too).
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($crate::SqliteBackend { pool: $pool, .. }) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// The arguments of a write statement for [`Store::execute`], `$1` first.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::statement::Arg::from($value)),*]
    };
}

mod audit;
mod cache;
mod connect;
mod error;
pub mod flows;
pub mod management;
mod owners;
mod plugins;
mod reader;
mod records;
mod state;
mod statement;
mod tenants;
mod validate;
mod writer;

pub use cache::{GenerationCache, MAX_TENANCY_CACHE_ENTRIES, TENANCY_CACHE_TTL};
pub use connect::{
    PG_MAX_CONNECTIONS, POOL_ACQUIRE_TIMEOUT, SQLITE_BUSY_TIMEOUT, SQLITE_MAX_CONNECTIONS,
    StoreOptions, drop_postgres_schema,
};
pub use error::{Result, StoreError};
pub use records::{
    AuditEntry, AuditFilter, AuditRecord, DEFAULT_AUDIT_PAGE, DEFAULT_STATE_MAX_TOTAL_BYTES,
    DEFAULT_STATE_MAX_VALUE_BYTES, EnablementRecord, MAX_AUDIT_PAGE, MAX_ID_BYTES,
    MAX_STATE_KEY_BYTES, MAX_STATE_PAGE, PluginRecord, PluginVersionRecord, StateLimits,
    TenantRecord, now,
};
pub use writer::{MAX_GROUP_COMMIT, WriteStats};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgPool, SqlitePool};

/// Weft's durable store. Cloning is cheap (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// Bumped after every write to tenants, plugins or enablements (see
    /// [`Store::tenancy_generation`]); shared by clones.
    tenancy_generation: Arc<AtomicU64>,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteBackend),
    Postgres(PgPool),
}

/// SQLite: pooled connections for reads, one writer thread that runs every write (SQLite
/// lets one writer in at a time anyway; see [`writer`]), and connections for the hottest
/// point reads, made inline (see [`reader`]).
#[derive(Clone, Debug)]
struct SqliteBackend {
    pool: SqlitePool,
    writer: Arc<writer::Writer>,
    /// Point reads on the caller's thread (see [`reader`]).
    readers: Arc<reader::Readers>,
    /// The directory of a scratch database (`sqlite::memory:`), deleted with the last clone.
    _scratch: Option<Arc<tempfile::TempDir>>,
}

impl Store {
    fn new(backend: Backend) -> Self {
        Store {
            backend,
            tenancy_generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A number that changes whenever this store writes a tenant, a plugin (its versions,
    /// active version or grants), an enablement or a control-plane registration. Caches of tenancy data remember it and
    /// refetch when it moved. Writes made by another process on a shared database do not
    /// move it, so such caches also expire by age.
    pub fn tenancy_generation(&self) -> u64 {
        self.tenancy_generation.load(Ordering::Acquire)
    }

    /// Called after a tenancy write, whether or not it changed a row.
    pub(crate) fn tenancy_changed(&self) {
        self.tenancy_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Which backend this store runs on: `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// How many transactions SQLite's writer committed and how many writes they carried
    /// (several writes share a commit under concurrent load); `None` on PostgreSQL.
    pub fn write_stats(&self) -> Option<WriteStats> {
        match &self.backend {
            Backend::Sqlite(sqlite) => Some(sqlite.writer.stats()),
            Backend::Postgres(_) => None,
        }
    }

    /// Closes every pooled connection and waits until they are closed. Later calls fail.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(sqlite) => {
                sqlite.writer.close().await;
                sqlite.pool.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}
