//! Storage for keel: the [`Store`] port and its two adapters, embedded SQLite
//! (the default, one writer thread with group commit) and PostgreSQL (many
//! nodes on one database, serialised per incident by row locks).
//!
//! Both adapters run the same domain code inside their write transaction (see
//! [`plan`]): load the incident, let `keel_domain::decide` rule, seal the new
//! timeline entries onto the chain, store entries and the refreshed
//! projection together. Nothing here knows HTTP.

mod filter;
pub mod plan;
mod postgres;
mod postgres_web;
mod sqlite;
pub mod web;

use std::sync::Arc;

use async_trait::async_trait;
use keel_domain::catalogue::{self, Catalogue};
use keel_domain::detection::{AlertStatus, IngestPolicy, Reaction, Severity, SignalAction};
use keel_domain::{
    Actor, Claimed, Command, DomainError, Entry, Incident, PriorityMatrix, RegistrationInput, Role, Timestamp,
    VerifyReport,
};
use serde::Serialize;

pub use postgres::PostgresStore;
pub use sqlite::{SqliteOptions, SqliteStore};
pub use web::{AGE_BUCKETS, BacklogSummary, LockoutPolicy, LoginRecord, ServiceLoad, UserPref, WebSession, WebStore};

/// Why a storage call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The incident, user or token does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// `If-Match` named another version than the current one.
    #[error("the incident is at version {current}, not {expected}")]
    VersionMismatch { expected: u64, current: u64 },
    /// A uniqueness rule was broken (an e-mail already in use, …).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached or refused to work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupted data.
    #[error("storage error: {0}")]
    Other(String),
}

/// The source of the current time for `recorded_at`. Production uses
/// [`SystemClock`]; tests may pin it.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place that reads the wall clock.
    fn now(&self) -> Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Timestamp::from_micros(micros)
    }
}

/// The machine's clock plus an offset that tests move forward, so that
/// timers (SLA sweeps, escalations) can be driven without sleeping.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_micros: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Moves this clock forward by `micros`.
    pub fn advance(&self, micros: i64) {
        self.offset_micros
            .fetch_add(micros, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let base = SystemClock.now().as_micros();
        Timestamp::from_micros(base + self.offset_micros.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// One way to reach a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactMethod {
    /// email | sms | phone | chat | webhook
    pub kind: String,
    pub address: String,
}

/// A person who can sign in or hold API tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub time_zone: Option<String>,
    pub created_at: Timestamp,
    pub disabled: bool,
    pub contact_methods: Vec<ContactMethod>,
}

/// A change to a user; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` clears it.
    pub time_zone: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub contact_methods: Option<Vec<ContactMethod>>,
    /// Already hashed.
    pub password_hash: Option<String>,
}

/// A user about to be created; `password_hash` is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub time_zone: Option<String>,
    pub password_hash: Option<String>,
    pub contact_methods: Vec<ContactMethod>,
}

impl NewUser {
    /// The user as stored at `now`.
    #[must_use]
    pub fn stored(&self, now: Timestamp) -> User {
        User {
            id: self.id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            role: self.role,
            time_zone: self.time_zone.clone(),
            created_at: now,
            disabled: false,
            contact_methods: self.contact_methods.clone(),
        }
    }
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: Timestamp,
}

/// The monitoring formats an integration speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    Pagerduty,
    Alertmanager,
    Grafana,
    Generic,
}

