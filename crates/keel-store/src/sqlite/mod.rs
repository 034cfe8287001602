//! The embedded SQLite adapter. One writer thread owns the only write
//! connection and commits queued writes in groups (a refused write leaves
//! no trace, so it does not undo its neighbours); readers use a pool of WAL
//! connections; a checkpoint thread folds the WAL back. Callers never see
//! "database is locked": writes queue instead of contending.

mod rows;
mod web;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keel_domain::{Entry, Incident};
use rusqlite::{Connection, OptionalExtension, params};

use crate::filter::{Bind, list_query};
use crate::plan::{Planned, plan_command, plan_opening, search_text};
use crate::{
    ApiToken, Clock, ExecuteRequest, Executed, IncidentFilter, IncidentRef, IncidentVerification, Integration,
    IntegrationUpdate, NewUser, Page, RegisterRequest, Store, StoreError, User,
};
use keel_domain::Timestamp;
use keel_domain::detection::Reaction;
use rows::{
    ALERT_COLUMNS, ENTRY_COLUMNS, INTEGRATION_COLUMNS, USER_COLUMNS, alert_from_row, entry_from_row,
    integration_from_row, map_err, token_from_row, user_from_row,
};
use writer::{Session, Writer};

use crate::plan::{
    IngestContext, changes_json, classification, first_reaction, plan_ingest, plan_sweep, policy_json, sla_dirty,
    sla_notifications,
};
use crate::{
    Alert, AlertFilter, IngestOutcome, IngestRequest, MaintenanceWindow, Notification, SweepOutcome, SweepRequest,
};
use keel_domain::catalogue::{self, Catalogue};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_integrations.sql"),
    include_str!("../../migrations/sqlite/0003_alerts.sql"),
    include_str!("../../migrations/sqlite/0004_detection_policy.sql"),
    include_str!("../../migrations/sqlite/0005_catalogue.sql"),
    include_str!("../../migrations/sqlite/0006_sla.sql"),
    include_str!("../../migrations/sqlite/0007_contact_methods.sql"),
    include_str!("../../migrations/sqlite/0008_web.sql"),
    include_str!("../../migrations/sqlite/0009_search.sql"),
    include_str!("../../migrations/sqlite/0010_facts.sql"),
    include_str!("../../migrations/sqlite/0011_touched.sql"),
    include_str!("../../migrations/sqlite/0012_capability.sql"),
];

/// Tuning of the SQLite adapter.
#[derive(Clone, Copy, Debug)]
pub struct SqliteOptions {
    /// `synchronous=FULL`: survive power loss, at a cost in write speed. The
    /// default (`NORMAL` in WAL mode) survives any crash of keel itself.
    pub synchronous_full: bool,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: false,
            max_batch: 256,
        }
    }
}

/// keel's store on one SQLite file.
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    clock: Arc<dyn Clock>,
    alive: Arc<AtomicBool>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

/// How often the WAL is folded back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints the WAL from its own thread and connection. The writer has
/// automatic checkpoints turned off: a checkpoint syncs the database file,
/// and doing that on the writer would stall every queued write behind a
/// disk flush. PASSIVE checkpoints never block the writer or readers.
fn start_checkpointer(path: std::path::PathBuf, alive: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("keel-sqlite-checkpoint".into())
        .spawn(move || {
            let conn = match Connection::open(&path) {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::error!(%error, "cannot open the checkpoint connection; the WAL will grow");
                    return;
                }
            };
            let _ = conn.busy_timeout(Duration::from_secs(5));
            while alive.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "WAL checkpoint failed; will retry");
                }
            }
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the checkpoint thread; the WAL will grow");
    }
}

struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self
            .idle
            .lock()
            .map_err(|_| StoreError::Other("reader pool poisoned".into()))?
            .pop()
        {
            return Ok(conn);
        }
        let conn = Connection::open(&self.path).map_err(map_err)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON; PRAGMA cache_size = -4096;")
            .map_err(map_err)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            // Keep enough idle connections for usual read concurrency
            // (opening one parses the schema again), but not so many that
            // their page caches (4 MiB each) dominate memory.
            if idle.len() < 16 {
                idle.push(conn);
            }
        }
    }
}

fn configure(conn: &Connection, options: SqliteOptions) -> Result<(), StoreError> {
    let synchronous = if options.synchronous_full { "FULL" } else { "NORMAL" };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -4096; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(map_err)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(map_err)?;
    for (idx, sql) in MIGRATIONS.iter().enumerate() {
        let version = idx as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction().map_err(map_err)?;
        tx.execute_batch(sql).map_err(map_err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
        tracing::info!(version, "applied SQLite migration");
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub async fn open(path: &Path, clock: Arc<dyn Clock>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || -> Result<(Connection, std::path::PathBuf), StoreError> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
            }
            let mut conn = Connection::open(&path).map_err(map_err)?;
            configure(&conn, options)?;
            migrate(&mut conn)?;
            Ok((conn, path))
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))??;
        let (conn, path) = opened;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0").map_err(map_err)?;
        let alive = Arc::new(AtomicBool::new(true));
        start_checkpointer(path.clone(), Arc::clone(&alive));
        Ok(Self {
            writer: Writer::start(conn, options.max_batch),
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            }),
            clock,
            alive,
        })
    }

    async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = work(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))?
    }
}

fn incident_where(incident: &IncidentRef) -> (&'static str, Bind) {
    match incident {
        IncidentRef::Id(id) => ("id = ?1", Bind::Text(id.clone())),
        IncidentRef::Number(n) => ("number = ?1", Bind::Int(*n)),
    }
}

impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Bind::Text(text) => text.to_sql(),
            Bind::Int(n) => n.to_sql(),
        }
    }
}

fn load_incident(conn: &Connection, incident: &IncidentRef) -> Result<Option<(Incident, String)>, StoreError> {
    let (clause, bind) = incident_where(incident);
    let row: Option<(String, String)> = conn
        .prepare_cached(&format!("SELECT doc, head_hash FROM incidents WHERE {clause}"))
        .map_err(map_err)?
        .query_row([bind], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .map_err(map_err)?;
    row.map(|(doc, head)| Ok((parse_doc(&doc)?, head))).transpose()
}

fn parse_doc(doc: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Other(format!("stored incident does not parse: {e}")))
}

/// Writes planned entries and the new projection. `previous` is the stored
/// projection (`None` for a registration). SQLite rewrites every index a
/// SET clause names, whatever the values, so when no indexed column changed
/// only the unindexed ones are written.
fn store_planned(conn: &Connection, planned: &Planned, previous: Option<&Incident>) -> Result<(), StoreError> {
    let is_new = previous.is_none();
    let inc = &planned.incident;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO timeline_entries (incident_id, seq, kind, actor, recorded_at, occurred_at, started_at, completed_at, data, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(map_err)?;
    let head_hash = planned.entries.last().map(|e| e.hash.clone()).unwrap_or_default();
    let doc = serde_json::to_string(inc).map_err(|e| StoreError::Other(e.to_string()))?;
    let incident_params = params![
        inc.id,
        inc.number,
        inc.state.as_str(),
        inc.priority.as_str(),
        inc.service,
        inc.team,
        inc.owner.as_str(),
        inc.reported_by.as_str(),
        inc.major,
        search_text(inc),
        inc.created_at.as_micros(),
        inc.updated_at.as_micros(),
        inc.version as i64,
        head_hash,
        doc,
    ];
    if is_new {
        conn.prepare_cached(
            "INSERT INTO incidents (id, number, state, priority, service, team, owner, reported_by, major, search, created_at, updated_at, version, head_hash, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .map_err(map_err)?
        .execute(incident_params)
        .map_err(map_err)?;
    }
    for entry in &planned.entries {
        insert
            .execute(params![
                inc.id,
                entry.seq as i64,
                entry.kind,
                entry.actor.as_str(),
                entry.recorded_at.as_micros(),
                entry.occurred_at.map(keel_domain::Timestamp::as_micros),
                entry.started_at.map(keel_domain::Timestamp::as_micros),
                entry.completed_at.map(keel_domain::Timestamp::as_micros),
                entry.data.to_string(),
                entry.prev_hash,
                entry.hash,
            ])
            .map_err(map_err)?;
    }
    let same_indexed = previous.is_some_and(|prev| {
        prev.state == inc.state
            && prev.priority == inc.priority
            && prev.service == inc.service
            && prev.team == inc.team
            && prev.owner == inc.owner
            && prev.major == inc.major
    });
    if same_indexed {
        conn.prepare_cached(
            "UPDATE incidents SET search = ?2, updated_at = ?3, version = ?4, head_hash = ?5, doc = ?6 WHERE id = ?1",
        )
        .map_err(map_err)?
        .execute(params![
            inc.id,
            search_text(inc),
            inc.updated_at.as_micros(),
            inc.version as i64,
            head_hash,
            doc
        ])
        .map_err(map_err)?;
    } else if !is_new {
        conn.prepare_cached(
            "UPDATE incidents SET number = ?2, state = ?3, priority = ?4, service = ?5, team = ?6, owner = ?7, reported_by = ?8,
             major = ?9, search = ?10, created_at = ?11, updated_at = ?12, version = ?13, head_hash = ?14, doc = ?15 WHERE id = ?1",
        )
        .map_err(map_err)?
        .execute(incident_params)
        .map_err(map_err)?;
    }
    if !is_new && sla_dirty(planned) {
        conn.prepare_cached("UPDATE incidents SET sla_next_at = 0 WHERE id = ?1")
            .map_err(map_err)?
            .execute([&inc.id])
            .map_err(map_err)?;
    }
    Ok(())
}

/// One SLA sweep inside the writer's transaction.
fn sweep_in(session: &mut Session<'_>, request: &SweepRequest, now: Timestamp) -> Result<SweepOutcome, StoreError> {
    let mut outcome = SweepOutcome::default();
    let at = now.as_micros();
    if request.policies.is_empty() && request.escalations.is_empty() {
        // No SLA anywhere: every waiting timer simply stops.
        outcome.examined = session
            .conn
            .prepare_cached(
                "UPDATE incidents SET sla_next_at = NULL, sla_state = NULL, sla_due_at = NULL
                 WHERE sla_next_at IS NOT NULL AND sla_next_at <= ?1",
            )
            .map_err(map_err)?
            .execute([at])
            .map_err(map_err)?;
        return Ok(outcome);
    }
    let ids: Vec<String> = {
        let mut stmt = session
            .conn
            .prepare_cached(
                "SELECT id FROM incidents WHERE sla_next_at IS NOT NULL AND sla_next_at <= ?1
                 ORDER BY sla_next_at LIMIT ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![at, i64::from(request.limit)], |row| row.get(0))
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    for id in ids {
        let Some(incident) = peek_incident(session, &id)? else {
            continue;
        };
        outcome.examined += 1;
        let (commands, verdict) = plan_sweep(&incident, request, now);
        for command in &commands {
            let executed = execute_in(session, command, now)?;
            outcome.entries += executed.entries.len();
            for notification in sla_notifications(&executed.incident, &executed.entries, &request.team_leads, now) {
                insert_notification(session.conn, &notification)?;
                outcome.notifications += 1;
            }
        }
        session
            .conn
            .prepare_cached("UPDATE incidents SET sla_next_at = ?2, sla_state = ?3, sla_due_at = ?4 WHERE id = ?1")
            .map_err(map_err)?
            .execute(params![
                id,
                verdict.next_at.map(Timestamp::as_micros),
                verdict.state.map(sla_state_name),
                verdict.due_at.map(Timestamp::as_micros),
            ])
            .map_err(map_err)?;
    }
    Ok(outcome)
}

fn insert_notification(conn: &Connection, n: &Notification) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notifications (id, incident_id, kind, recipients, payload, created_at, attempts, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?6)",
    )
    .map_err(map_err)?
    .execute(params![
        n.id,
        n.incident_id,
        n.kind,
        serde_json::to_string(&n.recipients).unwrap_or_else(|_| "[]".into()),
        n.payload.to_string(),
        n.created_at.as_micros(),
    ])
    .map_err(map_err)?;
    Ok(())
}

fn read_timeline(
    conn: &Connection,
    incident_id: &str,
    after_seq: u64,
    limit: Option<u32>,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM timeline_entries WHERE incident_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ))
        .map_err(map_err)?;
    // LIMIT -1 is SQLite's "no limit".
    let limit = limit.map_or(-1, i64::from);
    let after_seq = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![incident_id, after_seq, limit], entry_from_row)
        .map_err(map_err)?;
    rows.map(|row| row.map_err(map_err)?).collect()
}

