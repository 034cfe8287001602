//! `/api/v1/teams`, `/api/v1/services`, `/api/v1/cis`: the service catalogue
//! and configuration model (admins write, staff read), and
//! `GET /api/v1/incidents/{id}/impact`: the services a failing CI impacts
//! through the dependency graph and the similar systems that may be hit.
//! Every write is checked against the whole catalogue by
//! `keel_domain::catalogue` inside the store's transaction. Objects are
//! addressed by id or by their unique name.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use keel_domain::catalogue::{Catalogue, Change, Ci, Criticality, Impact, Kind, Service, Team};
use keel_domain::{Role, UserId, can_view};
use keel_store::{IncidentRef, Routing};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::dto::Page;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::{AppState, new_id};

/// A team. `POST` needs `name`; `PATCH` changes the fields it carries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    pub name: Option<String>,
    pub description: Option<String>,
    /// A user id; the lead is always a member.
    pub lead: Option<String>,
    /// User ids.
    pub members: Option<Vec<String>>,
    /// Most incidents per open state on the team's board, e.g. {"accepted": 5}.
    pub wip_limits: Option<BTreeMap<String, u32>>,
}

/// A team as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub lead: Option<String>,
    pub members: Vec<String>,
    pub wip_limits: BTreeMap<String, u32>,
}

impl From<&Team> for TeamView {
    fn from(t: &Team) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            lead: t.lead.as_ref().map(|u| u.as_str().to_string()),
            members: t.members.iter().map(|u| u.as_str().to_string()).collect(),
            wip_limits: t.wip_limits.clone(),
        }
    }
}

/// A service. `POST` needs `name`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    pub name: Option<String>,
    /// The owning team (id or name); an empty string clears it.
    pub team: Option<String>,
    /// critical | high | medium (default) | low
    pub criticality: Option<String>,
    pub description: Option<String>,
}

/// A service as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    /// The owning team's id.
    pub team: Option<String>,
    pub criticality: String,
    pub description: Option<String>,
}

fn criticality_name(c: Criticality) -> &'static str {
    match c {
        Criticality::Critical => "critical",
        Criticality::High => "high",
        Criticality::Medium => "medium",
        Criticality::Low => "low",
    }
}

impl From<&Service> for ServiceView {
    fn from(s: &Service) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            team: s.team.clone(),
            criticality: criticality_name(s.criticality).into(),
            description: s.description.clone(),
        }
    }
}

/// A configuration item. `POST` needs `name` and `kind`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CiInput {
    pub name: Option<String>,
    /// server, database, network, application, …
    pub kind: Option<String>,
    pub location: Option<String>,
    /// The services it supports (ids or names).
    pub services: Option<Vec<String>>,
    /// The CIs it needs (ids or names).
    pub depends_on: Option<Vec<String>>,
}

/// A configuration item as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct CiView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub location: Option<String>,
    /// Service ids.
    pub services: Vec<String>,
    /// CI ids.
    pub depends_on: Vec<String>,
}

impl From<&Ci> for CiView {
    fn from(c: &Ci) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind.clone(),
            location: c.location.clone(),
            services: c.services.clone(),
            depends_on: c.depends_on.clone(),
        }
    }
}

/// What an incident's CI and service touch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpactView {
    /// Names of the services impacted, through the dependency graph.
    pub impacted_services: Vec<String>,
    /// Names of the CIs that depend on the incident's CI.
    pub dependants: Vec<String>,
    /// Names of similar systems (same kind, sharing a dependency or service) that may be affected.
    pub similar_systems: Vec<String>,
}

impl From<Impact> for ImpactView {
    fn from(i: Impact) -> Self {
        Self {
            impacted_services: i.impacted_services,
            dependants: i.dependants,
            similar_systems: i.similar_systems,
        }
    }
}

fn required(what: &str, value: Option<String>) -> ApiResult<String> {
    value.ok_or_else(|| ApiError::invalid(format!("{what} is required")))
}

/// Checks that every named user exists.
async fn known_users(state: &AppState, ids: impl IntoIterator<Item = &String>) -> ApiResult<()> {
    for id in ids {
        if state.store.get_user(id).await?.is_none() {
            return Err(ApiError::invalid(format!("no user {id:?}")));
        }
    }
    Ok(())
}

