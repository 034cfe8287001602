//! The incident page: the whole record, SLA countdowns, alerts, impact,
//! the hash-chain check, every lifecycle action as a form, comments, and
//! the live timeline. New entries reach open pages by server-sent events:
//! the stream reads the timeline after the last entry the page has, so it
//! works whichever node wrote them.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::stream;
use keel_domain::Incident;
use keel_domain::can_view_entry;
use keel_store::AlertFilter;
use keel_store::IncidentRef;
use maud::{Markup, html};
use serde::Deserialize;

use super::session::given;
use super::view::{self, Names, hold_words, priority_badge, state_badge, state_words};
use super::{Posted, Viewer, alert, error_page, layout, respond};
use crate::AppState;
use crate::dto::{ActionBody, CreateComment};
use crate::error::ApiError;

/// How long one stream lives before the browser reconnects (and the
/// session is checked again).
const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);
const STREAM_POLL: Duration = Duration::from_millis(700);

/// `GET /incidents/{id}`.
pub(crate) async fn page(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    if !viewer.is_staff() {
        return Redirect::to(&format!("/portal/incidents/{id}")).into_response();
    }
    render(&state, &viewer, &id, None, StatusCode::OK).await
}

async fn render(state: &AppState, viewer: &Viewer, id: &str, error: Option<&str>, status: StatusCode) -> Response {
    match build(state, viewer, id, error).await {
        Ok((title, markup)) => respond(status, layout(Some(viewer), &title, markup)),
        Err(error) => error_page(Some(viewer), &error),
    }
}

fn key(incident: &Incident) -> String {
    format!("INC-{}", incident.number)
}

