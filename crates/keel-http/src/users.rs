//! `/api/v1/users` and API tokens. Admins manage users; everyone may read
//! themselves (`/api/v1/me`) and mint tokens for themselves.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keel_domain::Role;
use keel_store::{ApiToken, ContactMethod, NewUser, UserUpdate};

use crate::AppState;
use crate::auth::{Auth, hash_password, hash_token, new_token_secret};
use crate::dto::{CreateToken, CreateUser, PatchUser, TokenCreated, UserView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

const ROLES: &str = "end_user, agent, incident_manager, admin";

/// Create a user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    auth.require(Role::Admin)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::invalid(format!("role must be one of {ROLES}, not {:?}", body.role)))?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        return Err(ApiError::invalid("name must be 1 to 200 characters"));
    }
    let email = body.email.trim().to_lowercase();
    let plausible = email.len() <= 254
        && !email.contains('\0')
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if !plausible {
        return Err(ApiError::invalid(format!(
            "email {:?} is not an e-mail address",
            body.email
        )));
    }
    let password_hash = password(body.password.as_deref())?;
    let time_zone = time_zone(body.time_zone)?;
    let user = state
        .store
        .create_user(NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            email,
            role,
            time_zone,
            password_hash,
            contact_methods: contact_methods(body.contact_methods.unwrap_or_default())?,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// Checks and hashes a password: 12 to 1024 characters of text.
fn password(value: Option<&str>) -> ApiResult<Option<String>> {
    match value {
        Some(p) if p.chars().count() < 12 || p.chars().count() > 1024 || p.contains('\0') => {
            Err(ApiError::invalid("a password has 12 to 1024 characters (no NUL)"))
        }
        Some(p) => Ok(Some(hash_password(p)?)),
        None => Ok(None),
    }
}

/// Checks a time zone name against the time zone database; empty: none.
fn time_zone(value: Option<String>) -> ApiResult<Option<String>> {
    match value.map(|tz| tz.trim().to_string()).filter(|tz| !tz.is_empty()) {
        Some(tz) if crate::oncall::zone(&tz).is_ok() => Ok(Some(tz)),
        Some(tz) => Err(ApiError::invalid(format!("time_zone {tz:?} is not a known IANA zone"))),
        None => Ok(None),
    }
}

const CONTACT_KINDS: [&str; 5] = ["email", "sms", "phone", "chat", "webhook"];

/// Checks contact methods: a known kind and a plausible address.
fn contact_methods(methods: Vec<ContactMethod>) -> ApiResult<Vec<ContactMethod>> {
    if methods.len() > 20 {
        return Err(ApiError::invalid("at most 20 contact methods"));
    }
    methods
        .into_iter()
        .map(|m| {
            if !CONTACT_KINDS.contains(&m.kind.as_str()) {
                return Err(ApiError::invalid(format!(
                    "contact method kind must be one of {}, not {:?}",
                    CONTACT_KINDS.join(", "),
                    m.kind
                )));
            }
            let address = m.address.trim().to_string();
            let plausible = match m.kind.as_str() {
                "email" => address.contains('@'),
                "sms" | "phone" => address.chars().filter(char::is_ascii_digit).count() >= 5,
                "webhook" => address.starts_with("http://") || address.starts_with("https://"),
                _ => !address.is_empty(),
            };
            if !plausible || address.chars().count() > 500 || address.contains('\0') {
                return Err(ApiError::invalid(format!(
                    "{:?} is not a {} address",
                    m.address, m.kind
                )));
            }
            Ok(ContactMethod { kind: m.kind, address })
        })
        .collect()
}

/// Change a user. Admins may change everything; people may change their own
/// name, time zone, contact methods and password.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = PatchUser,
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchUser>,
) -> ApiResult<Json<UserView>> {
    if auth.user.id != id || body.role.is_some() || body.disabled.is_some() {
        auth.require(Role::Admin)?;
    }
    // Nobody locks themselves out: the last admin could otherwise end all administration.
    if auth.user.id == id && (body.disabled == Some(true) || body.role.as_deref().is_some_and(|r| r != "admin")) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "you cannot disable yourself or give up your own admin role; ask another admin",
        ));
    }
    let name = match body.name.map(|n| n.trim().to_string()) {
        Some(n) if n.is_empty() || n.chars().count() > 200 || n.contains('\0') => {
            return Err(ApiError::invalid("name must be 1 to 200 characters"));
        }
        other => other,
    };
    let role = body
        .role
        .map(|r| Role::parse(&r).ok_or_else(|| ApiError::invalid(format!("role must be one of {ROLES}, not {r:?}"))))
        .transpose()?;
    let password_hash = password(body.password.as_deref())?;
    let update = UserUpdate {
        name,
        role,
        time_zone: body.time_zone.map(|tz| time_zone(Some(tz))).transpose()?,
        disabled: body.disabled,
        contact_methods: body.contact_methods.map(contact_methods).transpose()?,
        password_hash,
    };
    let user = state.store.update_user(&id, update).await?;
    state.tokens.clear();
    Ok(Json(UserView::from(&user)))
}

/// List users (agents and above: they assign incidents to them).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = crate::dto::Page<UserView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<crate::dto::Page<UserView>>> {
    auth.require(Role::Agent)?;
    let users = state.store.list_users().await?;
    Ok(Json(crate::dto::Page {
        items: users.iter().map(UserView::from).collect(),
        next_cursor: None,
    }))
}

/// Read a user (agents and above, or oneself).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<UserView>> {
    if auth.user.id != id {
        auth.require(Role::Agent)?;
    }
    let user = state
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(UserView::from(&user)))
}

/// Who am I?
#[utoipa::path(get, path = "/api/v1/me", tag = "users", responses((status = 200, body = UserView), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn me(auth: Auth) -> Json<UserView> {
    Json(UserView::from(&auth.user))
}

/// Mint an API token for a user (admin, or the user themself). The secret is shown once.
#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = String, Path)), request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    if auth.user.id != id {
        auth.require(Role::Admin)?;
    }
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        return Err(ApiError::invalid("name must be 1 to 200 characters"));
    }
    let user = state
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let secret = new_token_secret();
    let token = ApiToken {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.id.clone(),
        name,
        token_hash: hash_token(&secret),
        created_at: state.clock.now(),
    };
    state.store.create_token(token.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id: token.id,
            user_id: user.id,
            name: token.name,
            token: secret,
            created_at: token.created_at.to_string(),
        }),
    ))
}
