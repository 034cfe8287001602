//! Signing in and out, and who is looking. The session cookie carries a
//! random secret (HttpOnly, SameSite=Lax); the database keeps only its
//! SHA-256, the user and the session's CSRF token, so every node serves every
//! browser and signing out ends the session everywhere. Repeated wrong
//! passwords lock the account for a while ([`LockoutPolicy`]).
//!
//! [`Posted`] is the one way a form reaches a handler: it needs a live
//! session, refuses cross-site requests and checks the form's `_csrf`
//! against the session's token in constant time.

use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keel_domain::{Actor, Role, Timestamp, UserId};
use keel_store::{LockoutPolicy, User, WebSession};
use maud::{Markup, html};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::{alert, error_page, layout, respond};
use crate::AppState;
use crate::auth::{Auth, hash_token};
use crate::error::ApiError;

pub(crate) const SESSION_COOKIE: &str = "keel_session";
const LOGIN_COOKIE: &str = "keel_login";
/// A session lasts a working day and a bit; then the browser signs in again.
const SESSION_MICROS: i64 = 12 * 3600 * 1_000_000;
/// Largest form body read (the API's body limit applies too).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// A signed-in person looking at a page.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    pub auth: Auth,
    pub session: WebSession,
}

impl Viewer {
    pub fn is_staff(&self) -> bool {
        self.auth.actor.role.is_staff()
    }
    pub fn is_admin(&self) -> bool {
        self.auth.actor.role >= Role::Admin
    }
    /// The hidden field every state-changing form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="_csrf" value=(self.session.csrf_token); }
    }
    /// The viewer's time zone for showing times (UTC when unset or unknown).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        self.auth
            .user
            .time_zone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

/// The value of one cookie.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Behind a TLS proxy the cookie is marked Secure.
fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// Where to go after signing in: only a local path, never another site.
fn local_path(next: Option<&str>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") && n.len() < 2000)
        .map(str::to_string)
}

fn to_login(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let target = if parts.method == Method::GET && next != "/" {
        format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
        )
    } else {
        "/login".to_string()
    };
    Redirect::to(&target).into_response()
}

/// The viewer of the request's session, if any.
pub(crate) async fn current(headers: &HeaderMap, state: &AppState) -> Result<Option<Viewer>, ApiError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = state.store.find_session(&hash_token(secret), state.clock.now()).await?;
    Ok(found.filter(|(_, user)| !user.disabled).map(|(session, user)| Viewer {
        auth: auth_of(user),
        session,
    }))
}

fn auth_of(user: User) -> Auth {
    Auth {
        actor: Actor {
            user: UserId::new(user.id.clone()),
            role: user.role,
        },
        user,
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match current(&parts.headers, state).await {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => Err(to_login(parts)),
            Err(error) => Err(error_page(None, &error)),
        }
    }
}

/// Someone who may or may not be signed in (the status page, the login page).
pub(crate) struct MaybeViewer(pub Option<Viewer>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        current(&parts.headers, state)
            .await
            .map(MaybeViewer)
            .map_err(|error| error_page(None, &error))
    }
}

/// A browser in another site's page must not post our forms: browsers say
/// where a request comes from in `Sec-Fetch-Site` and `Origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some("null"), _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        _ => true,
    }
}

fn stale_form(viewer: Option<&Viewer>) -> Response {
    error_page(
        viewer,
        &ApiError::forbidden(
            "This form was not sent from this site's current page (it may be stale). \
             Go back, reload the page and try again.",
        ),
    )
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}

async fn read_form(request: Request) -> Result<(Parts, axum::body::Bytes), Response> {
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(error_page(
            None,
            &ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                "this address takes an HTML form",
            ),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        error_page(
            None,
            &ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Too large", "the form is too large"),
        )
    })?;
    Ok((parts, bytes))
}

/// A form posted by a signed-in viewer, CSRF-checked: the handler gets the
/// viewer, the decoded form and its raw pairs (for repeated fields).
pub(crate) struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
    pub pairs: Vec<(String, String)>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, bytes) = read_form(request).await?;
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        if !same_origin(&parts.headers) {
            return Err(stale_form(Some(&viewer)));
        }
        let pairs = form_pairs(&bytes);
        let sent = pairs.iter().find(|(k, _)| k == "_csrf").map_or("", |(_, v)| v.as_str());
        if !bool::from(sent.as_bytes().ct_eq(viewer.session.csrf_token.as_bytes())) {
            return Err(stale_form(Some(&viewer)));
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            error_page(
                Some(&viewer),
                &ApiError::bad_request(format!("the form could not be read: {e}")),
            )
        })?;
        Ok(Self { viewer, form, pairs })
    }
}

/// A trimmed form value; empty means absent.
pub(crate) fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

fn login_page(email: &str, next: Option<&str>, token: &str, message: Option<&str>) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            div.narrow {
                h1 { "Sign in" }
                (alert(message))
                form.stack method="post" action="/login" {
                    input type="hidden" name="_csrf" value=(token);
                    @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                    label for="email" { "Email" }
                    input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button.primary type="submit" { "Sign in" }
                }
                p.hint { "Just looking for service status? " a href="/status" { "See the status page" } "." }
            }
        },
    )
}

