//! SLAs through the API: `/api/v1/sla-policies` (admin writes, staff reads)
//! — targets per priority for a service (or the default), a calendar, the
//! hold reasons that pause — and the `sla` block of every incident view:
//! each clock's state, due and at-risk instants, elapsed and remaining
//! time, evaluated from the incident's own history as the request is
//! answered. The sweep that records warnings and breaches is `workers`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::tz::TimeZone;
use keel_domain::catalogue::{Catalogue, Change, Kind, SlaPolicyDoc};
use keel_domain::sla::{CalendarSpec, SlaClock, SlaPolicy, SlaPolicySpec, SlaState, SlaTargets};
use keel_domain::sla_watch::{SlaPolicies, judge};
use keel_domain::{HoldReason, Incident, Priority, Role, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::catalogue::{change, found};
use crate::dto::Page;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;
use crate::{AppState, new_id};

/// An SLA policy. `POST` needs `name` and `targets`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicyInput {
    pub name: Option<String>,
    /// The service (id or name); absent: the default policy. An empty string makes it the default.
    pub service: Option<String>,
    /// "24x7" (default) or {"time_zone", "hours": {"mon": [["09:00","17:00"]], …}, "holidays": ["2026-12-25"]}.
    #[schema(value_type = Option<Object>)]
    pub calendar: Option<Value>,
    /// `[{"priority": "P1", "response": "15m", "resolution": "4h"}, …]` (or an object by priority).
    /// Durations like "90s", "15m", "4h", "1h 30m"; "2d" is 48 hours.
    #[schema(value_type = Option<Vec<Object>>)]
    pub targets: Option<Value>,
    /// Hold reasons that pause the clocks: awaiting_user, awaiting_supplier, awaiting_change, other.
    pub pause_on: Option<Vec<String>>,
    /// 1..100, default 80: at risk from this share of a target.
    pub at_risk_percent: Option<u8>,
}

/// An SLA policy as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaPolicyView {
    pub id: String,
    pub name: String,
    /// The service's id; null for the default policy.
    pub service: Option<String>,
    #[schema(value_type = Object)]
    pub calendar: Value,
    #[schema(value_type = Vec<Object>)]
    pub targets: Vec<Value>,
    pub pause_on: Vec<String>,
    pub at_risk_percent: u8,
}

impl From<&SlaPolicyDoc> for SlaPolicyView {
    fn from(p: &SlaPolicyDoc) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            service: p.service.clone(),
            calendar: serde_json::to_value(&p.spec.calendar).unwrap_or_default(),
            targets: p
                .spec
                .targets
                .iter()
                .map(|(priority, t)| {
                    let mut target = serde_json::json!({"priority": priority.as_str()});
                    if let Some(r) = t.response {
                        target["response"] = Value::String(r.to_string());
                    }
                    if let Some(r) = t.resolution {
                        target["resolution"] = Value::String(r.to_string());
                    }
                    target
                })
                .collect(),
            pause_on: p
                .spec
                .pause_on
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok()?.as_str().map(str::to_string))
                .collect(),
            at_risk_percent: p.spec.at_risk_percent,
        }
    }
}

/// One SLA clock of an incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// within | at_risk | breached | met | missed | cancelled
    pub state: String,
    pub target: String,
    pub elapsed: String,
    pub remaining: String,
    /// Counting stopped by a hold whose reason pauses it.
    pub paused: bool,
    pub due_at: Option<String>,
    pub at_risk_at: Option<String>,
    pub stopped_at: Option<String>,
}

/// An incident's SLA, as of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaView {
    /// The worst state of its clocks (open ones first): within | at_risk | breached | met | missed | cancelled.
    pub state: String,
    pub response_due: Option<String>,
    pub resolution_due: Option<String>,
    pub response: Option<ClockView>,
    pub resolution: Option<ClockView>,
}

/// The wire name of an SLA state.
#[must_use]
pub fn state_name(state: SlaState) -> &'static str {
    match state {
        SlaState::Within => "within",
        SlaState::AtRisk => "at_risk",
        SlaState::Breached => "breached",
        SlaState::Met => "met",
        SlaState::Missed => "missed",
        SlaState::Cancelled => "cancelled",
    }
}

