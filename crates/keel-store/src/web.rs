//! What the web interface keeps: browser sessions (only a hash of the cookie
//! secret), the sign-in record used for lock-out, small per-user preferences
//! (saved queue views, followed incidents) and the open-incident counts the
//! public status page is drawn from.

use async_trait::async_trait;
use keel_domain::{Priority, Timestamp};

use crate::{StoreError, User};

/// A signed-in browser. The cookie holds a random secret; only its SHA-256
/// is stored, so a leaked table cannot be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    pub id_hash: String,
    pub user_id: String,
    /// Every state-changing form must carry it back.
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What signing in needs to know about an e-mail address.
#[derive(Clone, Debug)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: Option<String>,
    /// Consecutive failures since the last success or lock expiry.
    pub failed_logins: u32,
    pub locked_until: Option<Timestamp>,
}

/// How repeated failures lock an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures in a row that lock the account.
    pub threshold: u32,
    /// For how long, in microseconds.
    pub lock_micros: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            lock_micros: 15 * 60 * 1_000_000,
        }
    }
}

/// One small named preference of a user: a saved queue view
/// (`kind = "view"`, value = its query string) or a followed incident
/// (`kind = "follow"`, name = the incident id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPref {
    pub kind: String,
    pub name: String,
    pub value: String,
    pub created_at: Timestamp,
}

/// Open incidents of one service at one priority, as the status page sees
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLoad {
    pub service: Option<String>,
    pub priority: Priority,
    pub major: bool,
    pub count: u64,
}

/// Open incidents counted for the dashboard: by state and age bucket
/// (`<1d`, `1-7d`, `7-30d`, `>30d`), and by SLA state as the last sweep
/// stored it (`none` when no SLA applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BacklogSummary {
    pub by_state_age: Vec<(String, String, u64)>,
    pub by_sla: Vec<(String, u64)>,
}

/// The age buckets of [`BacklogSummary`], youngest first.
pub const AGE_BUCKETS: [&str; 4] = ["<1d", "1-7d", "7-30d", ">30d"];

/// The SQL that sorts `created_at` into [`AGE_BUCKETS`] (binds: now − 1 d, now − 7 d, now − 30 d).
pub(crate) fn age_bucket_sql(mark: impl Fn(usize) -> String) -> String {
    format!(
        "CASE WHEN created_at >= {} THEN '<1d' WHEN created_at >= {} THEN '1-7d' \
         WHEN created_at >= {} THEN '7-30d' ELSE '>30d' END",
        mark(1),
        mark(2),
        mark(3)
    )
}

/// The web interface's part of the storage port (a supertrait of `Store`,
/// so every engine has it and `dyn Store` offers it).
#[async_trait]
pub trait WebStore: Send + Sync + 'static {
    /// The user with this e-mail address (compared without case) and what
    /// signing in needs.
    async fn find_login(&self, email: &str) -> Result<Option<LoginRecord>, StoreError>;
    /// Counts a failed sign-in; reaching the policy's threshold locks the
    /// account until `now` + the lock time. A failure after an expired lock
    /// starts counting afresh.
    async fn record_login_failure(
        &self,
        user_id: &str,
        now: Timestamp,
        policy: LockoutPolicy,
    ) -> Result<(), StoreError>;
    /// Forgets failures and any lock (a successful sign-in, or an admin's unlock).
    async fn clear_login_failures(&self, user_id: &str) -> Result<(), StoreError>;
    /// Stores a new session and drops expired ones.
    async fn create_session(&self, session: WebSession) -> Result<(), StoreError>;
    /// The live session with this hash and its user.
    async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<(WebSession, User)>, StoreError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Signs a user out everywhere except, optionally, one session.
    async fn delete_user_sessions(&self, user_id: &str, except_hash: Option<&str>) -> Result<(), StoreError>;
    /// A user's preferences of one kind, oldest first.
    async fn list_prefs(&self, user_id: &str, kind: &str) -> Result<Vec<UserPref>, StoreError>;
    /// Creates or replaces one preference.
    async fn put_pref(&self, user_id: &str, pref: UserPref) -> Result<(), StoreError>;
    async fn delete_pref(&self, user_id: &str, kind: &str, name: &str) -> Result<(), StoreError>;
    /// Open incidents (new, accepted, on hold) counted per service, priority
    /// and major flag.
    async fn open_load(&self) -> Result<Vec<ServiceLoad>, StoreError>;
    /// Open incidents by state and age at `now`, and by SLA state.
    async fn backlog_summary(&self, now: Timestamp) -> Result<BacklogSummary, StoreError>;
}
