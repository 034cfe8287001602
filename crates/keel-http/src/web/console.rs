//! The agents' console: the queue ("my work", team queues, everything open)
//! with filters and saved views, a board per team with WIP limits, and the
//! quick registration form.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keel_domain::{Impact, Urgency};
use keel_store::UserPref;
use maud::{Markup, html};
use serde::Deserialize;

use super::session::given;
use super::view::{self, Names, STATE_CHOICES, priority_badge};
use super::{Posted, Viewer, alert, error_page, json_attr, layout, respond};
use crate::AppState;
use crate::dto::CreateIncident;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::incidents::ListQuery;

/// The queue's filters, as the GET form sends them.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(crate) struct QueueQuery {
    state: Option<String>,
    priority: Option<String>,
    sla: Option<String>,
    service: Option<String>,
    team: Option<String>,
    owner: Option<String>,
    involved: Option<String>,
    major: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

impl QueueQuery {
    fn to_list(&self) -> ListQuery {
        let state = match self.state.as_deref() {
            None | Some("open") => Some("new,accepted,on_hold".to_string()),
            Some("") => None,
            Some(other) => Some(other.to_string()),
        };
        ListQuery {
            state,
            priority: given(self.priority.clone()),
            sla: given(self.sla.clone()),
            service: given(self.service.clone()),
            team: given(self.team.clone()),
            owner: given(self.owner.clone()),
            involved: given(self.involved.clone()),
            major: self.major.as_deref().map(|m| m == "true"),
            q: given(self.q.clone()),
            cursor: given(self.cursor.clone()),
            limit: Some(50),
        }
    }

