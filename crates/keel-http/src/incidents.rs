//! `/api/v1/incidents`: register, list, read, reclassify, act, comment, read
//! the timeline and verify it. Handlers parse and authorise; the store runs
//! the domain's rules inside its write transaction.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use keel_domain::{
    ClassificationPatch, ClosureInput, Command, HoldReason, Incident, Priority, RegistrationInput, Role,
    State as LifecycleState, UserId, Visibility, can_view, can_view_entry,
};
use keel_store::{ExecuteRequest, IncidentFilter, IncidentRef, RegisterRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Auth;
use crate::dto::{
    self, ActionBody, ClaimedTimes, CreateComment, CreateIncident, EntryView, IncidentView, Page, PatchIncident,
    VerifyView,
};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery, IfMatch};

const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 50;

/// The view of an incident with its SLA as of now.
pub(crate) async fn view_of(state: &AppState, incident: &Incident) -> ApiResult<IncidentView> {
    let routing = state.routing().await?;
    Ok(view_with_sla(incident, &routing.sla, state.clock.now()))
}

/// The view of an incident with its SLA under these policies at `now`.
pub(crate) fn view_with_sla(
    incident: &Incident,
    policies: &keel_domain::sla_watch::SlaPolicies,
    now: keel_domain::Timestamp,
) -> IncidentView {
    let mut view = IncidentView::from(incident);
    view.sla = crate::sla::view(incident, policies, now);
    view
}

async fn with_etag(state: &AppState, status: StatusCode, incident: &Incident) -> ApiResult<Response> {
    let mut response = (status, Json(view_of(state, incident).await?)).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", incident.version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// Checks that a user id names an existing user.
async fn existing_user(state: &AppState, field: &str, id: &str) -> ApiResult<UserId> {
    let known = uuid_like(id) && state.store.get_user(id).await?.is_some();
    if known {
        Ok(UserId::new(id))
    } else {
        Err(ApiError::invalid(format!("{field}: no user with id {id:?}")))
    }
}

fn uuid_like(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Loads an incident the caller may see, or answers 404 (also for incidents
/// an end user did not report: their existence is not disclosed).
pub(crate) async fn visible(state: &AppState, auth: &Auth, id: &str) -> ApiResult<Incident> {
    let incident = state.store.get_incident(&IncidentRef::parse(id)).await?;
    incident
        .filter(|inc| can_view(&auth.actor, inc))
        .ok_or_else(|| ApiError::not_found("incident"))
}

/// Names the incident a write acts on. Staff may act on any incident, so
/// their writes go straight to the store (which answers 404 for an unknown
/// one); an end user's write first checks that the incident is theirs.
async fn write_target(state: &AppState, auth: &Auth, id: &str) -> ApiResult<IncidentRef> {
    if auth.actor.role.is_staff() {
        Ok(IncidentRef::parse(id))
    } else {
        Ok(IncidentRef::Id(visible(state, auth, id).await?.id))
    }
}

/// Register an incident.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = CreateIncident,
    responses((status = 201, body = IncidentView), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateIncident>,
) -> ApiResult<Response> {
    let incident = register(&state, &auth, body).await?;
    let mut response = with_etag(&state, StatusCode::CREATED, &incident).await?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/incidents/{}", incident.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Registers an incident as `auth` (the API and the web forms both come here).
pub(crate) async fn register(state: &AppState, auth: &Auth, body: CreateIncident) -> ApiResult<Incident> {
    let owner = match &body.owner {
        Some(owner) => Some(existing_user(state, "owner", owner).await?),
        None => None,
    };
    let claimed = ClaimedTimes {
        occurred_at: body.occurred_at,
        started_at: body.started_at,
        completed_at: body.completed_at,
    }
    .parse()?;
    let input = RegistrationInput {
        title: body.title,
        description: body.description,
        impact: dto::impact(body.impact)?,
        urgency: dto::urgency(body.urgency)?,
        service: body.service,
        ci: body.ci,
        category: body.category,
        subcategory: body.subcategory,
        source: dto::source(body.source.as_ref())?,
        channel: dto::channel(body.channel.as_ref())?,
        location: body.location,
        symptoms: body.symptoms,
        impacted: body.impacted,
        observed_at: dto::time("observed_at", body.observed_at.as_ref())?,
        last_known_good_at: dto::time("last_known_good_at", body.last_known_good_at.as_ref())?,
        auto_fix_tried: body.auto_fix_tried,
        auto_fix_note: body.auto_fix_note,
        team: body.team,
        owner,
        major: body.major.unwrap_or(false),
        classified_by: None,
    };
    let request = RegisterRequest {
        id: uuid::Uuid::now_v7().to_string(),
        input,
        actor: auth.actor.clone(),
        claimed,
        matrix: state.matrix.clone(),
        rules: Arc::clone(&state.routing().await?.rules),
        labels: std::collections::BTreeMap::new(),
        number: None,
    };
    let incident = state.store.register(request).await?;
    metrics::counter!("keel_incidents_registered_total").increment(1);
    metrics::counter!("keel_timeline_entries_appended_total").increment(1);
    Ok(incident)
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated states.
    pub state: Option<String>,
    /// Comma-separated priorities (P1..P5).
    pub priority: Option<String>,
    pub service: Option<String>,
    pub team: Option<String>,
    /// A user id, or `me`.
    pub owner: Option<String>,
    /// Owner or collaborator: a user id, or `me` ("my work", swarms included).
    pub involved: Option<String>,
    /// Comma-separated SLA states: within, at_risk, breached (as of the last sweep, at most a second old).
    pub sla: Option<String>,
    pub major: Option<bool>,
    /// Text in number, title or description.
    pub q: Option<String>,
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn split_list<T>(
    text: Option<&String>,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
    allowed: &str,
) -> ApiResult<Vec<String>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| match parse(item) {
            Some(_) => Ok(item.to_string()),
            None => Err(ApiError::invalid(format!(
                "{what} must be among {allowed}, not {item:?}"
            ))),
        })
        .collect()
}

/// Cursors are opaque to clients: a kind prefix and a position, base64url.
fn encode_cursor(kind: &str, position: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}{position}"))
}

fn decode_cursor(cursor: &str, kind: &str) -> ApiResult<i64> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(kind).and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::bad_request("cursor is not one this server handed out"))
}