fn not_found(kind: Kind) -> ApiError {
    ApiError::not_found(match kind {
        Kind::Team => "team",
        Kind::Service => "service",
        Kind::Ci => "CI",
        Kind::Rule => "rule",
        Kind::Schedule => "schedule",
        Kind::SlaPolicy => "SLA policy",
        Kind::EscalationPolicy => "escalation policy",
    })
}

async fn team_from(state: &AppState, base: Team, input: TeamInput) -> ApiResult<Team> {
    let users: Vec<&String> = input.lead.iter().chain(input.members.iter().flatten()).collect();
    known_users(state, users).await?;
    Ok(Team {
        name: input.name.unwrap_or(base.name),
        description: input.description.or(base.description),
        lead: match input.lead {
            Some(lead) if lead.trim().is_empty() => None,
            Some(lead) => Some(UserId::new(lead)),
            None => base.lead,
        },
        members: input
            .members
            .map_or(base.members, |m| m.into_iter().map(UserId::new).collect()),
        wip_limits: input.wip_limits.unwrap_or(base.wip_limits),
        id: base.id,
    })
}

fn service_from(base: Service, input: ServiceInput) -> ApiResult<Service> {
    let criticality = match input.criticality.as_deref() {
        None => base.criticality,
        Some("critical") => Criticality::Critical,
        Some("high") => Criticality::High,
        Some("medium") => Criticality::Medium,
        Some("low") => Criticality::Low,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "criticality must be critical, high, medium or low, not {other:?}"
            )));
        }
    };
    Ok(Service {
        name: input.name.unwrap_or(base.name),
        team: match input.team {
            Some(team) if team.trim().is_empty() => None,
            Some(team) => Some(team),
            None => base.team,
        },
        criticality,
        description: input.description.or(base.description),
        id: base.id,
    })
}

fn ci_from(base: Ci, input: CiInput) -> Ci {
    Ci {
        name: input.name.unwrap_or(base.name),
        kind: input.kind.unwrap_or(base.kind),
        location: input.location.or(base.location),
        services: input.services.unwrap_or(base.services),
        depends_on: input.depends_on.unwrap_or(base.depends_on),
        id: base.id,
    }
}

pub(crate) async fn change(state: &AppState, change: Change) -> ApiResult<Catalogue> {
    let catalogue = state.store.change_catalogue(change).await?;
    state.catalogue_cache.clear();
    Ok(catalogue)
}

/// How long a node trusts the team owners it derived from the catalogue.
const OWNERS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// What routing needs from the catalogue (rules, team owners), derived and
/// kept for a second, so a stream of events or reports does not read the
/// catalogue once each.
#[derive(Default)]
pub struct CatalogueCache {
    routing: std::sync::Mutex<Option<(std::time::Instant, Arc<Routing>)>>,
}

impl CatalogueCache {
    fn clear(&self) {
        if let Ok(mut routing) = self.routing.lock() {
            *routing = None;
        }
    }
}

impl AppState {
    /// The classification rules and who owns each team's new incidents: the
    /// person on call in the team's schedules now, else the team's lead.
    ///
    /// # Errors
    /// When the catalogue cannot be read.
    pub async fn routing(&self) -> Result<Arc<Routing>, keel_store::StoreError> {
        if let Ok(cached) = self.catalogue_cache.routing.lock()
            && let Some((at, routing)) = cached.as_ref()
            && at.elapsed() < OWNERS_TTL
        {
            return Ok(Arc::clone(routing));
        }
        let catalogue = self.store.load_catalogue().await?;
        let team_owners = crate::oncall::team_owners(&catalogue, self.clock.now());
        let mut team_leads = BTreeMap::new();
        for team in &catalogue.teams {
            if let Some(lead) = &team.lead {
                team_leads.insert(team.name.clone(), lead.clone());
                team_leads.insert(team.id.clone(), lead.clone());
            }
        }
        let sla = Arc::new(crate::sla::compile(&catalogue));
        let escalations = crate::oncall::resolve_escalations(&catalogue, self.clock.now());
        let routing = Arc::new(Routing {
            rules: Arc::new(catalogue.rules.clone()),
            team_owners,
            team_leads,
            sla,
            escalations,
            catalogue: Arc::new(catalogue),
        });
        if let Ok(mut cached) = self.catalogue_cache.routing.lock() {
            *cached = Some((std::time::Instant::now(), Arc::clone(&routing)));
        }
        Ok(routing)
    }
}

