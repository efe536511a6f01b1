//! SQLite point reads on the calling thread: the store's hottest reads (a flow by id, a
//! state value by key) skip the hand-offs to a connection thread.
//!
//! A read by primary key on a local file touches a few cached pages, a few microseconds:
//! less than the two thread wake-ups `sqlx` spends to send the query to its connection
//! thread and back (and two more for the ping when the connection returns to the pool). In
//! WAL mode a reader never waits for the writer. The connections have no busy timeout, so
//! a read never sleeps on this thread: in the rare case SQLite is busy (a WAL reset, a
//! recovery), [`Readers::read`] returns `None` and the caller reads through the pool,
//! which may wait. Reads that can scan (lists, pages of records) always use the pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::Result;

/// Idle connections kept for inline reads; more are opened when more threads read at
/// once and closed on return. One per runtime worker is enough.
const MAX_IDLE_READERS: usize = 8;

/// Read-only connections for inline point reads.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection; `Ok(None)` when SQLite was busy (read through the
    /// pool instead).
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => match self.open() {
                Ok(conn) => conn,
                Err(e) if busy(&e) => return Ok(None),
                Err(e) => return Err(e.into()),
            },
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        drop(idle);
        match result {
            Ok(value) => Ok(Some(value)),
            Err(e) if busy(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never sleep on the caller's thread: busy means "use the pool".
        conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(conn)
    }
}

fn busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_committed_writes_and_report_busy_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let readers = Readers::new(&path);
        let count = |c: &Connection| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0));
        assert_eq!(readers.read(count).unwrap(), Some(1_i64));
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(readers.read(count).unwrap(), Some(2_i64));
        // Outside WAL mode a writer's exclusive lock keeps readers out: busy, not an error.
        let locked = dir.path().join("locked.db");
        let writer = Connection::open(&locked).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v INTEGER); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(Readers::new(&locked).read(count).unwrap(), None);
        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(Readers::new(&locked).read(count).unwrap(), Some(1));
    }
}
