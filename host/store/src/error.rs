//! The store's error type: what a caller can act on (not found, conflict, quota, bad input)
//! kept apart from database failures.

use sqlx::error::ErrorKind;

/// Result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record the operation needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation contradicts existing records (duplicate, different digest, still in use).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A state write would exceed the value size or the (tenant, plugin) quota; nothing changed.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The input is malformed (empty id, bad digest, invalid JSON, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database failed (connection, migration, I/O, corrupt row).
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A stored value the store cannot read back.
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Database(format!("corrupt record: {what}").into())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.kind() {
                ErrorKind::ForeignKeyViolation => {
                    return StoreError::Conflict(
                        "a referenced record is missing or still referenced".into(),
                    );
                }
                ErrorKind::UniqueViolation => {
                    return StoreError::Conflict("the record already exists".into());
                }
                _ => {}
            }
        }
        StoreError::Database(Box::new(err))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(Box::new(err))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match sqlite_constraint(&err) {
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                StoreError::Conflict("a referenced record is missing or still referenced".into())
            }
            Some(
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
            ) => StoreError::Conflict("the record already exists".into()),
            _ => StoreError::Database(Box::new(err)),
        }
    }
}

/// The extended result code of a constraint violation.
fn sqlite_constraint(err: &rusqlite::Error) -> Option<i32> {
    match err {
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(e.extended_code)
        }
        _ => None,
    }
}

/// Converts `err`, replacing a foreign-key violation by `replacement()`.
pub(crate) fn on_fk(err: sqlx::Error, replacement: impl FnOnce() -> StoreError) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::ForeignKeyViolation => replacement(),
        _ => err.into(),
    }
}

/// [`on_fk`] for the SQLite writer's errors.
pub(crate) fn on_sqlite_fk(
    err: rusqlite::Error,
    replacement: impl FnOnce() -> StoreError,
) -> StoreError {
    match sqlite_constraint(&err) {
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => replacement(),
        _ => err.into(),
    }
}
