//! Administration pages (users, teams, services, CIs, integrations, rules,
//! SLA policies, schedules, escalation policies) and every user's account
//! page. Each form goes through the JSON API's own handler, so the checks
//! are the same; the richer documents (rules, SLA policies, schedules,
//! escalation policies) are edited as JSON with the API's shapes.

use axum::Json;
use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::session::{given, verify_password};
use super::view::Names;
use super::{Posted, Viewer, alert, error_page, layout, respond};
use crate::AppState;
use crate::catalogue::{CiInput, ServiceInput, TeamInput};
use crate::dto::{CreateUser, PatchUser};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, parse_json};

/// The refusal for anyone but an admin.
fn not_admin(viewer: &Viewer) -> Option<Response> {
    (!viewer.is_admin()).then(|| error_page(Some(viewer), &ApiError::forbidden("this needs the admin role")))
}

/// One section of the admin area, with a notice or an error on top.
fn admin_page(
    viewer: &Viewer,
    status: StatusCode,
    title: &str,
    notice: Option<&str>,
    error: Option<&str>,
    body: Markup,
) -> Response {
    respond(
        status,
        layout(
            Some(viewer),
            title,
            html! {
                nav.subnav aria-label="Administration" {
                    ul {
                        @for (href, label) in SECTIONS { li { a href=(href) { (label) } } }
                    }
                }
                h1 { (title) }
                @if let Some(notice) = notice { div.notice role="status" { (notice) } }
                (alert(error))
                (body)
            },
        ),
    )
}

const SECTIONS: [(&str, &str); 9] = [
    ("/admin/users", "Users"),
    ("/admin/teams", "Teams"),
    ("/admin/services", "Services"),
    ("/admin/cis", "Configuration items"),
    ("/admin/integrations", "Integrations"),
    ("/admin/rules", "Rules"),
    ("/admin/sla-policies", "SLA policies"),
    ("/admin/schedules", "Schedules"),
    ("/admin/escalation-policies", "Escalation policies"),
];

/// `GET /admin`.
pub(crate) async fn index(viewer: Viewer) -> Response {
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    admin_page(
        &viewer,
        StatusCode::OK,
        "Administration",
        None,
        None,
        html! { ul.cards { @for (href, label) in SECTIONS { li { a href=(href) { (label) } } } } },
    )
}

// ---- users ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct UserForm {
    name: String,
    email: String,
    role: String,
    password: String,
    time_zone: String,
    disabled: Option<String>,
    op: String,
}

const ROLES: [(&str, &str); 4] = [
    ("end_user", "End user"),
    ("agent", "Agent"),
    ("incident_manager", "Incident manager"),
    ("admin", "Admin"),
];

