//! On-call: `/api/v1/schedules` (admin writes, staff reads) — a team's
//! rotation layers, restrictions and overrides in a time zone;
//! `GET /api/v1/schedules/{id}/shifts` (the final schedule over a range),
//! `GET /api/v1/teams/{id}/oncall` (who is on call now or at `at`, until
//! when), and `GET /api/v1/users/{id}/oncall.ics` (a person's shifts as an
//! iCalendar feed, for calendar apps: the token may come as `?token=`).
//! The resolution itself is `keel_domain::oncall`; this module loads time
//! zones and turns JSON into schedules.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::tz::TimeZone;
use std::sync::Arc;

use keel_domain::catalogue::{Catalogue, Change, Kind, TeamSchedule};
use keel_domain::escalation::{EscalationPolicy, Level, Resolved, Target};
use keel_domain::oncall::{Layer, Override, Schedule, ShiftSource, ical_feed, shifts, shifts_for_user, who_is_on_call};
use keel_domain::{Role, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::catalogue::{change, found};
use crate::dto::{Page, time};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};
use crate::{AppState, new_id};

/// Longest range of shifts one request may ask for.
const MAX_RANGE_DAYS: i64 = 366;
const DAY: i64 = 86_400_000_000;

/// A schedule. `POST` needs `name`, `team`, `time_zone` and `layers`.
/// Each layer: `users` (ids, in rotation order), `rotation` ("12h", "1d",
/// "1w" or a number of days), `start` (local date-time of the first
/// hand-off; `handoff` is accepted too, and a bare `"handoff": "09:00"`
/// means that time on an early Monday), optional `end` and `restrictions`
/// (`[{"days": ["mon", …], "from": "09:00", "to": "17:00"}]`).
/// `overrides`: `[{"user", "start", "end"}]` with RFC 3339 instants.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub name: Option<String>,
    /// The team (id or name).
    pub team: Option<String>,
    /// IANA zone, e.g. "Europe/Berlin".
    pub time_zone: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub layers: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub overrides: Option<Vec<Value>>,
}

/// A schedule as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    pub id: String,
    pub name: String,
    /// The team's id.
    pub team: String,
    pub time_zone: String,
    #[schema(value_type = Vec<Object>)]
    pub layers: Value,
    #[schema(value_type = Vec<Object>)]
    pub overrides: Value,
}

impl From<&TeamSchedule> for ScheduleView {
    fn from(s: &TeamSchedule) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            team: s.team.clone(),
            time_zone: s.schedule.time_zone.clone(),
            layers: serde_json::to_value(&s.schedule.layers).unwrap_or_default(),
            overrides: serde_json::to_value(&s.schedule.overrides).unwrap_or_default(),
        }
    }
}

/// One shift of the final schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShiftView {
    pub user: String,
    pub start: String,
    pub end: String,
    /// "layer N" or "override N".
    pub source: String,
    /// The schedule it comes from.
    pub schedule: String,
}

/// Who is on call for a team.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnCallView {
    /// The person on call; the team's lead when no schedule has anyone (null without a lead).
    pub user: Option<String>,
    /// When this person's shift began (null for the lead fallback).
    pub since: Option<String>,
    /// When it ends: the next hand-off.
    pub until: Option<String>,
    /// The schedule that put them on call, or "lead".
    pub source: String,
}

/// A time range.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// RFC 3339; default now.
    pub from: Option<String>,
    /// RFC 3339; default 14 days after `from`; at most 366 days after it.
    pub to: Option<String>,
}

/// An instant (default now).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// RFC 3339; default now.
    pub at: Option<String>,
}

/// Loads a zone by its IANA name.
pub(crate) fn zone(name: &str) -> ApiResult<TimeZone> {
    // Files of the zone database that are not zones (or not meant for users).
    let not_a_zone = matches!(
        name,
        "localtime" | "posixrules" | "Factory" | "leapseconds" | "tzdata.zi"
    ) || name.contains("..")
        || name.starts_with('/')
        || name.len() > 64;
    if not_a_zone {
        return Err(ApiError::invalid(format!("unknown time zone {name:?}")));
    }
    TimeZone::get(name).map_err(|_| ApiError::invalid(format!("unknown time zone {name:?}")))
}

