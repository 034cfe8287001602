//! `/api/v1/maintenance-windows`: planned work on a service or CI. While a
//! window is active, monitoring signals about that service or CI are stored
//! as alerts but open (or reopen) no incident; a signal that is still
//! firing after the window ends opens one then.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keel_domain::{MAX_SHORT, MAX_TEXT, Role};
use keel_store::MaintenanceWindow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::dto::{Page, time};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::{AppState, new_id};

/// `POST /api/v1/maintenance-windows`: at least one of service and CI.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMaintenance {
    pub service: Option<String>,
    pub ci: Option<String>,
    /// RFC 3339; default: now.
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    /// RFC 3339, after `starts_at`.
    #[schema(format = DateTime)]
    pub ends_at: String,
    pub reason: String,
}

/// A maintenance window.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceView {
    pub id: String,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    /// Whether it is in force now.
    pub active: bool,
}

impl MaintenanceView {
    fn of(window: &MaintenanceWindow, now: keel_domain::Timestamp) -> Self {
        Self {
            id: window.id.clone(),
            service: window.service.clone(),
            ci: window.ci.clone(),
            starts_at: window.starts_at.to_string(),
            ends_at: window.ends_at.to_string(),
            reason: window.reason.clone(),
            created_by: window.created_by.clone(),
            created_at: window.created_at.to_string(),
            active: window.starts_at <= now && now < window.ends_at,
        }
    }
}

/// Filters of the list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceQuery {
    /// Include windows that have ended (default: only current and future).
    pub include_past: Option<bool>,
}

fn text(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.chars().count() > max || v.contains('\0') => Err(ApiError::invalid(format!(
            "{field} must be at most {max} characters of text"
        ))),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Plan a maintenance window (incident managers and admins).
#[utoipa::path(post, path = "/api/v1/maintenance-windows", tag = "ingest", request_body = CreateMaintenance,
    responses((status = 201, body = MaintenanceView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateMaintenance>,
) -> ApiResult<(StatusCode, Json<MaintenanceView>)> {
    auth.require(Role::IncidentManager)?;
    let now = state.clock.now();
    let service = text("service", body.service, MAX_SHORT)?;
    let ci = text("ci", body.ci, MAX_SHORT)?;
    if service.is_none() && ci.is_none() {
        return Err(ApiError::invalid("a maintenance window needs a service or a ci"));
    }
    let reason =
        text("reason", Some(body.reason), MAX_TEXT)?.ok_or_else(|| ApiError::invalid("reason must not be empty"))?;
    let starts_at = time("starts_at", body.starts_at.as_ref())?.unwrap_or(now);
    let ends_at = time("ends_at", Some(&body.ends_at))?.ok_or_else(|| ApiError::invalid("ends_at is required"))?;
    if ends_at <= starts_at {
        return Err(ApiError::invalid("ends_at must be after starts_at"));
    }
    let window = MaintenanceWindow {
        id: new_id(),
        service,
        ci,
        starts_at,
        ends_at,
        reason,
        created_by: auth.user.id.clone(),
        created_at: now,
    };
    let stored = state.store.create_maintenance(window).await?;
    Ok((StatusCode::CREATED, Json(MaintenanceView::of(&stored, now))))
}

/// List maintenance windows, soonest first (agents and above).
#[utoipa::path(get, path = "/api/v1/maintenance-windows", tag = "ingest", params(MaintenanceQuery),
    responses((status = 200, body = Page<MaintenanceView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<MaintenanceQuery>,
) -> ApiResult<Json<Page<MaintenanceView>>> {
    auth.require(Role::Agent)?;
    let now = state.clock.now();
    let after = if query.include_past.unwrap_or(false) {
        None
    } else {
        Some(now)
    };
    let items = state
        .store
        .list_maintenance(after)
        .await?
        .iter()
        .map(|w| MaintenanceView::of(w, now))
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Cancel (delete) a maintenance window (incident managers and admins).
#[utoipa::path(delete, path = "/api/v1/maintenance-windows/{id}", tag = "ingest", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Role::IncidentManager)?;
    state.store.delete_maintenance(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
