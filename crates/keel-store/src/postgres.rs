//! The PostgreSQL adapter: any number of keel nodes share one database. Each
//! command runs in one transaction that locks its incident row (`FOR UPDATE`),
//! so writers on one incident queue up in the database and the chain stays
//! linear; the `(incident_id, seq)` primary key backs this up. Numbers come
//! from a sequence (gaps are possible after a refused registration).

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use keel_domain::{Entry, Incident, Role, Timestamp, UserId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::filter::{Bind, list_query};
use keel_domain::detection::{AlertStatus, Reaction, Severity};

use crate::plan::{IngestContext, classification, first_reaction, plan_ingest};
use crate::plan::{Planned, plan_command, plan_opening, search_text};
use crate::{
    Alert, AlertFilter, ApiToken, Clock, ExecuteRequest, Executed, IncidentFilter, IncidentRef, IncidentVerification,
    IngestOutcome, IngestRequest, Integration, IntegrationKind, IntegrationUpdate, MaintenanceWindow, NewUser,
    Notification, Page, RegisterRequest, Store, StoreError, SweepOutcome, SweepRequest, User,
};
use keel_domain::catalogue::{self, Catalogue};

/// The schema, embedded in the binary. sqlx's migrator records what ran in
/// `_sqlx_migrations` and holds an advisory lock while it works.
fn migrator() -> Migrator {
    let migrations = [
        (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
        (
            2,
            "integrations",
            include_str!("../migrations/postgres/0002_integrations.sql"),
        ),
        (3, "alerts", include_str!("../migrations/postgres/0003_alerts.sql")),
        (
            4,
            "detection_policy",
            include_str!("../migrations/postgres/0004_detection_policy.sql"),
        ),
        (
            5,
            "catalogue",
            include_str!("../migrations/postgres/0005_catalogue.sql"),
        ),
        (6, "sla", include_str!("../migrations/postgres/0006_sla.sql")),
        (
            7,
            "contact_methods",
            include_str!("../migrations/postgres/0007_contact_methods.sql"),
        ),
        (8, "web", include_str!("../migrations/postgres/0008_web.sql")),
        (9, "search", include_str!("../migrations/postgres/0009_search.sql")),
        (10, "facts", include_str!("../migrations/postgres/0010_facts.sql")),
        (11, "touched", include_str!("../migrations/postgres/0011_touched.sql")),
        (
            12,
            "capability",
            include_str!("../migrations/postgres/0012_capability.sql"),
        ),
    ]
    .into_iter()
    .map(|(version, name, sql)| {
        Migration::new(
            version,
            Cow::Borrowed(name),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )
    })
    .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// A constant key for the advisory lock that serialises bootstrap.
const BOOTSTRAP_LOCK: i64 = 0x6b65_656c_0001;
/// The advisory lock that serialises catalogue writes (each checks the whole catalogue).
const CATALOGUE_LOCK: i64 = 0x6b65_656c_0002;

/// Deadlocks and serialisation failures: the transaction can simply run again.
fn is_retryable(code: &str) -> bool {
    code.starts_with("40")
}

/// keel's store on a PostgreSQL database.
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    clock: Arc<dyn Clock>,
}

/// SQLSTATE classes and codes that mean "the database is not there right
/// now" rather than "this request is wrong": connection exceptions, operator
/// intervention (shutdown), insufficient resources, and a missing database.
fn is_outage(code: &str) -> bool {
    is_retryable(code) || code.starts_with("08") || code.starts_with("57") || code.starts_with("53") || code == "3D000"
}

pub(crate) fn map_err(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.code().is_some_and(|code| is_outage(&code)) => {
            StoreError::Unavailable(db.message().to_string())
        }
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed | sqlx::Error::BeginFailed => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() || db.is_check_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

impl PostgresStore {
    /// Connects and runs the migrations (under sqlx's advisory lock, so nodes
    /// starting together do not race).
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        migrator()
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        Ok(Self { pool, clock })
    }

    /// The pool, for tests and tools that need raw SQL.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn bind_incident<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    incident: &'q IncidentRef,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    match incident {
        IncidentRef::Id(id) => query.bind(id.as_str()),
        IncidentRef::Number(n) => query.bind(*n),
    }
}

fn incident_clause(incident: &IncidentRef) -> &'static str {
    match incident {
        IncidentRef::Id(_) => "id = $1",
        IncidentRef::Number(_) => "number = $1",
    }
}

fn entry_from_row(row: &PgRow) -> Result<Entry, StoreError> {
    let get_time = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(name)
            .map_err(map_err)?
            .map(Timestamp::from_micros))
    };
    Ok(Entry {
        seq: u64::try_from(row.try_get::<i64, _>("seq").map_err(map_err)?).unwrap_or(0),
        kind: row.try_get("kind").map_err(map_err)?,
        actor: UserId::new(row.try_get::<String, _>("actor").map_err(map_err)?),
        recorded_at: Timestamp::from_micros(row.try_get("recorded_at").map_err(map_err)?),
        occurred_at: get_time("occurred_at")?,
        started_at: get_time("started_at")?,
        completed_at: get_time("completed_at")?,
        data: row.try_get::<Json<serde_json::Value>, _>("data").map_err(map_err)?.0,
        prev_hash: row.try_get("prev_hash").map_err(map_err)?,
        hash: row.try_get("hash").map_err(map_err)?,
    })
}

