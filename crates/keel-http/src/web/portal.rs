//! The end users' portal: report a problem in plain words (and see, while
//! typing, whether it is already known), follow a known major incident
//! instead of filing a duplicate, read public updates of one's own
//! incidents, and confirm a resolution or say it is not fixed. End users
//! see only their own incidents and the public side of major ones.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keel_domain::Incident;
use keel_domain::{can_view, can_view_entry};
use keel_store::IncidentRef;
use keel_store::{IncidentFilter, UserPref};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::given;
use super::view::{self, Names, state_badge};
use super::{Posted, Viewer, alert, error_page, layout, respond};
use crate::AppState;
use crate::dto::{ActionBody, CreateComment, CreateIncident};
use crate::error::ApiError;

const OPEN: [&str; 3] = ["new", "accepted", "on_hold"];

fn key(incident: &Incident) -> String {
    format!("INC-{}", incident.number)
}

/// `GET /portal`: my incidents and the ones I follow.
pub(crate) async fn home(State(state): State<AppState>, viewer: Viewer) -> Response {
    match build_home(&state, &viewer).await {
        Ok(markup) => respond(StatusCode::OK, layout(Some(&viewer), "My incidents", markup)),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

async fn build_home(state: &AppState, viewer: &Viewer) -> Result<Markup, ApiError> {
    let mine = state
        .store
        .list_incidents(
            &IncidentFilter {
                reported_by: Some(viewer.auth.user.id.clone()),
                ..IncidentFilter::default()
            },
            keel_store::Page {
                limit: 50,
                after_number: None,
            },
        )
        .await?;
    let follows = state.store.list_prefs(&viewer.auth.user.id, "follow").await?;
    let mut followed = Vec::new();
    for pref in follows.iter().rev().take(20) {
        if let Some(incident) = state.store.get_incident(&IncidentRef::Id(pref.name.clone())).await? {
            followed.push(incident);
        }
    }
    let zone = viewer.zone();
    Ok(html! {
        h1 { "My incidents" }
        p { a.button.primary href="/portal/new" { "Report a problem" } }
        @if mine.is_empty() {
            p.empty { "You have not reported anything yet." }
        } @else {
            ul.cards {
                @for i in &mine {
                    li.card {
                        a href={ "/portal/incidents/" (key(i)) } { strong { (key(i)) } " " (i.title) }
                        div.card-meta { (state_badge_plain(i.state.as_str())) " · reported " (view::time(i.created_at, &zone)) }
                        @if i.state.as_str() == "resolved" { p.notice { "Resolved — please confirm whether it is fixed." } }
                    }
                }
            }
        }
        @if !followed.is_empty() {
            h2 { "Incidents you follow" }
            ul.cards {
                @for i in &followed {
                    li.card {
                        a href={ "/portal/incidents/" (key(i)) } { strong { (key(i)) } " " (i.title) }
                        div.card-meta { (state_badge_plain(i.state.as_str())) }
                    }
                }
            }
        }
    })
}

fn state_badge_plain(state: &str) -> Markup {
    html! { span class={ "badge state-" (state) } { (view::state_words(state)) } }
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(crate) struct ReportForm {
    what: String,
    service: String,
    since: String,
    affected: String,
    blocked: String,
}

/// Open major incidents that look like what the user describes: shared
/// words in the title, or the same service.
async fn matching(state: &AppState, text: &str, service: &str) -> Result<Vec<Incident>, ApiError> {
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_string)
        .collect();
    if words.is_empty() && service.is_empty() {
        return Ok(Vec::new());
    }
    let mut scored: Vec<(usize, Incident)> = view::majors(state, &OPEN, 200)
        .await?
        .into_iter()
        .map(|incident| {
            let title = incident.title.to_lowercase();
            let mut score = words.iter().filter(|w| title.contains(w.as_str())).count();
            if !service.is_empty() && incident.service.as_deref() == Some(service) {
                score += 2;
            }
            (score, incident)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.number.cmp(&a.1.number)));
    Ok(scored.into_iter().take(5).map(|(_, i)| i).collect())
}

fn known_list(viewer: &Viewer, found: &[Incident]) -> Markup {
    html! {
        @if found.is_empty() {
            p.hint { "No known issue matches yet." }
        } @else {
            ul.cards {
                @for i in found {
                    li.card {
                        strong { (i.title) }
                        div.card-meta { (i.service.as_deref().unwrap_or("")) " · " (view::state_words(i.state.as_str())) }
                        form.inline method="post" action={ "/portal/incidents/" (key(i)) "/follow" } {
                            (viewer.csrf_field())
                            button type="submit" { "This affects me too" }
                        }
                    }
                }
            }
        }
    }
}

async fn report_page(
    state: &AppState,
    viewer: &Viewer,
    form: &ReportForm,
    error: Option<&str>,
) -> Result<Markup, ApiError> {
    let routing = state.routing().await?;
    let found = matching(state, &form.what, &form.service).await?;
    let affected = [
        ("me", "Just me"),
        ("team", "Some colleagues or my team"),
        ("department", "A whole department or site"),
        ("everyone", "Everyone / the whole company"),
    ];
    let blocked = [
        ("no", "Yes, it is only an inconvenience"),
        ("partly", "Yes, but with difficulty"),
        ("yes", "No, my work has stopped"),
    ];
    Ok(html! {
        h1 { "Report a problem" }
        (alert(error))
        div.columns {
            form.stack #report method="post" action="/portal/new" {
                (viewer.csrf_field())
                label for="what" { "What is wrong?" }
                textarea #what name="what" rows="4" required maxlength="4000" autofocus
                    aria-describedby="what-hint" data-known="/portal/known" { (form.what) }
                small #what-hint.hint { "In your own words: what you tried, what happened, any error message." }
                label for="service" { "Which service?" }
                select #service name="service" {
                    option value="" { "I don't know" }
                    @for s in &routing.catalogue.services { option value=(s.name) selected[form.service == s.name] { (s.name) } }
                }
                label for="since" { "Since when?" }
                input #since type="datetime-local" name="since" value=(form.since);
                label for="affected" { "How many people are affected?" }
                select #affected name="affected" {
                    @for (value, label) in affected { option value=(value) selected[form.affected == value] { (label) } }
                }
                label for="blocked" { "Can you still work?" }
                select #blocked name="blocked" {
                    @for (value, label) in blocked { option value=(value) selected[form.blocked == value] { (label) } }
                }
                div.buttons {
                    button.primary type="submit" { "Send report" }
                    button type="submit" formmethod="get" formaction="/portal/new" formnovalidate { "Check known issues" }
                }
            }
            section.known #known aria-labelledby="known-h" aria-live="polite" {
                h2 #known-h { "Is this already known?" }
                div #known-list { (known_list(viewer, &found)) }
            }
        }
    })
}