impl IntegrationKind {
    /// Every kind.
    pub const ALL: [IntegrationKind; 4] = [
        IntegrationKind::Pagerduty,
        IntegrationKind::Alertmanager,
        IntegrationKind::Grafana,
        IntegrationKind::Generic,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Pagerduty => "pagerduty",
            IntegrationKind::Alertmanager => "alertmanager",
            IntegrationKind::Grafana => "grafana",
            IntegrationKind::Generic => "generic",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A monitoring integration: where events come from, and what they are
/// about by default. Its secret key is kept only as a SHA-256 hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integration {
    pub id: String,
    pub name: String,
    pub kind: IntegrationKind,
    pub service: Option<String>,
    pub team: Option<String>,
    pub key_hash: String,
    /// The key's first characters, to tell keys apart in lists.
    pub key_hint: String,
    pub disabled: bool,
    pub created_by: String,
    pub created_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
    /// How its signals are classified, correlated and closed.
    pub policy: IngestPolicy,
    /// The shared secret senders sign webhooks with (Grafana's HMAC-SHA256);
    /// kept as given because checking a signature needs it, never shown again.
    pub signing_secret: Option<String>,
}

/// A change to an integration; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct IntegrationUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the service.
    pub service: Option<Option<String>>,
    /// `Some(None)` clears the team.
    pub team: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// A new key (hash, hint): the old one stops working at once.
    pub new_key: Option<(String, String)>,
    pub policy: Option<IngestPolicy>,
    /// `Some(None)` removes the signing secret.
    pub signing_secret: Option<Option<String>>,
}

impl IntegrationUpdate {
    /// Applies the change to `integration` as of `now`.
    pub fn apply(self, integration: &mut Integration, now: Timestamp) {
        if let Some(name) = self.name {
            integration.name = name;
        }
        if let Some(service) = self.service {
            integration.service = service;
        }
        if let Some(team) = self.team {
            integration.team = team;
        }
        if let Some(disabled) = self.disabled {
            integration.disabled = disabled;
        }
        if let Some(policy) = self.policy {
            integration.policy = policy;
        }
        if let Some(secret) = self.signing_secret {
            integration.signing_secret = secret;
        }
        if let Some((hash, hint)) = self.new_key {
            integration.key_hash = hash;
            integration.key_hint = hint;
            integration.rotated_at = Some(now);
        }
    }
}

/// An alert: the current state of one signal, named by its integration and
/// dedup key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub id: String,
    pub integration_id: String,
    pub dedup_key: String,
    /// Alerts with one group key share an open incident.
    pub group_key: Option<String>,
    pub status: AlertStatus,
    pub summary: String,
    pub severity: Severity,
    pub source: Option<String>,
    pub incident_id: Option<String>,
    /// How many signals triggered it (repeats included).
    pub count: i64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The service and CI it was classified as (correlation looks them up).
    pub service: Option<String>,
    pub ci: Option<String>,
    /// Its recent state changes (fired again, recovered), for flapping.
    pub changes: Vec<Timestamp>,
    /// Whether it is flapping (automatic resolution paused).
    pub flapping: bool,
    /// The maintenance window that kept it from opening an incident.
    pub suppressed_by: Option<String>,
}

/// What the SLA sweep needs: the policies in force, team leads (they are
/// told of warnings and breaches with the owner), and how many incidents to
/// look at in one go.
#[derive(Clone, Debug)]
pub struct SweepRequest {
    pub policies: Arc<keel_domain::sla_watch::SlaPolicies>,
    /// Team (name and id) → its escalation ladder, resolved to people now.
    pub escalations: std::collections::BTreeMap<String, Arc<keel_domain::escalation::Resolved>>,
    pub team_leads: std::collections::BTreeMap<String, keel_domain::UserId>,
    pub matrix: Arc<PriorityMatrix>,
    pub limit: u32,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepOutcome {
    /// Incidents looked at (their timers were due).
    pub examined: usize,
    /// Timeline entries written (targets, warnings, breaches).
    pub entries: usize,
    /// Notifications queued.
    pub notifications: usize,
}

/// A message to deliver, queued in the same transaction as its cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: String,
    pub incident_id: String,
    /// `sla_at_risk`, `sla_breached`, …
    pub kind: String,
    /// User ids to tell.
    pub recipients: Vec<String>,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
    pub attempts: i64,
}