/// List incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListQuery),
    responses((status = 200, body = Page<IncidentView>), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<IncidentView>>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let me = |o: String| if o == "me" { auth.actor.user.to_string() } else { o };
    let owner = query.owner.map(me);
    let involved = query.involved.map(me);
    let filter = IncidentFilter {
        states: split_list(
            query.state.as_ref(),
            LifecycleState::parse,
            "state",
            "new, accepted, on_hold, resolved, closed, cancelled",
        )?,
        priorities: split_list(query.priority.as_ref(), Priority::parse, "priority", "P1..P5")?
            .into_iter()
            .map(|p| p.to_ascii_uppercase())
            .collect(),
        service: query.service,
        team: query.team,
        owner,
        involved,
        sla_states: split_list(
            query.sla.as_ref(),
            |s| {
                ["within", "at_risk", "breached", "met", "missed"]
                    .into_iter()
                    .find(|k| *k == s)
            },
            "sla",
            "within, at_risk, breached, met, missed",
        )?,
        reported_by: (!auth.actor.role.is_staff()).then(|| auth.actor.user.to_string()),
        major: query.major,
        text: query.q.filter(|q| !q.trim().is_empty()).map(|q| q.trim().to_string()),
    };
    let after_number = query.cursor.as_deref().map(|c| decode_cursor(c, "n:")).transpose()?;
    let mut items = state
        .store
        .list_incidents(
            &filter,
            keel_store::Page {
                limit: limit + 1,
                after_number,
            },
        )
        .await?;
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if has_more {
        items.last().map(|inc| encode_cursor("n:", inc.number))
    } else {
        None
    };
    Ok(Json(Page {
        items: {
            let routing = state.routing().await?;
            let now = state.clock.now();
            items
                .iter()
                .map(|incident| view_with_sla(incident, &routing.sla, now))
                .collect()
        },
        next_cursor,
    }))
}

