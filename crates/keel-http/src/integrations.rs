//! `/api/v1/integrations` (admin): the monitoring sources that may send
//! events, each bound to a service and/or team, with a secret key that is
//! shown once, stored as SHA-256, and can be rotated or disabled — and a
//! detection policy (classification rules, severity mapping, correlation,
//! reopen and flapping windows, what recovery does) and an optional secret
//! that webhooks must be signed with.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keel_domain::detection::IngestPolicy;
use keel_domain::{MAX_SHORT, Role};
use keel_store::{Integration, IntegrationKind, IntegrationUpdate};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Auth, hash_token};
use crate::dto::Page;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::{AppState, new_id};

const KINDS: &str = "pagerduty, alertmanager, grafana, generic";

/// `POST /api/v1/integrations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// pagerduty | alertmanager | grafana | generic
    pub kind: String,
    /// The service its events are about, unless an event says otherwise.
    pub service: Option<String>,
    /// The team its incidents go to.
    pub team: Option<String>,
    /// Classification, correlation, recovery and flapping settings (see the
    /// README, "Detection policy"). Omitted: the standard policy.
    #[schema(value_type = Option<Object>)]
    pub policy: Option<serde_json::Value>,
    /// A shared secret to check webhook signatures with (Grafana's HMAC).
    pub signing_secret: Option<String>,
}

/// `PATCH /api/v1/integrations/{id}`; an empty string clears service or team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchIntegration {
    pub name: Option<String>,
    pub service: Option<String>,
    pub team: Option<String>,
    /// A disabled integration's key is refused.
    pub disabled: Option<bool>,
    /// Replaces the whole policy.
    #[schema(value_type = Option<Object>)]
    pub policy: Option<serde_json::Value>,
    /// An empty string removes the secret.
    pub signing_secret: Option<String>,
}

/// An integration. `key` is present only in the answer that created or
/// rotated it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub service: Option<String>,
    pub team: Option<String>,
    /// The key's first characters, to tell keys apart.
    pub key_hint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub disabled: bool,
    pub created_by: String,
    pub created_at: String,
    pub rotated_at: Option<String>,
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
    /// Whether webhooks must be signed (the secret itself is never shown).
    pub signing_secret_set: bool,
}

impl IntegrationView {
    fn of(integration: &Integration, key: Option<String>) -> Self {
        Self {
            id: integration.id.clone(),
            name: integration.name.clone(),
            kind: integration.kind.as_str().to_string(),
            service: integration.service.clone(),
            team: integration.team.clone(),
            key_hint: integration.key_hint.clone(),
            key,
            disabled: integration.disabled,
            created_by: integration.created_by.clone(),
            created_at: integration.created_at.to_string(),
            rotated_at: integration.rotated_at.map(|t| t.to_string()),
            policy: serde_json::to_value(&integration.policy).unwrap_or_default(),
            signing_secret_set: integration.signing_secret.is_some(),
        }
    }
}

/// A new key: 32 alphanumerics, the shape PagerDuty routing keys have, so
/// senders that check the shape accept it. Returns (key, hash, hint).
fn new_key() -> (String, String, String) {
    let key = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let hint = format!("{}…", key.chars().take(4).collect::<String>());
    let hash = hash_token(&key);
    (key, hash, hint)
}

fn short(field: &str, value: Option<String>) -> ApiResult<Option<String>> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.chars().count() > MAX_SHORT || v.contains('\0') => Err(ApiError::invalid(format!(
            "{field} must be at most {MAX_SHORT} characters of text"
        ))),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Reads and checks a policy from the request.
fn policy(value: serde_json::Value) -> ApiResult<IngestPolicy> {
    let policy: IngestPolicy =
        serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("policy does not fit: {e}")))?;
    policy.check()?;
    Ok(policy)
}

/// Reads a signing secret: 16 to 200 characters; empty means none.
fn secret(value: String) -> ApiResult<Option<String>> {
    let value = value.trim().to_string();
    if value.is_empty() {
        return Ok(None);
    }
    if !(16..=200).contains(&value.chars().count()) || value.contains('\0') {
        return Err(ApiError::invalid("signing_secret must be 16 to 200 characters"));
    }
    Ok(Some(value))
}

fn name(value: String) -> ApiResult<String> {
    short("name", Some(value))?.ok_or_else(|| ApiError::invalid("name must not be empty"))
}

/// Create an integration (admin). The answer carries its key, once.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", request_body = CreateIntegration,
    responses((status = 201, body = IntegrationView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateIntegration>,
) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    auth.require(Role::Admin)?;
    let kind = IntegrationKind::parse(&body.kind)
        .ok_or_else(|| ApiError::invalid(format!("kind must be one of {KINDS}, not {:?}", body.kind)))?;
    let (key, key_hash, key_hint) = new_key();
    let integration = Integration {
        id: new_id(),
        name: name(body.name)?,
        kind,
        service: short("service", body.service)?,
        team: short("team", body.team)?,
        key_hash,
        key_hint,
        disabled: false,
        created_by: auth.user.id.clone(),
        created_at: state.clock.now(),
        rotated_at: None,
        policy: body
            .policy
            .map(policy)
            .transpose()?
            .unwrap_or_else(IngestPolicy::standard),
        signing_secret: body.signing_secret.map(secret).transpose()?.flatten(),
    };
    let stored = state.store.create_integration(integration).await?;
    Ok((StatusCode::CREATED, Json(IntegrationView::of(&stored, Some(key)))))
}

/// List integrations (admin).
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    responses((status = 200, body = Page<IntegrationView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<IntegrationView>>> {
    auth.require(Role::Admin)?;
    let items = state
        .store
        .list_integrations()
        .await?
        .iter()
        .map(|i| IntegrationView::of(i, None))
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read an integration (admin); its key is never shown again.
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    auth.require(Role::Admin)?;
    let integration = state
        .store
        .get_integration(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration"))?;
    Ok(Json(IntegrationView::of(&integration, None)))
}

/// Rename, rebind, disable or enable an integration (admin).
#[utoipa::path(patch, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path)),
    request_body = PatchIntegration,
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchIntegration>,
) -> ApiResult<Json<IntegrationView>> {
    auth.require(Role::Admin)?;
    let update = IntegrationUpdate {
        name: body.name.map(name).transpose()?,
        service: body.service.map(|s| short("service", Some(s))).transpose()?,
        team: body.team.map(|t| short("team", Some(t))).transpose()?,
        disabled: body.disabled,
        new_key: None,
        policy: body.policy.map(policy).transpose()?,
        signing_secret: body.signing_secret.map(secret).transpose()?,
    };
    let integration = state.store.update_integration(&id, update).await?;
    state.integrations.clear();
    Ok(Json(IntegrationView::of(&integration, None)))
}

/// Replace an integration's key (admin). The old key stops working at once;
/// the answer carries the new one, once.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/rotate", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationView>> {
    auth.require(Role::Admin)?;
    let (key, key_hash, key_hint) = new_key();
    let update = IntegrationUpdate {
        new_key: Some((key_hash, key_hint)),
        ..IntegrationUpdate::default()
    };
    let integration = state.store.update_integration(&id, update).await?;
    state.integrations.clear();
    Ok(Json(IntegrationView::of(&integration, Some(key))))
}