/// A planned period of work on a service or CI: signals about it are
/// stored but open no incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub id: String,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub reason: String,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// A monitoring signal, already parsed from whichever format it came in.
#[derive(Clone, Debug)]
pub struct Signal {
    pub dedup_key: String,
    pub action: SignalAction,
    pub summary: String,
    pub source: Option<String>,
    pub severity: Severity,
    /// When the sender says the condition started.
    pub occurred_at: Option<Timestamp>,
    /// Overrides the integration's service.
    pub service: Option<String>,
    /// Correlates alerts: a new alert of a group whose incident is still open
    /// joins that incident instead of opening another.
    pub group_key: Option<String>,
    /// The configuration item concerned, when the sender names it.
    pub ci: Option<String>,
    /// The sender's labels (or fields such as PagerDuty's component/class),
    /// which classification rules match on.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Links the sender gave (runbook, dashboard, source), as (text, URL);
    /// shown in the description of the incident the signal opens.
    pub links: Vec<(String, String)>,
}

impl Signal {
    /// A field by a classification rule's name for it: `summary`, `source`,
    /// `severity`, `service`, `ci`, `dedup_key` or `labels.NAME`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "summary" => Some(&self.summary),
            "source" => self.source.as_deref(),
            "severity" => Some(self.severity.as_str()),
            "service" => self.service.as_deref(),
            "ci" => self.ci.as_deref(),
            "dedup_key" => Some(&self.dedup_key),
            other => other
                .strip_prefix("labels.")
                .and_then(|l| self.labels.get(l))
                .map(String::as_str),
        }
    }
}

/// Ingesting one signal from one integration.
#[derive(Clone, Debug)]
pub struct IngestRequest {
    pub integration: Integration,
    pub signal: Signal,
    pub matrix: Arc<PriorityMatrix>,
    /// Who owns new incidents of which team, and the classification rules.
    pub routing: Arc<Routing>,
}

/// What routing a new incident needs: the classification rules, and who
/// owns a team's new incidents (by team name and by id: its on-call person,
/// else its lead; a team not listed: the integration's creator).
#[derive(Clone, Debug, Default)]
pub struct Routing {
    pub rules: Arc<Vec<keel_domain::rules::Rule>>,
    pub team_owners: std::collections::BTreeMap<String, keel_domain::UserId>,
    /// Team (name and id) → its lead, told of SLA warnings and breaches.
    pub team_leads: std::collections::BTreeMap<String, keel_domain::UserId>,
    pub sla: Arc<keel_domain::sla_watch::SlaPolicies>,
    /// Team (name and id) → its escalation ladder, resolved to people now.
    pub escalations: std::collections::BTreeMap<String, Arc<keel_domain::escalation::Resolved>>,
    /// The catalogue these were drawn from (pages show names and impact from it).
    pub catalogue: Arc<Catalogue>,
}

/// What a signal did.
#[derive(Clone, Debug)]
pub struct IngestOutcome {
    pub reaction: Reaction,
    /// The alert after the signal (`None` when an unknown alert was acknowledged or resolved).
    pub alert: Option<Alert>,
    /// Whether the signal opened a new incident.
    pub opened_incident: bool,
    /// Whether it reopened its resolved incident (within the reopen window).
    pub reopened_incident: bool,
    /// The maintenance window that kept it from opening an incident.
    pub suppressed_by: Option<String>,
}

impl IngestOutcome {
    /// The outcome's wire name: opened, joined, reopened, repeat,
    /// acknowledged, recovered, suppressed or ignored.
    #[must_use]
    pub fn name(&self) -> &'static str {
        if self.suppressed_by.is_some() {
            return "suppressed";
        }
        match self.reaction {
            Reaction::Open if self.opened_incident => "opened",
            Reaction::Open if self.reopened_incident => "reopened",
            Reaction::Open => "joined",
            Reaction::Repeat => "repeat",
            Reaction::Acknowledge => "acknowledged",
            Reaction::Recover => "recovered",
            Reaction::Ignore => "ignored",
        }
    }
}

