//! The web interface's tables on SQLite: sign-in records, sessions,
//! preferences and the status page's open-incident counts. Reads go to the
//! reader pool, writes through the writer thread like every other write.

use async_trait::async_trait;
use keel_domain::{Priority, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::rows::{USER_COLUMNS, user_at};
use super::{SqliteStore, map_err};
use crate::web::{
    BacklogSummary, LockoutPolicy, LoginRecord, ServiceLoad, UserPref, WebSession, WebStore, age_bucket_sql,
};
use crate::{StoreError, User};

fn prefixed(prefix: &str) -> String {
    USER_COLUMNS
        .split(", ")
        .map(|c| format!("{prefix}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl WebStore for SqliteStore {
    async fn find_login(&self, email: &str) -> Result<Option<LoginRecord>, StoreError> {
        let email = email.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, password_hash, failed_logins, locked_until FROM users
                 WHERE lower(email) = lower(?1)"
            ))
            .map_err(map_err)?
            .query_row([email], |row| {
                Ok(LoginRecord {
                    user: user_at(row, 0)?,
                    password_hash: row.get(8)?,
                    failed_logins: u32::try_from(row.get::<_, i64>(9)?).unwrap_or(u32::MAX),
                    locked_until: row.get::<_, Option<i64>>(10)?.map(Timestamp::from_micros),
                })
            })
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn record_login_failure(
        &self,
        user_id: &str,
        now: Timestamp,
        policy: LockoutPolicy,
    ) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.writer
            .write(move |session| {
                // Right-hand sides see the old row: an expired lock restarts the count.
                session
                    .conn
                    .prepare_cached(
                        "UPDATE users SET
                           failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2
                                                THEN 1 ELSE failed_logins + 1 END,
                           locked_until = CASE
                             WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2
                                        THEN 1 ELSE failed_logins + 1 END) >= ?3 THEN ?4
                             WHEN locked_until IS NOT NULL AND locked_until <= ?2 THEN NULL
                             ELSE locked_until END
                         WHERE id = ?1",
                    )
                    .map_err(map_err)?
                    .execute(params![
                        user_id,
                        now.as_micros(),
                        i64::from(policy.threshold),
                        now.as_micros().saturating_add(policy.lock_micros)
                    ])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn clear_login_failures(&self, user_id: &str) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.writer
            .write(move |session| {
                session
                    .conn
                    .prepare_cached(
                        "UPDATE users SET failed_logins = 0, locked_until = NULL
                         WHERE id = ?1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
                    )
                    .map_err(map_err)?
                    .execute([user_id])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn create_session(&self, web: WebSession) -> Result<(), StoreError> {
        self.writer
            .write(move |session| {
                let conn = session.conn;
                conn.prepare_cached("DELETE FROM web_sessions WHERE expires_at <= ?1")
                    .map_err(map_err)?
                    .execute([web.created_at.as_micros()])
                    .map_err(map_err)?;
                conn.prepare_cached(
                    "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(map_err)?
                .execute(params![
                    web.id_hash,
                    web.user_id,
                    web.csrf_token,
                    web.created_at.as_micros(),
                    web.expires_at.as_micros()
                ])
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn find_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<(WebSession, User)>, StoreError> {
        let id_hash = id_hash.to_string();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {}, s.id_hash, s.user_id, s.csrf_token, s.created_at, s.expires_at
                 FROM web_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2",
                prefixed("u")
            ))
            .map_err(map_err)?
            .query_row(params![id_hash, now.as_micros()], |row| {
                let user = user_at(row, 0)?;
                let web = WebSession {
                    id_hash: row.get(8)?,
                    user_id: row.get(9)?,
                    csrf_token: row.get(10)?,
                    created_at: Timestamp::from_micros(row.get(11)?),
                    expires_at: Timestamp::from_micros(row.get(12)?),
                };
                Ok((web, user))
            })
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.delete_sessions(Some(id_hash.to_string()), None, None).await
    }

    async fn delete_user_sessions(&self, user_id: &str, except_hash: Option<&str>) -> Result<(), StoreError> {
        self.delete_sessions(None, Some(user_id.to_string()), except_hash.map(str::to_string))
            .await
    }

    async fn list_prefs(&self, user_id: &str, kind: &str) -> Result<Vec<UserPref>, StoreError> {
        let (user_id, kind) = (user_id.to_string(), kind.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT kind, name, value, created_at FROM user_prefs
                     WHERE user_id = ?1 AND kind = ?2 ORDER BY created_at, name",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![user_id, kind], |row| {
                    Ok(UserPref {
                        kind: row.get(0)?,
                        name: row.get(1)?,
                        value: row.get(2)?,
                        created_at: Timestamp::from_micros(row.get(3)?),
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn put_pref(&self, user_id: &str, pref: UserPref) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.writer
            .write(move |session| {
                session
                    .conn
                    .prepare_cached(
                        "INSERT INTO user_prefs (user_id, kind, name, value, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (user_id, kind, name) DO UPDATE SET value = excluded.value",
                    )
                    .map_err(map_err)?
                    .execute(params![
                        user_id,
                        pref.kind,
                        pref.name,
                        pref.value,
                        pref.created_at.as_micros()
                    ])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn delete_pref(&self, user_id: &str, kind: &str, name: &str) -> Result<(), StoreError> {
        let (user_id, kind, name) = (user_id.to_string(), kind.to_string(), name.to_string());
        self.writer
            .write(move |session| {
                session
                    .conn
                    .prepare_cached("DELETE FROM user_prefs WHERE user_id = ?1 AND kind = ?2 AND name = ?3")
                    .map_err(map_err)?
                    .execute(params![user_id, kind, name])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn open_load(&self) -> Result<Vec<ServiceLoad>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT service, priority, major, COUNT(*) FROM incidents INDEXED BY incidents_open_service
                     WHERE state IN ('new', 'accepted', 'on_hold')
                     GROUP BY service, priority, major",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, bool>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .map_err(map_err)?;
            let mut loads = Vec::new();
            for row in rows {
                let (service, priority, major, count) = row.map_err(map_err)?;
                let priority = Priority::parse(&priority)
                    .ok_or_else(|| StoreError::Other(format!("unknown priority {priority:?} in incidents")))?;
                loads.push(ServiceLoad {
                    service,
                    priority,
                    major,
                    count: u64::try_from(count).unwrap_or(0),
                });
            }
            Ok(loads)
        })
        .await
    }

    async fn backlog_summary(&self, now: Timestamp) -> Result<BacklogSummary, StoreError> {
        let day = 24 * 3600 * 1_000_000_i64;
        let bounds = [
            now.as_micros() - day,
            now.as_micros() - 7 * day,
            now.as_micros() - 30 * day,
        ];
        self.read(move |conn| {
            let bucket = age_bucket_sql(|i| format!("?{i}"));
            let mut summary = BacklogSummary::default();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT state, {bucket}, COUNT(*) FROM incidents INDEXED BY incidents_open_number
                     WHERE state IN ('new', 'accepted', 'on_hold') GROUP BY 1, 2"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![bounds[0], bounds[1], bounds[2]], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(map_err)?;
            for row in rows {
                let (state, age, n) = row.map_err(map_err)?;
                summary.by_state_age.push((state, age, u64::try_from(n).unwrap_or(0)));
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT COALESCE(sla_state, 'none'), COUNT(*) FROM incidents INDEXED BY incidents_open_number
                     WHERE state IN ('new', 'accepted', 'on_hold') GROUP BY 1",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(map_err)?;
            for row in rows {
                let (sla, n) = row.map_err(map_err)?;
                summary.by_sla.push((sla, u64::try_from(n).unwrap_or(0)));
            }
            Ok(summary)
        })
        .await
    }
}

impl SqliteStore {
    async fn delete_sessions(
        &self,
        id_hash: Option<String>,
        user_id: Option<String>,
        except_hash: Option<String>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |session| {
                session
                    .conn
                    .prepare_cached(
                        "DELETE FROM web_sessions
                         WHERE (?1 IS NULL OR id_hash = ?1) AND (?2 IS NULL OR user_id = ?2)
                           AND (?3 IS NULL OR id_hash <> ?3) AND (?1 IS NOT NULL OR ?2 IS NOT NULL)",
                    )
                    .map_err(map_err)?
                    .execute(params![id_hash, user_id, except_hash])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }
}
