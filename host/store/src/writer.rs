//! SQLite's one writer: a thread that owns the write connection and runs every write of the
//! store (transactions and single statements), several to one commit.
//!
//! SQLite admits one writer at a time, and on a durable database most of a write's cost is
//! its commit (the WAL fsync). So writes queue here instead of competing for the lock: the
//! thread takes every write waiting when it is free, and those queued while it runs them,
//! runs each in a savepoint of one transaction (a failing write rolls back alone) and
//! commits them together (group commit).
//! A caller's future resolves only after that commit, so an acknowledged write is durable.
//! A write's statements run back to back on this thread with `rusqlite`: one hand-off to
//! the thread and one back per write, where `sqlx` crosses to its connection thread for
//! every statement.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::error::{Result, StoreError};

/// Most writes one commit takes. Bounds how long the first write of a group waits for the
/// others' statements, and the work a failed commit undoes.
pub const MAX_GROUP_COMMIT: usize = 64;

/// How the writer opens its connection.
#[derive(Clone, Debug)]
pub(crate) struct WriterOptions {
    /// Wait this long for another process's write lock before failing.
    pub(crate) busy_timeout: Duration,
    /// A write not started this long after it was queued fails instead of running.
    pub(crate) queue_timeout: Duration,
    /// `synchronous=FULL` (an acknowledged write survives power loss) or `OFF` (scratch
    /// databases).
    pub(crate) durable: bool,
}

/// The handle callers queue writes on. Dropping the last clone of the store lets the thread
/// finish the queued writes and close the connection.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Box<dyn Task>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Counters>,
}

/// What the writer did so far (see [`crate::Store::write_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed (each one fsync on a durable database).
    pub commits: u64,
    /// Writes those commits carried.
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
}

impl Writer {
    /// Opens the write connection to the database file at `path` (which must exist, with
    /// the store's schema) and starts the thread.
    pub(crate) fn open(path: &Path, options: WriterOptions) -> Result<Writer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(options.busy_timeout)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if options.durable { "FULL" } else { "OFF" },
        )?;
        let (queue, jobs) = mpsc::channel();
        let queue_timeout = options.queue_timeout;
        let stats = Arc::new(Counters::default());
        let counters = stats.clone();
        let thread = std::thread::Builder::new()
            .name("weft-sqlite-writer".into())
            .spawn(move || run(conn, jobs, queue_timeout, &counters))
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        Ok(Writer {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            commits: self.stats.commits.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
        }
    }

    /// Runs `body` in a transaction on the writer thread and returns its result once the
    /// transaction committed. An `Err` from `body` rolls back what it wrote (and only that).
    pub(crate) async fn write<T, F>(&self, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let task = Box::new(Write {
            queued: Instant::now(),
            body: Some(body),
            result: None,
            reply,
        });
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let sent = queue.as_ref().map(|q| q.send(task));
            if !matches!(sent, Some(Ok(()))) {
                return Err(closed());
            }
        }
        result.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Finishes the queued writes, closes the connection and waits for the thread. Later
    /// writes fail.
    pub(crate) async fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // The thread only ends by returning; a panic in it was already reported.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Database("the store is closed".into())
}

/// One queued write, type-erased so writes of any result type share the queue.
trait Task: Send {
    /// When the caller queued it.
    fn queued(&self) -> Instant;
    /// Runs the body; whether it succeeded (its writes are to be kept).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: the body's result, or `failure` when the group did not commit.
    fn finish(self: Box<Self>, failure: Option<&str>);
}

struct Write<T, F> {
    queued: Instant,
    body: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Task for Write<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn queued(&self) -> Instant {
        self.queued
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(body) = self.body.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| body(conn))).unwrap_or_else(|_| {
            tracing::error!("a store write panicked; it was rolled back");
            Err(StoreError::Database("the write failed".into()))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failure: Option<&str>) {
        let result = match (failure, self.result) {
            (None, Some(result)) => result,
            // A body's own error says more than the group's failure.
            (Some(_), Some(Err(e))) => Err(e),
            (Some(failure), _) => Err(StoreError::Database(failure.to_owned().into())),
            (None, None) => Err(StoreError::Database("the write did not run".into())),
        };
        // The caller may have given up waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

/// The writer thread: groups what is queued, runs it, commits, answers; until every
/// handle is gone.
fn run(
    conn: Connection,
    jobs: mpsc::Receiver<Box<dyn Task>>,
    queue_timeout: Duration,
    stats: &Counters,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = Group::new(&conn);
        let mut next = Some(first);
        while let Some(task) = next.take() {
            if task.queued().elapsed() > queue_timeout {
                task.finish(Some("timed out waiting for the store's writer"));
            } else {
                group.add(task);
            }
            // A failed group commits nothing: writes still queued wait for the next one
            // rather than fail with it.
            if group.tasks.len() >= MAX_GROUP_COMMIT || group.failed.is_some() {
                break;
            }
            // Writes queued while this group's statements ran join its commit: they would
            // otherwise wait for its fsync and then pay for one of their own. (Waiting for
            // more would save fsyncs but not CPU: in B4 a 150 µs wait halved the commits
            // and raised the host's CPU per flow, the idle wake-ups costing more than the
            // fsyncs saved.)
            next = jobs.try_recv().ok();
        }
        group.commit(stats);
    }
    // Every handle is gone: close (a failure only means the connection was already broken).
    let _ = conn.close();
}

/// One transaction being filled: each write runs in a savepoint as it joins (a failing
/// write rolls back alone), and all of them commit together.
struct Group<'c> {
    conn: &'c Connection,
    tasks: Vec<Box<dyn Task>>,
    /// The first failure of the group's own statements; later writes do not run.
    failed: Option<rusqlite::Error>,
}