/// Filters of the alert list.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    pub dedup_key: Option<String>,
    pub incident_id: Option<String>,
    pub status: Option<AlertStatus>,
    /// Continue after this alert id (newest first).
    pub before_id: Option<String>,
    pub limit: u32,
}

/// An incident a metric may count, with its metrics facts when they were
/// kept for its current version.
#[derive(Clone, Debug)]
pub struct ChangedIncident {
    pub id: String,
    pub number: i64,
    pub version: u64,
    /// Server time of the incident's last write.
    pub updated_at: Timestamp,
    pub facts: Option<String>,
}

/// Where a walk over incidents by time of last write continues: after the
/// incident written at `updated_at` with `number` (number 0 starts at
/// `updated_at` itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenAfter {
    pub updated_at: Timestamp,
    pub number: i64,
}

/// How a caller names an incident: its id or its human number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentRef {
    Id(String),
    Number(i64),
}

impl IncidentRef {
    /// Reads `42`, `INC-42` (any case) or an id.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let digits = text
            .strip_prefix("INC-")
            .or_else(|| text.strip_prefix("inc-"))
            .unwrap_or(text);
        match digits.parse::<i64>() {
            Ok(number) => Self::Number(number),
            Err(_) => Self::Id(text.to_string()),
        }
    }
}

/// Registering an incident.
#[derive(Clone, Debug)]
pub struct RegisterRequest {
    pub id: String,
    pub input: RegistrationInput,
    pub actor: Actor,
    pub claimed: Claimed,
    pub matrix: Arc<PriorityMatrix>,
    /// Classification rules that fill what the input left empty.
    pub rules: Arc<Vec<keel_domain::rules::Rule>>,
    /// The signal's labels, for rules on event incidents.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The number to keep (an imported incident keeps its source's);
    /// `None`: the next free one. A number in use is a conflict.
    pub number: Option<i64>,
}

/// Applying a command to an existing incident.
#[derive(Clone, Debug)]
pub struct ExecuteRequest {
    pub incident: IncidentRef,
    pub command: Command,
    pub actor: Actor,
    pub claimed: Claimed,
    /// `If-Match`: the version the caller last saw.
    pub expected_version: Option<u64>,
    pub matrix: Arc<PriorityMatrix>,
}

/// The outcome of a command: the incident after it and the new entries.
#[derive(Clone, Debug)]
pub struct Executed {
    pub incident: Incident,
    pub entries: Vec<Entry>,
}

/// A team's open work and the size of each board column.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    /// Open incidents with their earliest SLA due time, in working order.
    pub items: Vec<(Incident, Option<Timestamp>)>,
    /// Open incidents per state.
    pub counts: std::collections::BTreeMap<String, i64>,
}

/// The backlog query's ORDER BY: priority, then SLA due time (none last), then age.
pub(crate) const BACKLOG_ORDER: &str = "priority, sla_due_at IS NULL, sla_due_at, number";

/// Filters of the incident list; all optional, combined with AND.
#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    pub states: Vec<String>,
    pub priorities: Vec<String>,
    pub service: Option<String>,
    pub team: Option<String>,
    pub owner: Option<String>,
    /// Owner or collaborator.
    pub involved: Option<String>,
    /// SLA states as the last sweep stored them.
    pub sla_states: Vec<String>,
    pub reported_by: Option<String>,
    pub major: Option<bool>,
    pub text: Option<String>,
}

/// One page of a list: newest first, continuing after `after_number`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u32,
    pub after_number: Option<i64>,
}

/// The result of checking the chain of one incident.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentVerification {
    pub id: String,
    pub number: i64,
    #[serde(flatten)]
    pub report: VerifyReport,
}