async fn build(state: &AppState, viewer: &Viewer, id: &str, error: Option<&str>) -> Result<(String, Markup), ApiError> {
    let incident = crate::incidents::visible(state, &viewer.auth, id).await?;
    let reference = IncidentRef::Id(incident.id.clone());
    let (entries, verification, alerts, routing, names) = tokio::try_join!(
        async { state.store.timeline(&reference, 0, None).await.map_err(ApiError::from) },
        async { state.store.verify(&reference).await.map_err(ApiError::from) },
        async {
            state
                .store
                .list_alerts(&AlertFilter {
                    incident_id: Some(incident.id.clone()),
                    limit: 50,
                    ..AlertFilter::default()
                })
                .await
                .map_err(ApiError::from)
        },
        async { state.routing().await.map_err(ApiError::from) },
        Names::load(state),
    )?;
    let now = state.clock.now();
    let zone = viewer.zone();
    let sla = crate::sla::view(&incident, &routing.sla, now);
    let impact = routing
        .catalogue
        .impact(incident.ci.as_deref(), incident.service.as_deref());
    let key = key(&incident);
    let title = format!("{key} {}", incident.title);
    let state_name = incident.state.as_str();
    let last_seq = entries.last().map_or(0, |e| e.seq);
    let csrf = viewer.csrf_field();
    let action = |name: &str| format!("/incidents/{key}/actions/{name}");
    let markup = html! {
        div.incident-head {
            h1 { span.key { (key) } " " (incident.title) }
            p.badges {
                (state_badge(state_name))
                " " (priority_badge(incident.priority.as_str()))
                @if incident.major { " " span.badge.major { "Major incident" } }
                @if let Some(sla) = &sla { " " span class={ "badge sla-" (sla.state) } { "SLA: " (view::sla_words(&sla.state)) } }
            }
        }
        (alert(error))
        div #changed.notice hidden role="status" {
            "This incident changed. " a href={ "/incidents/" (key) } { "Reload to see the current actions" } "."
        }
        div.columns {
            section.record aria-labelledby="record-h" {
                h2 #record-h { "Record" }
                dl.facts {
                    dt { "State" } dd { (state_words(state_name))
                        @if let Some(reason) = &incident.hold_reason { " (" (hold_words(&view::wire(reason))) ")" } }
                    dt { "Priority" } dd { (incident.priority.as_str()) " (impact " (u8::from(incident.impact)) ", urgency " (u8::from(incident.urgency)) ")" }
                    dt { "Service" } dd { (incident.service.as_deref().unwrap_or("—")) }
                    dt { "Configuration item" } dd { (incident.ci.as_deref().unwrap_or("—")) }
                    dt { "Category" } dd { (incident.category.as_deref().unwrap_or("—"))
                        @if let Some(sub) = &incident.subcategory { " / " (sub) } }
                    dt { "Team" } dd { (incident.team.as_deref().unwrap_or("—")) }
                    dt { "Owner" } dd { (names.of(incident.owner.as_str())) }
                    dt { "Collaborators" } dd {
                        @if incident.collaborators.is_empty() { "—" }
                        @for (i, c) in incident.collaborators.iter().enumerate() {
                            @if i > 0 { ", " } (names.of(c.as_str()))
                        }
                    }
                    dt { "Reported by" } dd { (names.of(incident.reported_by.as_str())) " via " (view::wire(&incident.channel).replace('_', " ")) }
                    dt { "Registered" } dd { (view::time(incident.created_at, &zone)) }
                    @if let Some(at) = incident.accepted_at { dt { "Accepted" } dd { (view::time(at, &zone)) } }
                    @if let Some(at) = incident.resolved_at { dt { "Resolved" } dd { (view::time(at, &zone)) } }
                    @if let Some(at) = incident.closed_at { dt { "Closed" } dd { (view::time(at, &zone)) } }
                    dt { "Reassignments" } dd { (incident.reassignments) }
                    dt { "Reopened" } dd { (incident.reopens) " times" }
                }
                @if let Some(description) = &incident.description {
                    h3 { "Description" }
                    p.prewrap { (description) }
                }
                @if let Some(resolution) = &incident.resolution {
                    h3 { "Resolution" }
                    p { strong { (resolution.code) } }
                    p.prewrap { (resolution.notes) }
                }
                h3 { "SLA" }
                @match &sla {
                    None => p { "No SLA policy applies." },
                    Some(sla) => dl.facts {
                        dt { "State" } dd { (view::sla_words(&sla.state)) }
                        @if let Some(due) = incident.sla.response_due {
                            dt { "Response due" } dd { (view::countdown(due, now, &zone)) }
                        }
                        @if let Some(due) = incident.sla.resolution_due {
                            dt { "Resolution due" } dd { (view::countdown(due, now, &zone)) }
                        }
                    },
                }
                h3 { "Alerts" }
                @if alerts.is_empty() { p { "No alerts joined this incident." } }
                @else {
                    table.compact.stack {
                        caption.visually-hidden { "Alerts of this incident" }
                        thead { tr { th scope="col" { "Alert" } th scope="col" { "Status" } th scope="col" { "Count" } th scope="col" { "Last seen" } } }
                        tbody {
                            @for a in &alerts {
                                tr { td { (a.summary) br; small { (a.dedup_key) } } td { (a.status.as_str()) } td { (a.count) } td { (view::time(a.last_seen, &zone)) } }
                            }
                        }
                    }
                }
                h3 { "Impact" }
                dl.facts {
                    dt { "Impacted services" } dd { (list_or_dash(&impact.impacted_services)) }
                    dt { "Dependants" } dd { (list_or_dash(&impact.dependants)) }
                    dt { "Similar systems" } dd { (list_or_dash(&impact.similar_systems)) }
                }
                h3 { "Integrity" }
                @if verification.report.ok {
                    p.ok data-testid="verify" {
                        "Timeline verified: " (verification.report.entries)
                        @if verification.report.entries == 1 { " entry" } @else { " entries" }
                        ", hash chain intact."
                    }
                } @else {
                    p.bad data-testid="verify" role="alert" {
                        "Timeline check FAILED"
                        @if let Some(seq) = verification.report.first_bad_seq { " at entry " (seq) }
                        ": " (verification.report.problem.clone().unwrap_or_default())
                    }
                }
            }
            section.work aria-labelledby="actions-h" {
                h2 #actions-h { "Actions" }
                div.actions {
                    @if state_name == "new" {
                        form method="post" action=(action("accept")) { (csrf) button.primary type="submit" { "Accept" } }
                    }
                    @if matches!(state_name, "new" | "accepted" | "on_hold") {
                        form method="post" action=(action("join")) { (csrf) button type="submit" { "Join the swarm" } }
                    }
                    @if incident.collaborators.iter().any(|c| c.as_str() == viewer.auth.user.id) {
                        form method="post" action=(action("leave")) { (csrf) button type="submit" { "Leave the swarm" } }
                    }
                    @if state_name == "on_hold" {
                        form method="post" action=(action("resume")) { (csrf) button type="submit" { "Resume" } }
                    }
                    @if state_name == "resolved" {
                        form method="post" action=(action("close")) { (csrf) button type="submit" { "Close" } }
                    }
                }
                @if matches!(state_name, "new" | "accepted" | "on_hold") {
                    details open {
                        summary { "Resolve" }
                        form.stack method="post" action=(action("resolve")) {
                            (csrf)
                            label for="code" { "Resolution code" }
                            input #code name="code" list="codes" required maxlength="100";
                            datalist #codes { @for c in ["fixed", "workaround", "restarted", "configuration", "user_error", "no_fault_found", "duplicate"] { option value=(c) {} } }
                            label for="notes" { "Resolution notes" }
                            textarea #notes name="notes" rows="3" required {}
                            label for="workaround" { "Workaround (optional)" }
                            input #workaround name="workaround";
                            label.check { input type="checkbox" name="known_solution" value="true"; " A known solution was reused" }
                            button.primary type="submit" { "Resolve" }
                        }
                    }
                    details {
                        summary { "Reclassify (priority, service, category)" }
                        form.stack method="post" action={ "/incidents/" (key) "/reclassify" } {
                            (csrf)
                            label for="re-impact" { "Impact" }
                            select #re-impact name="impact" {
                                @for level in 1..=4u8 { option value=(level) selected[level == u8::from(incident.impact)] { (view::impact_words(level)) } }
                            }
                            label for="re-urgency" { "Urgency" }
                            select #re-urgency name="urgency" {
                                @for level in 1..=4u8 { option value=(level) selected[level == u8::from(incident.urgency)] { (view::urgency_words(level)) } }
                            }
                            label for="re-service" { "Service" }
                            select #re-service name="service" {
                                option value="" { "(none)" }
                                @for s in &routing.catalogue.services {
                                    option value=(s.name) selected[incident.service.as_deref() == Some(s.name.as_str())] { (s.name) }
                                }
                            }
                            label for="re-category" { "Category" }
                            input #re-category name="category" value=(incident.category.clone().unwrap_or_default());
                            label.check { input type="checkbox" name="major" value="true" checked[incident.major]; " Major incident" }
                            button type="submit" { "Save classification" }
                        }
                    }
                    details {
                        summary { "Put on hold" }
                        form.stack method="post" action=(action("hold")) {
                            (csrf)
                            label for="hold-reason" { "Reason" }
                            select #hold-reason name="reason" {
                                option value="awaiting_user" { "Waiting for the user" }
                                option value="awaiting_supplier" { "Waiting for a supplier" }
                                option value="awaiting_change" { "Waiting for a change" }
                                option value="other" { "Other" }
                            }
                            label for="hold-note" { "Note" }
                            input #hold-note name="note";
                            button type="submit" { "Put on hold" }
                        }
                    }
                    details {
                        summary { "Record the diagnosis" }
                        form.stack method="post" action=(action("diagnose")) {
                            (csrf)
                            label for="cause" { "Cause found" }
                            textarea #cause name="cause" rows="2" {}
                            button type="submit" { "Save diagnosis" }
                        }
                    }
                    details {
                        summary { "Assign" }
                        form.stack method="post" action=(action("assign")) {
                            (csrf)
                            label for="assign-team" { "Team" }
                            select #assign-team name="team" {
                                option value="" { "(keep " (incident.team.as_deref().unwrap_or("none")) ")" }
                                @for t in &routing.catalogue.teams { option value=(t.name) { (t.name) } }
                            }
                            label for="assign-owner" { "Owner" }
                            select #assign-owner name="owner" {
                                option value="" { "(keep " (names.of(incident.owner.as_str())) ")" }
                                @for (id, name) in &names.staff { option value=(id) { (name) } }
                            }
                            label for="assign-collaborators" { "Add collaborators" }
                            select #assign-collaborators name="collaborators" multiple size="4" {
                                @for (id, name) in &names.staff { option value=(id) { (name) } }
                            }
                            button type="submit" { "Assign" }
                        }
                    }
                    details {
                        summary { "Cancel (not an incident, duplicate)" }
                        form.stack method="post" action=(action("cancel")) {
                            (csrf)
                            label for="cancel-reason" { "Why" }
                            input #cancel-reason name="reason" required;
                            button.danger type="submit" { "Cancel incident" }
                        }
                    }
                }
                @if matches!(state_name, "resolved" | "closed") {
                    details {
                        summary { "Reopen" }
                        form.stack method="post" action=(action("reopen")) {
                            (csrf)
                            label for="reopen-reason" { "Why" }
                            input #reopen-reason name="reason" required;
                            button type="submit" { "Reopen" }
                        }
                    }
                }
                h2 #comment-h { "Comment" }
                form.stack method="post" action={ "/incidents/" (key) "/comments" } aria-labelledby="comment-h" {
                    (csrf)
                    label for="comment" { "Comment" }
                    textarea #comment name="body" rows="3" required {}
                    label.check { input #public type="checkbox" name="public" value="true"; " Public (the reporter sees it)" }
                    button type="submit" { "Add comment" }
                }
                h2 #timeline-h { "Timeline" }
                ol.timeline data-testid="timeline" aria-labelledby="timeline-h" aria-live="polite"
                    data-stream={ "/incidents/" (key) "/stream" } data-after=(last_seq) {
                    @for e in entries.iter().rev() { (view::entry(e, Some(&names), &zone)) }
                }
            }
        }
    };
    Ok((title, markup))
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

