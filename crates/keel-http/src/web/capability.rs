//! `/capability`: the capability self-assessment for people — each level's
//! criteria with the evidence keel holds and the verdicts recorded, the
//! level reached, and (for incident managers) forms to set a threshold or
//! record a verdict with its evidence.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keel_domain::Role;
use keel_domain::capability::{Assessed, Dimension, Evidence, Factor};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::Posted;
use super::{Viewer, alert, error_page, layout, respond};
use crate::AppState;
use crate::capability::{CapabilityInput, DEFAULT_DAYS, assessment, met_by_level, setting_for};

/// One criterion's form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CapabilityForm {
    #[serde(default)]
    threshold: String,
    /// "yes", "no" or "" (no verdict).
    #[serde(default)]
    met: String,
    #[serde(default)]
    note: String,
}

fn dimension_words(d: Dimension) -> &'static str {
    match d {
        Dimension::OrganizationsAndPeople => "Organizations and people",
        Dimension::InformationAndTechnology => "Information and technology",
        Dimension::PartnersAndSuppliers => "Partners and suppliers",
        Dimension::ValueStreamsAndProcesses => "Value streams and processes",
    }
}

fn factor_words(f: Factor) -> &'static str {
    match f {
        Factor::DetectingEarly => "Detecting early",
        Factor::ResolvingQuickly => "Resolving quickly",
        Factor::ImprovingContinually => "Improving continually",
    }
}

/// A metric value in the unit of its name.
fn shown(metric: &str, value: f64) -> String {
    if metric.ends_with("_secs") {
        if value >= 3600.0 {
            format!("{:.1} h", value / 3600.0)
        } else {
            format!("{:.0} min", value / 60.0)
        }
    } else if metric.starts_with("reassignments") {
        format!("{value:.2}")
    } else {
        format!("{:.1} %", value * 100.0)
    }
}

fn verdict(met: Option<bool>) -> Markup {
    match met {
        Some(true) => html! { span.badge.state-resolved { "Met" } },
        Some(false) => html! { span.badge.sla-breached { "Not met" } },
        None => html! { span.badge { "No evidence yet" } },
    }
}

fn evidence(a: &Assessed, days: u32) -> Markup {
    match a.criterion.evidence {
        Evidence::AtLeast { metric, .. } | Evidence::AtMost { metric, .. } => {
            let at_least = matches!(a.criterion.evidence, Evidence::AtLeast { .. });
            let threshold = a.threshold.map(|t| shown(metric, t)).unwrap_or_default();
            html! {
                code { (metric) } ": "
                @match a.value {
                    Some(v) => { strong { (shown(metric, v)) } " over " (a.count) " incidents" }
                    None => { "no data" }
                }
                " in the last " (days) " days; needs " (if at_least { "at least " } else { "at most " }) (threshold)
                @if a.setting.threshold.is_some() { " (set by the organisation)" }
            }
        }
        Evidence::Measured { metric } => html! {
            "keel measures " code { (metric) } ": "
            @match a.value {
                Some(_) => { "data over " (a.count) " incidents in the last " (days) " days" }
                None => { "no data in the last " (days) " days" }
            }
        },
        Evidence::Attested => html! {
            @match (&a.setting.note, a.setting.met) {
                (Some(note), _) => { "Recorded: " q { (note) } }
                (None, Some(_)) => { "Recorded without a note." }
                (None, None) => { "Only a person can tell: record the evidence." }
            }
        },
    }
}