/// Reads a layer, accepting `handoff` for `start` and a bare local time.
fn layer(mut value: Value) -> ApiResult<Layer> {
    if let Some(object) = value.as_object_mut()
        && let Some(handoff) = object.remove("handoff")
    {
        if object.contains_key("start") {
            return Err(ApiError::invalid("give a layer either start or handoff, not both"));
        }
        let start = match handoff.as_str() {
            // 2000-01-03 is a Monday: weekly rotations hand off on Mondays.
            Some(t) if t.len() <= 8 && t.contains(':') && !t.contains('T') => Value::String(format!("2000-01-03T{t}")),
            _ => handoff,
        };
        object.insert("start".into(), start);
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("layer: {e}")))
}

fn schedule_from(base: TeamSchedule, input: ScheduleInput) -> ApiResult<TeamSchedule> {
    let layers = match input.layers {
        Some(layers) => layers.into_iter().map(layer).collect::<ApiResult<Vec<_>>>()?,
        None => base.schedule.layers,
    };
    let overrides = match input.overrides {
        Some(overrides) => overrides
            .into_iter()
            .map(|o| serde_json::from_value::<Override>(o).map_err(|e| ApiError::invalid(format!("override: {e}"))))
            .collect::<ApiResult<Vec<_>>>()?,
        None => base.schedule.overrides,
    };
    let time_zone = input.time_zone.unwrap_or(base.schedule.time_zone);
    zone(&time_zone)?;
    Ok(TeamSchedule {
        name: input.name.unwrap_or(base.name),
        team: input.team.unwrap_or(base.team),
        schedule: Schedule {
            time_zone,
            layers,
            overrides,
        },
        id: base.id,
    })
}

/// Checks that every user a schedule names exists.
async fn known_users(state: &AppState, schedule: &Schedule) -> ApiResult<()> {
    let mut ids: Vec<&UserId> = schedule.layers.iter().flat_map(|l| l.users.iter()).collect();
    ids.extend(schedule.overrides.iter().map(|o| &o.user));
    ids.sort();
    ids.dedup();
    for id in ids {
        if state.store.get_user(id.as_str()).await?.is_none() {
            return Err(ApiError::invalid(format!("no user {:?}", id.as_str())));
        }
    }
    Ok(())
}

