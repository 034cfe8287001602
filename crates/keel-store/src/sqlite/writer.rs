//! The single SQLite writer: a thread that takes queued writes, runs a group
//! of them in one transaction, commits once, and only then answers each
//! caller. Group commit is what lets one file take thousands of writes a
//! second without "database is locked".

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use keel_domain::Incident;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{IncidentRef, StoreError};

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut Session<'_>) -> (bool, Completion) + Send>;

/// What a write sees: the connection, inside the group's transaction, and
/// the writer's cache of recently written incidents.
pub(super) struct Session<'c> {
    pub conn: &'c Connection,
    pub cache: &'c mut IncidentCache,
}

/// The projections and chain heads the writer last wrote, so the next
/// command on a hot incident skips reading and parsing it again. Only the
/// writer writes, so the cache is exact; it is emptied when a group rolls
/// back.
#[derive(Default)]
pub(super) struct IncidentCache {
    by_id: HashMap<String, (Incident, String)>,
    ids_by_number: HashMap<i64, String>,
}

const CACHE_MAX: usize = 10_000;

impl IncidentCache {
    /// Takes the cached incident out (the write puts back what it stores).
    pub(super) fn take(&mut self, incident: &IncidentRef) -> Option<(Incident, String)> {
        let id = match incident {
            IncidentRef::Id(id) => id,
            IncidentRef::Number(number) => self.ids_by_number.get(number)?,
        };
        self.by_id.remove(id)
    }

    pub(super) fn put(&mut self, incident: Incident, head_hash: String) {
        if self.by_id.len() >= CACHE_MAX {
            self.clear();
        }
        self.ids_by_number.insert(incident.number, incident.id.clone());
        self.by_id.insert(incident.id.clone(), (incident, head_hash));
    }

    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.ids_by_number.clear();
    }
}

/// A handle to the writer thread; cheap to share.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub(super) fn start(conn: Connection, max_batch: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("keel-sqlite-writer".into())
            .spawn(move || run(&conn, &queue, max_batch.max(1)));
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
        F: FnOnce(&mut Session<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |session| {
            let result = work(session);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                let _ = answer.send(match result {
                    Ok(value) => committed.map(|()| value),
                    Err(error) => Err(error),
                });
            });
            (ok, completion)
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped a write".into()))?
    }
}

fn run(conn: &Connection, queue: &mpsc::Receiver<Job>, max_batch: usize) {
    let mut cache = IncidentCache::default();
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(error) = exec(conn, "BEGIN IMMEDIATE") {
            // Dropping the jobs tells each caller the write did not happen.
            tracing::error!(%error, n_writes = batch.len(), "could not begin a write transaction");
            drop(batch);
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        let mut torn = false;
        for job in batch {
            // A refused write has written nothing: the domain refuses before
            // any statement runs, and a failing statement undoes itself. A
            // write that fails after a statement succeeded would leave half
            // of itself in the transaction, so the whole group is rolled
            // back and every caller told. Cheaper than a savepoint per write.
            let changes_before = conn.total_changes();
            // A bug that panics inside one write must not take the writer
            // down with it: that write's caller is told it failed (its answer
            // channel is dropped) and its group rolls back.
            let session = &mut Session {
                conn,
                cache: &mut cache,
            };
            match catch_unwind(AssertUnwindSafe(|| job(session))) {
                Ok((ok, completion)) => {
                    if !ok && conn.total_changes() != changes_before {
                        torn = true;
                    }
                    completions.push(completion);
                }
                Err(_) => {
                    tracing::error!("a write panicked; rolling back its group");
                    torn = true;
                }
            }
        }
        let committed = if torn {
            tracing::error!(
                n_writes = completions.len(),
                "a write failed halfway; rolling back its whole group"
            );
            let _ = exec(conn, "ROLLBACK");
            cache.clear();
            Err(StoreError::Unavailable(
                "a write in the same group failed; nothing was stored, retry".into(),
            ))
        } else {
            let committed = exec(conn, "COMMIT").map_err(super::rows::map_err);
            if committed.is_err() {
                let _ = exec(conn, "ROLLBACK");
                cache.clear();
            }
            committed
        };
        for completion in completions {
            completion(committed.clone());
        }
    }
}

/// Runs a transaction-control statement from the statement cache, so the
/// hot loop does not parse the same SQL for every write.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