/// Read one incident by id or number.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = String, Path, description = "id, number or INC-number")),
    responses((status = 200, body = IncidentView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let incident = visible(&state, &auth, &id).await?;
    with_etag(&state, StatusCode::OK, &incident).await
}

/// Change classification fields. `If-Match: <version>` makes it conditional (412 when stale).
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", request_body = PatchIncident,
    params(("id" = String, Path, description = "id, number or INC-number"), ("If-Match" = Option<String>, Header, description = "expected version")),
    responses((status = 200, body = IncidentView), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    IfMatch(expected_version): IfMatch,
    ApiJson(body): ApiJson<PatchIncident>,
) -> ApiResult<Response> {
    let incident = reclassify(&state, &auth, &id, body, expected_version).await?;
    with_etag(&state, StatusCode::OK, &incident).await
}

/// Changes classification fields as `auth` (the API and the web forms both come here).
pub(crate) async fn reclassify(
    state: &AppState,
    auth: &Auth,
    id: &str,
    body: PatchIncident,
    expected_version: Option<u64>,
) -> ApiResult<Incident> {
    auth.require(Role::Agent)?;
    if body.team.is_some() || body.owner.is_some() {
        return Err(ApiError::invalid(
            "team and owner change through POST /api/v1/incidents/{id}/actions/assign, which records the reassignment",
        ));
    }
    let target = write_target(state, auth, id).await?;
    let claimed = ClaimedTimes {
        occurred_at: body.occurred_at,
        started_at: body.started_at,
        completed_at: body.completed_at,
    }
    .parse()?;
    let patch = ClassificationPatch {
        title: body.title,
        description: body.description,
        impact: dto::impact(body.impact)?,
        urgency: dto::urgency(body.urgency)?,
        priority: None,
        service: body.service,
        ci: body.ci,
        category: body.category,
        subcategory: body.subcategory,
        source: dto::source(body.source.as_ref())?,
        channel: dto::channel(body.channel.as_ref())?,
        location: body.location,
        symptoms: body.symptoms,
        impacted: body.impacted,
        observed_at: dto::time("observed_at", body.observed_at.as_ref())?,
        last_known_good_at: dto::time("last_known_good_at", body.last_known_good_at.as_ref())?,
        auto_fix_tried: body.auto_fix_tried,
        auto_fix_note: body.auto_fix_note,
        major: body.major,
    };
    let (incident, _) = run(
        state,
        auth,
        target,
        Command::Reclassify(Box::new(patch)),
        claimed,
        expected_version,
    )
    .await?;
    Ok(incident)
}

async fn run(
    state: &AppState,
    auth: &Auth,
    incident: IncidentRef,
    command: Command,
    claimed: keel_domain::Claimed,
    expected_version: Option<u64>,
) -> ApiResult<(Incident, Vec<keel_domain::Entry>)> {
    let executed = state
        .store
        .execute(ExecuteRequest {
            incident,
            command,
            actor: auth.actor.clone(),
            claimed,
            expected_version,
            matrix: state.matrix.clone(),
        })
        .await?;
    metrics::counter!("keel_timeline_entries_appended_total").increment(executed.entries.len() as u64);
    Ok((executed.incident, executed.entries))
}

/// The lifecycle actions, as named in the path.
pub const ACTIONS: &str = "accept, hold, resume, diagnose, resolve, close, reopen, cancel, assign, join, leave";

fn need(field: &str, action: &str, value: Option<String>) -> ApiResult<String> {
    value.ok_or_else(|| ApiError::invalid(format!("{action} needs {field}")))
}

async fn command_for(state: &AppState, auth: &Auth, action: &str, body: ActionBody) -> ApiResult<Command> {
    Ok(match action {
        "accept" => Command::Accept,
        "hold" => {
            let reason = need("reason", "hold", body.reason)?;
            let reason: HoldReason = dto::choice(
                "reason",
                Some(&reason),
                "awaiting_user, awaiting_supplier, awaiting_change, other",
            )?
            .ok_or_else(|| ApiError::invalid("hold needs reason"))?;
            Command::Hold {
                reason,
                note: body.note,
            }
        }
        "resume" => Command::Resume { note: body.note },
        "diagnose" => Command::Diagnose {
            cause: body.cause,
            note: body.note,
        },
        "resolve" => Command::Resolve {
            code: need("code", "resolve", body.code)?,
            notes: need("notes", "resolve", body.notes)?,
            workaround: body.workaround,
            known_solution: body.known_solution.unwrap_or(false),
            automated: body.automated.unwrap_or(false),
        },
        "close" => Command::Close {
            note: body.note,
            closure: ClosureInput {
                satisfaction: body.satisfaction,
                feedback: body.feedback,
                time_spent_minutes: body.time_spent_minutes,
                review_needed: body.review_needed.unwrap_or(false),
            },
        },
        "reopen" => Command::Reopen {
            reason: need("reason", "reopen", body.reason)?,
        },
        "cancel" => Command::Cancel {
            reason: need("reason", "cancel", body.reason)?,
        },
        "join" | "leave" => {
            let user = match &body.user {
                Some(user) => existing_user(state, "user", user).await?,
                None => auth.actor.user.clone(),
            };
            if action == "join" {
                Command::Join { user }
            } else {
                Command::Leave { user }
            }
        }
        "assign" => {
            let owner = match &body.owner {
                Some(owner) => Some(existing_user(state, "owner", owner).await?),
                None => None,
            };
            let mut add_collaborators = Vec::new();
            for user in body.collaborators.unwrap_or_default() {
                add_collaborators.push(existing_user(state, "collaborators", &user).await?);
            }
            Command::Assign {
                team: body.team,
                owner,
                add_collaborators,
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("unknown action {other:?}; one of {ACTIONS}"),
            ));
        }
    })
}