fn clock_view(clock: &SlaClock) -> ClockView {
    ClockView {
        state: state_name(clock.state).into(),
        target: clock.target.to_string(),
        elapsed: clock.elapsed.to_string(),
        remaining: clock.remaining.to_string(),
        paused: clock.paused,
        due_at: clock.due_at.map(|t| t.to_string()),
        at_risk_at: clock.at_risk_at.map(|t| t.to_string()),
        stopped_at: clock.stopped_at.map(|t| t.to_string()),
    }
}

/// The SLA view of an incident under the policies in force, if one applies.
#[must_use]
pub fn view(incident: &Incident, policies: &SlaPolicies, now: Timestamp) -> Option<SlaView> {
    let verdict = judge(incident, policies, now);
    let report = verdict.report?;
    let rank = |s: SlaState| match s {
        SlaState::Breached => 6,
        SlaState::AtRisk => 5,
        SlaState::Within => 4,
        SlaState::Missed => 3,
        SlaState::Met => 2,
        SlaState::Cancelled => 1,
    };
    let state = [report.response, report.resolution]
        .into_iter()
        .flatten()
        .map(|c| c.state)
        .max_by_key(|s| rank(*s))?;
    Some(SlaView {
        state: state_name(state).into(),
        response_due: report.response.and_then(|c| c.due_at).map(|t| t.to_string()),
        resolution_due: report.resolution.and_then(|c| c.due_at).map(|t| t.to_string()),
        response: report.response.as_ref().map(clock_view),
        resolution: report.resolution.as_ref().map(clock_view),
    })
}

/// The policies of a catalogue, ready to evaluate (by service name and id).
#[must_use]
pub fn compile(catalogue: &Catalogue) -> SlaPolicies {
    let mut policies = SlaPolicies::default();
    for doc in &catalogue.sla_policies {
        let Ok(policy) = SlaPolicy::from_spec(&doc.spec, |name| TimeZone::get(name).ok()) else {
            tracing::warn!(policy = %doc.name, "an SLA policy no longer loads (time zone?); it is skipped");
            continue;
        };
        let policy = Arc::new(policy);
        match doc.service.as_deref().and_then(|s| catalogue.service(s)) {
            Some(service) => {
                policies.by_service.insert(service.id.clone(), Arc::clone(&policy));
                policies.by_service.insert(service.name.clone(), policy);
            }
            None => policies.default = Some(policy),
        }
    }
    policies
}

/// Reads a duration: "90s", "15m", "4h", "1h 30m"; "2d" counts 48 hours.
fn duration(value: &Value) -> ApiResult<String> {
    let text = value
        .as_str()
        .ok_or_else(|| ApiError::invalid("durations are strings like \"15m\" or \"4h\""))?
        .trim();
    if let Some(days) = text.strip_suffix('d')
        && let Ok(days) = days.trim().parse::<u32>()
    {
        return Ok(format!("{}h", u64::from(days) * 24));
    }
    Ok(text.to_string())
}

/// Reads targets as a list of `{priority, response, resolution}` or an object by priority.
fn targets(value: Value) -> ApiResult<BTreeMap<Priority, SlaTargets>> {
    let entries: Vec<(String, Value)> = match value {
        Value::Array(list) => list
            .into_iter()
            .map(|item| {
                let priority = item
                    .get("priority")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::invalid("every target needs a priority"))?
                    .to_string();
                Ok((priority, item))
            })
            .collect::<ApiResult<_>>()?,
        Value::Object(map) => map.into_iter().collect(),
        _ => return Err(ApiError::invalid("targets must be a list or an object by priority")),
    };
    let mut out = BTreeMap::new();
    for (priority, item) in entries {
        let priority = Priority::parse(&priority)
            .ok_or_else(|| ApiError::invalid(format!("targets: unknown priority {priority:?}")))?;
        let Value::Object(fields) = item else {
            return Err(ApiError::invalid("each target is an object"));
        };
        let mut target = serde_json::Map::new();
        for (name, value) in fields {
            match name.as_str() {
                "priority" => {}
                "response" | "resolution" => {
                    target.insert(name, Value::String(duration(&value)?));
                }
                other => return Err(ApiError::invalid(format!("targets: unknown field {other:?}"))),
            }
        }
        let parsed: SlaTargets = serde_json::from_value(Value::Object(target))
            .map_err(|e| ApiError::invalid(format!("targets for {priority}: {e}")))?;
        out.insert(priority, parsed);
    }
    Ok(out)
}