/// A login page whose form is tied to this browser by a cookie (no session
/// exists yet to hold a CSRF token).
fn login_response(
    status: StatusCode,
    headers: &HeaderMap,
    email: &str,
    next: Option<&str>,
    message: Option<&str>,
) -> Response {
    let token = random(32);
    let mut response = respond(status, login_page(email, next, &token, message));
    if let Some(cookie) = set_cookie(LOGIN_COOKIE, &token, 3600, secure(headers)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /login`.
pub(crate) async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = local_path(query.next.as_deref());
    if let Ok(Some(viewer)) = current(&headers, &state).await {
        return Redirect::to(&next.unwrap_or_else(|| home(&viewer.auth.user).into())).into_response();
    }
    login_response(StatusCode::OK, &headers, "", next.as_deref(), None)
}

fn home(user: &User) -> &'static str {
    if user.role.is_staff() { "/" } else { "/portal" }
}

/// A password check costs the same whether or not the address is known.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::auth::hash_password(&random(24)).unwrap_or_default())
}

async fn password_matches(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let stored = hash.unwrap_or_else(|| dummy_hash().to_string());
        PasswordHash::new(&stored)
            .map(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Checks a password of a user (the account page asks for the current one).
pub(crate) async fn verify_password(state: &AppState, email: &str, password: &str) -> Result<bool, ApiError> {
    let record = state.store.find_login(email).await?;
    Ok(password_matches(password.to_string(), record.and_then(|r| r.password_hash)).await)
}

fn minutes_until(until: Timestamp, now: Timestamp) -> i64 {
    ((until.as_micros() - now.as_micros()) / 60_000_000 + 1).max(1)
}

/// `POST /login`.
pub(crate) async fn login(State(state): State<AppState>, request: Request) -> Response {
    let (parts, bytes) = match read_form(request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let headers = &parts.headers;
    let form: LoginForm = match serde_urlencoded::from_bytes(&bytes) {
        Ok(form) => form,
        Err(_) => {
            return login_response(
                StatusCode::BAD_REQUEST,
                headers,
                "",
                None,
                Some("The form could not be read."),
            );
        }
    };
    let next = local_path(form.next.as_deref());
    let expected = cookie(headers, LOGIN_COOKIE).unwrap_or("");
    if !same_origin(headers) || expected.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())) {
        return login_response(
            StatusCode::FORBIDDEN,
            headers,
            &form.email,
            next.as_deref(),
            Some("This sign-in form expired or came from another site. Please try again."),
        );
    }
    let email = form.email.trim().to_string();
    let wrong = |message: &str| {
        login_response(
            StatusCode::UNAUTHORIZED,
            headers,
            &email,
            next.as_deref(),
            Some(message),
        )
    };
    let record = match state.store.find_login(&email).await {
        Ok(record) => record,
        Err(error) => return error_page(None, &error.into()),
    };
    let now = state.clock.now();
    let policy = LockoutPolicy::default();
    let Some(record) = record.filter(|r| !r.user.disabled && email.len() <= 254) else {
        // Same work as for a real account, so timing does not tell.
        password_matches(form.password, None).await;
        return wrong("Wrong email or password.");
    };
    if let Some(until) = record.locked_until.filter(|until| *until > now) {
        return wrong(&format!(
            "This account is locked after {} failed sign-ins. Try again in {} minutes, or ask an administrator to unlock it.",
            policy.threshold,
            minutes_until(until, now)
        ));
    }
    if !password_matches(form.password, record.password_hash.clone()).await {
        if let Err(error) = state.store.record_login_failure(&record.user.id, now, policy).await {
            return error_page(None, &error.into());
        }
        let lock_expired = record.locked_until.is_some_and(|until| until <= now);
        let failures = if lock_expired { 1 } else { record.failed_logins + 1 };
        if failures >= policy.threshold {
            return wrong(&format!(
                "Wrong email or password. The account is now locked for {} minutes.",
                policy.lock_micros / 60_000_000
            ));
        }
        return wrong("Wrong email or password.");
    }
    if let Err(error) = state.store.clear_login_failures(&record.user.id).await {
        return error_page(None, &error.into());
    }
    let secret = random(43);
    let session = WebSession {
        id_hash: hash_token(&secret),
        user_id: record.user.id.clone(),
        csrf_token: random(32),
        created_at: now,
        expires_at: Timestamp::from_micros(now.as_micros().saturating_add(SESSION_MICROS)),
    };
    if let Err(error) = state.store.create_session(session).await {
        return error_page(None, &error.into());
    }
    let target = next.unwrap_or_else(|| home(&record.user).to_string());
    let mut response = Redirect::to(&target).into_response();
    let secure = secure(headers);
    if let Some(cookie) = set_cookie(SESSION_COOKIE, &secret, SESSION_MICROS / 1_000_000, secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    if let Some(cookie) = set_cookie(LOGIN_COOKIE, "", 0, secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct Empty {}

/// `POST /logout`: ends the session in the database and in the browser.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap, posted: Posted<Empty>) -> Response {
    if let Err(error) = state.store.delete_session(&posted.viewer.session.id_hash).await {
        return error_page(Some(&posted.viewer), &error.into());
    }
    let mut response = Redirect::to("/login").into_response();
    if let Some(cookie) = set_cookie(SESSION_COOKIE, "", 0, secure(&headers)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
