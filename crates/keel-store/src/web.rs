//! What the web interface keeps: browser sessions (only a hash of the cookie
//! secret), the sign-in record used for lock-out, small per-user preferences
//! (saved queue views, followed incidents) and the open-incident counts the
//! public status page is drawn from.

use keel_domain::{Priority, Timestamp};

use crate::User;

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