    /// This filter as a query string, without the cursor (for saved views).
    fn encoded(&self) -> String {
        let fields = [
            ("state", &self.state),
            ("priority", &self.priority),
            ("sla", &self.sla),
            ("service", &self.service),
            ("team", &self.team),
            ("owner", &self.owner),
            ("involved", &self.involved),
            ("major", &self.major),
            ("q", &self.q),
        ];
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
            .filter(|(k, v)| !v.is_empty() || *k == "state")
            .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

fn selected(current: Option<&str>, value: &str) -> bool {
    current.unwrap_or("") == value
}

/// `GET /`: the queue.
pub(crate) async fn queue(
    State(state): State<AppState>,
    viewer: Viewer,
    query: Result<axum::extract::Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    let query = match query {
        Ok(axum::extract::Query(q)) => q,
        Err(rejection) => return error_page(Some(&viewer), &ApiError::bad_request(rejection.body_text())),
    };
    match build_queue(&state, &viewer, &query).await {
        Ok(markup) => respond(StatusCode::OK, layout(Some(&viewer), "Queue", markup)),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

async fn build_queue(state: &AppState, viewer: &Viewer, query: &QueueQuery) -> Result<Markup, ApiError> {
    let list = crate::incidents::list(State(state.clone()), viewer.auth.clone(), ApiQuery(query.to_list()))
        .await?
        .0;
    let (names, routing, views) = tokio::try_join!(
        Names::load(state),
        async { state.routing().await.map_err(ApiError::from) },
        async {
            state
                .store
                .list_prefs(&viewer.auth.user.id, "view")
                .await
                .map_err(ApiError::from)
        },
    )?;
    let zone = viewer.zone();
    let now = state.clock.now();
    let me = viewer.auth.user.id.as_str();
    let my_teams: Vec<&str> = routing
        .catalogue
        .teams
        .iter()
        .filter(|t| t.members.iter().any(|m| m.as_str() == me) || t.lead.as_ref().is_some_and(|l| l.as_str() == me))
        .map(|t| t.name.as_str())
        .collect();
    let current = query.encoded();
    let q = |v: &Option<String>| v.clone().unwrap_or_default();
    let next_link = list.next_cursor.as_ref().map(|cursor| {
        let mut next = query.clone();
        next.cursor = Some(cursor.clone());
        format!("/?{}&cursor={}", next.encoded(), urlencode(cursor))
    });
    Ok(html! {
        h1 { "Queue" }
        nav.tabs aria-label="Views" {
            ul {
                li { a href="/?owner=me&state=open" { "My work" } }
                li { a href="/?involved=me&state=open" { "Involved" } }
                @for team in &my_teams { li { a href={ "/?team=" (urlencode(team)) "&state=open" } { "Team " (team) } } }
                li { a href="/?state=open" { "All open" } }
                li { a href="/?state=open&sla=at_risk,breached" { "SLA at risk" } }
                li { a href="/?state=open&major=true" { "Major" } }
                @for v in &views { li { a.saved href={ "/?" (v.value) } { (v.name) } } }
            }
        }
        form.filters method="get" action="/" role="search" aria-label="Filter incidents" {
            div.field {
                label for="f-state" { "State" }
                select #f-state name="state" {
                    @for (value, label) in STATE_CHOICES {
                        option value=(value) selected[selected(query.state.as_deref().or(Some("open")), value)] { (label) }
                    }
                }
            }
            div.field {
                label for="f-priority" { "Priority" }
                select #f-priority name="priority" {
                    option value="" { "Any" }
                    @for p in ["P1", "P2", "P3", "P4", "P5", "P1,P2"] {
                        option value=(p) selected[selected(query.priority.as_deref(), p)] { (p.replace(',', " or ")) }
                    }
                }
            }
            div.field {
                label for="f-sla" { "SLA" }
                select #f-sla name="sla" {
                    option value="" { "Any" }
                    @for (value, label) in [("within", "Within target"), ("at_risk", "At risk"), ("breached", "Breached"), ("at_risk,breached", "At risk or breached")] {
                        option value=(value) selected[selected(query.sla.as_deref(), value)] { (label) }
                    }
                }
            }
            div.field {
                label for="f-service" { "Service" }
                select #f-service name="service" {
                    option value="" { "Any" }
                    @for s in &routing.catalogue.services {
                        option value=(s.name) selected[selected(query.service.as_deref(), &s.name)] { (s.name) }
                    }
                }
            }
            div.field {
                label for="f-team" { "Team" }
                select #f-team name="team" {
                    option value="" { "Any" }
                    @for t in &routing.catalogue.teams {
                        option value=(t.name) selected[selected(query.team.as_deref(), &t.name)] { (t.name) }
                    }
                }
            }
            div.field {
                label for="f-owner" { "Owner" }
                select #f-owner name="owner" {
                    option value="" { "Anyone" }
                    option value="me" selected[selected(query.owner.as_deref(), "me")] { "Me" }
                    @for (id, name) in names.staff.iter().filter(|(id, _)| id != me) {
                        option value=(id) selected[selected(query.owner.as_deref(), id)] { (name) }
                    }
                }
            }
            div.field {
                label for="f-q" { "Search" }
                input #f-q type="search" name="q" value=(q(&query.q)) placeholder="number, title or text";
            }
            div.field.check {
                label { input type="checkbox" name="major" value="true" checked[query.major.as_deref() == Some("true")]; " Major only" }
            }
            @if let Some(involved) = &query.involved { input type="hidden" name="involved" value=(involved); }
            button type="submit" { "Filter" }
        }
        @if list.items.is_empty() {
            p.empty { "Nothing here. " a href="/incidents/new" { "Register an incident" } "." }
        } @else {
            div.table-wrap {
                table.queue.stack {
                    caption.visually-hidden { "Incidents" }
                    thead { tr {
                        th scope="col" { "Number" } th scope="col" { "Title" } th scope="col" { "Priority" }
                        th scope="col" { "State" } th scope="col" { "SLA" } th scope="col" { "Service" }
                        th scope="col" { "Team" } th scope="col" { "Owner" } th scope="col" { "Updated" }
                    } }
                    tbody {
                        @for i in &list.items {
                            tr {
                                td { a href={ "/incidents/" (i.key) } { (i.key) } }
                                td.title { a href={ "/incidents/" (i.key) } { (i.title) } @if i.major { " " span.badge.major { "Major" } } }
                                td { (priority_badge(&i.priority)) }
                                td { (state_badge_plain(&i.state)) }
                                td { @match &i.sla {
                                    Some(sla) => span class={ "sla-" (sla.state) } { (view::sla_words(&sla.state)) }
                                    None => "—",
                                } }
                                td { (i.service.as_deref().unwrap_or("—")) }
                                td { (i.team.as_deref().unwrap_or("—")) }
                                td { (names.of(&i.owner)) }
                                td { (updated(&i.updated_at, now, &zone)) }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next_link { p { a href=(next) rel="next" { "Next page" } } }
        }
        details.save-view {
            summary { "Save this view" }
            form.inline method="post" action="/views" {
                (viewer.csrf_field())
                input type="hidden" name="query" value=(current);
                label for="view-name" { "Name" }
                input #view-name name="name" required maxlength="60";
                button type="submit" { "Save view" }
            }
            @if !views.is_empty() {
                ul.saved-views {
                    @for v in &views {
                        li {
                            a href={ "/?" (v.value) } { (v.name) }
                            form.inline method="post" action="/views/delete" {
                                (viewer.csrf_field())
                                input type="hidden" name="name" value=(v.name);
                                button.link type="submit" aria-label={ "Delete view " (v.name) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn state_badge_plain(state: &str) -> Markup {
    html! { span class={ "badge state-" (state) } { (view::state_words(state)) } }
}

fn updated(text: &str, now: keel_domain::Timestamp, _zone: &jiff::tz::TimeZone) -> Markup {
    match text.parse::<jiff::Timestamp>() {
        Ok(ts) => {
            let micros = ts.as_microsecond();
            html! { time datetime=(text) { (view::relative(micros - now.as_micros())) } }
        }
        Err(_) => html! { (text) },
    }
}

pub(crate) fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub(crate) struct SaveView {
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
}

/// `POST /views`: saves the current filter under a name.
pub(crate) async fn save_view(State(state): State<AppState>, posted: Posted<SaveView>) -> Response {
    let name = posted.form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 60 || name.contains('\0') || posted.form.query.len() > 2000 {
        return error_page(
            Some(&posted.viewer),
            &ApiError::invalid("a view needs a name of 1 to 60 characters"),
        );
    }
    let pref = UserPref {
        kind: "view".into(),
        name,
        value: posted.form.query.clone(),
        created_at: state.clock.now(),
    };
    match state.store.put_pref(&posted.viewer.auth.user.id, pref).await {
        Ok(()) => Redirect::to(&format!("/?{}", posted.form.query)).into_response(),
        Err(error) => error_page(Some(&posted.viewer), &error.into()),
    }
}

/// `POST /views/delete`.
pub(crate) async fn delete_view(State(state): State<AppState>, posted: Posted<SaveView>) -> Response {
    match state
        .store
        .delete_pref(&posted.viewer.auth.user.id, "view", &posted.form.name)
        .await
    {
        Ok(()) => Redirect::to("/").into_response(),
        Err(error) => error_page(Some(&posted.viewer), &error.into()),
    }
}

/// `GET /boards`: the teams, each with a link to its board.
pub(crate) async fn boards(State(state): State<AppState>, viewer: Viewer) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    let routing = match state.routing().await {
        Ok(routing) => routing,
        Err(error) => return error_page(Some(&viewer), &error.into()),
    };
    let markup = html! {
        h1 { "Boards" }
        @if routing.catalogue.teams.is_empty() {
            p { "No teams yet." @if viewer.is_admin() { " " a href="/admin/teams" { "Create one" } "." } }
        }
        ul.cards {
            @for t in &routing.catalogue.teams {
                li { a href={ "/teams/" (urlencode(&t.id)) "/board" } { (t.name) } }
            }
        }
    };
    respond(StatusCode::OK, layout(Some(&viewer), "Boards", markup))
}

/// Cards shown on a board; the column headings count them all.
const BOARD_CARDS: u32 = 100;

/// `GET /teams/{id}/board`: the team's open work in columns by state, with
/// WIP limits, most urgent first; and what it resolved lately.
pub(crate) async fn board(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    match build_board(&state, &viewer, &id).await {
        Ok((title, markup)) => respond(StatusCode::OK, layout(Some(&viewer), &title, markup)),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

async fn build_board(state: &AppState, viewer: &Viewer, id: &str) -> Result<(String, Markup), ApiError> {
    let routing = state.routing().await?;
    let team = routing
        .catalogue
        .team(id)
        .ok_or_else(|| ApiError::not_found("team"))?
        .clone();
    let keys = vec![team.name.clone(), team.id.clone()];
    let (backlog, resolved, names) = tokio::try_join!(
        async {
            state
                .store
                .team_backlog(keys, BOARD_CARDS)
                .await
                .map_err(ApiError::from)
        },
        crate::incidents::list(
            State(state.clone()),
            viewer.auth.clone(),
            ApiQuery(ListQuery {
                state: Some("resolved".into()),
                team: Some(team.name.clone()),
                limit: Some(20),
                ..ListQuery::default()
            }),
        ),
        Names::load(state),
    )?;
    let now = state.clock.now();
    let items: Vec<crate::dto::IncidentView> = backlog
        .items
        .iter()
        .map(|(incident, _)| crate::incidents::view_with_sla(incident, &routing.sla, now))
        .collect();
    let resolved = resolved.0.items;
    let card = |i: &crate::dto::IncidentView| {
        html! {
            li.card {
                a href={ "/incidents/" (i.key) } { strong { (i.key) } " " (i.title) }
                div.card-meta {
                    (priority_badge(&i.priority))
                    @if i.major { " " span.badge.major { "Major" } }
                    @if let Some(sla) = &i.sla { " " span class={ "sla-" (sla.state) } { "SLA " (view::sla_words(&sla.state)) } }
                    " · " (names.of(&i.owner))
                }
            }
        }
    };
    let markup = html! {
        h1 { "Board: " (team.name) }
        div.board {
            @for column in ["new", "accepted", "on_hold"] {
                @let count = backlog.counts.get(column).copied().unwrap_or(0);
                @let limit = team.wip_limits.get(column).copied();
                @let over = limit.is_some_and(|l| count > i64::from(l));
                @let shown = items.iter().filter(|i| i.state == column).count();
                section.column.over[over] aria-labelledby={ "col-" (column) } {
                    h2 #{ "col-" (column) } {
                        (view::state_words(column))
                        " " span.count { (count) @if let Some(limit) = limit { " / " (limit) } }
                    }
                    @if over { p.warn { "Over the WIP limit" } }
                    ul.cards {
                        @for i in items.iter().filter(|i| i.state == column) { (card(i)) }
                    }
                    @if i64::try_from(shown).unwrap_or(0) < count {
                        p { a href={ "/?team=" (urlencode(&team.name)) "&state=" (column) } { "All " (count) " in the queue" } }
                    }
                }
            }
            section.column aria-labelledby="col-resolved" {
                h2 #col-resolved { "Resolved" " " span.count { (resolved.len()) } }
                ul.cards { @for i in &resolved { (card(i)) } }
            }
        }
    };
    Ok((format!("Board · {}", team.name), markup))
}

/// What the registration form holds (kept when the form comes back with an error).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RegisterForm {
    title: String,
    description: String,
    impact: String,
    urgency: String,
    service: String,
    category: String,
    team: String,
    channel: String,
    major: Option<String>,
}

/// The priority matrix as `[[P1, …], …]` for the live preview.
fn matrix_json(state: &AppState) -> serde_json::Value {
    let rows: Vec<Vec<&str>> = (1..=4u8)
        .map(|i| {
            (1..=4u8)
                .map(|u| match (Impact::try_from(i), Urgency::try_from(u)) {
                    (Ok(i), Ok(u)) => state.matrix.priority(i, u).as_str(),
                    _ => "",
                })
                .collect()
        })
        .collect();
    serde_json::json!(rows)
}

async fn register_page(
    state: &AppState,
    viewer: &Viewer,
    form: &RegisterForm,
    error: Option<&str>,
) -> Result<Markup, ApiError> {
    let routing = state.routing().await?;
    let impact = form.impact.parse::<u8>().unwrap_or(3);
    let urgency = form.urgency.parse::<u8>().unwrap_or(3);
    let preview = match (Impact::try_from(impact), Urgency::try_from(urgency)) {
        (Ok(i), Ok(u)) => state.matrix.priority(i, u).as_str(),
        _ => "P3",
    };
    Ok(html! {
        h1 { "Register an incident" }
        (alert(error))
        form.stack.register method="post" action="/incidents" {
            (viewer.csrf_field())
            label for="title" { "Title" }
            input #title name="title" value=(form.title) required maxlength="300" autofocus
                aria-describedby="title-hint";
            small #title-hint.hint { "What is broken, for whom — in a few words." }
            label for="description" { "Description" }
            textarea #description name="description" rows="4" { (form.description) }
            div.pair {
                div {
                    label for="impact" { "Impact" }
                    select #impact name="impact" aria-describedby="impact-hint" {
                        @for level in 1..=4u8 { option value=(level) selected[level == impact] { (view::impact_words(level)) } }
                    }
                    small #impact-hint.hint { "How much of the business is affected." }
                }
                div {
                    label for="urgency" { "Urgency" }
                    select #urgency name="urgency" aria-describedby="urgency-hint" {
                        @for level in 1..=4u8 { option value=(level) selected[level == urgency] { (view::urgency_words(level)) } }
                    }
                    small #urgency-hint.hint { "How fast it must be fixed." }
                }
            }
            p.priority { "Priority: " output #priority-preview data-testid="priority-preview" for="impact urgency"
                data-matrix=(json_attr(&matrix_json(state))) { (preview) } }
            div.pair {
                div {
                    label for="service" { "Service" }
                    select #service name="service" {
                        option value="" { "(not known)" }
                        @for s in &routing.catalogue.services { option value=(s.name) selected[form.service == s.name] { (s.name) } }
                    }
                }
                div {
                    label for="team" { "Team" }
                    select #team name="team" {
                        option value="" { "(by the rules)" }
                        @for t in &routing.catalogue.teams { option value=(t.name) selected[form.team == t.name] { (t.name) } }
                    }
                }
            }
            label for="channel" { "Reported via" }
            select #channel name="channel" {
                @for (value, label) in [("phone", "Phone"), ("email", "E-mail"), ("portal", "Portal or chat"), ("api", "Another tool (API)")] {
                    option value=(value) selected[form.channel == value] { (label) }
                }
            }
            label for="category" { "Category" }
            input #category name="category" value=(form.category) list="categories" maxlength="100";
            datalist #categories { @for c in ["hardware", "software", "network", "access", "email", "database", "security"] { option value=(c) {} } }
            label.check { input type="checkbox" name="major" value="true" checked[form.major.is_some()]; " Major incident" }
            button.primary type="submit" { "Register incident" }
        }
    })
}

/// `GET /incidents/new`.
pub(crate) async fn register_form(State(state): State<AppState>, viewer: Viewer) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal/new").into_response();
    }
    match register_page(&state, &viewer, &RegisterForm::default(), None).await {
        Ok(markup) => respond(StatusCode::OK, layout(Some(&viewer), "Register an incident", markup)),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

fn level(text: &str, what: &str) -> Result<Option<u8>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=4).contains(n))
        .map(Some)
        .ok_or_else(|| ApiError::invalid(format!("{what} must be 1, 2, 3 or 4")))
}

/// `POST /incidents`: registers, then shows the new incident; a refusal
/// shows the form again with everything typed still there.
pub(crate) async fn register(State(state): State<AppState>, posted: Posted<RegisterForm>) -> Response {
    let viewer = posted.viewer;
    if !viewer.is_staff() {
        return error_page(
            Some(&viewer),
            &ApiError::forbidden("end users report problems at /portal/new"),
        );
    }
    let form = posted.form;
    let outcome = async {
        let body = CreateIncident {
            title: form.title.trim().to_string(),
            description: given(Some(form.description.clone())),
            impact: level(&form.impact, "impact")?,
            urgency: level(&form.urgency, "urgency")?,
            service: given(Some(form.service.clone())),
            category: given(Some(form.category.clone())),
            team: given(Some(form.team.clone())),
            major: Some(form.major.is_some()),
            source: Some("specialist".into()),
            channel: Some(if form.channel.is_empty() {
                "phone".into()
            } else {
                form.channel.clone()
            }),
            ..CreateIncident::default()
        };
        crate::incidents::register(&state, &viewer.auth, body).await
    }
    .await;
    match outcome {
        Ok(incident) => Redirect::to(&format!("/incidents/INC-{}", incident.number)).into_response(),
        Err(error) => match register_page(&state, &viewer, &form, Some(&error.detail)).await {
            Ok(markup) => respond(error.status, layout(Some(&viewer), "Register an incident", markup)),
            Err(error) => error_page(Some(&viewer), &error),
        },
    }
}
