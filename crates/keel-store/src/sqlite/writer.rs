//! The single SQLite writer: a thread that takes queued writes, runs a group
//! of them in one transaction (each inside its own savepoint), commits once,
//! and only then answers each caller. Group commit is what lets one file take
//! thousands of writes a second without "database is locked".

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// A handle to the writer thread; cheap to share.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn start(conn: Connection, max_batch: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name("keel-sqlite-writer".into()).spawn(move || run(&conn, &queue, max_batch.max(1)));
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start the SQLite writer thread; writes will fail");
        }
        Self { jobs }
    }

    /// Runs `work` in the next write transaction and returns its result once
    /// that transaction is committed (or the error that refused it).
    pub(super) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = work(conn);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                let _ = answer.send(match result {
                    Ok(value) => committed.map(|()| value),
                    Err(error) => Err(error),
                });
            });
            (ok, completion)
        });
        self.jobs.send(job).map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answered.await.map_err(|_| StoreError::Unavailable("the SQLite writer dropped a write".into()))?
    }
}

fn run(conn: &Connection, queue: &mpsc::Receiver<Job>, max_batch: usize) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs tells each caller the write did not happen.
            tracing::error!(%error, n_writes = batch.len(), "could not begin a write transaction");
            drop(batch);
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        for job in batch {
            let savepoint = conn.execute_batch("SAVEPOINT write");
            let (ok, completion) = job(conn);
            let end = if ok { "RELEASE write" } else { "ROLLBACK TO write; RELEASE write" };
            let closed = savepoint.and_then(|()| conn.execute_batch(end));
            if let Err(error) = closed {
                tracing::error!(%error, "savepoint handling failed");
            }
            completions.push(completion);
        }
        let committed = conn.execute_batch("COMMIT").map_err(super::rows::map_err);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for completion in completions {
            completion(committed.clone());
        }
    }
}