fn verify_one(
    conn: &Connection,
    id: &str,
    number: i64,
    version: i64,
    head_hash: &str,
) -> Result<IncidentVerification, StoreError> {
    let entries = read_timeline(conn, id, 0, None)?;
    let report = keel_domain::timeline::verify(id, &entries, Some((u64::try_from(version).unwrap_or(0), head_hash)));
    Ok(IncidentVerification {
        id: id.to_string(),
        number,
        report,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    async fn bootstrap_admin(&self, admin: NewUser, token: ApiToken) -> Result<bool, StoreError> {
        let now = self.clock.now();
        self.writer
            .write(move |session| {
                let conn = session.conn;
                let n_users: i64 = conn
                    .query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))
                    .map_err(map_err)?;
                if n_users > 0 {
                    return Ok(false);
                }
                insert_user(conn, &admin, now)?;
                insert_token(conn, &token)?;
                Ok(true)
            })
            .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let now = self.clock.now();
        self.writer
            .write(move |session| insert_user(session.conn, &user, now))
            .await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
                .map_err(map_err)?
                .query_row([id], user_from_row)
                .optional()
                .map_err(map_err)
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name, id"))
                .map_err(map_err)?;
            let rows = stmt.query_map([], user_from_row).map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn create_token(&self, token: ApiToken) -> Result<(), StoreError> {
        self.writer
            .write(move |session| insert_token(session.conn, &token))
            .await
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, User)>, StoreError> {
        let token_hash = token_hash.to_string();
        self.read(move |conn| {
            let user_columns = USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            conn.prepare_cached(&format!(
                "SELECT t.id, t.user_id, t.name, t.token_hash, t.created_at, {user_columns}
                 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1"
            ))
            .map_err(map_err)?
            .query_row([token_hash], token_from_row)
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn create_integration(&self, integration: Integration) -> Result<Integration, StoreError> {
        self.writer
            .write(move |session| {
                write_integration(session.conn, &integration, true)?;
                Ok(integration)
            })
            .await
    }

    async fn list_integrations(&self) -> Result<Vec<Integration>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY name, id"
                ))
                .map_err(map_err)?;
            let rows = stmt.query_map([], integration_from_row).map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| read_integration(conn, "id", &id)).await
    }

    async fn find_integration_by_key(&self, key_hash: &str) -> Result<Option<Integration>, StoreError> {
        let key_hash = key_hash.to_string();
        self.read(move |conn| read_integration(conn, "key_hash", &key_hash))
            .await
    }

    async fn update_integration(&self, id: &str, update: IntegrationUpdate) -> Result<Integration, StoreError> {
        let id = id.to_string();
        let now = self.clock.now();
        self.writer
            .write(move |session| {
                let mut integration = read_integration(session.conn, "id", &id)?
                    .ok_or_else(|| StoreError::NotFound("integration".into()))?;
                update.apply(&mut integration, now);
                write_integration(session.conn, &integration, false)?;
                Ok(integration)
            })
            .await
    }

    async fn register(&self, request: RegisterRequest) -> Result<Incident, StoreError> {
        let clock = Arc::clone(&self.clock);
        self.writer
            .write(move |session| register_in(session, &request, clock.now()))
            .await
    }

    async fn open_with(&self, request: RegisterRequest, commands: Vec<ExecuteRequest>) -> Result<Incident, StoreError> {
        let clock = Arc::clone(&self.clock);
        self.writer
            .write(move |session| open_in(session, &request, &commands, clock.now()))
            .await
    }

    async fn execute(&self, request: ExecuteRequest) -> Result<Executed, StoreError> {
        let clock = Arc::clone(&self.clock);
        self.writer
            .write(move |session| execute_in(session, &request, clock.now()))
            .await
    }

    async fn ingest_batch(&self, requests: Vec<IngestRequest>) -> Result<Vec<IngestOutcome>, StoreError> {
        let clock = Arc::clone(&self.clock);
        // A savepoint keeps a signal that fails halfway (after its incident
        // was registered, say) from tearing the neighbours' group.
        self.writer
            .write(move |session| {
                let now = clock.now();
                session.conn.execute_batch("SAVEPOINT ingest").map_err(map_err)?;
                let outcomes: Result<Vec<_>, _> = requests.iter().map(|r| ingest_in(session, r, now)).collect();
                if outcomes.is_err() {
                    session
                        .conn
                        .execute_batch("ROLLBACK TO ingest; RELEASE ingest")
                        .map_err(map_err)?;
                    session.cache.clear();
                } else {
                    session.conn.execute_batch("RELEASE ingest").map_err(map_err)?;
                }
                Ok(outcomes)
            })
            .await?
    }

    async fn update_user(&self, id: &str, update: crate::UserUpdate) -> Result<User, StoreError> {
        let id = id.to_string();
        self.writer
            .write(move |session| {
                let conn = session.conn;
                let mut user = conn
                    .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
                    .map_err(map_err)?
                    .query_row([&id], user_from_row)
                    .optional()
                    .map_err(map_err)?
                    .ok_or_else(|| StoreError::NotFound("user".into()))?;
                crate::apply_user_update(&mut user, &update);
                conn.prepare_cached(
                    "UPDATE users SET name = ?2, role = ?3, time_zone = ?4, disabled = ?5, contact_methods = ?6,
                     password_hash = COALESCE(?7, password_hash) WHERE id = ?1",
                )
                .map_err(map_err)?
                .execute(params![
                    id,
                    user.name,
                    user.role.as_str(),
                    user.time_zone,
                    user.disabled,
                    serde_json::to_string(&user.contact_methods).unwrap_or_else(|_| "[]".into()),
                    update.password_hash,
                ])
                .map_err(map_err)?;
                Ok(user)
            })
            .await
    }

    async fn load_catalogue(&self) -> Result<Catalogue, StoreError> {
        self.read(|conn| {
            let rows = catalogue_rows(conn)?;
            Catalogue::from_rows(&rows).map_err(|e| StoreError::Other(format!("unreadable catalogue: {e}")))
        })
        .await
    }

    async fn change_catalogue(&self, change: catalogue::Change) -> Result<Catalogue, StoreError> {
        let clock = Arc::clone(&self.clock);
        self.writer
            .write(move |session| {
                let conn = session.conn;
                let rows = catalogue_rows(conn)?;
                let mut catalogue =
                    Catalogue::from_rows(&rows).map_err(|e| StoreError::Other(format!("unreadable catalogue: {e}")))?;
                let deleted = match &change {
                    catalogue::Change::Delete(_, id) => Some(id.clone()),
                    _ => None,
                };
                let retime = crate::touches_sla(&change);
                match catalogue.apply(change)? {
                    Some(row) => {
                        conn.prepare_cached(
                            "INSERT INTO catalogue (id, kind, name, doc, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                             ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc,
                             updated_at = excluded.updated_at",
                        )
                        .map_err(map_err)?
                        .execute(params![
                            row.id,
                            row.kind.as_str(),
                            row.name,
                            row.doc,
                            clock.now().as_micros()
                        ])
                        .map_err(map_err)?;
                    }
                    None => {
                        let id = deleted.unwrap_or_default();
                        let n = conn
                            .prepare_cached("DELETE FROM catalogue WHERE id = ?1")
                            .map_err(map_err)?
                            .execute([&id])
                            .map_err(map_err)?;
                        if n == 0 {
                            return Err(StoreError::NotFound("catalogue entry".into()));
                        }
                    }
                }
                if retime {
                    conn.execute(crate::RETIME_OPEN_INCIDENTS, []).map_err(map_err)?;
                }
                Ok(catalogue)
            })
            .await
    }

    async fn sweep_sla(&self, request: SweepRequest) -> Result<SweepOutcome, StoreError> {
        let clock = Arc::clone(&self.clock);
        self.writer
            .write(move |session| {
                session.conn.execute_batch("SAVEPOINT sweep").map_err(map_err)?;
                let outcome = sweep_in(session, &request, clock.now());
                if outcome.is_err() {
                    session
                        .conn
                        .execute_batch("ROLLBACK TO sweep; RELEASE sweep")
                        .map_err(map_err)?;
                    session.cache.clear();
                } else {
                    session.conn.execute_batch("RELEASE sweep").map_err(map_err)?;
                }
                Ok(outcome)
            })
            .await?
    }

    async fn claim_notifications(&self, limit: u32, lease_secs: u32) -> Result<Vec<Notification>, StoreError> {
        let clock = Arc::clone(&self.clock);
        self.writer
            .write(move |session| {
                let now = clock.now().as_micros();
                let mut stmt = session
                    .conn
                    .prepare_cached(
                        "SELECT id, incident_id, kind, recipients, payload, created_at, attempts FROM notifications
                         WHERE delivered_at IS NULL AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![now, i64::from(limit)], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, i64>(5)?,
                            row.get::<_, i64>(6)?,
                        ))
                    })
                    .map_err(map_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)?;
                let mut claimed = Vec::with_capacity(rows.len());
                for (id, incident_id, kind, recipients, payload, created_at, attempts) in rows {
                    session
                        .conn
                        .prepare_cached(
                            "UPDATE notifications SET next_attempt_at = ?2, attempts = attempts + 1 WHERE id = ?1",
                        )
                        .map_err(map_err)?
                        .execute(params![id, now + i64::from(lease_secs) * 1_000_000])
                        .map_err(map_err)?;
                    claimed.push(Notification {
                        id,
                        incident_id,
                        kind,
                        recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                        payload: serde_json::from_str(&payload).unwrap_or_default(),
                        created_at: Timestamp::from_micros(created_at),
                        attempts: attempts + 1,
                    });
                }
                Ok(claimed)
            })
            .await
    }

    async fn finish_notification(&self, id: &str, failure: Option<(String, Timestamp)>) -> Result<(), StoreError> {
        let clock = Arc::clone(&self.clock);
        let id = id.to_string();
        self.writer
            .write(move |session| {
                match failure {
                    None => session
                        .conn
                        .prepare_cached("UPDATE notifications SET delivered_at = ?2, last_error = NULL WHERE id = ?1")
                        .map_err(map_err)?
                        .execute(params![id, clock.now().as_micros()])
                        .map_err(map_err)?,
                    Some((error, retry_at)) => session
                        .conn
                        .prepare_cached("UPDATE notifications SET last_error = ?2, next_attempt_at = ?3 WHERE id = ?1")
                        .map_err(map_err)?
                        .execute(params![id, error, retry_at.as_micros()])
                        .map_err(map_err)?,
                };
                Ok(())
            })
            .await
    }

    async fn create_maintenance(&self, window: MaintenanceWindow) -> Result<MaintenanceWindow, StoreError> {
        self.writer
            .write(move |session| {
                session
                    .conn
                    .prepare_cached(
                        "INSERT INTO maintenance_windows (id, service, ci, starts_at, ends_at, reason, created_by, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(map_err)?
                    .execute(params![
                        window.id,
                        window.service,
                        window.ci,
                        window.starts_at.as_micros(),
                        window.ends_at.as_micros(),
                        window.reason,
                        window.created_by,
                        window.created_at.as_micros(),
                    ])
                    .map_err(map_err)?;
                Ok(window)
            })
            .await
    }

    async fn list_maintenance(&self, after: Option<Timestamp>) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let after = after.map_or(i64::MIN, Timestamp::as_micros);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, service, ci, starts_at, ends_at, reason, created_by, created_at FROM maintenance_windows
                     WHERE ends_at > ?1 ORDER BY starts_at, id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([after], |row| {
                    Ok(MaintenanceWindow {
                        id: row.get(0)?,
                        service: row.get(1)?,
                        ci: row.get(2)?,
                        starts_at: Timestamp::from_micros(row.get(3)?),
                        ends_at: Timestamp::from_micros(row.get(4)?),
                        reason: row.get(5)?,
                        created_by: row.get(6)?,
                        created_at: Timestamp::from_micros(row.get(7)?),
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn delete_maintenance(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.writer
            .write(move |session| {
                let n = session
                    .conn
                    .prepare_cached("DELETE FROM maintenance_windows WHERE id = ?1")
                    .map_err(map_err)?
                    .execute([&id])
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound("maintenance window".into()));
                }
                Ok(())
            })
            .await
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            let mut clauses = Vec::new();
            let mut binds: Vec<Bind> = Vec::new();
            for (column, value) in [
                ("dedup_key", filter.dedup_key.clone()),
                ("incident_id", filter.incident_id.clone()),
                ("status", filter.status.map(|s| s.as_str().to_string())),
            ] {
                if let Some(value) = value {
                    binds.push(Bind::Text(value));
                    clauses.push(format!("{column} = ?{}", binds.len()));
                }
            }
            if let Some(before) = filter.before_id.clone() {
                binds.push(Bind::Text(before));
                clauses.push(format!("id < ?{}", binds.len()));
            }
            binds.push(Bind::Int(i64::from(filter.limit)));
            let where_clause = if clauses.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", clauses.join(" AND "))
            };
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts{where_clause} ORDER BY id DESC LIMIT ?{}",
                binds.len()
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(binds.iter()), alert_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_incident(&self, incident: &IncidentRef) -> Result<Option<Incident>, StoreError> {
        let incident = incident.clone();
        self.read(move |conn| Ok(load_incident(conn, &incident)?.map(|(inc, _)| inc)))
            .await
    }

    async fn team_backlog(&self, team_keys: Vec<String>, limit: u32) -> Result<crate::Backlog, StoreError> {
        self.read(move |conn| {
            let marks: Vec<String> = (1..=team_keys.len()).map(|i| format!("?{i}")).collect();
            let teams = marks.join(", ");
            let mut binds: Vec<Bind> = team_keys.iter().cloned().map(Bind::Text).collect();
            binds.push(Bind::Int(i64::from(limit)));
            // Order the narrow index rows first, then read only the documents shown.
            let sql = format!(
                "SELECT i.doc, i.sla_due_at FROM incidents i JOIN (
                   SELECT number, priority, sla_due_at FROM incidents INDEXED BY incidents_open_team
                   WHERE team IN ({teams}) AND state IN ('new', 'accepted', 'on_hold')
                   ORDER BY {order} LIMIT ?{limit}) s ON i.number = s.number
                 ORDER BY {outer}",
                order = crate::BACKLOG_ORDER,
                outer = "s.priority, s.sla_due_at IS NULL, s.sla_due_at, s.number",
                limit = binds.len()
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(binds.iter()), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, Option<i64>>(1)?))
                })
                .map_err(map_err)?;
            let mut backlog = crate::Backlog::default();
            for row in rows {
                let (doc, due) = row.map_err(map_err)?;
                backlog.items.push((parse_doc(&doc)?, due.map(Timestamp::from_micros)));
            }
            let sql = format!(
                "SELECT state, COUNT(*) FROM incidents INDEXED BY incidents_open_team
                 WHERE team IN ({teams}) AND state IN ('new', 'accepted', 'on_hold') GROUP BY state"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(team_keys.iter()), |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(map_err)?;
            for row in rows {
                let (state, n) = row.map_err(map_err)?;
                backlog.counts.insert(state, n);
            }
            Ok(backlog)
        })
        .await
    }

    async fn list_incidents(&self, filter: &IncidentFilter, page: Page) -> Result<Vec<Incident>, StoreError> {
        let (sql, binds) = list_query(filter, page, '?');
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(binds.iter()), |row| row.get::<_, String>(0))
                .map_err(map_err)?;
            rows.map(|doc| parse_doc(&doc.map_err(map_err)?)).collect()
        })
        .await
    }

    async fn timeline(
        &self,
        incident: &IncidentRef,
        after_seq: u64,
        limit: Option<u32>,
    ) -> Result<Vec<Entry>, StoreError> {
        let incident = incident.clone();
        self.read(move |conn| {
            let (inc, _) = load_incident(conn, &incident)?.ok_or_else(|| StoreError::NotFound("incident".into()))?;
            read_timeline(conn, &inc.id, after_seq, limit)
        })
        .await
    }

    async fn verify(&self, incident: &IncidentRef) -> Result<IncidentVerification, StoreError> {
        let incident = incident.clone();
        self.read(move |conn| {
            let (clause, bind) = incident_where(&incident);
            let row: Option<(String, i64, i64, String)> = conn
                .prepare_cached(&format!(
                    "SELECT id, number, version, head_hash FROM incidents WHERE {clause}"
                ))
                .map_err(map_err)?
                .query_row([bind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
                .map_err(map_err)?;
            let (id, number, version, head) = row.ok_or_else(|| StoreError::NotFound("incident".into()))?;
            verify_one(conn, &id, number, version, &head)
        })
        .await
    }

    async fn incidents_changed_since(
        &self,
        after: crate::WrittenAfter,
        limit: u32,
        with_facts: bool,
    ) -> Result<Vec<crate::ChangedIncident>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(if with_facts {
                    "SELECT i.id, i.number, i.version, i.updated_at, f.facts FROM incidents i INDEXED BY incidents_updated
                     LEFT JOIN incident_facts f ON f.incident_id = i.id AND f.version = i.version
                     WHERE i.updated_at >= ?1 AND (i.updated_at > ?1 OR i.number > ?2)
                     ORDER BY i.updated_at, i.number LIMIT ?3"
                } else {
                    "SELECT i.id, i.number, i.version, i.updated_at, NULL FROM incidents i INDEXED BY incidents_updated
                     WHERE i.updated_at >= ?1 AND (i.updated_at > ?1 OR i.number > ?2)
                     ORDER BY i.updated_at, i.number LIMIT ?3"
                })
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![after.updated_at.as_micros(), after.number, i64::from(limit)], |r| {
                    Ok(crate::ChangedIncident {
                        id: r.get(0)?,
                        number: r.get(1)?,
                        version: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        updated_at: Timestamp::from_micros(r.get(3)?),
                        facts: r.get(4)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn put_facts(&self, facts: Vec<(String, u64, String)>) -> Result<(), StoreError> {
        if facts.is_empty() {
            return Ok(());
        }
        self.writer
            .write(move |session| {
                let mut stmt = session
                    .conn
                    .prepare_cached(
                        "INSERT INTO incident_facts (incident_id, version, facts) VALUES (?1, ?2, ?3)
                         ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version, facts = excluded.facts
                         WHERE incident_facts.version <= excluded.version",
                    )
                    .map_err(map_err)?;
                for (id, version, json) in &facts {
                    stmt.execute(params![id, i64::try_from(*version).unwrap_or(i64::MAX), json])
                        .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn capability_settings(
        &self,
    ) -> Result<std::collections::BTreeMap<String, keel_domain::capability::Setting>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT criterion, threshold, met, note, recorded_by, recorded_at FROM capability_settings")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        keel_domain::capability::Setting {
                            threshold: r.get(1)?,
                            met: r.get::<_, Option<i64>>(2)?.map(|m| m != 0),
                            note: r.get(3)?,
                            recorded_by: r.get::<_, Option<String>>(4)?.map(keel_domain::UserId::new),
                            recorded_at: r.get::<_, Option<i64>>(5)?.map(Timestamp::from_micros),
                        },
                    ))
                })
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        })
        .await
    }

    async fn put_capability_setting(
        &self,
        criterion: &str,
        setting: keel_domain::capability::Setting,
    ) -> Result<(), StoreError> {
        let criterion = criterion.to_string();
        self.writer
            .write(move |session| {
                session
                    .conn
                    .execute(
                        "INSERT INTO capability_settings (criterion, threshold, met, note, recorded_by, recorded_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (criterion) DO UPDATE SET threshold = excluded.threshold, met = excluded.met,
                           note = excluded.note, recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
                        params![
                            criterion,
                            setting.threshold,
                            setting.met.map(i64::from),
                            setting.note,
                            setting.recorded_by.as_ref().map(keel_domain::UserId::as_str),
                            setting.recorded_at.map(Timestamp::as_micros)
                        ],
                    )
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn clear_facts(&self) -> Result<u64, StoreError> {
        self.writer
            .write(|session| {
                let gone = session
                    .conn
                    .execute("DELETE FROM incident_facts", [])
                    .map_err(map_err)?;
                Ok(u64::try_from(gone).unwrap_or(0))
            })
            .await
    }

    async fn verify_all(&self) -> Result<Vec<IncidentVerification>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT id, number, version, head_hash FROM incidents ORDER BY number")
                .map_err(map_err)?;
            let heads = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            let mut results = Vec::with_capacity(heads.len());
            for (id, number, version, head) in heads {
                results.push(verify_one(conn, &id, number, version, &head)?);
            }
            // Entries whose incident row is gone cannot be checked against a head.
            let orphans: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM timeline_entries WHERE incident_id NOT IN (SELECT id FROM incidents)",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            if orphans > 0 {
                return Err(StoreError::Other(format!(
                    "{orphans} timeline entries belong to no incident"
                )));
            }
            Ok(results)
        })
        .await
    }
}