/// `GET /portal/new` (also the no-script "check known issues" button).
pub(crate) async fn report_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(form): Query<ReportForm>,
) -> Response {
    match report_page(&state, &viewer, &form, None).await {
        Ok(markup) => respond(StatusCode::OK, layout(Some(&viewer), "Report a problem", markup)),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct KnownQuery {
    q: String,
    service: String,
}

/// `GET /portal/known?q=…`: the "is this already known?" list as an HTML
/// fragment, for the report form's script.
pub(crate) async fn known(State(state): State<AppState>, viewer: Viewer, Query(query): Query<KnownQuery>) -> Response {
    match matching(&state, &query.q, &query.service).await {
        Ok(found) => respond(StatusCode::OK, known_list(&viewer, &found)),
        Err(error) => error.into_response(),
    }
}

/// Turns a `datetime-local` value in the viewer's zone into RFC 3339.
fn since(text: &str, zone: &jiff::tz::TimeZone) -> Result<Option<String>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let civil: jiff::civil::DateTime = text
        .parse()
        .map_err(|_| ApiError::invalid("'Since when?' is not a date and time"))?;
    let zoned = civil
        .to_zoned(zone.clone())
        .map_err(|_| ApiError::invalid("'Since when?' is not a valid time"))?;
    Ok(Some(zoned.timestamp().to_string()))
}

/// `POST /portal/new`: registers the report as the end user.
pub(crate) async fn report(State(state): State<AppState>, posted: Posted<ReportForm>) -> Response {
    let viewer = posted.viewer;
    let form = posted.form;
    let outcome = async {
        let what = form.what.trim();
        if what.is_empty() {
            return Err(ApiError::invalid("please say what is wrong"));
        }
        let first_line = what.lines().next().unwrap_or(what);
        let mut title: String = first_line.chars().take(120).collect();
        if first_line.chars().count() > 120 {
            title.push('…');
        }
        let (impact, impacted) = match form.affected.as_str() {
            "everyone" => (1, "everyone"),
            "department" => (2, "a department or site"),
            "team" => (3, "some colleagues or a team"),
            _ => (4, "the reporter"),
        };
        let urgency = match form.blocked.as_str() {
            "yes" => 2,
            "partly" => 3,
            _ => 4,
        };
        let body = CreateIncident {
            title,
            description: Some(what.to_string()),
            impact: Some(impact),
            urgency: Some(urgency),
            service: given(Some(form.service.clone())),
            impacted: Some(impacted.into()),
            observed_at: since(&form.since, &viewer.zone())?,
            source: Some("user".into()),
            channel: Some("portal".into()),
            ..CreateIncident::default()
        };
        crate::incidents::register(&state, &viewer.auth, body).await
    }
    .await;
    match outcome {
        Ok(incident) => Redirect::to(&format!("/portal/incidents/{}", key(&incident))).into_response(),
        Err(error) => match report_page(&state, &viewer, &form, Some(&error.detail)).await {
            Ok(markup) => respond(error.status, layout(Some(&viewer), "Report a problem", markup)),
            Err(error) => error_page(Some(&viewer), &error),
        },
    }
}

/// An incident the viewer may see on the portal: their own, or an open or
/// followed major incident (its public side only).
async fn portal_incident(state: &AppState, viewer: &Viewer, id: &str) -> Result<(Incident, bool), ApiError> {
    let incident = state
        .store
        .get_incident(&IncidentRef::parse(id))
        .await?
        .ok_or_else(|| ApiError::not_found("incident"))?;
    let own = incident.reported_by.as_str() == viewer.auth.user.id;
    if own || (viewer.is_staff() && can_view(&viewer.auth.actor, &incident)) {
        return Ok((incident, own));
    }
    if incident.major {
        return Ok((incident, false));
    }
    Err(ApiError::not_found("incident"))
}

/// `GET /portal/incidents/{id}`.
pub(crate) async fn incident(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    render_incident(&state, &viewer, &id, None, StatusCode::OK).await
}

async fn render_incident(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    match build_incident(state, viewer, id, error).await {
        Ok((title, markup)) => respond(status, layout(Some(viewer), &title, markup)),
        Err(error) => error_page(Some(viewer), &error),
    }
}

async fn build_incident(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    error: Option<&str>,
) -> Result<(String, Markup), ApiError> {
    let (incident, own) = portal_incident(state, viewer, id).await?;
    let entries = state
        .store
        .timeline(&IncidentRef::Id(incident.id.clone()), 0, None)
        .await?;
    let follows = state.store.list_prefs(&viewer.auth.user.id, "follow").await?;
    let following = follows.iter().any(|p| p.name == incident.id);
    let names = Names::for_reporter(&viewer.auth.user.id);
    let zone = viewer.zone();
    let key = key(&incident);
    let state_name = incident.state.as_str();
    // The reporter sees every entry but internal notes; others only public updates.
    let visible: Vec<_> = entries
        .iter()
        .filter(|e| {
            if own {
                can_view_entry(&viewer.auth.actor, e)
                    && (viewer.is_staff()
                        || e.kind != "commented"
                        || e.data.get("visibility").and_then(serde_json::Value::as_str) == Some("public"))
            } else {
                e.kind == "commented" && e.data.get("visibility").and_then(serde_json::Value::as_str) == Some("public")
            }
        })
        .collect();
    let csrf = viewer.csrf_field();
    let base = format!("/portal/incidents/{key}");
    let last_seq = entries.last().map_or(0, |e| e.seq);
    let markup = html! {
        h1 { span.key { (key) } " " (incident.title) }
        p.badges { (state_badge(state_name)) @if incident.major { " " span.badge.major { "Major incident" } } }
        (alert(error))
        @if own && state_name == "resolved" {
            section.confirm aria-labelledby="confirm-h" {
                h2 #confirm-h { "Is it fixed?" }
                @if let Some(resolution) = &incident.resolution { p.prewrap { (resolution.notes) } }
                form.stack method="post" action={ (base) "/confirm" } {
                    (csrf)
                    label for="satisfaction" { "How happy are you with how it was handled? (optional)" }
                    select #satisfaction name="satisfaction" {
                        option value="" { "No answer" }
                        @for (n, label) in [(5, "5 – Very happy"), (4, "4 – Happy"), (3, "3 – Neutral"), (2, "2 – Unhappy"), (1, "1 – Very unhappy")] {
                            option value=(n) { (label) }
                        }
                    }
                    label for="feedback" { "Anything to add? (optional)" }
                    input #feedback name="feedback" maxlength="2000";
                    button.primary type="submit" { "Yes, it is fixed" }
                }
                form.stack method="post" action={ (base) "/reject" } {
                    (csrf)
                    label for="reject-reason" { "What is still wrong?" }
                    input #reject-reason name="reason" maxlength="2000";
                    button type="submit" { "No, it is still broken" }
                }
            }
        }
        @if !own {
            @if following {
                form.inline method="post" action={ (base) "/unfollow" } { (csrf) button type="submit" { "Stop following" } }
            } @else if OPEN.contains(&state_name) {
                form.inline method="post" action={ (base) "/follow" } { (csrf) button type="submit" { "This affects me too" } }
            }
        }
        dl.facts {
            dt { "Service" } dd { (incident.service.as_deref().unwrap_or("—")) }
            dt { "Reported" } dd { (view::time(incident.created_at, &zone)) }
            @if let Some(at) = incident.resolved_at { dt { "Resolved" } dd { (view::time(at, &zone)) } }
        }
        @if own {
            @if let Some(description) = &incident.description { h2 { "Your report" } p.prewrap { (description) } }
            h2 #reply-h { "Add information" }
            form.stack method="post" action={ (base) "/comment" } aria-labelledby="reply-h" {
                (csrf)
                label for="comment" { "Comment" }
                textarea #comment name="body" rows="3" required {}
                button type="submit" { "Send" }
            }
        }
        h2 #updates-h { "Updates" }
        ol.timeline data-testid="timeline" aria-labelledby="updates-h" aria-live="polite"
            data-stream=[own.then(|| format!("/incidents/{key}/stream"))] data-after=(last_seq) {
            @for e in visible.iter().rev() { (view::entry(e, Some(&names), &zone)) }
        }
    };
    Ok((format!("{key} {}", incident.title), markup))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConfirmForm {
    satisfaction: String,
    feedback: String,
    reason: String,
    body: String,
}

async fn act_as_reporter(state: &AppState, viewer: &Viewer, id: &str, action: &str, body: ActionBody) -> Response {
    match crate::incidents::perform(state, &viewer.auth, id, action, body, None).await {
        Ok(incident) => Redirect::to(&format!("/portal/incidents/{}", key(&incident))).into_response(),
        Err(error) if error.status == StatusCode::NOT_FOUND => error_page(Some(viewer), &error),
        Err(error) => render_incident(state, viewer, id, Some(&error.detail), error.status).await,
    }
}

/// `POST /portal/incidents/{id}/confirm`: "yes, it is fixed" closes it.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ConfirmForm>,
) -> Response {
    let satisfaction = match given(Some(posted.form.satisfaction)).map(|s| s.parse::<u8>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return error_page(Some(&posted.viewer), &ApiError::invalid("satisfaction must be 1 to 5")),
    };
    let body = ActionBody {
        satisfaction,
        feedback: given(Some(posted.form.feedback)),
        note: Some("The reporter confirmed the resolution.".into()),
        ..ActionBody::default()
    };
    act_as_reporter(&state, &posted.viewer, &id, "close", body).await
}