/// The fields of every action form; which count depends on the action.
#[derive(Deserialize, Default)]
pub(crate) struct ActionForm {
    reason: Option<String>,
    note: Option<String>,
    cause: Option<String>,
    code: Option<String>,
    notes: Option<String>,
    workaround: Option<String>,
    known_solution: Option<String>,
    team: Option<String>,
    owner: Option<String>,
    satisfaction: Option<String>,
    feedback: Option<String>,
}

/// Turns a posted action form into the API's action body.
pub(crate) fn action_body(form: ActionForm, pairs: &[(String, String)]) -> Result<ActionBody, ApiError> {
    let collaborators: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "collaborators" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let satisfaction = given(form.satisfaction)
        .map(|s| {
            s.parse::<u8>()
                .map_err(|_| ApiError::invalid("satisfaction must be 1 to 5"))
        })
        .transpose()?;
    Ok(ActionBody {
        reason: given(form.reason),
        note: given(form.note),
        cause: given(form.cause),
        code: given(form.code),
        notes: given(form.notes),
        workaround: given(form.workaround),
        known_solution: form.known_solution.map(|v| v == "true"),
        team: given(form.team),
        owner: given(form.owner),
        collaborators: (!collaborators.is_empty()).then_some(collaborators),
        satisfaction,
        feedback: given(form.feedback),
        ..ActionBody::default()
    })
}