fn insert_user(conn: &Connection, user: &NewUser, now: keel_domain::Timestamp) -> Result<User, StoreError> {
    conn.prepare_cached(
        "INSERT INTO users (id, name, email, role, time_zone, password_hash, disabled, created_at, contact_methods)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)",
    )
    .map_err(map_err)?
    .execute(params![
        user.id,
        user.name,
        user.email,
        user.role.as_str(),
        user.time_zone,
        user.password_hash,
        now.as_micros(),
        serde_json::to_string(&user.contact_methods).unwrap_or_else(|_| "[]".into()),
    ])
    .map_err(|e| match map_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("a user with e-mail {} already exists", user.email)),
        other => other,
    })?;
    Ok(user.stored(now))
}

/// Registers an incident inside the writer's transaction.
fn register_in(session: &mut Session<'_>, request: &RegisterRequest, now: Timestamp) -> Result<Incident, StoreError> {
    open_in(session, request, &[], now)
}

/// Registers an incident and applies `commands` to it, storing it once.
fn open_in(
    session: &mut Session<'_>,
    request: &RegisterRequest,
    commands: &[ExecuteRequest],
    now: Timestamp,
) -> Result<Incident, StoreError> {
    let conn = session.conn;
    let number: i64 = match request.number {
        Some(number) => {
            let taken: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM incidents WHERE number = ?1)")
                .map_err(map_err)?
                .query_row([number], |row| row.get(0))
                .map_err(map_err)?;
            if taken {
                return Err(StoreError::Conflict(format!("incident number {number} is taken")));
            }
            number
        }
        None => conn
            .prepare_cached("SELECT COALESCE(MAX(number), 0) + 1 FROM incidents")
            .map_err(map_err)?
            .query_row([], |row| row.get(0))
            .map_err(map_err)?,
    };
    let planned = plan_opening(request, commands, number, now)?;
    store_planned(conn, &planned, None)?;
    let head = planned.entries.last().map(|e| e.hash.clone()).unwrap_or_default();
    session.cache.put(planned.incident.clone(), head);
    Ok(planned.incident)
}