/// `POST /portal/incidents/{id}/reject`: "no, it is still broken" reopens it.
pub(crate) async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ConfirmForm>,
) -> Response {
    let reason = given(Some(posted.form.reason)).unwrap_or_else(|| "The reporter says it is not fixed.".into());
    let body = ActionBody {
        reason: Some(reason),
        ..ActionBody::default()
    };
    act_as_reporter(&state, &posted.viewer, &id, "reopen", body).await
}

/// `POST /portal/incidents/{id}/comment`: a public comment by the reporter.
pub(crate) async fn comment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<ConfirmForm>,
) -> Response {
    let viewer = posted.viewer;
    let body = CreateComment {
        body: posted.form.body,
        visibility: Some("public".into()),
        occurred_at: None,
        started_at: None,
        completed_at: None,
    };
    match crate::incidents::add_comment(&state, &viewer.auth, &id, body, None).await {
        Ok(_) => Redirect::to(&format!("/portal/incidents/{id}")).into_response(),
        Err(error) if error.status == StatusCode::NOT_FOUND => error_page(Some(&viewer), &error),
        Err(error) => render_incident(&state, &viewer, &id, Some(&error.detail), error.status).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// `POST /portal/incidents/{id}/follow`: follow an open major incident.
pub(crate) async fn follow(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> Response {
    let viewer = posted.viewer;
    let outcome = async {
        let (incident, own) = portal_incident(&state, &viewer, &id).await?;
        if !(own || incident.major && OPEN.contains(&incident.state.as_str())) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "only open major incidents can be followed",
            ));
        }
        state
            .store
            .put_pref(
                &viewer.auth.user.id,
                UserPref {
                    kind: "follow".into(),
                    name: incident.id.clone(),
                    value: key(&incident),
                    created_at: state.clock.now(),
                },
            )
            .await?;
        Ok(incident)
    }
    .await;
    match outcome {
        Ok(incident) => Redirect::to(&format!("/portal/incidents/{}", key(&incident))).into_response(),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

/// `POST /portal/incidents/{id}/unfollow`.
pub(crate) async fn unfollow(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> Response {
    let viewer = posted.viewer;
    let outcome = async {
        let (incident, _) = portal_incident(&state, &viewer, &id).await?;
        state
            .store
            .delete_pref(&viewer.auth.user.id, "follow", &incident.id)
            .await?;
        Ok::<_, ApiError>(incident)
    }
    .await;
    match outcome {
        Ok(incident) => Redirect::to(&format!("/portal/incidents/{}", key(&incident))).into_response(),
        Err(error) => error_page(Some(&viewer), &error),
    }
}