pub(crate) fn found<T>(item: Option<&T>, kind: Kind) -> ApiResult<&T> {
    item.ok_or_else(|| not_found(kind))
}

// ---- teams ----

/// Create a team (admin).
#[utoipa::path(post, path = "/api/v1/teams", tag = "catalogue", request_body = TeamInput,
    responses((status = 201, body = TeamView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_team(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    auth.require(Role::Admin)?;
    let base = Team {
        id: new_id(),
        name: required("name", input.name.clone())?,
        description: None,
        lead: None,
        members: Vec::new(),
        wip_limits: BTreeMap::new(),
    };
    let id = base.id.clone();
    let team = team_from(&state, base, input).await?;
    let catalogue = change(&state, Change::PutTeam(team)).await?;
    Ok((
        StatusCode::CREATED,
        Json(found(catalogue.team(&id), Kind::Team)?.into()),
    ))
}

/// List teams (staff).
#[utoipa::path(get, path = "/api/v1/teams", tag = "catalogue",
    responses((status = 200, body = Page<TeamView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_teams(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<TeamView>>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let mut items: Vec<TeamView> = catalogue.teams.iter().map(TeamView::from).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read a team (staff), by id or name.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 200, body = TeamView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show_team(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<TeamView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(found(catalogue.team(&id), Kind::Team)?.into()))
}

/// Change a team (admin).
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "catalogue", params(("id" = String, Path)),
    request_body = TeamInput,
    responses((status = 200, body = TeamView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch_team(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult<Json<TeamView>> {
    auth.require(Role::Admin)?;
    let base = found(state.store.load_catalogue().await?.team(&id), Kind::Team)?.clone();
    let key = base.id.clone();
    let team = team_from(&state, base, input).await?;
    let catalogue = change(&state, Change::PutTeam(team)).await?;
    Ok(Json(found(catalogue.team(&key), Kind::Team)?.into()))
}

/// Delete a team (admin); refused (409) while a service names it.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn delete_team(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(state.store.load_catalogue().await?.team(&id), Kind::Team)?
        .id
        .clone();
    change(&state, Change::Delete(Kind::Team, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- services ----

/// Create a service (admin).
#[utoipa::path(post, path = "/api/v1/services", tag = "catalogue", request_body = ServiceInput,
    responses((status = 201, body = ServiceView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_service(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    auth.require(Role::Admin)?;
    let base = Service {
        id: new_id(),
        name: required("name", input.name.clone())?,
        team: None,
        criticality: Criticality::default(),
        description: None,
    };
    let id = base.id.clone();
    let catalogue = change(&state, Change::PutService(service_from(base, input)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(found(catalogue.service(&id), Kind::Service)?.into()),
    ))
}

/// List services (staff).
#[utoipa::path(get, path = "/api/v1/services", tag = "catalogue",
    responses((status = 200, body = Page<ServiceView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_services(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<ServiceView>>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let mut items: Vec<ServiceView> = catalogue.services.iter().map(ServiceView::from).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read a service (staff), by id or name.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 200, body = ServiceView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show_service(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ServiceView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(found(catalogue.service(&id), Kind::Service)?.into()))
}

/// Change a service (admin).
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "catalogue", params(("id" = String, Path)),
    request_body = ServiceInput,
    responses((status = 200, body = ServiceView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch_service(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<Json<ServiceView>> {
    auth.require(Role::Admin)?;
    let base = found(state.store.load_catalogue().await?.service(&id), Kind::Service)?.clone();
    let key = base.id.clone();
    let catalogue = change(&state, Change::PutService(service_from(base, input)?)).await?;
    Ok(Json(found(catalogue.service(&key), Kind::Service)?.into()))
}

/// Delete a service (admin); refused (409) while a CI supports it.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn delete_service(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(state.store.load_catalogue().await?.service(&id), Kind::Service)?
        .id
        .clone();
    change(&state, Change::Delete(Kind::Service, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- configuration items ----

/// Create a configuration item (admin).
#[utoipa::path(post, path = "/api/v1/cis", tag = "catalogue", request_body = CiInput,
    responses((status = 201, body = CiView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_ci(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<CiInput>,
) -> ApiResult<(StatusCode, Json<CiView>)> {
    auth.require(Role::Admin)?;
    let base = Ci {
        id: new_id(),
        name: required("name", input.name.clone())?,
        kind: required("kind", input.kind.clone())?,
        location: None,
        services: Vec::new(),
        depends_on: Vec::new(),
    };
    let id = base.id.clone();
    let catalogue = change(&state, Change::PutCi(ci_from(base, input))).await?;
    Ok((StatusCode::CREATED, Json(found(catalogue.ci(&id), Kind::Ci)?.into())))
}

/// List configuration items (staff).
#[utoipa::path(get, path = "/api/v1/cis", tag = "catalogue",
    responses((status = 200, body = Page<CiView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_cis(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<CiView>>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let mut items: Vec<CiView> = catalogue.cis.iter().map(CiView::from).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read a configuration item (staff), by id or name.
#[utoipa::path(get, path = "/api/v1/cis/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 200, body = CiView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show_ci(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<CiView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(found(catalogue.ci(&id), Kind::Ci)?.into()))
}

/// Change a configuration item (admin); a change that would close a
/// dependency cycle is refused (422).
#[utoipa::path(patch, path = "/api/v1/cis/{id}", tag = "catalogue", params(("id" = String, Path)),
    request_body = CiInput,
    responses((status = 200, body = CiView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch_ci(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CiInput>,
) -> ApiResult<Json<CiView>> {
    auth.require(Role::Admin)?;
    let base = found(state.store.load_catalogue().await?.ci(&id), Kind::Ci)?.clone();
    let key = base.id.clone();
    let catalogue = change(&state, Change::PutCi(ci_from(base, input))).await?;
    Ok(Json(found(catalogue.ci(&key), Kind::Ci)?.into()))
}

/// Delete a configuration item (admin); refused (409) while another depends on it.
#[utoipa::path(delete, path = "/api/v1/cis/{id}", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn delete_ci(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(state.store.load_catalogue().await?.ci(&id), Kind::Ci)?.id.clone();
    change(&state, Change::Delete(Kind::Ci, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an incident's CI and service touch: impacted services through the
/// dependency graph, dependants, and similar systems (staff).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/impact", tag = "incidents", params(("id" = String, Path)),
    responses((status = 200, body = ImpactView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn impact(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<ImpactView>> {
    auth.require(Role::Agent)?;
    let incident = state
        .store
        .get_incident(&IncidentRef::parse(&id))
        .await?
        .filter(|i| can_view(&auth.actor, i))
        .ok_or_else(|| ApiError::not_found("incident"))?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(
        catalogue
            .impact(incident.ci.as_deref(), incident.service.as_deref())
            .into(),
    ))
}

/// One column of a team's board.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnView {
    /// new | accepted | on_hold
    pub state: String,
    pub count: i64,
    /// The team's WIP limit for the column, if it set one.
    pub wip_limit: Option<u32>,
    /// Whether the column holds more than its limit.
    pub over_limit: bool,
}

/// A team's backlog: its open work in the order to take it, and its board.
#[derive(Debug, Serialize, ToSchema)]
pub struct BacklogView {
    pub team: String,
    /// Most urgent first: priority, then SLA due time (none last), then age.
    pub items: Vec<crate::dto::IncidentView>,
    pub columns: Vec<ColumnView>,
}

/// A team's open work by priority, then SLA due time, and its board with
/// the WIP limit of each column (staff).
#[utoipa::path(get, path = "/api/v1/teams/{id}/backlog", tag = "catalogue", params(("id" = String, Path)),
    responses((status = 200, body = BacklogView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn backlog(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<BacklogView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let team = found(catalogue.team(&id), Kind::Team)?.clone();
    let backlog = state
        .store
        .team_backlog(vec![team.name.clone(), team.id.clone()], 500)
        .await?;
    let routing = state.routing().await?;
    let now = state.clock.now();
    let items = backlog
        .items
        .iter()
        .map(|(incident, _)| crate::incidents::view_with_sla(incident, &routing.sla, now))
        .collect();
    let columns = ["new", "accepted", "on_hold"]
        .into_iter()
        .map(|column| {
            let count = backlog.counts.get(column).copied().unwrap_or(0);
            let wip_limit = team.wip_limits.get(column).copied();
            ColumnView {
                state: column.to_string(),
                count,
                wip_limit,
                over_limit: wip_limit.is_some_and(|limit| count > i64::from(limit)),
            }
        })
        .collect();
    Ok(Json(BacklogView {
        team: team.name,
        items,
        columns,
    }))
}