/// Applies a command inside the writer's transaction.
fn execute_in(session: &mut Session<'_>, request: &ExecuteRequest, now: Timestamp) -> Result<Executed, StoreError> {
    let conn = session.conn;
    let loaded = match session.cache.take(&request.incident) {
        Some(hit) => Some(hit),
        None => load_incident(conn, &request.incident)?,
    };
    let (current, head_hash) = loaded.ok_or_else(|| StoreError::NotFound("incident".into()))?;
    let planned = plan_command(request, &current, &head_hash, now)?;
    if planned.entries.is_empty() {
        session.cache.put(current.clone(), head_hash);
        return Ok(Executed {
            incident: current,
            entries: Vec::new(),
        });
    }
    store_planned(conn, &planned, Some(&current))?;
    let head = planned.entries.last().map(|e| e.hash.clone()).unwrap_or_default();
    session.cache.put(planned.incident.clone(), head);
    Ok(Executed {
        incident: planned.incident,
        entries: planned.entries,
    })
}

/// Looks an incident up for planning, through the writer's cache.
fn peek_incident(session: &mut Session<'_>, id: &str) -> Result<Option<Incident>, StoreError> {
    let key = IncidentRef::Id(id.to_string());
    let found = match session.cache.take(&key) {
        Some(hit) => Some(hit),
        None => load_incident(session.conn, &key)?,
    };
    Ok(found.map(|(incident, head)| {
        session.cache.put(incident.clone(), head);
        incident
    }))
}