/// The storage port. Every write is atomic: either all of it is stored or
/// none, and an `Ok` means it is durably committed.
#[async_trait]
pub trait Store: WebStore + Send + Sync + 'static {
    /// Which engine this is (`sqlite` or `postgres`).
    fn engine(&self) -> &'static str;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// On an empty database only: creates the first admin and its token.
    /// Returns `false` (and writes nothing) when users already exist; safe
    /// when several nodes start at once.
    async fn bootstrap_admin(&self, admin: NewUser, token: ApiToken) -> Result<bool, StoreError>;
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Changes a user; `NotFound` if there is none.
    async fn update_user(&self, id: &str, update: UserUpdate) -> Result<User, StoreError>;
    async fn create_token(&self, token: ApiToken) -> Result<(), StoreError>;
    /// The token with this hash and its user, if both exist.
    async fn find_token(&self, token_hash: &str) -> Result<Option<(ApiToken, User)>, StoreError>;

    async fn create_integration(&self, integration: Integration) -> Result<Integration, StoreError>;
    async fn list_integrations(&self) -> Result<Vec<Integration>, StoreError>;
    async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError>;
    /// The integration whose key has this hash (enabled or not).
    async fn find_integration_by_key(&self, key_hash: &str) -> Result<Option<Integration>, StoreError>;
    /// Changes an integration atomically; `NotFound` if there is none.
    async fn update_integration(&self, id: &str, update: IntegrationUpdate) -> Result<Integration, StoreError>;

    /// Applies one monitoring signal atomically: the alert, and the incident
    /// it opens or changes. Concurrent signals with one dedup key are
    /// serialised, so a retry never makes a second alert or incident.
    async fn ingest(&self, request: IngestRequest) -> Result<IngestOutcome, StoreError> {
        self.ingest_batch(vec![request])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Other("a batch of one gave no outcome".into()))
    }
    /// Applies several signals in order, in one transaction: all are stored
    /// or none. Outcomes come back in the same order.
    async fn ingest_batch(&self, requests: Vec<IngestRequest>) -> Result<Vec<IngestOutcome>, StoreError>;
    async fn list_alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError>;

    /// The whole catalogue (teams, services, CIs).
    async fn load_catalogue(&self) -> Result<Catalogue, StoreError>;
    /// Checks a change against the whole catalogue and stores it atomically
    /// (catalogue writes are serialised); returns the catalogue after it.
    async fn change_catalogue(&self, change: catalogue::Change) -> Result<Catalogue, StoreError>;

    /// Looks at up to `limit` incidents whose SLA timer is due: announces
    /// targets, records warnings and breaches (once each: the timeline is
    /// the record), queues notifications, and sets each incident's next
    /// timer — all in one transaction. Several nodes may sweep at once.
    async fn sweep_sla(&self, request: SweepRequest) -> Result<SweepOutcome, StoreError>;
    /// Takes up to `limit` undelivered notifications that are due, hiding
    /// them from other takers for `lease_secs`.
    async fn claim_notifications(&self, limit: u32, lease_secs: u32) -> Result<Vec<Notification>, StoreError>;
    /// Records a delivery: done, or failed with a reason and when to retry.
    async fn finish_notification(&self, id: &str, failure: Option<(String, Timestamp)>) -> Result<(), StoreError>;

    async fn create_maintenance(&self, window: MaintenanceWindow) -> Result<MaintenanceWindow, StoreError>;
    /// Windows that end after `after` (all when `None`), by start time.
    async fn list_maintenance(&self, after: Option<Timestamp>) -> Result<Vec<MaintenanceWindow>, StoreError>;
    /// Removes a window; `NotFound` when there is none.
    async fn delete_maintenance(&self, id: &str) -> Result<(), StoreError>;

    async fn register(&self, request: RegisterRequest) -> Result<Incident, StoreError>;
    /// Registers an incident and runs `commands` on it (their `incident`
    /// is ignored) as one write: all of it is stored, or none (an import
    /// brings a whole history at once).
    async fn open_with(&self, request: RegisterRequest, commands: Vec<ExecuteRequest>) -> Result<Incident, StoreError>;
    /// Applies a command; returns the incident after it and the entries it
    /// appended (none when the command asked for what already held).
    async fn execute(&self, request: ExecuteRequest) -> Result<Executed, StoreError>;
    async fn get_incident(&self, incident: &IncidentRef) -> Result<Option<Incident>, StoreError>;
    async fn list_incidents(&self, filter: &IncidentFilter, page: Page) -> Result<Vec<Incident>, StoreError>;
    /// A team's open work (its name and id in `team_keys`), most urgent first:
    /// by priority, then SLA due time (none last), then age; and the count
    /// of its open incidents per state.
    async fn team_backlog(&self, team_keys: Vec<String>, limit: u32) -> Result<Backlog, StoreError>;
    /// Entries of an incident with `seq` above `after_seq`, by `seq`, at most
    /// `limit` of them (`None`: all).
    async fn timeline(
        &self,
        incident: &IncidentRef,
        after_seq: u64,
        limit: Option<u32>,
    ) -> Result<Vec<Entry>, StoreError>;
    /// Incidents in order of their last write (server time, then number),
    /// after `after`, at most `limit`, each (`with_facts`) with the metrics
    /// facts kept for its current version: how a node's metrics catch up
    /// with every write.
    async fn incidents_changed_since(
        &self,
        after: WrittenAfter,
        limit: u32,
        with_facts: bool,
    ) -> Result<Vec<ChangedIncident>, StoreError>;
    /// Keeps computed metrics facts (JSON) of incidents at a version (a row
    /// kept for a newer version stays).
    async fn put_facts(&self, facts: Vec<(String, u64, String)>) -> Result<(), StoreError>;
    /// Forgets every kept metrics fact (they are derived: the next read
    /// refolds the timelines). Returns how many rows went.
    async fn clear_facts(&self) -> Result<u64, StoreError>;
    /// The organisation's capability self-assessment settings, by criterion id.
    async fn capability_settings(
        &self,
    ) -> Result<std::collections::BTreeMap<String, keel_domain::capability::Setting>, StoreError>;
    /// Replaces one criterion's settings.
    async fn put_capability_setting(
        &self,
        criterion: &str,
        setting: keel_domain::capability::Setting,
    ) -> Result<(), StoreError>;
    /// Recomputes one incident's chain.
    async fn verify(&self, incident: &IncidentRef) -> Result<IncidentVerification, StoreError>;
    /// Recomputes every chain.
    async fn verify_all(&self) -> Result<Vec<IncidentVerification>, StoreError>;
}