async fn users_page(
    state: &AppState,
    viewer: &Viewer,
    form: &UserForm,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let users = match state.store.list_users().await {
        Ok(users) => users,
        Err(error) => return error_page(Some(viewer), &error.into()),
    };
    let csrf = viewer.csrf_field();
    let body = html! {
        div.table-wrap {
            table.stack {
                caption.visually-hidden { "Users" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Change" } } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.name) }
                            td { (u.email) }
                            td { (u.role.as_str()) }
                            td { @if u.disabled { "Disabled" } @else { "Active" } }
                            td {
                                form.inline method="post" action={ "/admin/users/" (u.id) } {
                                    (csrf)
                                    input type="hidden" name="op" value="role";
                                    label.visually-hidden for={ "role-" (u.id) } { "Role of " (u.name) }
                                    select #{ "role-" (u.id) } name="role" {
                                        @for (value, label) in ROLES { option value=(value) selected[u.role.as_str() == value] { (label) } }
                                    }
                                    button type="submit" { "Set role" }
                                }
                                form.inline method="post" action={ "/admin/users/" (u.id) } {
                                    (csrf)
                                    input type="hidden" name="op" value=(if u.disabled { "enable" } else { "disable" });
                                    button type="submit" { @if u.disabled { "Enable " } @else { "Disable " } span.visually-hidden { (u.name) } }
                                }
                                form.inline method="post" action={ "/admin/users/" (u.id) } {
                                    (csrf)
                                    input type="hidden" name="op" value="unlock";
                                    button type="submit" { "Unlock " span.visually-hidden { (u.name) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 #new-user-h { "New user" }
        form.stack method="post" action="/admin/users" aria-labelledby="new-user-h" {
            (csrf)
            label for="u-name" { "Name" }
            input #u-name name="name" value=(form.name) required maxlength="200";
            label for="u-email" { "Email" }
            input #u-email type="email" name="email" value=(form.email) required;
            label for="u-role" { "Role" }
            select #u-role name="role" {
                @for (value, label) in ROLES { option value=(value) selected[form.role == value || (form.role.is_empty() && value == "agent")] { (label) } }
            }
            label for="u-password" { "Password" }
            input #u-password type="password" name="password" autocomplete="new-password" minlength="12" aria-describedby="u-password-hint";
            small #u-password-hint.hint { "At least 12 characters. Leave empty for API-only users." }
            label for="u-zone" { "Time zone" }
            input #u-zone name="time_zone" value=(form.time_zone) placeholder="Europe/Berlin";
            button.primary type="submit" { "Create user" }
        }
    };
    admin_page(viewer, status, "Users", notice, error, body)
}

/// `GET /admin/users`.
pub(crate) async fn users(State(state): State<AppState>, viewer: Viewer) -> Response {
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    users_page(&state, &viewer, &UserForm::default(), StatusCode::OK, None, None).await
}

/// `POST /admin/users`.
pub(crate) async fn create_user(State(state): State<AppState>, posted: Posted<UserForm>) -> Response {
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    let form = posted.form;
    let body = CreateUser {
        name: form.name.clone(),
        email: form.email.clone(),
        role: form.role.clone(),
        password: given(Some(form.password.clone())),
        time_zone: given(Some(form.time_zone.clone())),
        contact_methods: None,
    };
    match crate::users::create(State(state.clone()), viewer.auth.clone(), ApiJson(body)).await {
        Ok((_, Json(user))) => {
            let notice = format!("Created {} ({}).", user.name, user.email);
            users_page(
                &state,
                &viewer,
                &UserForm::default(),
                StatusCode::OK,
                Some(&notice),
                None,
            )
            .await
        }
        Err(error) => {
            let kept = UserForm {
                password: String::new(),
                ..form
            };
            users_page(&state, &viewer, &kept, error.status, None, Some(&error.detail)).await
        }
    }
}

/// `POST /admin/users/{id}`: set role, disable, enable or unlock.
pub(crate) async fn update_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<UserForm>,
) -> Response {
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    let form = posted.form;
    let patch = |role: Option<String>, disabled: Option<bool>| PatchUser {
        name: None,
        role,
        time_zone: None,
        disabled,
        contact_methods: None,
        password: None,
    };
    let outcome: ApiResult<&str> = match form.op.as_str() {
        "role" => crate::users::patch(
            State(state.clone()),
            viewer.auth.clone(),
            Path(id.clone()),
            ApiJson(patch(Some(form.role.clone()), None)),
        )
        .await
        .map(|_| "Role changed."),
        "disable" | "enable" => {
            let disable = form.op == "disable";
            let done = crate::users::patch(
                State(state.clone()),
                viewer.auth.clone(),
                Path(id.clone()),
                ApiJson(patch(None, Some(disable))),
            )
            .await;
            match done {
                Ok(_) if disable => state
                    .store
                    .delete_user_sessions(&id, None)
                    .await
                    .map(|()| "Disabled and signed out everywhere.")
                    .map_err(ApiError::from),
                Ok(_) => Ok("Enabled."),
                Err(error) => Err(error),
            }
        }
        "unlock" => state
            .store
            .clear_login_failures(&id)
            .await
            .map(|()| "Unlocked: failed sign-ins forgotten.")
            .map_err(ApiError::from),
        _ => Err(ApiError::bad_request("unknown change")),
    };
    let _ = form.disabled;
    match outcome {
        Ok(notice) => {
            users_page(
                &state,
                &viewer,
                &UserForm::default(),
                StatusCode::OK,
                Some(notice),
                None,
            )
            .await
        }
        Err(error) => {
            users_page(
                &state,
                &viewer,
                &UserForm::default(),
                error.status,
                None,
                Some(&error.detail),
            )
            .await
        }
    }
}

// ---- teams, services, CIs ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CatalogueForm {
    name: String,
    description: String,
    lead: String,
    team: String,
    criticality: String,
    kind: String,
    location: String,
    wip_accepted: String,
}

fn split_ids(pairs: &[(String, String)], field: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, v)| k == field && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

async fn catalogue_page(
    state: &AppState,
    viewer: &Viewer,
    kind: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    kept: &CatalogueForm,
) -> Response {
    let (routing, names) = match tokio::try_join!(
        async { state.routing().await.map_err(ApiError::from) },
        Names::load(state)
    ) {
        Ok(loaded) => loaded,
        Err(error) => return error_page(Some(viewer), &error),
    };
    let catalogue = &routing.catalogue;
    let csrf = viewer.csrf_field();
    let (title, body) = match kind {
        "teams" => (
            "Teams",
            html! {
                table.stack {
                    caption.visually-hidden { "Teams" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Lead" } th scope="col" { "Members" } th scope="col" { "WIP limits" } th scope="col" { "Board" } th scope="col" { "Delete" } } }
                    tbody { @for t in &catalogue.teams { tr {
                        td { (t.name) }
                        td { (t.lead.as_ref().map_or("—", |l| names.of(l.as_str()))) }
                        td { (t.members.iter().map(|m| names.of(m.as_str())).collect::<Vec<_>>().join(", ")) }
                        td { (t.wip_limits.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")) }
                        td { a href={ "/teams/" (t.id) "/board" } { "Board" span.visually-hidden { " of " (t.name) } } }
                        td { form.inline method="post" action={ "/admin/teams/" (t.id) "/delete" } { (csrf) button.danger type="submit" { "Delete" span.visually-hidden { " " (t.name) } } } }
                    } } }
                }
                h2 #new-h { "New team" }
                form.stack method="post" action="/admin/teams" aria-labelledby="new-h" {
                    (csrf)
                    label for="c-name" { "Name" } input #c-name name="name" value=(kept.name) required maxlength="200";
                    label for="c-description" { "Description" } input #c-description name="description" value=(kept.description);
                    label for="c-lead" { "Lead" }
                    select #c-lead name="lead" { option value="" { "(none)" } @for (id, name) in &names.staff { option value=(id) { (name) } } }
                    label for="c-members" { "Members" }
                    select #c-members name="members" multiple size="5" { @for (id, name) in &names.staff { option value=(id) { (name) } } }
                    label for="c-wip" { "WIP limit of Accepted (optional)" } input #c-wip name="wip_accepted" inputmode="numeric";
                    button.primary type="submit" { "Create team" }
                }
            },
        ),
        "services" => (
            "Services",
            html! {
                table.stack {
                    caption.visually-hidden { "Services" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Team" } th scope="col" { "Criticality" } th scope="col" { "Delete" } } }
                    tbody { @for s in &catalogue.services { tr {
                        td { (s.name) }
                        td { (s.team.as_ref().and_then(|t| catalogue.team(t)).map_or("—", |t| t.name.as_str())) }
                        td { (format!("{:?}", s.criticality).to_lowercase()) }
                        td { form.inline method="post" action={ "/admin/services/" (s.id) "/delete" } { (csrf) button.danger type="submit" { "Delete" span.visually-hidden { " " (s.name) } } } }
                    } } }
                }
                h2 #new-h { "New service" }
                form.stack method="post" action="/admin/services" aria-labelledby="new-h" {
                    (csrf)
                    label for="c-name" { "Name" } input #c-name name="name" value=(kept.name) required maxlength="200";
                    label for="c-team" { "Owning team" }
                    select #c-team name="team" { option value="" { "(none)" } @for t in &catalogue.teams { option value=(t.name) { (t.name) } } }
                    label for="c-criticality" { "Criticality" }
                    select #c-criticality name="criticality" { @for c in ["critical", "high", "medium", "low"] { option value=(c) selected[c == "medium"] { (c) } } }
                    label for="c-description" { "Description" } input #c-description name="description" value=(kept.description);
                    button.primary type="submit" { "Create service" }
                }
            },
        ),
        _ => (
            "Configuration items",
            html! {
                table.stack {
                    caption.visually-hidden { "Configuration items" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Location" } th scope="col" { "Services" } th scope="col" { "Depends on" } th scope="col" { "Delete" } } }
                    tbody { @for c in &catalogue.cis { tr {
                        td { (c.name) } td { (c.kind) } td { (c.location.as_deref().unwrap_or("—")) }
                        td { (c.services.iter().filter_map(|s| catalogue.service(s)).map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (c.depends_on.iter().filter_map(|d| catalogue.cis.iter().find(|x| &x.id == d)).map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { form.inline method="post" action={ "/admin/cis/" (c.id) "/delete" } { (csrf) button.danger type="submit" { "Delete" span.visually-hidden { " " (c.name) } } } }
                    } } }
                }
                h2 #new-h { "New configuration item" }
                form.stack method="post" action="/admin/cis" aria-labelledby="new-h" {
                    (csrf)
                    label for="c-name" { "Name" } input #c-name name="name" value=(kept.name) required maxlength="200";
                    label for="c-kind" { "Kind" } input #c-kind name="kind" value=(kept.kind) required list="ci-kinds";
                    datalist #ci-kinds { @for k in ["server", "database", "network", "application", "storage", "cloud"] { option value=(k) {} } }
                    label for="c-location" { "Location" } input #c-location name="location" value=(kept.location);
                    label for="c-services" { "Supports services" }
                    select #c-services name="services" multiple size="4" { @for s in &catalogue.services { option value=(s.id) { (s.name) } } }
                    label for="c-depends" { "Depends on" }
                    select #c-depends name="depends_on" multiple size="4" { @for c in &catalogue.cis { option value=(c.id) { (c.name) } } }
                    button.primary type="submit" { "Create configuration item" }
                }
            },
        ),
    };
    admin_page(viewer, status, title, notice, error, body)
}

/// `POST /admin/teams|services|cis`.
async fn create_catalogue(state: &AppState, kind: &str, posted: Posted<CatalogueForm>) -> Response {
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    let form = posted.form;
    let kept = CatalogueForm {
        name: form.name.clone(),
        description: form.description.clone(),
        kind: form.kind.clone(),
        location: form.location.clone(),
        ..CatalogueForm::default()
    };
    let (s, auth) = (State(state.clone()), viewer.auth.clone());
    let outcome = match kind {
        "teams" => {
            let wip = match given(Some(form.wip_accepted.clone())).map(|w| w.parse::<u32>()) {
                None => None,
                Some(Ok(n)) => Some(std::collections::BTreeMap::from([("accepted".to_string(), n)])),
                Some(Err(_)) => {
                    let error = "the WIP limit must be a whole number";
                    return catalogue_page(
                        state,
                        &viewer,
                        kind,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        None,
                        Some(error),
                        &kept,
                    )
                    .await;
                }
            };
            let input = TeamInput {
                name: Some(form.name),
                description: given(Some(form.description)),
                lead: given(Some(form.lead)),
                members: Some(split_ids(&posted.pairs, "members")),
                wip_limits: wip,
            };
            crate::catalogue::create_team(s, auth, ApiJson(input))
                .await
                .map(IntoResponse::into_response)
        }
        "services" => {
            let input = ServiceInput {
                name: Some(form.name),
                team: given(Some(form.team)),
                criticality: given(Some(form.criticality)),
                description: given(Some(form.description)),
            };
            crate::catalogue::create_service(s, auth, ApiJson(input))
                .await
                .map(IntoResponse::into_response)
        }
        _ => {
            let input = CiInput {
                name: Some(form.name),
                kind: given(Some(form.kind)),
                location: given(Some(form.location)),
                services: Some(split_ids(&posted.pairs, "services")),
                depends_on: Some(split_ids(&posted.pairs, "depends_on")),
            };
            crate::catalogue::create_ci(s, auth, ApiJson(input))
                .await
                .map(IntoResponse::into_response)
        }
    };
    match outcome {
        Ok(_) => {
            catalogue_page(
                state,
                &viewer,
                kind,
                StatusCode::OK,
                Some("Created."),
                None,
                &CatalogueForm::default(),
            )
            .await
        }
        Err(error) => catalogue_page(state, &viewer, kind, error.status, None, Some(&error.detail), &kept).await,
    }
}

// ---- integrations ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct IntegrationForm {
    name: String,
    kind: String,
    service: String,
    team: String,
}

async fn integrations_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    key: Option<(&str, &str)>,
    error: Option<&str>,
) -> Response {
    let (list, routing) = match tokio::try_join!(
        crate::integrations::list(State(state.clone()), viewer.auth.clone()),
        async { state.routing().await.map_err(ApiError::from) }
    ) {
        Ok(loaded) => loaded,
        Err(error) => return error_page(Some(viewer), &error),
    };
    let csrf = viewer.csrf_field();
    let body = html! {
        @if let Some((name, key)) = key {
            div.notice.secret role="status" {
                p { "The key of " strong { (name) } " — shown only this once; copy it now:" }
                p { code data-testid="integration-key" { (key) } }
                p.hint { "Events: POST /api/v1/integrations/<key>/events · PagerDuty: routing_key · Alertmanager: /api/v1/integrations/<key>/alertmanager" }
            }
        }
        table.stack {
            caption.visually-hidden { "Integrations" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Service" } th scope="col" { "Team" } th scope="col" { "Key" } th scope="col" { "Rotate" } } }
            tbody { @for i in &list.0.items { tr {
                td { (i.name) } td { (i.kind) } td { (i.service.as_deref().unwrap_or("—")) } td { (i.team.as_deref().unwrap_or("—")) }
                td { code { (i.key_hint) "…" } @if i.disabled { " (disabled)" } }
                td { form.inline method="post" action={ "/admin/integrations/" (i.id) "/rotate" } {
                    (csrf) button type="submit" { "Rotate key" span.visually-hidden { " of " (i.name) } }
                } }
            } } }
        }
        h2 #new-h { "New integration" }
        form.stack method="post" action="/admin/integrations" aria-labelledby="new-h" {
            (csrf)
            label for="i-name" { "Name" } input #i-name name="name" required maxlength="200";
            label for="i-kind" { "Kind" }
            select #i-kind name="kind" { @for k in ["generic", "pagerduty", "alertmanager", "grafana"] { option value=(k) { (k) } } }
            label for="i-service" { "Service" }
            select #i-service name="service" { option value="" { "(from the event)" } @for s in &routing.catalogue.services { option value=(s.name) { (s.name) } } }
            label for="i-team" { "Team" }
            select #i-team name="team" { option value="" { "(by the rules)" } @for t in &routing.catalogue.teams { option value=(t.name) { (t.name) } } }
            button.primary type="submit" { "Create integration" }
        }
    };
    admin_page(viewer, status, "Integrations", None, error, body)
}

/// `GET /admin/integrations`.
pub(crate) async fn integrations(State(state): State<AppState>, viewer: Viewer) -> Response {
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    integrations_page(&state, &viewer, StatusCode::OK, None, None).await
}

/// `POST /admin/integrations`: creates it and shows its key once.
pub(crate) async fn create_integration(State(state): State<AppState>, posted: Posted<IntegrationForm>) -> Response {
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    let form = posted.form;
    let body = crate::integrations::CreateIntegration {
        name: form.name,
        kind: form.kind,
        service: given(Some(form.service)),
        team: given(Some(form.team)),
        policy: None,
        signing_secret: None,
    };
    match crate::integrations::create(State(state.clone()), viewer.auth.clone(), ApiJson(body)).await {
        Ok((_, Json(created))) => {
            let key = created.key.clone().unwrap_or_default();
            integrations_page(&state, &viewer, StatusCode::CREATED, Some((&created.name, &key)), None).await
        }
        Err(error) => integrations_page(&state, &viewer, error.status, None, Some(&error.detail)).await,
    }
}

/// `POST /admin/integrations/{id}/rotate`: a new key, shown once.
pub(crate) async fn rotate_integration(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<IntegrationForm>,
) -> Response {
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    match crate::integrations::rotate(State(state.clone()), viewer.auth.clone(), Path(id)).await {
        Ok(Json(rotated)) => {
            let key = rotated.key.clone().unwrap_or_default();
            integrations_page(&state, &viewer, StatusCode::OK, Some((&rotated.name, &key)), None).await
        }
        Err(error) => integrations_page(&state, &viewer, error.status, None, Some(&error.detail)).await,
    }
}

// ---- JSON documents: rules, SLA policies, schedules, escalation policies ----

fn document_title(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "rules" => (
            "Rules",
            r#"{"name": "Database alerts to DBA", "when": {"category": "database"}, "then": {"team": "DBA"}}"#,
        ),
        "sla-policies" => (
            "SLA policies",
            r#"{"name": "Standard", "targets": {"P1": {"response": "15m", "resolution": "4h"}}}"#,
        ),
        "schedules" => (
            "Schedules",
            r#"{"name": "Primary", "team": "Ops", "time_zone": "Europe/Berlin", "layers": [{"users": ["<user id>"], "rotation": "1w", "handoff": "09:00"}]}"#,
        ),
        "escalation-policies" => (
            "Escalation policies",
            r#"{"name": "Ops", "team": "Ops", "levels": [{"after": "15m", "targets": [{"lead": true}]}]}"#,
        ),
        _ => return None,
    })
}

async fn list_documents(state: &AppState, viewer: &Viewer, kind: &str) -> ApiResult<serde_json::Value> {
    let (state, auth) = (State(state.clone()), viewer.auth.clone());
    let value = match kind {
        "rules" => serde_json::to_value(crate::rules::list(state, auth).await?.0),
        "sla-policies" => serde_json::to_value(crate::sla::list(state, auth).await?.0),
        "schedules" => serde_json::to_value(crate::oncall::list(state, auth).await?.0),
        _ => serde_json::to_value(crate::oncall::list_escalations(state, auth).await?.0),
    };
    value.map_err(|e| ApiError::invalid(e.to_string()))
}

fn parsed<T: DeserializeOwned>(json: &str) -> ApiResult<T> {
    parse_json(json.as_bytes())
}

async fn create_one(state: &AppState, viewer: &Viewer, kind: &str, json: &str) -> ApiResult<()> {
    let (s, auth) = (State(state.clone()), viewer.auth.clone());
    match kind {
        "rules" => crate::rules::create(s, auth, ApiJson(parsed(json)?)).await.map(drop),
        "sla-policies" => crate::sla::create(s, auth, ApiJson(parsed(json)?)).await.map(drop),
        "schedules" => crate::oncall::create(s, auth, ApiJson(parsed(json)?)).await.map(drop),
        _ => crate::oncall::create_escalation(s, auth, ApiJson(parsed(json)?))
            .await
            .map(drop),
    }
}

async fn delete_one(state: &AppState, viewer: &Viewer, kind: &str, id: String) -> ApiResult<()> {
    let (s, auth, p) = (State(state.clone()), viewer.auth.clone(), Path(id));
    match kind {
        "teams" => crate::catalogue::delete_team(s, auth, p).await.map(drop),
        "services" => crate::catalogue::delete_service(s, auth, p).await.map(drop),
        "cis" => crate::catalogue::delete_ci(s, auth, p).await.map(drop),
        "rules" => crate::rules::delete(s, auth, p).await.map(drop),
        "sla-policies" => crate::sla::delete(s, auth, p).await.map(drop),
        "schedules" => crate::oncall::delete(s, auth, p).await.map(drop),
        _ => crate::oncall::delete_escalation(s, auth, p).await.map(drop),
    }
}

async fn documents_page(
    state: &AppState,
    viewer: &Viewer,
    kind: &str,
    json: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let Some((title, example)) = document_title(kind) else {
        return error_page(Some(viewer), &ApiError::not_found("page"));
    };
    let list = match list_documents(state, viewer, kind).await {
        Ok(list) => list,
        Err(error) => return error_page(Some(viewer), &error),
    };
    let items = list
        .get("items")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let csrf = viewer.csrf_field();
    let body = html! {
        @if items.is_empty() { p { "None yet." } }
        ul.documents {
            @for item in &items {
                @let id = item.get("id").and_then(serde_json::Value::as_str).unwrap_or("");
                @let name = item.get("name").and_then(serde_json::Value::as_str).unwrap_or(id);
                li {
                    details {
                        summary { (name) }
                        pre { (serde_json::to_string_pretty(item).unwrap_or_default()) }
                    }
                    form.inline method="post" action={ "/admin/" (kind) "/" (id) "/delete" } {
                        (csrf) button.danger type="submit" { "Delete" span.visually-hidden { " " (name) } }
                    }
                }
            }
        }
        h2 #new-h { "New" }
        form.stack method="post" action={ "/admin/" (kind) } aria-labelledby="new-h" {
            (csrf)
            label for="doc" { "Definition (JSON, as the API takes it)" }
            textarea #doc.code name="json" rows="10" required aria-describedby="doc-hint" { (json) }
            small #doc-hint.hint { "For example: " code { (example) } }
            button.primary type="submit" { "Create" }
        }
    };
    admin_page(viewer, status, title, notice, error, body)
}

/// The catalogue sections, with forms of their own.
const CATALOGUE: [&str; 3] = ["teams", "services", "cis"];

/// `GET /admin/{kind}`: a catalogue section or a JSON-document section.
pub(crate) async fn documents(State(state): State<AppState>, viewer: Viewer, Path(kind): Path<String>) -> Response {
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    if CATALOGUE.contains(&kind.as_str()) {
        return catalogue_page(
            &state,
            &viewer,
            &kind,
            StatusCode::OK,
            None,
            None,
            &CatalogueForm::default(),
        )
        .await;
    }
    documents_page(&state, &viewer, &kind, "", StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct DocumentForm {
    json: String,
}

/// `POST /admin/{kind}`.
pub(crate) async fn create_document(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    request: axum::extract::Request,
) -> Response {
    if CATALOGUE.contains(&kind.as_str()) {
        return match Posted::<CatalogueForm>::from_request(request, &state).await {
            Ok(posted) => create_catalogue(&state, &kind, posted).await,
            Err(response) => response,
        };
    }
    let posted = match Posted::<DocumentForm>::from_request(request, &state).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    if document_title(&kind).is_none() {
        return error_page(Some(&viewer), &ApiError::not_found("page"));
    }
    match create_one(&state, &viewer, &kind, &posted.form.json).await {
        Ok(()) => documents_page(&state, &viewer, &kind, "", StatusCode::OK, Some("Created."), None).await,
        Err(error) => {
            documents_page(
                &state,
                &viewer,
                &kind,
                &posted.form.json,
                error.status,
                None,
                Some(&error.detail),
            )
            .await
        }
    }
}

/// `POST /admin/{kind}/{id}/delete`.
pub(crate) async fn delete_document(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    posted: Posted<DocumentForm>,
) -> Response {
    let viewer = posted.viewer;
    if let Some(response) = not_admin(&viewer) {
        return response;
    }
    if CATALOGUE.contains(&kind.as_str()) {
        let kept = CatalogueForm::default();
        return match delete_one(&state, &viewer, &kind, id).await {
            Ok(()) => catalogue_page(&state, &viewer, &kind, StatusCode::OK, Some("Deleted."), None, &kept).await,
            Err(error) => catalogue_page(&state, &viewer, &kind, error.status, None, Some(&error.detail), &kept).await,
        };
    }
    if document_title(&kind).is_none() {
        return error_page(Some(&viewer), &ApiError::not_found("page"));
    }
    match delete_one(&state, &viewer, &kind, id).await {
        Ok(()) => documents_page(&state, &viewer, &kind, "", StatusCode::OK, Some("Deleted."), None).await,
        Err(error) => documents_page(&state, &viewer, &kind, "", error.status, None, Some(&error.detail)).await,
    }
}

// ---- account ----

fn account_page(viewer: &Viewer, status: StatusCode, notice: Option<&str>, error: Option<&str>) -> Response {
    let user = &viewer.auth.user;
    let csrf = viewer.csrf_field();
    respond(
        status,
        layout(
            Some(viewer),
            "Account",
            html! {
                h1 { "Your account" }
                @if let Some(notice) = notice { div.notice role="status" { (notice) } }
                (alert(error))
                dl.facts { dt { "Email" } dd { (user.email) } dt { "Role" } dd { (user.role.as_str()) } }
                h2 #profile-h { "Profile" }
                form.stack method="post" action="/account/profile" aria-labelledby="profile-h" {
                    (csrf)
                    label for="a-name" { "Name" } input #a-name name="name" value=(user.name) required maxlength="200";
                    label for="a-zone" { "Time zone" } input #a-zone name="time_zone" value=(user.time_zone.clone().unwrap_or_default()) placeholder="Europe/Berlin";
                    button type="submit" { "Save profile" }
                }
                h2 #password-h { "Change password" }
                form.stack method="post" action="/account/password" aria-labelledby="password-h" {
                    (csrf)
                    label for="a-current" { "Current password" } input #a-current type="password" name="current" autocomplete="current-password" required;
                    label for="a-new" { "New password" } input #a-new type="password" name="new" autocomplete="new-password" minlength="12" required;
                    label for="a-confirm" { "New password again" } input #a-confirm type="password" name="confirm" autocomplete="new-password" minlength="12" required;
                    button type="submit" { "Change password" }
                }
                p.hint { "Changing the password signs you out on every other device." }
            },
        ),
    )
}

/// `GET /account`.
pub(crate) async fn account(viewer: Viewer) -> Response {
    account_page(&viewer, StatusCode::OK, None, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ProfileForm {
    name: String,
    time_zone: String,
    current: String,
    new: String,
    confirm: String,
}

/// `POST /account/profile`.
pub(crate) async fn update_profile(State(state): State<AppState>, posted: Posted<ProfileForm>) -> Response {
    let mut viewer = posted.viewer;
    let body = PatchUser {
        name: Some(posted.form.name),
        role: None,
        time_zone: Some(posted.form.time_zone.trim().to_string()),
        disabled: None,
        contact_methods: None,
        password: None,
    };
    let id = viewer.auth.user.id.clone();
    match crate::users::patch(State(state), viewer.auth.clone(), Path(id), ApiJson(body)).await {
        Ok(Json(user)) => {
            viewer.auth.user.name = user.name;
            viewer.auth.user.time_zone = user.time_zone;
            account_page(&viewer, StatusCode::OK, Some("Saved."), None)
        }
        Err(error) => account_page(&viewer, error.status, None, Some(&error.detail)),
    }
}

/// `POST /account/password`: needs the current password; signs out every
/// other session.
pub(crate) async fn change_password(State(state): State<AppState>, posted: Posted<ProfileForm>) -> Response {
    let viewer = posted.viewer;
    let form = posted.form;
    let outcome = async {
        if !verify_password(&state, &viewer.auth.user.email, &form.current).await? {
            return Err(ApiError::forbidden("the current password is wrong"));
        }
        if form.new != form.confirm {
            return Err(ApiError::invalid("the two new passwords differ"));
        }
        let body = PatchUser {
            name: None,
            role: None,
            time_zone: None,
            disabled: None,
            contact_methods: None,
            password: Some(form.new.clone()),
        };
        let id = viewer.auth.user.id.clone();
        let _changed = crate::users::patch(
            State(state.clone()),
            viewer.auth.clone(),
            Path(id.clone()),
            ApiJson(body),
        )
        .await?;
        state
            .store
            .delete_user_sessions(&id, Some(&viewer.session.id_hash))
            .await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => account_page(
            &viewer,
            StatusCode::OK,
            Some("Password changed; other sessions are signed out."),
            None,
        ),
        Err(error) => account_page(&viewer, error.status, None, Some(&error.detail)),
    }
}