fn form(a: &Assessed, viewer: &Viewer) -> Markup {
    let id = a.criterion.id;
    let action = format!("/capability/{id}");
    match a.criterion.evidence {
        Evidence::AtLeast { metric, .. } | Evidence::AtMost { metric, .. } => html! {
            form.inline method="post" action=(action) {
                (viewer.csrf_field())
                label for={ "t-" (id) } {
                    @if metric.ends_with("_secs") { "Threshold (seconds)" }
                    @else if metric.starts_with("reassignments") { "Threshold (per incident)" }
                    @else { "Threshold (share, 0 to 1)" }
                }
                input #{ "t-" (id) } name="threshold" inputmode="decimal"
                    value=[a.setting.threshold.map(|t| t.to_string())] placeholder=[a.threshold.map(|t| t.to_string())];
                button type="submit" { "Set" }
            }
        },
        Evidence::Attested => html! {
            form.inline method="post" action=(action) {
                (viewer.csrf_field())
                label for={ "m-" (id) } { "Verdict" }
                select #{ "m-" (id) } name="met" {
                    option value="" selected[a.setting.met.is_none()] { "No verdict" }
                    option value="yes" selected[a.setting.met == Some(true)] { "Met" }
                    option value="no" selected[a.setting.met == Some(false)] { "Not met" }
                }
                label for={ "n-" (id) } { "Evidence" }
                input #{ "n-" (id) } name="note" value=[a.setting.note.as_deref()];
                button type="submit" { "Record" }
            }
        },
        Evidence::Measured { .. } => html! {},
    }
}

async fn render(state: &AppState, viewer: &Viewer, status: StatusCode, problem: Option<&str>) -> Response {
    let (period, assessment) = match assessment(state, DEFAULT_DAYS).await {
        Ok(found) => found,
        Err(error) => return error_page(Some(viewer), &error),
    };
    let manager = viewer.auth.actor.at_least(Role::IncidentManager);
    let zone = viewer.zone();
    let counts = met_by_level(&assessment);
    let markup = html! {
        h1 { "Capability self-assessment" }
        (alert(problem))
        p { "Level reached: " strong #level { (assessment.level) } " of 5. "
            "A level counts when all its criteria and those of the levels below are met. Evidence from "
            (super::view::time(period.from, &zone)) " to " (super::view::time(period.to, &zone)) "." }
        table.compact {
            caption.visually-hidden { "Criteria met per level" }
            thead { tr { th scope="col" { "Level" } th scope="col" { "Criteria met" } } }
            tbody {
                @for (level, (met, all)) in &counts {
                    tr { th scope="row" { (level) } td { (met) " of " (all) } }
                }
            }
        }
        @for level in 2..=5u8 {
            section aria-labelledby={ "level-" (level) } {
                h2 #{ "level-" (level) } { "Level " (level) }
                ul.cards {
                    @for a in assessment.criteria.iter().filter(|a| a.criterion.level == level) {
                        li.card #{ "c-" (a.criterion.id) } {
                            p { strong { (a.criterion.text) } " " (verdict(a.met)) }
                            p.card-meta { (factor_words(a.criterion.factor)) " · " (dimension_words(a.criterion.dimension)) }
                            p { (evidence(a, DEFAULT_DAYS)) }
                            @if manager { (form(a, viewer)) }
                        }
                    }
                }
            }
        }
        @if !manager { p.hint { "Incident managers set thresholds and record verdicts." } }
    };
    respond(status, layout(Some(viewer), "Capability", markup))
}

/// `GET /capability`.
pub(crate) async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    render(&state, &viewer, StatusCode::OK, None).await
}

/// `POST /capability/{criterion}`.
pub(crate) async fn record(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<CapabilityForm>,
) -> Response {
    let viewer = posted.viewer;
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    let form = posted.form;
    let outcome = async {
        viewer.auth.require(Role::IncidentManager)?;
        let threshold = match form.threshold.trim() {
            "" => None,
            text => Some(text.parse::<f64>().map_err(|_| {
                crate::error::ApiError::invalid(format!("the threshold must be a number, not {text:?}"))
            })?),
        };
        let met = match form.met.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        let input = CapabilityInput {
            threshold,
            met,
            note: Some(form.note.clone()),
        };
        let setting = setting_for(&id, input, &viewer.auth, state.clock.now())?;
        state.store.put_capability_setting(&id, setting).await?;
        Ok::<_, crate::error::ApiError>(())
    }
    .await;
    match outcome {
        Ok(()) => Redirect::to(&format!("/capability#c-{id}")).into_response(),
        Err(error) => render(&state, &viewer, error.status, Some(&error.detail)).await,
    }
}