pub(crate) fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role").map_err(map_err)?;
    Ok(User {
        id: row.try_get("id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Other(format!("unknown role {role:?} in users")))?,
        time_zone: row.try_get("time_zone").map_err(map_err)?,
        created_at: Timestamp::from_micros(row.try_get("created_at").map_err(map_err)?),
        disabled: row.try_get("disabled").map_err(map_err)?,
        contact_methods: serde_json::from_str(&row.try_get::<String, _>("contact_methods").map_err(map_err)?)
            .map_err(|e| StoreError::Other(format!("unreadable contact methods: {e}")))?,
    })
}

const INTEGRATION_COLUMNS: &str = "id, name, kind, service, team, key_hash, key_hint, disabled, created_by, created_at, rotated_at, policy, signing_secret";

fn integration_from_row(row: &PgRow) -> Result<Integration, StoreError> {
    let kind: String = row.try_get("kind").map_err(map_err)?;
    Ok(Integration {
        id: row.try_get("id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        kind: IntegrationKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("unknown integration kind {kind:?}")))?,
        service: row.try_get("service").map_err(map_err)?,
        team: row.try_get("team").map_err(map_err)?,
        key_hash: row.try_get("key_hash").map_err(map_err)?,
        key_hint: row.try_get("key_hint").map_err(map_err)?,
        disabled: row.try_get("disabled").map_err(map_err)?,
        created_by: row.try_get("created_by").map_err(map_err)?,
        created_at: Timestamp::from_micros(row.try_get("created_at").map_err(map_err)?),
        rotated_at: row
            .try_get::<Option<i64>, _>("rotated_at")
            .map_err(map_err)?
            .map(Timestamp::from_micros),
        policy: crate::plan::parse_policy(&row.try_get::<String, _>("policy").map_err(map_err)?)
            .map_err(|e| StoreError::Other(format!("unreadable integration policy: {e}")))?,
        signing_secret: row.try_get("signing_secret").map_err(map_err)?,
    })
}

async fn write_integration(
    executor: impl sqlx::PgExecutor<'_>,
    i: &Integration,
    is_new: bool,
) -> Result<(), StoreError> {
    let sql = if is_new {
        "INSERT INTO integrations (id, name, kind, service, team, key_hash, key_hint, disabled, created_by, created_at, rotated_at,
         policy, signing_secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    } else {
        "UPDATE integrations SET name = $2, kind = $3, service = $4, team = $5, key_hash = $6, key_hint = $7, disabled = $8,
         created_by = $9, created_at = $10, rotated_at = $11, policy = $12, signing_secret = $13 WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(&i.id)
        .bind(&i.name)
        .bind(i.kind.as_str())
        .bind(&i.service)
        .bind(&i.team)
        .bind(&i.key_hash)
        .bind(&i.key_hint)
        .bind(i.disabled)
        .bind(&i.created_by)
        .bind(i.created_at.as_micros())
        .bind(i.rotated_at.map(Timestamp::as_micros))
        .bind(crate::plan::policy_json(&i.policy))
        .bind(&i.signing_secret)
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Registers an incident inside a transaction.
async fn register_tx(
    tx: &mut Transaction<'_, Postgres>,
    request: &RegisterRequest,
    now: Timestamp,
) -> Result<Incident, StoreError> {
    open_tx(tx, request, &[], now).await
}

/// Registers an incident and applies `commands` to it, storing it once.
async fn open_tx(
    tx: &mut Transaction<'_, Postgres>,
    request: &RegisterRequest,
    commands: &[ExecuteRequest],
    now: Timestamp,
) -> Result<Incident, StoreError> {
    let number: i64 = match request.number {
        Some(number) => {
            // Keep the source's number, and keep new numbers clear of it.
            sqlx::query(
                "SELECT setval('incident_number_seq', GREATEST($1, (SELECT last_value FROM incident_number_seq)))",
            )
            .bind(number)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            number
        }
        None => sqlx::query_scalar("SELECT nextval('incident_number_seq')")
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)?,
    };
    let planned = plan_opening(request, commands, number, now)?;
    store_planned(tx, &planned, true).await?;
    Ok(planned.incident)
}

/// Applies a command inside a transaction, holding the incident's row lock.
async fn execute_tx(
    tx: &mut Transaction<'_, Postgres>,
    request: &ExecuteRequest,
    now: Timestamp,
) -> Result<Executed, StoreError> {
    let sql = format!(
        "SELECT doc, head_hash FROM incidents WHERE {} FOR UPDATE",
        incident_clause(&request.incident)
    );
    let row = bind_incident(sqlx::query(&sql), &request.incident)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
    let row = row.ok_or_else(|| StoreError::NotFound("incident".into()))?;
    let current: Incident = row.try_get::<Json<Incident>, _>("doc").map_err(map_err)?.0;
    let head_hash: String = row.try_get("head_hash").map_err(map_err)?;
    let planned = plan_command(request, &current, &head_hash, now)?;
    if planned.entries.is_empty() {
        return Ok(Executed {
            incident: current,
            entries: Vec::new(),
        });
    }
    store_planned(tx, &planned, false).await?;
    Ok(Executed {
        incident: planned.incident,
        entries: planned.entries,
    })
}

const ALERT_COLUMNS: &str = "id, integration_id, dedup_key, status, summary, severity, source, incident_id, count, first_seen, last_seen, group_key, service, ci, changes, flapping, suppressed_by";

fn alert_from_row(row: &PgRow) -> Result<Alert, StoreError> {
    let status: String = row.try_get("status").map_err(map_err)?;
    let severity: String = row.try_get("severity").map_err(map_err)?;
    Ok(Alert {
        id: row.try_get("id").map_err(map_err)?,
        integration_id: row.try_get("integration_id").map_err(map_err)?,
        dedup_key: row.try_get("dedup_key").map_err(map_err)?,
        status: AlertStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown alert status {status:?}")))?,
        summary: row.try_get("summary").map_err(map_err)?,
        severity: Severity::parse(&severity)
            .ok_or_else(|| StoreError::Other(format!("unknown severity {severity:?}")))?,
        source: row.try_get("source").map_err(map_err)?,
        incident_id: row.try_get("incident_id").map_err(map_err)?,
        count: row.try_get("count").map_err(map_err)?,
        first_seen: Timestamp::from_micros(row.try_get("first_seen").map_err(map_err)?),
        last_seen: Timestamp::from_micros(row.try_get("last_seen").map_err(map_err)?),
        group_key: row.try_get("group_key").map_err(map_err)?,
        service: row.try_get("service").map_err(map_err)?,
        ci: row.try_get("ci").map_err(map_err)?,
        changes: crate::plan::parse_changes(&row.try_get::<String, _>("changes").map_err(map_err)?)
            .map_err(|e| StoreError::Other(format!("unreadable alert changes: {e}")))?,
        flapping: row.try_get("flapping").map_err(map_err)?,
        suppressed_by: row.try_get("suppressed_by").map_err(map_err)?,
    })
}

async fn write_alert(tx: &mut Transaction<'_, Postgres>, a: &Alert, is_new: bool) -> Result<(), StoreError> {
    let sql = if is_new {
        "INSERT INTO alerts (id, integration_id, dedup_key, status, summary, severity, source, incident_id, count, first_seen,
         last_seen, group_key, service, ci, changes, flapping, suppressed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    } else {
        "UPDATE alerts SET integration_id = $2, dedup_key = $3, status = $4, summary = $5, severity = $6, source = $7,
         incident_id = $8, count = $9, first_seen = $10, last_seen = $11, group_key = $12, service = $13, ci = $14,
         changes = $15, flapping = $16, suppressed_by = $17 WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(&a.id)
        .bind(&a.integration_id)
        .bind(&a.dedup_key)
        .bind(a.status.as_str())
        .bind(&a.summary)
        .bind(a.severity.as_str())
        .bind(&a.source)
        .bind(&a.incident_id)
        .bind(a.count)
        .bind(a.first_seen.as_micros())
        .bind(a.last_seen.as_micros())
        .bind(&a.group_key)
        .bind(&a.service)
        .bind(&a.ci)
        .bind(crate::plan::changes_json(&a.changes))
        .bind(a.flapping)
        .bind(&a.suppressed_by)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

const USER_COLUMNS: &str = "id, name, email, role, time_zone, created_at, disabled, contact_methods";
const ENTRY_COLUMNS: &str =
    "seq, kind, actor, recorded_at, occurred_at, started_at, completed_at, data, prev_hash, hash";

async fn insert_user(tx: &mut Transaction<'_, Postgres>, user: &NewUser, now: Timestamp) -> Result<User, StoreError> {
    sqlx::query(
        "INSERT INTO users (id, name, email, role, time_zone, password_hash, disabled, created_at, contact_methods)
         VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8)",
    )
    .bind(&user.id)
    .bind(&user.name)
    .bind(&user.email)
    .bind(user.role.as_str())
    .bind(&user.time_zone)
    .bind(&user.password_hash)
    .bind(now.as_micros())
    .bind(serde_json::to_string(&user.contact_methods).unwrap_or_else(|_| "[]".into()))
    .execute(&mut **tx)
    .await
    .map_err(|e| match map_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("a user with e-mail {} already exists", user.email)),
        other => other,
    })?;
    Ok(user.stored(now))
}

async fn insert_token(tx: &mut Transaction<'_, Postgres>, token: &ApiToken) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&token.id)
        .bind(&token.user_id)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.created_at.as_micros())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn store_planned(tx: &mut Transaction<'_, Postgres>, planned: &Planned, is_new: bool) -> Result<(), StoreError> {
    let inc = &planned.incident;
    let head_hash = planned.entries.last().map(|e| e.hash.clone()).unwrap_or_default();
    let doc = serde_json::to_value(inc).map_err(|e| StoreError::Other(e.to_string()))?;
    // One round trip: the projection (insert or update) and every new entry
    // together; the entries select the projection's id, so they follow it.
    let projection = if is_new {
        "INSERT INTO incidents (id, number, state, priority, service, team, owner, reported_by, major, search, created_at,
         updated_at, version, head_hash, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id"
    } else {
        "UPDATE incidents SET number = $2, state = $3, priority = $4, service = $5, team = $6, owner = $7, reported_by = $8,
         major = $9, search = $10, created_at = $11, updated_at = $12, version = $13, head_hash = $14, doc = $15,
         sla_next_at = CASE WHEN $26 THEN 0 ELSE sla_next_at END
         WHERE id = $1 RETURNING id"
    };
    let sql = format!(
        "WITH inc AS ({projection})
         INSERT INTO timeline_entries (incident_id, seq, kind, actor, recorded_at, occurred_at, started_at, completed_at,
                                       data, prev_hash, hash)
         SELECT inc.id, e.seq, e.kind, e.actor, e.recorded_at, e.occurred_at, e.started_at, e.completed_at, e.data,
                e.prev_hash, e.hash
         FROM inc, UNNEST($16::bigint[], $17::text[], $18::text[], $19::bigint[], $20::bigint[], $21::bigint[],
                          $22::bigint[], $23::jsonb[], $24::text[], $25::text[])
              AS e(seq, kind, actor, recorded_at, occurred_at, started_at, completed_at, data, prev_hash, hash)"
    );
    let entries = &planned.entries;
    let mut query = sqlx::query(&sql)
        .bind(&inc.id)
        .bind(inc.number)
        .bind(inc.state.as_str())
        .bind(inc.priority.as_str())
        .bind(&inc.service)
        .bind(&inc.team)
        .bind(inc.owner.as_str())
        .bind(inc.reported_by.as_str())
        .bind(inc.major)
        .bind(search_text(inc))
        .bind(inc.created_at.as_micros())
        .bind(inc.updated_at.as_micros())
        .bind(i64::try_from(inc.version).unwrap_or(i64::MAX))
        .bind(&head_hash)
        .bind(Json(&doc))
        .bind(
            entries
                .iter()
                .map(|e| i64::try_from(e.seq).unwrap_or(i64::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.actor.as_str().to_string()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.recorded_at.as_micros()).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|e| e.occurred_at.map(Timestamp::as_micros))
                .collect::<Vec<_>>(),
        )
        .bind(
            entries
                .iter()
                .map(|e| e.started_at.map(Timestamp::as_micros))
                .collect::<Vec<_>>(),
        )
        .bind(
            entries
                .iter()
                .map(|e| e.completed_at.map(Timestamp::as_micros))
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| Json(e.data.clone())).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.prev_hash.clone()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.hash.clone()).collect::<Vec<_>>());
    if !is_new {
        query = query.bind(crate::plan::sla_dirty(planned));
    }
    query.execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
}