/// Create a schedule (admin).
#[utoipa::path(post, path = "/api/v1/schedules", tag = "on-call", request_body = ScheduleInput,
    responses((status = 201, body = ScheduleView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<ScheduleInput>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    auth.require(Role::Admin)?;
    let base = TeamSchedule {
        id: new_id(),
        name: input
            .name
            .clone()
            .ok_or_else(|| ApiError::invalid("name is required"))?,
        team: input
            .team
            .clone()
            .ok_or_else(|| ApiError::invalid("team is required"))?,
        schedule: Schedule {
            time_zone: input
                .time_zone
                .clone()
                .ok_or_else(|| ApiError::invalid("time_zone is required"))?,
            layers: Vec::new(),
            overrides: Vec::new(),
        },
    };
    let id = base.id.clone();
    let schedule = schedule_from(base, input)?;
    if schedule.schedule.layers.is_empty() {
        return Err(ApiError::invalid("a schedule needs at least one layer"));
    }
    known_users(&state, &schedule.schedule).await?;
    let catalogue = change(&state, Change::PutSchedule(schedule)).await?;
    Ok((
        StatusCode::CREATED,
        Json(found(catalogue.schedule(&id), Kind::Schedule)?.into()),
    ))
}

/// List schedules (staff).
#[utoipa::path(get, path = "/api/v1/schedules", tag = "on-call",
    responses((status = 200, body = Page<ScheduleView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<ScheduleView>>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let mut items: Vec<ScheduleView> = catalogue.schedules.iter().map(ScheduleView::from).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read a schedule (staff), by id or name.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "on-call", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<ScheduleView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(found(catalogue.schedule(&id), Kind::Schedule)?.into()))
}

/// Change a schedule (admin): layers and overrides are replaced as given.
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "on-call", params(("id" = String, Path)),
    request_body = ScheduleInput,
    responses((status = 200, body = ScheduleView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ScheduleInput>,
) -> ApiResult<Json<ScheduleView>> {
    auth.require(Role::Admin)?;
    let base = found(state.store.load_catalogue().await?.schedule(&id), Kind::Schedule)?.clone();
    let key = base.id.clone();
    let schedule = schedule_from(base, input)?;
    known_users(&state, &schedule.schedule).await?;
    let catalogue = change(&state, Change::PutSchedule(schedule)).await?;
    Ok(Json(found(catalogue.schedule(&key), Kind::Schedule)?.into()))
}

/// Delete a schedule (admin).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "on-call", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(state.store.load_catalogue().await?.schedule(&id), Kind::Schedule)?
        .id
        .clone();
    change(&state, Change::Delete(Kind::Schedule, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn range(state: &AppState, query: &RangeQuery) -> ApiResult<(Timestamp, Timestamp)> {
    let from = time("from", query.from.as_ref())?.unwrap_or_else(|| state.clock.now());
    let to = time("to", query.to.as_ref())?.unwrap_or(Timestamp::from_micros(from.as_micros() + 14 * DAY));
    if to <= from {
        return Err(ApiError::invalid("to must be after from"));
    }
    if to.as_micros() - from.as_micros() > MAX_RANGE_DAYS * DAY {
        return Err(ApiError::invalid(format!(
            "ask for at most {MAX_RANGE_DAYS} days at a time"
        )));
    }
    Ok((from, to))
}

fn source_name(source: ShiftSource) -> String {
    match source {
        ShiftSource::Layer(i) => format!("layer {i}"),
        ShiftSource::Override(i) => format!("override {i}"),
    }
}

/// The final schedule over a range: who is on call when (staff).
#[utoipa::path(get, path = "/api/v1/schedules/{id}/shifts", tag = "on-call", params(("id" = String, Path), RangeQuery),
    responses((status = 200, body = Page<ShiftView>), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_shifts(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Page<ShiftView>>> {
    auth.require(Role::Agent)?;
    let (from, to) = range(&state, &query)?;
    let catalogue = state.store.load_catalogue().await?;
    let schedule = found(catalogue.schedule(&id), Kind::Schedule)?;
    let tz = zone(&schedule.schedule.time_zone)?;
    let items = shifts(&schedule.schedule, &tz, from, to)
        .into_iter()
        .map(|s| ShiftView {
            user: s.user.as_str().to_string(),
            start: s.start.to_string(),
            end: s.end.to_string(),
            source: source_name(s.source),
            schedule: schedule.name.clone(),
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Who is on call for `team` at `at`: the first of its schedules (by name)
/// that has someone, else the team's lead.
pub(crate) fn on_call_for(catalogue: &Catalogue, team_id: &str, at: Timestamp) -> OnCallView {
    let mut schedules: Vec<&TeamSchedule> = catalogue.schedules.iter().filter(|s| s.team == team_id).collect();
    schedules.sort_by(|a, b| a.name.cmp(&b.name));
    for schedule in schedules {
        let Ok(tz) = TimeZone::get(&schedule.schedule.time_zone) else {
            continue;
        };
        if let Some(on_call) = who_is_on_call(&schedule.schedule, &tz, at) {
            return OnCallView {
                user: Some(on_call.user.as_str().to_string()),
                since: on_call.since.map(|t| t.to_string()),
                until: on_call.until.map(|t| t.to_string()),
                source: schedule.name.clone(),
            };
        }
    }
    OnCallView {
        user: catalogue
            .team(team_id)
            .and_then(|t| t.lead.as_ref())
            .map(|u| u.as_str().to_string()),
        since: None,
        until: None,
        source: "lead".into(),
    }
}

/// Who is on call for a team now (or at `at`), and until when (staff).
#[utoipa::path(get, path = "/api/v1/teams/{id}/oncall", tag = "on-call", params(("id" = String, Path), AtQuery),
    responses((status = 200, body = OnCallView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn team_on_call(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AtQuery>,
) -> ApiResult<Json<OnCallView>> {
    auth.require(Role::Agent)?;
    let at = time("at", query.at.as_ref())?.unwrap_or_else(|| state.clock.now());
    let catalogue = state.store.load_catalogue().await?;
    let team = found(catalogue.team(&id), Kind::Team)?;
    Ok(Json(on_call_for(&catalogue, &team.id, at)))
}

/// Who owns each team's new incidents now: its on-call person, else its lead.
pub(crate) fn team_owners(catalogue: &Catalogue, now: Timestamp) -> BTreeMap<String, UserId> {
    let mut owners = BTreeMap::new();
    for team in &catalogue.teams {
        if let Some(user) = on_call_for(catalogue, &team.id, now).user {
            owners.insert(team.name.clone(), UserId::new(user.clone()));
            owners.insert(team.id.clone(), UserId::new(user));
        }
    }
    owners
}

/// A person's on-call shifts, 30 days back to 180 ahead, as an iCalendar
/// feed (`text/calendar`). Staff may read anyone's; the token may be given
/// as `?token=` for calendar apps that cannot send headers.
#[utoipa::path(get, path = "/api/v1/users/{id}/oncall.ics", tag = "on-call", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/calendar", body = String), (status = 403, body = Problem),
              (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn ical(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Response> {
    if auth.user.id != id {
        auth.require(Role::Agent)?;
    }
    let user = state
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let now = state.clock.now();
    let from = Timestamp::from_micros(now.as_micros() - 30 * DAY);
    let to = Timestamp::from_micros(now.as_micros() + 180 * DAY);
    let catalogue = state.store.load_catalogue().await?;
    let person = UserId::new(user.id.clone());
    let mut all = Vec::new();
    for schedule in &catalogue.schedules {
        let Ok(tz) = TimeZone::get(&schedule.schedule.time_zone) else {
            continue;
        };
        all.extend(shifts_for_user(&schedule.schedule, &tz, &person, from, to));
    }
    all.sort_by_key(|s| s.start);
    let body = ical_feed("keel on-call", &user.name, &all, now);
    Ok(([(header::CONTENT_TYPE, "text/calendar; charset=utf-8")], body).into_response())
}

/// Every team's escalation ladder with its targets resolved to people as of
/// `now` (keyed by team name and id).
pub(crate) fn resolve_escalations(catalogue: &Catalogue, now: Timestamp) -> BTreeMap<String, Arc<Resolved>> {
    let mut out = BTreeMap::new();
    for policy in &catalogue.escalation_policies {
        let Some(team) = catalogue.team(&policy.team) else {
            continue;
        };
        let levels = policy
            .levels
            .iter()
            .map(|level| {
                let person = level.targets.iter().find_map(|target| match target {
                    Target::User(user) => Some(user.clone()),
                    Target::Lead => team.lead.clone(),
                    Target::Schedule(id) => {
                        let schedule = catalogue.schedule(id)?;
                        let tz = TimeZone::get(&schedule.schedule.time_zone).ok()?;
                        who_is_on_call(&schedule.schedule, &tz, now).map(|o| o.user)
                    }
                });
                (level.after, person)
            })
            .collect();
        let resolved = Arc::new(Resolved { levels });
        out.insert(team.name.clone(), Arc::clone(&resolved));
        out.insert(team.id.clone(), resolved);
    }
    out
}

/// An escalation policy. `POST` needs `name`, `team` and `levels`:
/// `[{"after": "5m", "targets": ["<user id>", "<schedule id or name>", "lead"]}, …]`
/// — each level is engaged that long after registration if nobody accepted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationInput {
    pub name: Option<String>,
    /// The team (id or name).
    pub team: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub levels: Option<Vec<Value>>,
}

/// An escalation policy as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationView {
    pub id: String,
    pub name: String,
    /// The team's id.
    pub team: String,
    /// `[{"after": "5m", "targets": [{"user": id} | {"schedule": id} | "lead"]}]`, by delay.
    #[schema(value_type = Vec<Object>)]
    pub levels: Value,
}

impl From<&EscalationPolicy> for EscalationView {
    fn from(p: &EscalationPolicy) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            team: p.team.clone(),
            levels: serde_json::to_value(&p.levels).unwrap_or_default(),
        }
    }
}

async fn levels_from(state: &AppState, catalogue: &Catalogue, values: Vec<Value>) -> ApiResult<Vec<Level>> {
    let mut levels = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let after = value
            .get("after")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(format!("level {i}: after is required (e.g. \"15m\")")))?;
        let after = after
            .parse::<keel_domain::sla::Duration>()
            .map_err(|e| ApiError::invalid(format!("level {i}: after: {e}")))?;
        let names = value
            .get("targets")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::invalid(format!("level {i}: targets is a list")))?;
        let mut targets = Vec::new();
        for name in names {
            let name = name
                .as_str()
                .ok_or_else(|| ApiError::invalid(format!("level {i}: targets are user ids, schedules or \"lead\"")))?;
            let target = if name == "lead" {
                Target::Lead
            } else if let Some(schedule) = catalogue.schedule(name) {
                Target::Schedule(schedule.id.clone())
            } else if state.store.get_user(name).await?.is_some() {
                Target::User(UserId::new(name))
            } else {
                return Err(ApiError::invalid(format!(
                    "level {i}: {name:?} is neither a user, a schedule nor \"lead\""
                )));
            };
            targets.push(target);
        }
        if let Some(object) = value.as_object()
            && let Some(other) = object.keys().find(|k| !matches!(k.as_str(), "after" | "targets"))
        {
            return Err(ApiError::invalid(format!("level {i}: unknown field {other:?}")));
        }
        levels.push(Level { after, targets });
    }
    Ok(levels)
}

/// Create a team's escalation policy (admin).
#[utoipa::path(post, path = "/api/v1/escalation-policies", tag = "on-call", request_body = EscalationInput,
    responses((status = 201, body = EscalationView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_escalation(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<EscalationInput>,
) -> ApiResult<(StatusCode, Json<EscalationView>)> {
    auth.require(Role::Admin)?;
    let catalogue = state.store.load_catalogue().await?;
    let policy = EscalationPolicy {
        id: new_id(),
        name: input.name.ok_or_else(|| ApiError::invalid("name is required"))?,
        team: input.team.ok_or_else(|| ApiError::invalid("team is required"))?,
        levels: levels_from(
            &state,
            &catalogue,
            input.levels.ok_or_else(|| ApiError::invalid("levels are required"))?,
        )
        .await?,
    };
    let id = policy.id.clone();
    let catalogue = change(&state, Change::PutEscalationPolicy(policy)).await?;
    Ok((
        StatusCode::CREATED,
        Json(found(catalogue.escalation_policy(&id), Kind::EscalationPolicy)?.into()),
    ))
}

/// List escalation policies (staff).
#[utoipa::path(get, path = "/api/v1/escalation-policies", tag = "on-call",
    responses((status = 200, body = Page<EscalationView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_escalations(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<EscalationView>>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let mut items: Vec<EscalationView> = catalogue.escalation_policies.iter().map(EscalationView::from).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read an escalation policy (staff).
#[utoipa::path(get, path = "/api/v1/escalation-policies/{id}", tag = "on-call", params(("id" = String, Path)),
    responses((status = 200, body = EscalationView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show_escalation(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EscalationView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(
        found(catalogue.escalation_policy(&id), Kind::EscalationPolicy)?.into(),
    ))
}

/// Change an escalation policy (admin); `levels` replace the old ones.
#[utoipa::path(patch, path = "/api/v1/escalation-policies/{id}", tag = "on-call", params(("id" = String, Path)),
    request_body = EscalationInput,
    responses((status = 200, body = EscalationView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch_escalation(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EscalationInput>,
) -> ApiResult<Json<EscalationView>> {
    auth.require(Role::Admin)?;
    let catalogue = state.store.load_catalogue().await?;
    let base = found(catalogue.escalation_policy(&id), Kind::EscalationPolicy)?.clone();
    let key = base.id.clone();
    let levels = match input.levels {
        Some(levels) => levels_from(&state, &catalogue, levels).await?,
        None => base.levels,
    };
    let policy = EscalationPolicy {
        name: input.name.unwrap_or(base.name),
        team: input.team.unwrap_or(base.team),
        levels,
        id: base.id,
    };
    let catalogue = change(&state, Change::PutEscalationPolicy(policy)).await?;
    Ok(Json(
        found(catalogue.escalation_policy(&key), Kind::EscalationPolicy)?.into(),
    ))
}

/// Delete an escalation policy (admin).
#[utoipa::path(delete, path = "/api/v1/escalation-policies/{id}", tag = "on-call", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_escalation(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(
        state.store.load_catalogue().await?.escalation_policy(&id),
        Kind::EscalationPolicy,
    )?
    .id
    .clone();
    change(&state, Change::Delete(Kind::EscalationPolicy, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}