fn policy_from(base: SlaPolicyDoc, input: SlaPolicyInput) -> ApiResult<SlaPolicyDoc> {
    let mut spec = base.spec;
    if let Some(calendar) = input.calendar {
        spec.calendar = serde_json::from_value::<CalendarSpec>(calendar)
            .map_err(|e| ApiError::invalid(format!("calendar: {e}")))?;
    }
    if let Some(value) = input.targets {
        spec.targets = targets(value)?;
    }
    if let Some(reasons) = input.pause_on {
        spec.pause_on = reasons
            .iter()
            .map(|r| {
                serde_json::from_value::<HoldReason>(Value::String(r.clone())).map_err(|_| {
                    ApiError::invalid(format!(
                        "pause_on: {r:?} is not awaiting_user, awaiting_supplier, awaiting_change or other"
                    ))
                })
            })
            .collect::<ApiResult<_>>()?;
    }
    if let Some(percent) = input.at_risk_percent {
        spec.at_risk_percent = percent;
    }
    if spec.targets.is_empty() {
        return Err(ApiError::invalid("an SLA policy needs at least one target"));
    }
    SlaPolicy::from_spec(&spec, |name| crate::oncall::zone(name).ok())?;
    Ok(SlaPolicyDoc {
        name: input.name.unwrap_or(base.name),
        service: match input.service {
            Some(s) if s.trim().is_empty() => None,
            Some(s) => Some(s),
            None => base.service,
        },
        spec,
        id: base.id,
    })
}

/// Create an SLA policy (admin).
#[utoipa::path(post, path = "/api/v1/sla-policies", tag = "sla", request_body = SlaPolicyInput,
    responses((status = 201, body = SlaPolicyView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<SlaPolicyInput>,
) -> ApiResult<(StatusCode, Json<SlaPolicyView>)> {
    auth.require(Role::Admin)?;
    if input.targets.is_none() {
        return Err(ApiError::invalid("targets are required"));
    }
    let base = SlaPolicyDoc {
        id: new_id(),
        name: input
            .name
            .clone()
            .ok_or_else(|| ApiError::invalid("name is required"))?,
        service: None,
        spec: SlaPolicySpec {
            calendar: CalendarSpec::default(),
            targets: BTreeMap::new(),
            pause_on: Vec::new(),
            at_risk_percent: 80,
        },
    };
    let id = base.id.clone();
    let catalogue = change(&state, Change::PutSlaPolicy(policy_from(base, input)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(found(catalogue.sla_policy(&id), Kind::SlaPolicy)?.into()),
    ))
}

/// List SLA policies (staff).
#[utoipa::path(get, path = "/api/v1/sla-policies", tag = "sla",
    responses((status = 200, body = Page<SlaPolicyView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Page<SlaPolicyView>>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    let mut items: Vec<SlaPolicyView> = catalogue.sla_policies.iter().map(SlaPolicyView::from).collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Read an SLA policy (staff), by id or name.
#[utoipa::path(get, path = "/api/v1/sla-policies/{id}", tag = "sla", params(("id" = String, Path)),
    responses((status = 200, body = SlaPolicyView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<SlaPolicyView>> {
    auth.require(Role::Agent)?;
    let catalogue = state.store.load_catalogue().await?;
    Ok(Json(found(catalogue.sla_policy(&id), Kind::SlaPolicy)?.into()))
}

/// Change an SLA policy (admin). Open incidents' timers are recomputed by
/// the next sweeps.
#[utoipa::path(patch, path = "/api/v1/sla-policies/{id}", tag = "sla", params(("id" = String, Path)),
    request_body = SlaPolicyInput,
    responses((status = 200, body = SlaPolicyView), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SlaPolicyInput>,
) -> ApiResult<Json<SlaPolicyView>> {
    auth.require(Role::Admin)?;
    let base = found(state.store.load_catalogue().await?.sla_policy(&id), Kind::SlaPolicy)?.clone();
    let key = base.id.clone();
    let catalogue = change(&state, Change::PutSlaPolicy(policy_from(base, input)?)).await?;
    Ok(Json(found(catalogue.sla_policy(&key), Kind::SlaPolicy)?.into()))
}

/// Delete an SLA policy (admin).
#[utoipa::path(delete, path = "/api/v1/sla-policies/{id}", tag = "sla", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    let key = found(state.store.load_catalogue().await?.sla_policy(&id), Kind::SlaPolicy)?
        .id
        .clone();
    change(&state, Change::Delete(Kind::SlaPolicy, key)).await?;
    Ok(StatusCode::NO_CONTENT)
}