async fn read_timeline(
    pool: &PgPool,
    incident_id: &str,
    after_seq: u64,
    limit: Option<u32>,
) -> Result<Vec<Entry>, StoreError> {
    // LIMIT NULL is PostgreSQL's "no limit".
    let rows = sqlx::query(&format!(
        "SELECT {ENTRY_COLUMNS} FROM timeline_entries WHERE incident_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(incident_id)
    .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
    .bind(limit.map(i64::from))
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter().map(entry_from_row).collect()
}

async fn verify_one(pool: &PgPool, row: &PgRow) -> Result<IncidentVerification, StoreError> {
    let id: String = row.try_get("id").map_err(map_err)?;
    let number: i64 = row.try_get("number").map_err(map_err)?;
    let version: i64 = row.try_get("version").map_err(map_err)?;
    let head: String = row.try_get("head_hash").map_err(map_err)?;
    let entries = read_timeline(pool, &id, 0, None).await?;
    let report = keel_domain::timeline::verify(&id, &entries, Some((u64::try_from(version).unwrap_or(0), &head)));
    Ok(IncidentVerification { id, number, report })
}

#[async_trait]
impl Store for PostgresStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn bootstrap_admin(&self, admin: NewUser, token: ApiToken) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let n_users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if n_users > 0 {
            return Ok(false);
        }
        insert_user(&mut tx, &admin, self.clock.now()).await?;
        insert_token(&mut tx, &token).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let created = insert_user(&mut tx, &user, self.clock.now()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(created)
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn create_token(&self, token: ApiToken) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_token(&mut tx, &token).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, User)>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.user_id, t.name AS token_name, t.token_hash, t.created_at AS token_created_at,
                    u.id, u.name, u.email, u.role, u.time_zone, u.created_at, u.disabled, u.contact_methods
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let token = ApiToken {
            id: row.try_get("token_id").map_err(map_err)?,
            user_id: row.try_get("user_id").map_err(map_err)?,
            name: row.try_get("token_name").map_err(map_err)?,
            token_hash: row.try_get("token_hash").map_err(map_err)?,
            created_at: Timestamp::from_micros(row.try_get("token_created_at").map_err(map_err)?),
        };
        Ok(Some((token, user_from_row(&row)?)))
    }

    async fn create_integration(&self, integration: Integration) -> Result<Integration, StoreError> {
        write_integration(&self.pool, &integration, true).await?;
        Ok(integration)
    }

    async fn list_integrations(&self) -> Result<Vec<Integration>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY name, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(integration_from_row).collect()
    }

    async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError> {
        let row = sqlx::query(&format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(integration_from_row).transpose()
    }

    async fn find_integration_by_key(&self, key_hash: &str) -> Result<Option<Integration>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(integration_from_row).transpose()
    }

    async fn update_integration(&self, id: &str, update: IntegrationUpdate) -> Result<Integration, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query(&format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut integration = row
            .as_ref()
            .map(integration_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound("integration".into()))?;
        update.apply(&mut integration, self.clock.now());
        write_integration(&mut *tx, &integration, false).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(integration)
    }

    async fn register(&self, request: RegisterRequest) -> Result<Incident, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let incident = register_tx(&mut tx, &request, self.clock.now()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(incident)
    }

    async fn open_with(&self, request: RegisterRequest, commands: Vec<ExecuteRequest>) -> Result<Incident, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let incident = open_tx(&mut tx, &request, &commands, self.clock.now()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(incident)
    }

    async fn execute(&self, request: ExecuteRequest) -> Result<Executed, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let executed = execute_tx(&mut tx, &request, self.clock.now()).await?;
        if !executed.entries.is_empty() {
            tx.commit().await.map_err(map_err)?;
        }
        Ok(executed)
    }

    async fn ingest_batch(&self, requests: Vec<IngestRequest>) -> Result<Vec<IngestOutcome>, StoreError> {
        // Deadlocks between batches that touch the same incidents in another
        // order are detected by PostgreSQL; the loser simply runs again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.ingest_once(&requests).await {
                Err(StoreError::Unavailable(message)) if attempt < 4 && message.contains("deadlock") => {
                    tracing::debug!(%message, attempt, "ingest batch deadlocked; running it again");
                }
                other => return other,
            }
        }
    }

    async fn update_user(&self, id: &str, update: crate::UserUpdate) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut user = row
            .as_ref()
            .map(user_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound("user".into()))?;
        crate::apply_user_update(&mut user, &update);
        sqlx::query(
            "UPDATE users SET name = $2, role = $3, time_zone = $4, disabled = $5, contact_methods = $6,
             password_hash = COALESCE($7, password_hash) WHERE id = $1",
        )
        .bind(id)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(&user.time_zone)
        .bind(user.disabled)
        .bind(serde_json::to_string(&user.contact_methods).unwrap_or_else(|_| "[]".into()))
        .bind(&update.password_hash)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(user)
    }

    async fn load_catalogue(&self) -> Result<Catalogue, StoreError> {
        let rows = catalogue_rows(&self.pool).await?;
        Catalogue::from_rows(&rows).map_err(|e| StoreError::Other(format!("unreadable catalogue: {e}")))
    }

    async fn change_catalogue(&self, change: catalogue::Change) -> Result<Catalogue, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CATALOGUE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = catalogue_rows(&mut *tx).await?;
        let mut catalogue =
            Catalogue::from_rows(&rows).map_err(|e| StoreError::Other(format!("unreadable catalogue: {e}")))?;
        let deleted = match &change {
            catalogue::Change::Delete(_, id) => Some(id.clone()),
            _ => None,
        };
        let retime = crate::touches_sla(&change);
        match catalogue.apply(change)? {
            Some(row) => {
                sqlx::query(
                    "INSERT INTO catalogue (id, kind, name, doc, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc,
                     updated_at = excluded.updated_at",
                )
                .bind(&row.id)
                .bind(row.kind.as_str())
                .bind(&row.name)
                .bind(&row.doc)
                .bind(self.clock.now().as_micros())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            None => {
                let done = sqlx::query("DELETE FROM catalogue WHERE id = $1")
                    .bind(deleted.unwrap_or_default())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound("catalogue entry".into()));
                }
            }
        }
        if retime {
            sqlx::query(crate::RETIME_OPEN_INCIDENTS)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(catalogue)
    }

    async fn sweep_sla(&self, request: SweepRequest) -> Result<SweepOutcome, StoreError> {
        let now = self.clock.now();
        let at = now.as_micros();
        let mut outcome = SweepOutcome::default();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if request.policies.is_empty() && request.escalations.is_empty() {
            let done = sqlx::query(
                "UPDATE incidents SET sla_next_at = NULL, sla_state = NULL, sla_due_at = NULL
                 WHERE sla_next_at IS NOT NULL AND sla_next_at <= $1",
            )
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            outcome.examined = usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
            return Ok(outcome);
        }
        // Rows another node is sweeping are skipped, not waited for.
        let rows = sqlx::query(
            "SELECT doc FROM incidents WHERE sla_next_at IS NOT NULL AND sla_next_at <= $1
             ORDER BY sla_next_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(at)
        .bind(i64::from(request.limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for row in rows {
            let incident: Incident = row.try_get::<Json<Incident>, _>("doc").map_err(map_err)?.0;
            outcome.examined += 1;
            let (commands, verdict) = crate::plan::plan_sweep(&incident, &request, now);
            for command in &commands {
                let executed = execute_tx(&mut tx, command, now).await?;
                outcome.entries += executed.entries.len();
                for n in crate::plan::sla_notifications(&executed.incident, &executed.entries, &request.team_leads, now)
                {
                    sqlx::query(
                        "INSERT INTO notifications (id, incident_id, kind, recipients, payload, created_at, attempts, next_attempt_at)
                         VALUES ($1, $2, $3, $4, $5, $6, 0, $6)",
                    )
                    .bind(&n.id)
                    .bind(&n.incident_id)
                    .bind(&n.kind)
                    .bind(serde_json::to_string(&n.recipients).unwrap_or_else(|_| "[]".into()))
                    .bind(n.payload.to_string())
                    .bind(n.created_at.as_micros())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    outcome.notifications += 1;
                }
            }
            sqlx::query("UPDATE incidents SET sla_next_at = $2, sla_state = $3, sla_due_at = $4 WHERE id = $1")
                .bind(&incident.id)
                .bind(verdict.next_at.map(Timestamp::as_micros))
                .bind(verdict.state.map(crate::sqlite::sla_state_name))
                .bind(verdict.due_at.map(Timestamp::as_micros))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }

    async fn claim_notifications(&self, limit: u32, lease_secs: u32) -> Result<Vec<Notification>, StoreError> {
        let now = self.clock.now().as_micros();
        let rows = sqlx::query(
            "UPDATE notifications SET next_attempt_at = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications WHERE delivered_at IS NULL AND next_attempt_at <= $1
                          ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, incident_id, kind, recipients, payload, created_at, attempts",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(now + i64::from(lease_secs) * 1_000_000)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Notification {
                    id: row.try_get("id").map_err(map_err)?,
                    incident_id: row.try_get("incident_id").map_err(map_err)?,
                    kind: row.try_get("kind").map_err(map_err)?,
                    recipients: serde_json::from_str(&row.try_get::<String, _>("recipients").map_err(map_err)?)
                        .unwrap_or_default(),
                    payload: serde_json::from_str(&row.try_get::<String, _>("payload").map_err(map_err)?)
                        .unwrap_or_default(),
                    created_at: Timestamp::from_micros(row.try_get("created_at").map_err(map_err)?),
                    attempts: row.try_get("attempts").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn finish_notification(&self, id: &str, failure: Option<(String, Timestamp)>) -> Result<(), StoreError> {
        let query = match failure {
            None => sqlx::query("UPDATE notifications SET delivered_at = $2, last_error = NULL WHERE id = $1")
                .bind(id)
                .bind(self.clock.now().as_micros()),
            Some((error, retry_at)) => {
                sqlx::query("UPDATE notifications SET last_error = $3, next_attempt_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(retry_at.as_micros())
                    .bind(error)
            }
        };
        query.execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn create_maintenance(&self, window: MaintenanceWindow) -> Result<MaintenanceWindow, StoreError> {
        sqlx::query(
            "INSERT INTO maintenance_windows (id, service, ci, starts_at, ends_at, reason, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&window.id)
        .bind(&window.service)
        .bind(&window.ci)
        .bind(window.starts_at.as_micros())
        .bind(window.ends_at.as_micros())
        .bind(&window.reason)
        .bind(&window.created_by)
        .bind(window.created_at.as_micros())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(window)
    }

    async fn list_maintenance(&self, after: Option<Timestamp>) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, service, ci, starts_at, ends_at, reason, created_by, created_at FROM maintenance_windows
             WHERE ends_at > $1 ORDER BY starts_at, id",
        )
        .bind(after.map_or(i64::MIN, Timestamp::as_micros))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(MaintenanceWindow {
                    id: row.try_get("id").map_err(map_err)?,
                    service: row.try_get("service").map_err(map_err)?,
                    ci: row.try_get("ci").map_err(map_err)?,
                    starts_at: Timestamp::from_micros(row.try_get("starts_at").map_err(map_err)?),
                    ends_at: Timestamp::from_micros(row.try_get("ends_at").map_err(map_err)?),
                    reason: row.try_get("reason").map_err(map_err)?,
                    created_by: row.try_get("created_by").map_err(map_err)?,
                    created_at: Timestamp::from_micros(row.try_get("created_at").map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn delete_maintenance(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM maintenance_windows WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("maintenance window".into()));
        }
        Ok(())
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let mut clauses = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("dedup_key", filter.dedup_key.clone()),
            ("incident_id", filter.incident_id.clone()),
            ("status", filter.status.map(|s| s.as_str().to_string())),
        ] {
            if let Some(value) = value {
                binds.push(value);
                clauses.push(format!("{column} = ${}", binds.len()));
            }
        }
        if let Some(before) = &filter.before_id {
            binds.push(before.clone());
            clauses.push(format!("id < ${}", binds.len()));
        }
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts{where_clause} ORDER BY id DESC LIMIT ${}",
            binds.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = query.bind(bind);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn get_incident(&self, incident: &IncidentRef) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT doc FROM incidents WHERE {}", incident_clause(incident));
        let row = bind_incident(sqlx::query(&sql), incident)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|row| Ok(row.try_get::<Json<Incident>, _>("doc").map_err(map_err)?.0))
            .transpose()
    }

    async fn team_backlog(&self, team_keys: Vec<String>, limit: u32) -> Result<crate::Backlog, StoreError> {
        // Order the narrow index rows first, then read only the documents shown.
        let rows = sqlx::query(&format!(
            "SELECT i.doc, i.sla_due_at FROM incidents i JOIN (
               SELECT number, priority, sla_due_at FROM incidents
               WHERE team = ANY($1) AND state IN ('new', 'accepted', 'on_hold')
               ORDER BY {} LIMIT $2) s ON i.number = s.number
             ORDER BY s.priority, s.sla_due_at IS NULL, s.sla_due_at, s.number",
            crate::BACKLOG_ORDER
        ))
        .bind(&team_keys)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut backlog = crate::Backlog::default();
        for row in &rows {
            let incident: Incident = row.try_get::<Json<Incident>, _>("doc").map_err(map_err)?.0;
            let due: Option<i64> = row.try_get("sla_due_at").map_err(map_err)?;
            backlog.items.push((incident, due.map(Timestamp::from_micros)));
        }
        let counts = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM incidents WHERE team = ANY($1) AND state IN ('new', 'accepted', 'on_hold')
             GROUP BY state",
        )
        .bind(&team_keys)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        for row in &counts {
            backlog.counts.insert(
                row.try_get("state").map_err(map_err)?,
                row.try_get("n").map_err(map_err)?,
            );
        }
        Ok(backlog)
    }

    async fn list_incidents(&self, filter: &IncidentFilter, page: Page) -> Result<Vec<Incident>, StoreError> {
        let (sql, binds) = list_query(filter, page, '$');
        let mut query = sqlx::query(&sql);
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(n) => query.bind(n),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|row| Ok(row.try_get::<Json<Incident>, _>("doc").map_err(map_err)?.0))
            .collect()
    }

    async fn timeline(
        &self,
        incident: &IncidentRef,
        after_seq: u64,
        limit: Option<u32>,
    ) -> Result<Vec<Entry>, StoreError> {
        let current = self
            .get_incident(incident)
            .await?
            .ok_or_else(|| StoreError::NotFound("incident".into()))?;
        read_timeline(&self.pool, &current.id, after_seq, limit).await
    }

    async fn verify(&self, incident: &IncidentRef) -> Result<IncidentVerification, StoreError> {
        let sql = format!(
            "SELECT id, number, version, head_hash FROM incidents WHERE {}",
            incident_clause(incident)
        );
        let row = bind_incident(sqlx::query(&sql), incident)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let row = row.ok_or_else(|| StoreError::NotFound("incident".into()))?;
        verify_one(&self.pool, &row).await
    }

    async fn incidents_changed_since(
        &self,
        after: crate::WrittenAfter,
        limit: u32,
        with_facts: bool,
    ) -> Result<Vec<crate::ChangedIncident>, StoreError> {
        let rows = sqlx::query(if with_facts {
            "SELECT i.id, i.number, i.version, i.updated_at, f.facts FROM incidents i
             LEFT JOIN incident_facts f ON f.incident_id = i.id AND f.version = i.version
             WHERE (i.updated_at, i.number) > ($1, $2)
             ORDER BY i.updated_at, i.number LIMIT $3"
        } else {
            "SELECT i.id, i.number, i.version, i.updated_at, NULL::TEXT AS facts FROM incidents i
             WHERE (i.updated_at, i.number) > ($1, $2)
             ORDER BY i.updated_at, i.number LIMIT $3"
        })
        .bind(after.updated_at.as_micros())
        .bind(after.number)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(crate::ChangedIncident {
                    id: row.try_get("id").map_err(map_err)?,
                    number: row.try_get("number").map_err(map_err)?,
                    version: u64::try_from(row.try_get::<i64, _>("version").map_err(map_err)?).unwrap_or(0),
                    updated_at: Timestamp::from_micros(row.try_get("updated_at").map_err(map_err)?),
                    facts: row.try_get("facts").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn put_facts(&self, facts: Vec<(String, u64, String)>) -> Result<(), StoreError> {
        if facts.is_empty() {
            return Ok(());
        }
        let (ids, rest): (Vec<String>, Vec<(u64, String)>) = facts.into_iter().map(|(i, v, f)| (i, (v, f))).unzip();
        let (versions, docs): (Vec<i64>, Vec<String>) = rest
            .into_iter()
            .map(|(v, f)| (i64::try_from(v).unwrap_or(i64::MAX), f))
            .unzip();
        sqlx::query(
            "INSERT INTO incident_facts (incident_id, version, facts)
             SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[])
             ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version, facts = excluded.facts
             WHERE incident_facts.version <= excluded.version",
        )
        .bind(&ids)
        .bind(&versions)
        .bind(&docs)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn capability_settings(
        &self,
    ) -> Result<std::collections::BTreeMap<String, keel_domain::capability::Setting>, StoreError> {
        let rows =
            sqlx::query("SELECT criterion, threshold, met, note, recorded_by, recorded_at FROM capability_settings")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("criterion").map_err(map_err)?,
                    keel_domain::capability::Setting {
                        threshold: row.try_get("threshold").map_err(map_err)?,
                        met: row.try_get("met").map_err(map_err)?,
                        note: row.try_get("note").map_err(map_err)?,
                        recorded_by: row
                            .try_get::<Option<String>, _>("recorded_by")
                            .map_err(map_err)?
                            .map(UserId::new),
                        recorded_at: row
                            .try_get::<Option<i64>, _>("recorded_at")
                            .map_err(map_err)?
                            .map(Timestamp::from_micros),
                    },
                ))
            })
            .collect()
    }

    async fn put_capability_setting(
        &self,
        criterion: &str,
        setting: keel_domain::capability::Setting,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO capability_settings (criterion, threshold, met, note, recorded_by, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (criterion) DO UPDATE SET threshold = excluded.threshold, met = excluded.met,
               note = excluded.note, recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
        )
        .bind(criterion)
        .bind(setting.threshold)
        .bind(setting.met)
        .bind(setting.note)
        .bind(setting.recorded_by.as_ref().map(UserId::as_str))
        .bind(setting.recorded_at.map(Timestamp::as_micros))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn clear_facts(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM incident_facts")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn verify_all(&self) -> Result<Vec<IncidentVerification>, StoreError> {
        let rows = sqlx::query("SELECT id, number, version, head_hash FROM incidents ORDER BY number")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut results = Vec::with_capacity(rows.len());
        for row in &rows {
            results.push(verify_one(&self.pool, row).await?);
        }
        let orphans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM timeline_entries WHERE incident_id NOT IN (SELECT id FROM incidents)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        if orphans > 0 {
            return Err(StoreError::Other(format!(
                "{orphans} timeline entries belong to no incident"
            )));
        }
        Ok(results)
    }
}

impl PostgresStore {
    /// One attempt at a batch of signals in one transaction. Advisory locks
    /// on every (integration, dedup key) — or group — and, when correlation
    /// is on, on the service and CI, taken in one sorted order, serialise
    /// signals that could make the same alert or incident, across nodes.
    async fn ingest_once(&self, requests: &[IngestRequest]) -> Result<Vec<IngestOutcome>, StoreError> {
        let now = self.clock.now();
        let mut lock_names = std::collections::BTreeSet::new();
        for request in requests {
            let integration = &request.integration;
            let signal = &request.signal;
            lock_names.insert(format!("{}\u{1f}{}", integration.id, signal.dedup_key));
            if let Some(group) = &signal.group_key {
                lock_names.insert(format!("{}\u{1f}group\u{1f}{group}", integration.id));
            }
            if integration.policy.correlation_window_secs > 0 {
                let class = classification(request);
                for (what, value) in [("service", class.service), ("ci", class.ci)] {
                    if let Some(value) = value {
                        lock_names.insert(format!("{what}\u{1f}{value}"));
                    }
                }
            }
        }
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let lock_names: Vec<String> = lock_names.into_iter().collect();
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(name, 0)) FROM unnest($1::text[]) AS name")
            .bind(&lock_names)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for request in requests {
            outcomes.push(ingest_tx(&mut tx, request, now).await?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(outcomes)
    }
}

async fn catalogue_rows(executor: impl sqlx::PgExecutor<'_>) -> Result<Vec<catalogue::Row>, StoreError> {
    let rows = sqlx::query("SELECT kind, id, name, doc FROM catalogue ORDER BY kind, name")
        .fetch_all(executor)
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind").map_err(map_err)?;
            Ok(catalogue::Row {
                kind: catalogue::Kind::parse(&kind)
                    .ok_or_else(|| StoreError::Other(format!("unknown catalogue kind {kind:?}")))?,
                id: row.try_get("id").map_err(map_err)?,
                name: row.try_get("name").map_err(map_err)?,
                doc: row.try_get("doc").map_err(map_err)?,
            })
        })
        .collect()
}

/// Loads an incident for planning, locking its row for the transaction.
async fn lock_incident(tx: &mut Transaction<'_, Postgres>, id: &str) -> Result<Option<Incident>, StoreError> {
    let row = sqlx::query("SELECT doc FROM incidents WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
    row.map(|row| {
        row.try_get::<Json<Incident>, _>("doc")
            .map(|doc| doc.0)
            .map_err(map_err)
    })
    .transpose()
}

/// One signal inside the batch's transaction.
async fn ingest_tx(
    tx: &mut Transaction<'_, Postgres>,
    request: &IngestRequest,
    now: Timestamp,
) -> Result<IngestOutcome, StoreError> {
    let integration = &request.integration;
    let signal = &request.signal;
    let existing = sqlx::query(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE integration_id = $1 AND dedup_key = $2 FOR UPDATE"
    ))
    .bind(&integration.id)
    .bind(&signal.dedup_key)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err)?
    .as_ref()
    .map(alert_from_row)
    .transpose()?;
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
                context.maintenance = sqlx::query_scalar(&format!(
                    "SELECT id FROM maintenance_windows WHERE {column} = $1 AND starts_at <= $2 AND ends_at > $2
                     ORDER BY starts_at LIMIT 1"
                ))
                .bind(value)
                .bind(at)
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
            }
        }
        if context.maintenance.is_none() {
            if let Some(id) = context.existing.as_ref().and_then(|a| a.incident_id.clone()) {
                context.own_incident = lock_incident(tx, &id).await?;
            }
            if let Some(group) = &signal.group_key {
                let id: Option<String> = sqlx::query_scalar(
                    "SELECT incident_id FROM alerts WHERE integration_id = $1 AND group_key = $2
                     AND incident_id IS NOT NULL ORDER BY last_seen DESC LIMIT 1",
                )
                .bind(&integration.id)
                .bind(group)
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
                if let Some(id) = id {
                    context.group_incident = lock_incident(tx, &id).await?;
                }
            }
            let window = integration.policy.correlation_window_secs;
            if window > 0 {
                let since = at - i64::from(window) * 1_000_000;
                for (column, value) in [("service", &class.service), ("ci", &class.ci)] {
                    if let Some(value) = value
                        && context.correlated_incident.is_none()
                    {
                        let id: Option<String> = sqlx::query_scalar(&format!(
                            "SELECT a.incident_id FROM alerts a JOIN incidents i ON i.id = a.incident_id
                             WHERE a.{column} = $1 AND a.last_seen >= $2 AND i.state IN ('new', 'accepted', 'on_hold')
                             ORDER BY a.last_seen DESC LIMIT 1"
                        ))
                        .bind(value)
                        .bind(since)
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(map_err)?;
                        if let Some(id) = id {
                            context.correlated_incident = lock_incident(tx, &id).await?;
                        }
                    }
                }
            }
        }
    }
    let plan = plan_ingest(request, context, now);
    if let Some(register) = &plan.register {
        // Every command of a plan that registers is for the new incident.
        open_tx(tx, register, &plan.commands, now).await?;
    } else {
        for command in &plan.commands {
            execute_tx(tx, command, now).await?;
        }
    }
    if let Some(alert) = &plan.alert {
        write_alert(tx, alert, is_new).await?;
    }
    Ok(plan.outcome)
}