/// The first id a one-column query finds.
fn first_id(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(map_err)?
        .query_row(params, |row| row.get(0))
        .optional()
        .map_err(map_err)
}

/// Applies one signal inside the writer's transaction: the single writer
/// serialises signals, and the unique (integration, dedup key) backs it up.
fn ingest_in(session: &mut Session<'_>, request: &IngestRequest, now: Timestamp) -> Result<IngestOutcome, StoreError> {
    let integration = &request.integration;
    let signal = &request.signal;
    let existing = session
        .conn
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE integration_id = ?1 AND dedup_key = ?2"
        ))
        .map_err(map_err)?
        .query_row([&integration.id, &signal.dedup_key], alert_from_row)
        .optional()
        .map_err(map_err)?;
    let is_new = existing.is_none();
    let mut context = IngestContext {
        existing,
        ..IngestContext::default()
    };
    if first_reaction(context.existing.as_ref(), signal.action) == Reaction::Open {
        let class = classification(request);
        let at = now.as_micros();
        for (column, value) in [("service", &class.service), ("ci", &class.ci)] {
            if let Some(value) = value
                && context.maintenance.is_none()
            {
                context.maintenance = first_id(
                    session.conn,
                    &format!(
                        "SELECT id FROM maintenance_windows WHERE {column} = ?1 AND starts_at <= ?2 AND ends_at > ?2
                         ORDER BY starts_at LIMIT 1"
                    ),
                    params![value, at],
                )?;
            }
        }
        if context.maintenance.is_none() {
            if let Some(id) = context.existing.as_ref().and_then(|a| a.incident_id.clone()) {
                context.own_incident = peek_incident(session, &id)?;
            }
            if let Some(group) = &signal.group_key
                && let Some(id) = first_id(
                    session.conn,
                    "SELECT incident_id FROM alerts WHERE integration_id = ?1 AND group_key = ?2
                     AND incident_id IS NOT NULL ORDER BY last_seen DESC LIMIT 1",
                    params![integration.id, group],
                )?
            {
                context.group_incident = peek_incident(session, &id)?;
            }
            let window = integration.policy.correlation_window_secs;
            if window > 0 {
                let since = at - i64::from(window) * 1_000_000;
                for (column, value) in [("service", &class.service), ("ci", &class.ci)] {
                    if let Some(value) = value
                        && context.correlated_incident.is_none()
                        && let Some(id) = first_id(
                            session.conn,
                            &format!(
                                "SELECT a.incident_id FROM alerts a JOIN incidents i ON i.id = a.incident_id
                                 WHERE a.{column} = ?1 AND a.last_seen >= ?2 AND i.state IN ('new', 'accepted', 'on_hold')
                                 ORDER BY a.last_seen DESC LIMIT 1"
                            ),
                            params![value, since],
                        )?
                    {
                        context.correlated_incident = peek_incident(session, &id)?;
                    }
                }
            }
        }
    }
    let plan = plan_ingest(request, context, now);
    if let Some(register) = &plan.register {
        // Every command of a plan that registers is for the new incident.
        open_in(session, register, &plan.commands, now)?;
    } else {
        for command in &plan.commands {
            execute_in(session, command, now)?;
        }
    }
    if let Some(alert) = &plan.alert {
        write_alert(session.conn, alert, is_new)?;
    }
    Ok(plan.outcome)
}