impl<'c> Group<'c> {
    fn new(conn: &'c Connection) -> Group<'c> {
        Group {
            conn,
            tasks: Vec::new(),
            failed: None,
        }
    }

    /// Runs `task` in the transaction (beginning it for the first) and keeps it to answer.
    fn add(&mut self, mut task: Box<dyn Task>) {
        if self.failed.is_none()
            && let Err(e) = self.run(task.as_mut())
        {
            self.failed = Some(e);
        }
        self.tasks.push(task);
    }

    fn run(&self, task: &mut dyn Task) -> rusqlite::Result<()> {
        if self.tasks.is_empty() {
            // Take the write lock up front, so the busy timeout covers the whole wait for it.
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        self.conn.prepare_cached("SAVEPOINT write")?.execute([])?;
        if !task.run(self.conn) {
            self.conn.prepare_cached("ROLLBACK TO write")?.execute([])?;
        }
        self.conn.prepare_cached("RELEASE write")?.execute([])?;
        Ok(())
    }

    /// Commits, counts the commit, and answers every write.
    fn commit(self, stats: &Counters) {
        if self.tasks.is_empty() {
            return;
        }
        let outcome = match self.failed {
            Some(e) => Err(e),
            None => self
                .conn
                .prepare_cached("COMMIT")
                .and_then(|mut commit| commit.execute([]).map(drop)),
        };
        let failure = match outcome {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats
                    .writes
                    .fetch_add(self.tasks.len() as u64, Ordering::Relaxed);
                None
            }
            Err(e) => {
                tracing::error!("SQLite write transaction failed: {e}");
                if !self.conn.is_autocommit() {
                    // Undo the whole group; if even that fails the connection is unusable
                    // and the next BEGIN says so.
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Some("the database write failed")
            }
        };
        for task in self.tasks {
            task.finish(failure);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
            .unwrap();
        drop(conn);
        Writer::open(
            &path,
            WriterOptions {
                busy_timeout: Duration::from_secs(5),
                queue_timeout: Duration::from_secs(10),
                durable: false,
            },
        )
        .unwrap()
    }

    fn insert(k: &'static str, v: i64) -> impl FnOnce(&Connection) -> Result<()> + Send {
        move |c| {
            c.execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (k, v))?;
            Ok(())
        }
    }

    fn count(w: &Writer) -> impl std::future::Future<Output = Result<i64>> + '_ {
        w.write(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_in_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        // Queued together, so (most likely) committed as one group; correct either way.
        let (a, b, c, d) = tokio::join!(
            w.write(insert("a", 1)),
            w.write(|c| {
                c.execute("INSERT INTO t (k, v) VALUES ('b', 2)", [])?;
                Err::<(), _>(StoreError::Conflict("refused after writing".into()))
            }),
            w.write(insert("a", 3)),
            w.write(insert("c", 4)),
        );
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Conflict(_))));
        assert!(matches!(c, Err(StoreError::Conflict(_))), "{c:?}");
        d.unwrap();
        assert_eq!(count(&w).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_write_queued_while_a_group_runs_joins_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        let (started, running) = std::sync::mpsc::channel();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        // Polling a write once queues it.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut first = Box::pin(w.write(move |c| {
            started.send(()).unwrap();
            wait.recv().unwrap();
            insert("a", 1)(c)
        }));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        running.recv().unwrap();
        // The first group is running its only write; this one queues behind it.
        let mut second = Box::pin(w.write(insert("b", 2)));
        assert!(second.as_mut().poll(&mut cx).is_pending());
        go.send(()).unwrap();
        first.await.unwrap();
        second.await.unwrap();
        assert_eq!(
            w.stats(),
            WriteStats {
                commits: 1,
                writes: 2
            }
        );
    }

    #[tokio::test]
    async fn a_panicking_write_fails_without_stopping_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir);
        let panicked = w
            .write(|c| -> Result<()> {
                c.execute("INSERT INTO t (k, v) VALUES ('p', 1)", [])?;
                panic!("bug in a write");
            })
            .await;
        assert!(matches!(panicked, Err(StoreError::Database(_))));
        w.write(insert("q", 1)).await.unwrap();
        assert_eq!(count(&w).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn close_finishes_queued_writes_then_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let w = std::sync::Arc::new(writer(&dir));
        let queued = {
            let w = w.clone();
            tokio::spawn(async move { w.write(insert("x", 1)).await })
        };
        tokio::task::yield_now().await;
        w.close().await;
        // Queued before the close (then it committed) or after (then it was refused).
        let committed = queued.await.unwrap().is_ok();
        assert!(matches!(
            w.write(insert("y", 1)).await,
            Err(StoreError::Database(_))
        ));
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, i64::from(committed));
    }
}