/// Move an incident through its lifecycle. An illegal transition answers 409 and changes nothing.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/actions/{action}", tag = "incidents", request_body = ActionBody,
    params(("id" = String, Path, description = "id, number or INC-number"),
           ("action" = String, Path, description = "accept | hold | resume | diagnose | resolve | close | reopen | cancel | assign | join | leave"),
           ("If-Match" = Option<String>, Header, description = "expected version")),
    responses((status = 200, body = IncidentView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn act(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, action)): Path<(String, String)>,
    IfMatch(expected_version): IfMatch,
    ApiJson(body): ApiJson<ActionBody>,
) -> ApiResult<Response> {
    let incident = perform(&state, &auth, &id, &action, body, expected_version).await?;
    with_etag(&state, StatusCode::OK, &incident).await
}

/// Runs one lifecycle action as `auth` (the API and the web forms both come here).
pub(crate) async fn perform(
    state: &AppState,
    auth: &Auth,
    id: &str,
    action: &str,
    body: ActionBody,
    expected_version: Option<u64>,
) -> ApiResult<Incident> {
    let target = write_target(state, auth, id).await?;
    let claimed = ClaimedTimes {
        occurred_at: body.occurred_at.clone(),
        started_at: body.started_at.clone(),
        completed_at: body.completed_at.clone(),
    }
    .parse()?;
    let command = command_for(state, auth, action, body).await?;
    let (incident, _) = run(state, auth, target, command, claimed, expected_version).await?;
    Ok(incident)
}

/// Comment on an incident, internally (staff) or publicly (also the reporter).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/comments", tag = "incidents", request_body = CreateComment,
    params(("id" = String, Path, description = "id, number or INC-number")),
    responses((status = 201, body = EntryView), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn comment(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    IfMatch(expected_version): IfMatch,
    ApiJson(body): ApiJson<CreateComment>,
) -> ApiResult<Response> {
    let entry = add_comment(&state, &auth, &id, body, expected_version).await?;
    Ok((StatusCode::CREATED, Json(EntryView::from(&entry))).into_response())
}

/// Comments on an incident as `auth` (the API and the web forms both come here).
pub(crate) async fn add_comment(
    state: &AppState,
    auth: &Auth,
    id: &str,
    body: CreateComment,
    expected_version: Option<u64>,
) -> ApiResult<keel_domain::Entry> {
    let target = write_target(state, auth, id).await?;
    let claimed = ClaimedTimes {
        occurred_at: body.occurred_at,
        started_at: body.started_at,
        completed_at: body.completed_at,
    }
    .parse()?;
    let default_visibility = if auth.actor.role.is_staff() {
        Visibility::Internal
    } else {
        Visibility::Public
    };
    let visibility =
        dto::choice("visibility", body.visibility.as_ref(), "internal, public")?.unwrap_or(default_visibility);
    let (_, entries) = run(
        state,
        auth,
        target,
        Command::Comment {
            body: body.body,
            visibility,
        },
        claimed,
        expected_version,
    )
    .await?;
    entries
        .into_iter()
        .last()
        .ok_or_else(|| ApiError::invalid("the comment was empty"))
}

/// Paging of `GET /api/v1/incidents/{id}/timeline`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The timeline of an incident, oldest first. End users do not see internal comments.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline", tag = "incidents",
    params(("id" = String, Path, description = "id, number or INC-number"), TimelineQuery),
    responses((status = 200, body = Page<EntryView>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn timeline(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<TimelineQuery>,
) -> ApiResult<Json<Page<EntryView>>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let after_seq = match query.cursor.as_deref() {
        Some(cursor) => u64::try_from(decode_cursor(cursor, "s:")?).map_err(|_| ApiError::bad_request("bad cursor"))?,
        None => 0,
    };
    let incident = visible(&state, &auth, &id).await?;
    let mut entries = state
        .store
        .timeline(&IncidentRef::Id(incident.id), after_seq, Some(limit + 1))
        .await?;
    let has_more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    // The cursor follows what was read, so hidden entries never end a page early for good.
    let next_cursor = if has_more {
        entries.last().map(|e| encode_cursor("s:", e.seq as i64))
    } else {
        None
    };
    let items = entries
        .iter()
        .filter(|e| can_view_entry(&auth.actor, e))
        .map(EntryView::from)
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

/// Recompute the incident's hash chain and compare it with what is stored.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/verify", tag = "incidents",
    params(("id" = String, Path, description = "id, number or INC-number")),
    responses((status = 200, body = VerifyView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn verify(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<VerifyView>> {
    auth.require(Role::Agent)?;
    let incident = visible(&state, &auth, &id).await?;
    let result = state.store.verify(&IncidentRef::Id(incident.id)).await?;
    let report = result.report;
    Ok(Json(VerifyView {
        ok: report.ok,
        entries: report.entries,
        first_bad_seq: report.first_bad_seq,
        problem: report.problem,
    }))
}