fn catalogue_rows(conn: &Connection) -> Result<Vec<catalogue::Row>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT kind, id, name, doc FROM catalogue ORDER BY kind, name")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([], |row| {
            let kind: String = row.get(0)?;
            Ok((kind, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .map_err(map_err)?;
    rows.map(|row| {
        let (kind, id, name, doc): (String, String, String, String) = row.map_err(map_err)?;
        let kind = catalogue::Kind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("unknown catalogue kind {kind:?}")))?;
        Ok(catalogue::Row { kind, id, name, doc })
    })
    .collect()
}

fn write_alert(conn: &Connection, a: &Alert, is_new: bool) -> Result<(), StoreError> {
    let sql = if is_new {
        "INSERT INTO alerts (id, integration_id, dedup_key, status, summary, severity, source, incident_id, count, first_seen,
         last_seen, group_key, service, ci, changes, flapping, suppressed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    } else {
        "UPDATE alerts SET integration_id = ?2, dedup_key = ?3, status = ?4, summary = ?5, severity = ?6, source = ?7,
         incident_id = ?8, count = ?9, first_seen = ?10, last_seen = ?11, group_key = ?12, service = ?13, ci = ?14,
         changes = ?15, flapping = ?16, suppressed_by = ?17 WHERE id = ?1"
    };
    conn.prepare_cached(sql)
        .map_err(map_err)?
        .execute(params![
            a.id,
            a.integration_id,
            a.dedup_key,
            a.status.as_str(),
            a.summary,
            a.severity.as_str(),
            a.source,
            a.incident_id,
            a.count,
            a.first_seen.as_micros(),
            a.last_seen.as_micros(),
            a.group_key,
            a.service,
            a.ci,
            changes_json(&a.changes),
            a.flapping,
            a.suppressed_by,
        ])
        .map_err(map_err)?;
    Ok(())
}