/// Sets every incident whose SLA clocks may still matter to be looked at by
/// the next sweep (after a change of SLA policies or of what they hang on).
pub(crate) const RETIME_OPEN_INCIDENTS: &str =
    "UPDATE incidents SET sla_next_at = 0 WHERE state IN ('new', 'accepted', 'on_hold', 'resolved')";

/// Whether a catalogue change can move SLA timers.
pub(crate) fn touches_sla(change: &catalogue::Change) -> bool {
    matches!(
        change,
        catalogue::Change::PutSlaPolicy(_)
            | catalogue::Change::PutService(_)
            | catalogue::Change::Delete(catalogue::Kind::SlaPolicy, _)
    )
}

/// Applies a user update to the stored user (the password hash is written separately).
pub(crate) fn apply_user_update(user: &mut User, update: &UserUpdate) {
    if let Some(name) = &update.name {
        user.name.clone_from(name);
    }
    if let Some(role) = update.role {
        user.role = role;
    }
    if let Some(time_zone) = &update.time_zone {
        user.time_zone.clone_from(time_zone);
    }
    if let Some(disabled) = update.disabled {
        user.disabled = disabled;
    }
    if let Some(methods) = &update.contact_methods {
        user.contact_methods.clone_from(methods);
    }
}

/// Opens the store a URL names: `sqlite://PATH` or `postgres://…`, and runs
/// its migrations.
///
/// # Errors
/// When the scheme is unknown or the database cannot be opened or migrated.
pub async fn open(url: &str, clock: Arc<dyn Clock>, options: SqliteOptions) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path), clock, options).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url, clock).await?))
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL {url:?}: use sqlite://PATH or postgres://…"
        )))
    }
}