/// `POST /incidents/{id}/actions/{action}`: runs it, then back to the page;
/// a refusal shows the page again with the reason.
pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    posted: Posted<ActionForm>,
) -> Response {
    let viewer = posted.viewer;
    if !viewer.is_staff() {
        return error_page(
            Some(&viewer),
            &ApiError::forbidden("this needs the agent role or above"),
        );
    }
    let outcome = match action_body(posted.form, &posted.pairs) {
        Ok(body) => crate::incidents::perform(&state, &viewer.auth, &id, &action, body, None).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(incident) => Redirect::to(&format!("/incidents/{}", key(&incident))).into_response(),
        Err(error) if error.status == StatusCode::NOT_FOUND => error_page(Some(&viewer), &error),
        Err(error) => render(&state, &viewer, &id, Some(&error.detail), error.status).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct CommentForm {
    #[serde(default)]
    body: String,
    public: Option<String>,
}

/// `POST /incidents/{id}/comments`.
pub(crate) async fn comment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<CommentForm>,
) -> Response {
    let viewer = posted.viewer;
    let body = CreateComment {
        body: posted.form.body,
        visibility: Some(
            if posted.form.public.is_some() || !viewer.is_staff() {
                "public"
            } else {
                "internal"
            }
            .into(),
        ),
        occurred_at: None,
        started_at: None,
        completed_at: None,
    };
    match crate::incidents::add_comment(&state, &viewer.auth, &id, body, None).await {
        Ok(_) if viewer.is_staff() => Redirect::to(&format!("/incidents/{id}#timeline-h")).into_response(),
        Ok(_) => Redirect::to(&format!("/portal/incidents/{id}")).into_response(),
        Err(error) if error.status == StatusCode::NOT_FOUND || !viewer.is_staff() => error_page(Some(&viewer), &error),
        Err(error) => render(&state, &viewer, &id, Some(&error.detail), error.status).await,
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct StreamQuery {
    after: Option<u64>,
}

/// `GET /incidents/{id}/stream`: server-sent events, one `entry` event per
/// new timeline entry the viewer may see (its HTML), with the entry's
/// sequence number as event id so a reconnecting browser resumes there.
pub(crate) async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Response {
    let incident = match crate::incidents::visible(&state, &viewer.auth, &id).await {
        Ok(incident) => incident,
        Err(error) => return error.into_response(),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let after = resume.or(query.after).unwrap_or(incident.version);
    let started = tokio::time::Instant::now();
    let reference = IncidentRef::Id(incident.id);
    let initial = (state, viewer, reference, after, started);
    let events = stream::unfold(Some(initial), |current| async move {
        let (state, viewer, reference, after, started) = current?;
        loop {
            if started.elapsed() > STREAM_LIFETIME {
                return None;
            }
            tokio::time::sleep(STREAM_POLL).await;
            let entries = match state.store.timeline(&reference, after, Some(100)).await {
                Ok(entries) => entries,
                Err(_) => continue,
            };
            if entries.is_empty() {
                continue;
            }
            let zone = viewer.zone();
            let names = Names::load(&state).await.ok();
            let last = entries.last().map_or(after, |e| e.seq);
            let batch: Vec<Result<Event, Infallible>> = entries
                .iter()
                .filter(|e| can_view_entry(&viewer.auth.actor, e))
                .map(|e| {
                    let names = if viewer.is_staff() { names.as_ref() } else { None };
                    Ok(Event::default()
                        .event("entry")
                        .id(e.seq.to_string())
                        .data(view::entry(e, names, &zone).into_string()))
                })
                .collect();
            let next = Some((state, viewer, reference, last, started));
            return Some((stream::iter(batch), next));
        }
    });
    let flat = futures_util::StreamExt::flatten(events);
    Sse::new(flat).keep_alive(KeepAlive::default()).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ReclassifyForm {
    impact: String,
    urgency: String,
    service: String,
    category: String,
    major: Option<String>,
}

/// `POST /incidents/{id}/reclassify`: sends only what changed.
pub(crate) async fn reclassify(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ReclassifyForm>,
) -> Response {
    let viewer = posted.viewer;
    let form = posted.form;
    let outcome = async {
        let current = crate::incidents::visible(&state, &viewer.auth, &id).await?;
        let level = |text: &str, what: &str| {
            text.parse::<u8>()
                .ok()
                .filter(|n| (1..=4).contains(n))
                .ok_or_else(|| ApiError::invalid(format!("{what} must be 1, 2, 3 or 4")))
        };
        let impact = level(&form.impact, "impact")?;
        let urgency = level(&form.urgency, "urgency")?;
        let major = form.major.is_some();
        let changed =
            |new: &str, old: Option<&String>| (new != old.map_or("", String::as_str)).then(|| new.trim().to_string());
        let body = crate::dto::PatchIncident {
            impact: (impact != u8::from(current.impact)).then_some(impact),
            urgency: (urgency != u8::from(current.urgency)).then_some(urgency),
            service: changed(&form.service, current.service.as_ref()),
            category: changed(&form.category, current.category.as_ref()),
            major: (major != current.major).then_some(major),
            ..crate::dto::PatchIncident::default()
        };
        crate::incidents::reclassify(&state, &viewer.auth, &id, body, None).await
    }
    .await;
    match outcome {
        Ok(incident) => Redirect::to(&format!("/incidents/{}", key(&incident))).into_response(),
        Err(error) if error.status == StatusCode::NOT_FOUND => error_page(Some(&viewer), &error),
        Err(error) => render(&state, &viewer, &id, Some(&error.detail), error.status).await,
    }
}
