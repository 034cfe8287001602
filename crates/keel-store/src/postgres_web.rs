//! The web interface's tables on PostgreSQL: sign-in records, sessions,
//! preferences and the status page's open-incident counts. Each call is one
//! statement, so nodes sharing the database need no coordination here.

use async_trait::async_trait;
use keel_domain::{Priority, Timestamp};
use sqlx::Row;

use crate::postgres::{PostgresStore, map_err, user_from_row};
use crate::web::{
    BacklogSummary, LockoutPolicy, LoginRecord, ServiceLoad, UserPref, WebSession, WebStore, age_bucket_sql,
};
use crate::{StoreError, User};

const USER_COLUMNS: &str = "u.id, u.name, u.email, u.role, u.time_zone, u.created_at, u.disabled, u.contact_methods";

#[async_trait]
impl WebStore for PostgresStore {
    async fn find_login(&self, email: &str) -> Result<Option<LoginRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash, u.failed_logins, u.locked_until FROM users u
             WHERE lower(u.email) = lower($1)"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(LoginRecord {
            user: user_from_row(&row)?,
            password_hash: row.try_get("password_hash").map_err(map_err)?,
            failed_logins: u32::try_from(row.try_get::<i32, _>("failed_logins").map_err(map_err)?).unwrap_or(0),
            locked_until: row
                .try_get::<Option<i64>, _>("locked_until")
                .map_err(map_err)?
                .map(Timestamp::from_micros),
        }))
    }

    async fn record_login_failure(
        &self,
        user_id: &str,
        now: Timestamp,
        policy: LockoutPolicy,
    ) -> Result<(), StoreError> {
        // Right-hand sides see the old row: an expired lock restarts the count.
        sqlx::query(
            "UPDATE users SET
               failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2
                                    THEN 1 ELSE failed_logins + 1 END,
               locked_until = CASE
                 WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= $2
                            THEN 1 ELSE failed_logins + 1 END) >= $3 THEN $4
                 WHEN locked_until IS NOT NULL AND locked_until <= $2 THEN NULL
                 ELSE locked_until END
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(now.as_micros())
        .bind(i32::try_from(policy.threshold).unwrap_or(i32::MAX))
        .bind(now.as_micros().saturating_add(policy.lock_micros))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn clear_login_failures(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL
             WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
        )
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn create_session(&self, web: WebSession) -> Result<(), StoreError> {
        sqlx::query(
            "WITH gone AS (DELETE FROM web_sessions WHERE expires_at <= $4)
             INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&web.id_hash)
        .bind(&web.user_id)
        .bind(&web.csrf_token)
        .bind(web.created_at.as_micros())
        .bind(web.expires_at.as_micros())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<(WebSession, User)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.id_hash, s.user_id, s.csrf_token, s.created_at AS session_created_at,
                    s.expires_at
             FROM web_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2"
        ))
        .bind(id_hash)
        .bind(now.as_micros())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let web = WebSession {
            id_hash: row.try_get("id_hash").map_err(map_err)?,
            user_id: row.try_get("user_id").map_err(map_err)?,
            csrf_token: row.try_get("csrf_token").map_err(map_err)?,
            created_at: Timestamp::from_micros(row.try_get("session_created_at").map_err(map_err)?),
            expires_at: Timestamp::from_micros(row.try_get("expires_at").map_err(map_err)?),
        };
        Ok(Some((web, user_from_row(&row)?)))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.delete_sessions(Some(id_hash), None, None).await
    }

    async fn delete_user_sessions(&self, user_id: &str, except_hash: Option<&str>) -> Result<(), StoreError> {
        self.delete_sessions(None, Some(user_id), except_hash).await
    }

    async fn list_prefs(&self, user_id: &str, kind: &str) -> Result<Vec<UserPref>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, name, value, created_at FROM user_prefs
             WHERE user_id = $1 AND kind = $2 ORDER BY created_at, name",
        )
        .bind(user_id)
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(UserPref {
                    kind: row.try_get("kind").map_err(map_err)?,
                    name: row.try_get("name").map_err(map_err)?,
                    value: row.try_get("value").map_err(map_err)?,
                    created_at: Timestamp::from_micros(row.try_get("created_at").map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn put_pref(&self, user_id: &str, pref: UserPref) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_prefs (user_id, kind, name, value, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, kind, name) DO UPDATE SET value = excluded.value",
        )
        .bind(user_id)
        .bind(&pref.kind)
        .bind(&pref.name)
        .bind(&pref.value)
        .bind(pref.created_at.as_micros())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_pref(&self, user_id: &str, kind: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM user_prefs WHERE user_id = $1 AND kind = $2 AND name = $3")
            .bind(user_id)
            .bind(kind)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn open_load(&self) -> Result<Vec<ServiceLoad>, StoreError> {
        let rows = sqlx::query(
            "SELECT service, priority, major, COUNT(*) AS n FROM incidents
             WHERE state IN ('new', 'accepted', 'on_hold')
             GROUP BY service, priority, major",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let priority: String = row.try_get("priority").map_err(map_err)?;
                Ok(ServiceLoad {
                    service: row.try_get("service").map_err(map_err)?,
                    priority: Priority::parse(&priority)
                        .ok_or_else(|| StoreError::Other(format!("unknown priority {priority:?} in incidents")))?,
                    major: row.try_get("major").map_err(map_err)?,
                    count: u64::try_from(row.try_get::<i64, _>("n").map_err(map_err)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn backlog_summary(&self, now: Timestamp) -> Result<BacklogSummary, StoreError> {
        let day = 24 * 3600 * 1_000_000_i64;
        let bucket = age_bucket_sql(|i| format!("${i}"));
        let rows = sqlx::query(&format!(
            "SELECT state, {bucket} AS age, COUNT(*) AS n FROM incidents
             WHERE state IN ('new', 'accepted', 'on_hold') GROUP BY 1, 2"
        ))
        .bind(now.as_micros() - day)
        .bind(now.as_micros() - 7 * day)
        .bind(now.as_micros() - 30 * day)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut summary = BacklogSummary::default();
        for row in &rows {
            summary.by_state_age.push((
                row.try_get("state").map_err(map_err)?,
                row.try_get("age").map_err(map_err)?,
                u64::try_from(row.try_get::<i64, _>("n").map_err(map_err)?).unwrap_or(0),
            ));
        }
        let rows = sqlx::query(
            "SELECT COALESCE(sla_state, 'none') AS sla, COUNT(*) AS n FROM incidents
             WHERE state IN ('new', 'accepted', 'on_hold') GROUP BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        for row in &rows {
            summary.by_sla.push((
                row.try_get("sla").map_err(map_err)?,
                u64::try_from(row.try_get::<i64, _>("n").map_err(map_err)?).unwrap_or(0),
            ));
        }
        Ok(summary)
    }
}

impl PostgresStore {
    async fn delete_sessions(
        &self,
        id_hash: Option<&str>,
        user_id: Option<&str>,
        except_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        if id_hash.is_none() && user_id.is_none() {
            return Ok(());
        }
        sqlx::query(
            "DELETE FROM web_sessions
             WHERE ($1::TEXT IS NULL OR id_hash = $1) AND ($2::TEXT IS NULL OR user_id = $2)
               AND ($3::TEXT IS NULL OR id_hash <> $3)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(except_hash)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
