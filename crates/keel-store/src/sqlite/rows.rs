//! Row mapping and error translation for the SQLite adapter.

use keel_domain::{Entry, Role, Timestamp, UserId};
use rusqlite::{ErrorCode, Row};

use keel_domain::detection::{AlertStatus, Severity};

use crate::{Alert, ApiToken, Integration, IntegrationKind, StoreError, User};

pub(super) const ENTRY_COLUMNS: &str =
    "seq, kind, actor, recorded_at, occurred_at, started_at, completed_at, data, prev_hash, hash";
pub(super) const INTEGRATION_COLUMNS: &str = "id, name, kind, service, team, key_hash, key_hint, disabled, created_by, created_at, rotated_at, policy, signing_secret";
pub(super) const ALERT_COLUMNS: &str = "id, integration_id, dedup_key, status, summary, severity, source, incident_id, count, first_seen, last_seen, group_key, service, ci, changes, flapping, suppressed_by";
pub(super) const USER_COLUMNS: &str = "id, name, email, role, time_zone, created_at, disabled, contact_methods";

fn bad_column(idx: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, what.to_string().into())
}

pub(super) fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Entry, StoreError>> {
    let data: String = row.get(7)?;
    let seq: i64 = row.get(0)?;
    let data = match serde_json::from_str(&data) {
        Ok(value) => value,
        Err(e) => {
            return Ok(Err(StoreError::Other(format!(
                "timeline entry {seq} holds data that is not JSON: {e}"
            ))));
        }
    };
    Ok(Ok(Entry {
        seq: u64::try_from(seq).unwrap_or(0),
        kind: row.get(1)?,
        actor: UserId::new(row.get::<_, String>(2)?),
        recorded_at: Timestamp::from_micros(row.get(3)?),
        occurred_at: row.get::<_, Option<i64>>(4)?.map(Timestamp::from_micros),
        started_at: row.get::<_, Option<i64>>(5)?.map(Timestamp::from_micros),
        completed_at: row.get::<_, Option<i64>>(6)?.map(Timestamp::from_micros),
        data,
        prev_hash: row.get(8)?,
        hash: row.get(9)?,
    }))
}

/// Reads the user columns starting at `offset`.
pub(super) fn user_at(row: &Row<'_>, offset: usize) -> rusqlite::Result<User> {
    let role: String = row.get(offset + 3)?;
    Ok(User {
        id: row.get(offset)?,
        name: row.get(offset + 1)?,
        email: row.get(offset + 2)?,
        role: Role::parse(&role).ok_or_else(|| bad_column(offset + 3, "unknown role"))?,
        time_zone: row.get(offset + 4)?,
        created_at: Timestamp::from_micros(row.get(offset + 5)?),
        disabled: row.get(offset + 6)?,
        contact_methods: serde_json::from_str(&row.get::<_, String>(offset + 7)?)
            .map_err(|_| bad_column(offset + 7, "unreadable contact methods"))?,
    })
}

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    user_at(row, 0)
}

pub(super) fn token_from_row(row: &Row<'_>) -> rusqlite::Result<(ApiToken, User)> {
    let token = ApiToken {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        token_hash: row.get(3)?,
        created_at: Timestamp::from_micros(row.get(4)?),
    };
    Ok((token, user_at(row, 5)?))
}

pub(super) fn integration_from_row(row: &Row<'_>) -> rusqlite::Result<Integration> {
    let kind: String = row.get(2)?;
    Ok(Integration {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: IntegrationKind::parse(&kind).ok_or_else(|| bad_column(2, "unknown integration kind"))?,
        service: row.get(3)?,
        team: row.get(4)?,
        key_hash: row.get(5)?,
        key_hint: row.get(6)?,
        disabled: row.get(7)?,
        created_by: row.get(8)?,
        created_at: Timestamp::from_micros(row.get(9)?),
        rotated_at: row.get::<_, Option<i64>>(10)?.map(Timestamp::from_micros),
        policy: crate::plan::parse_policy(&row.get::<_, String>(11)?)
            .map_err(|_| bad_column(11, "unreadable policy"))?,
        signing_secret: row.get(12)?,
    })
}

pub(super) fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    let status: String = row.get(3)?;
    let severity: String = row.get(5)?;
    Ok(Alert {
        id: row.get(0)?,
        integration_id: row.get(1)?,
        dedup_key: row.get(2)?,
        status: AlertStatus::parse(&status).ok_or_else(|| bad_column(3, "unknown alert status"))?,
        summary: row.get(4)?,
        severity: Severity::parse(&severity).ok_or_else(|| bad_column(5, "unknown severity"))?,
        source: row.get(6)?,
        incident_id: row.get(7)?,
        count: row.get(8)?,
        first_seen: Timestamp::from_micros(row.get(9)?),
        last_seen: Timestamp::from_micros(row.get(10)?),
        group_key: row.get(11)?,
        service: row.get(12)?,
        ci: row.get(13)?,
        changes: crate::plan::parse_changes(&row.get::<_, String>(14)?)
            .map_err(|_| bad_column(14, "unreadable changes"))?,
        flapping: row.get(15)?,
        suppressed_by: row.get(16)?,
    })
}

/// Translates SQLite's errors into the store's.
pub(super) fn map_err(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &error {
        let detail = message.clone().unwrap_or_else(|| failure.to_string());
        return match failure.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(detail),
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly => StoreError::Unavailable(detail),
            _ => StoreError::Other(detail),
        };
    }
    StoreError::Other(error.to_string())
}
