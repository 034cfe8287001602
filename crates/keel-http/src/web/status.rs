//! The public status page: each service operational, degraded or in outage,
//! drawn from the open incidents; the titles and public updates of open
//! major incidents; and the recent history of major incidents. Nothing
//! internal appears: no people, teams, descriptions or internal notes, and
//! other incidents only as counts behind a service's status.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use keel_domain::{Incident, Priority};
use keel_store::IncidentRef;
use keel_store::ServiceLoad;
use maud::{Markup, html};

use super::session::MaybeViewer;
use super::view;
use super::{error_page, layout, respond};
use crate::AppState;
use crate::error::ApiError;

/// How a service is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Health {
    Operational,
    Degraded,
    Outage,
}

impl Health {
    fn words(self) -> &'static str {
        match self {
            Health::Operational => "Operational",
            Health::Degraded => "Degraded",
            Health::Outage => "Outage",
        }
    }
    fn class(self) -> &'static str {
        match self {
            Health::Operational => "health ok",
            Health::Degraded => "health degraded",
            Health::Outage => "health outage",
        }
    }
}

/// A service is in outage with an open major or P1 incident, degraded with
/// an open P2 or P3; P4 and P5 do not show.
pub(crate) fn health(loads: &[ServiceLoad]) -> BTreeMap<String, Health> {
    let mut by_service = BTreeMap::new();
    for load in loads {
        let Some(service) = &load.service else { continue };
        let health = if load.major || load.priority == Priority::P1 {
            Health::Outage
        } else if matches!(load.priority, Priority::P2 | Priority::P3) {
            Health::Degraded
        } else {
            Health::Operational
        };
        let entry = by_service.entry(service.clone()).or_insert(Health::Operational);
        *entry = (*entry).max(health);
    }
    by_service
}

/// `GET /status`.
pub(crate) async fn page(State(state): State<AppState>, MaybeViewer(viewer): MaybeViewer) -> Response {
    match build(&state).await {
        Ok(markup) => respond(StatusCode::OK, layout(viewer.as_ref(), "Service status", markup)),
        Err(error) => error_page(viewer.as_ref(), &error),
    }
}

async fn build(state: &AppState) -> Result<Markup, ApiError> {
    let (loads, routing, open, past) = tokio::try_join!(
        async { state.store.open_load().await.map_err(ApiError::from) },
        async { state.routing().await.map_err(ApiError::from) },
        view::majors(state, &["new", "accepted", "on_hold"], 20),
        view::majors(state, &["resolved", "closed"], 10),
    )?;
    let health = health(&loads);
    let zone = jiff::tz::TimeZone::UTC;
    let mut updates = Vec::new();
    for incident in &open {
        let entries = state
            .store
            .timeline(&IncidentRef::Id(incident.id.clone()), 0, None)
            .await?;
        let public: Vec<_> = entries
            .into_iter()
            .filter(|e| {
                e.kind == "commented" && e.data.get("visibility").and_then(serde_json::Value::as_str) == Some("public")
            })
            .collect();
        updates.push(public);
    }
    let services = &routing.catalogue.services;
    let worst = services
        .iter()
        .map(|s| health.get(&s.name).copied().unwrap_or(Health::Operational))
        .max()
        .unwrap_or(Health::Operational);
    let summary = match worst {
        Health::Operational => "All services are operational",
        Health::Degraded => "Some services are degraded",
        Health::Outage => "There is an outage",
    };
    let service_of = |incident: &Incident| incident.service.clone().unwrap_or_else(|| "General".into());
    Ok(html! {
        h1 { "Service status" }
        p class={ "summary " (worst.class()) } role="status" { (summary) }
        @if services.is_empty() {
            p { "No services are listed yet." }
        } @else {
            table.status {
                caption.visually-hidden { "Status of each service" }
                thead { tr { th scope="col" { "Service" } th scope="col" { "Status" } } }
                tbody {
                    @for s in services {
                        @let h = health.get(&s.name).copied().unwrap_or(Health::Operational);
                        tr { th scope="row" { (s.name) } td { span class=(h.class()) { (h.words()) } } }
                    }
                }
            }
        }
        h2 { "Current incidents" }
        @if open.is_empty() {
            p { "No major incidents are open." }
        }
        @for (incident, public) in open.iter().zip(&updates) {
            article.status-incident aria-labelledby={ "si-" (incident.number) } {
                h3 #{ "si-" (incident.number) } { (incident.title) }
                p.meta { (service_of(incident)) " · " (view::state_words(incident.state.as_str())) " · since " (view::time(incident.created_at, &zone)) }
                @if public.is_empty() { p { "We are investigating." } }
                ol.updates {
                    @for e in public.iter().rev() {
                        li {
                            (view::time(e.recorded_at, &zone)) " — "
                            (e.data.get("body").and_then(serde_json::Value::as_str).unwrap_or(""))
                        }
                    }
                }
            }
        }
        h2 { "Recent history" }
        @if past.is_empty() { p { "No major incidents recently." } }
        ul.history {
            @for incident in &past {
                li {
                    strong { (incident.title) } " — " (service_of(incident)) ", "
                    (view::state_words(incident.state.as_str()).to_lowercase())
                    @if let Some(at) = incident.resolved_at { " " (view::time(at, &zone)) }
                }
            }
        }
    })
}
