//! `/api/v1/rules` (admin writes, staff reads): ordered classification
//! rules applied to every new incident — from a person or from monitoring —
//! before it is registered. The first enabled rule (by `position`) whose
//! `when` holds fills the fields the registration left empty from `then`,
//! and the registration entry records it as `classified_by`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keel_domain::Role;
use keel_domain::catalogue::{Change, Kind};
use keel_domain::rules::Rule;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::catalogue::{change, found};
use crate::dto::Page;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::{AppState, new_id};

/// A rule. `POST` needs `name` and `then`; `PATCH` changes what it carries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: Option<String>,
    /// Lower first (default 0; ties by name).
    pub position: Option<i64>,
    pub enabled: Option<bool>,
    /// Field → required value: text (case-insensitive glob with `*`), number, or a list (any of).
    /// Fields: title, description, category, subcategory, service, ci, team, impact, urgency,
    /// source, channel, location, symptoms, labels.NAME.
    #[schema(value_type = Option<Object>)]
    pub when: Option<BTreeMap<String, Value>>,
    /// Field → value: category, subcategory, service, ci, team, impact, urgency, major.
    #[schema(value_type = Option<Object>)]
    pub then: Option<BTreeMap<String, Value>>,
}

/// A rule as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub name: String,
    pub position: i64,
    pub enabled: bool,
    #[schema(value_type = Object)]
    pub when: BTreeMap<String, Value>,
    #[schema(value_type = Object)]
    pub then: BTreeMap<String, Value>,
}

impl From<&Rule> for RuleView {
    fn from(r: &Rule) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            position: r.position,
            enabled: r.enabled,
            when: r.when.clone(),
            then: r.then.clone(),
        }
    }
}

fn merged(base: Rule, input: RuleInput) -> Rule {
    Rule {
        name: input.name.unwrap_or(base.name),
        position: input.position.unwrap_or(base.position),
        enabled: input.enabled.unwrap_or(base.enabled),
        when: input.when.unwrap_or(base.when),
        then: input.then.unwrap_or(base.then),
        id: base.id,
    }
}

/// Create a rule (admin).
#[utoipa::path(post, path = "/api/v1/rules", tag = "catalogue", request_body = RuleInput,
    responses((status = 201, body = RuleView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<RuleInput>,
) -> ApiResult<(StatusCode, Json<RuleView>)> {
    auth.require(Role::Admin)?;
    let base = Rule {
        id: new_id(),
        name: input
            .name
            .clone()
            .ok_or_else(|| ApiError::invalid("name is required"))?,
        position: 0,
        enabled: true,
        when: BTreeMap::new(),
        then: BTreeMap::new(),
    };
    let id = base.id.clone();
    let catalogue = change(&state, Change::PutRule(merged(base, input))).await?;
    Ok((
        StatusCode::CREATED,
        Json(found(catalogue.rule(&id), Kind::Rule)?.into()),
    ))
}

/// List rules in the order they are tried (staff).
#[utoipa::path(get, path = "/api/v1/rules", tag = "catalogue",
    responses((status = 200, body = Page<RuleView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<RuleView>>> {
    auth.require(Role::Agent)?;
    let mut rules = state.store.load_catalogue().await?.rules;
    rules.sort_by(|a, b| a.position.cmp(&b.position).then_with(|| a.name.cmp(&b.name)));
    Ok(Json(Page {
        items: rules.iter().map(RuleView::from).collect(),
        next_cursor: None,
    }))
}

/// Read a rule (staff), by id or name.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 200, body = RuleView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<RuleView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(found(catalogue.rule(&id), Kind::Rule)?.into()))
}

/// Change a rule (admin).
#[utoipa::path(patch, path = "/api/v1/rules/{id}", tag = "catalogue", params(("id" = String, Path)),
    request_body = RuleInput,
    responses((status = 200, body = RuleView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RuleInput>,
) -> ApiResult<Json<RuleView>> {
    auth.require(Role::Admin)?;
    let base = found(state.store.load_catalogue().await?.rule(&id), Kind::Rule)?.clone();
    let key = base.id.clone();
    let catalogue = change(&state, Change::PutRule(merged(base, input))).await?;
    Ok(Json(found(catalogue.rule(&key), Kind::Rule)?.into()))
}

/// Delete a rule (admin).
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(state.store.load_catalogue().await?.rule(&id), Kind::Rule)?
        .id
        .clone();
    change(&state, Change::Delete(Kind::Rule, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}
