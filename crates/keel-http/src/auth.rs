//! Authentication: API tokens (random, shown once, stored as SHA-256),
//! passwords (Argon2id), and the extractor that turns a bearer token into an
//! [`Actor`]. A short in-memory cache spares the database a lookup per
//! request; a token or role change takes effect within [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use keel_domain::{Actor, Role, UserId};
use keel_store::{Store, User};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// How long a token lookup is trusted.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
const CACHE_MAX: usize = 10_000;
/// The prefix of every keel token, so that secret scanners can spot them.
pub const TOKEN_PREFIX: &str = "keel_";

/// A new random token secret: prefix + 40 alphanumerics (~238 bits).
#[must_use]
pub fn new_token_secret() -> String {
    format!("{TOKEN_PREFIX}{}", Alphanumeric.sample_string(&mut rand::rng(), 40))
}

/// The stored form of a token secret.
#[must_use]
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with Argon2id and a random salt.
///
/// # Errors
/// When hashing fails (it does not for valid input).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::invalid(format!("password cannot be hashed: {e}")))
}

/// The signed-in caller.
#[derive(Clone, Debug)]
pub struct Auth {
    pub actor: Actor,
    pub user: User,
}

impl Auth {
    /// Refuses (403) callers below `role`.
    ///
    /// # Errors
    /// 403 naming the role needed.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.actor.at_least(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role or above",
                role.as_str()
            )))
        }
    }
}

/// Remembers recent token lookups.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Auth)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Auth> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(hash)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, auth)| auth.clone())
    }

    /// Forgets every cached token: a user's role or status changed on this node.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn put(&self, hash: String, auth: Auth) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (Instant::now(), auth));
        }
    }
}

async fn authenticate(store: &dyn Store, cache: &TokenCache, secret: &str) -> Result<Auth, ApiError> {
    let hash = hash_token(secret);
    if let Some(auth) = cache.get(&hash) {
        return Ok(auth);
    }
    let (_, user) = store
        .find_token(&hash)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
    if user.disabled {
        return Err(ApiError::unauthorized("this user is disabled"));
    }
    let auth = Auth {
        actor: Actor {
            user: UserId::new(user.id.clone()),
            role: user.role,
        },
        user,
    };
    cache.put(hash, auth.clone());
    Ok(auth)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Calendar apps subscribe to a URL and cannot send headers: feeds
        // (paths ending in .ics) also take the token as `?token=`.
        if parts.headers.get(header::AUTHORIZATION).is_none()
            && parts.uri.path().ends_with(".ics")
            && let Some(secret) = parts.uri.query().and_then(|q| {
                q.split('&')
                    .find_map(|pair| pair.strip_prefix("token="))
                    .map(str::to_string)
            })
        {
            return authenticate(state.store.as_ref(), &state.tokens, &secret).await;
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be Bearer <token>"))?;
        authenticate(state.store.as_ref(), &state.tokens, secret).await
    }
}