fn read_integration(conn: &Connection, column: &str, value: &str) -> Result<Option<Integration>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE {column} = ?1"
    ))
    .map_err(map_err)?
    .query_row([value], integration_from_row)
    .optional()
    .map_err(map_err)
}

fn write_integration(conn: &Connection, i: &Integration, is_new: bool) -> Result<(), StoreError> {
    let sql = if is_new {
        "INSERT INTO integrations (id, name, kind, service, team, key_hash, key_hint, disabled, created_by, created_at, rotated_at,
         policy, signing_secret)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    } else {
        "UPDATE integrations SET name = ?2, kind = ?3, service = ?4, team = ?5, key_hash = ?6, key_hint = ?7, disabled = ?8,
         created_by = ?9, created_at = ?10, rotated_at = ?11, policy = ?12, signing_secret = ?13 WHERE id = ?1"
    };
    conn.prepare_cached(sql)
        .map_err(map_err)?
        .execute(params![
            i.id,
            i.name,
            i.kind.as_str(),
            i.service,
            i.team,
            i.key_hash,
            i.key_hint,
            i.disabled,
            i.created_by,
            i.created_at.as_micros(),
            i.rotated_at.map(keel_domain::Timestamp::as_micros),
            policy_json(&i.policy),
            i.signing_secret,
        ])
        .map_err(map_err)?;
    Ok(())
}

fn insert_token(conn: &Connection, token: &ApiToken) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(map_err)?
    .execute(params![
        token.id,
        token.user_id,
        token.name,
        token.token_hash,
        token.created_at.as_micros()
    ])
    .map_err(map_err)?;
    Ok(())
}

/// The stored name of an SLA state.
pub(crate) fn sla_state_name(state: keel_domain::sla::SlaState) -> &'static str {
    use keel_domain::sla::SlaState;
    match state {
        SlaState::Within => "within",
        SlaState::AtRisk => "at_risk",
        SlaState::Breached => "breached",
        SlaState::Met => "met",
        SlaState::Missed => "missed",
        SlaState::Cancelled => "cancelled",
    }
}
