//! The live dashboard for incident managers and agents: the backlog now (by
//! state and age, SLA at risk and breached), each practice metric per week
//! or month over the last twelve as a server-drawn SVG chart with a table
//! beside it, and "speed vs effectiveness" side by side. Every number links
//! to the incidents behind it (the queue, or the list of incidents a metric
//! counted in a period).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keel_domain::Timestamp;
use keel_domain::metrics::{self, IncidentFacts, Period};
use keel_store::{AGE_BUCKETS, IncidentRef};
use maud::{Markup, html};
use serde::Deserialize;

use super::view::{self, priority_badge};
use super::{Viewer, error_page, layout, respond};
use crate::AppState;
use crate::error::ApiError;

/// Each metric's value and the count behind it, by name.
type Headlines = BTreeMap<String, (Option<f64>, usize)>;

/// The trends drawn, with how to show their values.
const TRENDS: [(&str, &str, Unit, Family); 5] = [
    (
        "time_to_acceptance.median_secs",
        "Time to acceptance (median)",
        Unit::Hours,
        Family::Accepted,
    ),
    (
        "time_to_resolve.median_secs",
        "Time to resolve (median)",
        Unit::Hours,
        Family::Resolved,
    ),
    ("reopen_rate", "Reopen rate", Unit::Percent, Family::FirstResolved),
    (
        "first_time_resolution",
        "First-time resolution",
        Unit::Percent,
        Family::Resolved,
    ),
    (
        "resolution_target_met",
        "Resolution target met",
        Unit::Percent,
        Family::Resolved,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Hours,
    Percent,
}

/// Which instant puts an incident into a metric's period.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Accepted,
    Resolved,
    FirstResolved,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Accepted => "accepted",
            Family::Resolved => "resolved",
            Family::FirstResolved => "first-resolved",
        }
    }
    fn parse(text: &str) -> Option<Self> {
        [Family::Accepted, Family::Resolved, Family::FirstResolved]
            .into_iter()
            .find(|f| f.name() == text)
    }
    fn instant(self, f: &IncidentFacts) -> Option<Timestamp> {
        match self {
            Family::Accepted => f.accepted_at,
            Family::Resolved => f.resolved_at,
            Family::FirstResolved => f.first_resolved_at,
        }
    }
}

fn shown(unit: Unit, value: Option<f64>) -> String {
    match (unit, value) {
        (_, None) => "—".into(),
        (Unit::Hours, Some(secs)) => format!("{:.1} h", secs / 3600.0),
        (Unit::Percent, Some(share)) => format!("{:.0} %", share * 100.0),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct DashboardQuery {
    by: String,
}

/// The last twelve calendar weeks (Monday 00:00 UTC) or months, oldest first.
fn periods(now: Timestamp, monthly: bool) -> Vec<(String, Period)> {
    let Ok(ts) = jiff::Timestamp::from_microsecond(now.as_micros()) else {
        return Vec::new();
    };
    let today = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    let start = if monthly {
        today.first_of_month()
    } else {
        let back = i64::from(today.weekday().to_monday_zero_offset());
        today.checked_sub(jiff::Span::new().days(back)).unwrap_or(today)
    };
    let step = if monthly {
        jiff::Span::new().months(1)
    } else {
        jiff::Span::new().weeks(1)
    };
    let micros = |d: jiff::civil::Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| Timestamp::from_micros(z.timestamp().as_microsecond()))
            .ok()
    };
    let mut out = Vec::new();
    let mut from = start;
    for _ in 0..12 {
        let Ok(to) = from.checked_add(step) else { break };
        if let (Some(a), Some(b)) = (micros(from), micros(to)) {
            let label = if monthly {
                from.strftime("%Y-%m").to_string()
            } else {
                from.strftime("%m-%d").to_string()
            };
            out.push((label, Period { from: a, to: b }));
        }
        match from.checked_sub(step) {
            Ok(earlier) => from = earlier,
            Err(_) => break,
        }
    }
    out.reverse();
    out
}

/// `GET /dashboard`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<DashboardQuery>,
) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    match build(&state, &viewer, query.by == "month").await {
        Ok(markup) => respond(StatusCode::OK, layout(Some(&viewer), "Dashboard", markup)),
        Err(error) => error_page(Some(&viewer), &error),
    }
}

async fn build(state: &AppState, viewer: &Viewer, monthly: bool) -> Result<Markup, ApiError> {
    let now = state.clock.now();
    let summary = state.store.backlog_summary(now).await?;
    let spans = periods(now, monthly);
    let facts = crate::practice::gather(state).await?;
    let reports: Vec<(String, Period, Headlines)> = spans
        .iter()
        .map(|(label, period)| {
            (
                label.clone(),
                *period,
                metrics::report(facts.iter().map(AsRef::as_ref), *period, None).headlines(),
            )
        })
        .collect();
    let mut grid: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (state_name, age, n) in &summary.by_state_age {
        if let (Some(s), Some(a)) = (
            ["new", "accepted", "on_hold"].into_iter().find(|s| s == state_name),
            AGE_BUCKETS.into_iter().find(|a| a == age),
        ) {
            grid.insert((s, a), *n);
        }
    }
    let sla: BTreeMap<&str, u64> = summary.by_sla.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    let zone = viewer.zone();
    let latest = reports.last();
    Ok(html! {
        h1 { "Dashboard" }
        nav.tabs aria-label="Trend period" {
            ul {
                li { a href="/dashboard" aria-current=[(!monthly).then_some("page")] { "By week" } }
                li { a href="/dashboard?by=month" aria-current=[monthly.then_some("page")] { "By month" } }
            }
        }
        div.columns {
            section aria-labelledby="backlog-h" {
                h2 #backlog-h { "Backlog now" }
                table.compact {
                    caption.visually-hidden { "Open incidents by state and age" }
                    thead { tr { th scope="col" { "State" } @for age in AGE_BUCKETS { th scope="col" { (age) } } th scope="col" { "All" } } }
                    tbody {
                        @for s in ["new", "accepted", "on_hold"] {
                            @let total: u64 = AGE_BUCKETS.iter().map(|a| grid.get(&(s, *a)).copied().unwrap_or(0)).sum();
                            tr {
                                th scope="row" { (view::state_words(s)) }
                                @for age in AGE_BUCKETS { td { (grid.get(&(s, age)).copied().unwrap_or(0)) } }
                                td { a href={ "/?state=" (s) } { (total) span.visually-hidden { " " (view::state_words(s)) " incidents" } } }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="sla-h" {
                h2 #sla-h { "SLA now" }
                dl.facts {
                    dt { "Breached" } dd { a.sla-breached href="/?state=open&sla=breached" { (sla.get("breached").copied().unwrap_or(0)) } }
                    dt { "At risk" } dd { a.sla-at_risk href="/?state=open&sla=at_risk" { (sla.get("at_risk").copied().unwrap_or(0)) } }
                    dt { "Within target" } dd { a href="/?state=open&sla=within" { (sla.get("within").copied().unwrap_or(0)) } }
                    dt { "No SLA" } dd { (sla.get("none").copied().unwrap_or(0)) }
                }
                p.hint { "As of the last SLA sweep (at most a second ago) · " (view::time(now, &zone)) }
            }
        }
        @if let Some((label, period, values)) = latest {
            section aria-labelledby="speed-h" {
                h2 #speed-h { "Speed vs effectiveness, " (label) }
                p.hint { "Fast resolution only counts if it holds: look at the three together." }
                table.compact {
                    caption.visually-hidden { "Speed beside effectiveness" }
                    thead { tr { th scope="col" { "Metric" } th scope="col" { "Value" } th scope="col" { "Of incidents" } } }
                    tbody {
                        @for (key, title, unit, family) in [TRENDS[1], TRENDS[2], TRENDS[3]] {
                            @let (value, count) = values.get(key).copied().unwrap_or((None, 0));
                            tr {
                                th scope="row" { (title) }
                                td { (shown(unit, value)) }
                                td { a href=(drill(family, *period)) { (count) span.visually-hidden { " incidents behind " (title) } } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Trends" }
        div.charts {
            @for (key, title, unit, family) in TRENDS {
                @let points: Vec<(String, Option<f64>)> = reports.iter().map(|(l, _, v)| (l.clone(), v.get(key).and_then(|(x, _)| *x))).collect();
                figure.chart {
                    (chart(key, title, unit, &points))
                    figcaption { (title) }
                    details {
                        summary { "Values" }
                        table.compact {
                            caption.visually-hidden { (title) " per period" }
                            thead { tr { th scope="col" { "Period" } th scope="col" { "Value" } th scope="col" { "Of incidents" } } }
                            tbody {
                                @for (label, period, values) in &reports {
                                    @let (value, count) = values.get(key).copied().unwrap_or((None, 0));
                                    tr { td { (label) } td { (shown(unit, value)) } td { a href=(drill(family, *period)) { (count) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "Every metric, with filters and CSV: " code { "GET /api/v1/metrics" } " or " code { "keel metrics" } "." }
    })
}

fn drill(family: Family, period: Period) -> String {
    format!(
        "/dashboard/incidents?family={}&from={}&to={}",
        family.name(),
        super::console::urlencode(&period.from.to_string()),
        super::console::urlencode(&period.to.to_string())
    )
}

/// A line chart of one metric per period, drawn on the server.
fn chart(key: &str, title: &str, unit: Unit, points: &[(String, Option<f64>)]) -> Markup {
    let (w, h, left, bottom, top) = (560.0_f64, 180.0_f64, 48.0_f64, 24.0_f64, 12.0_f64);
    let scale = |v: f64| match unit {
        Unit::Hours => v / 3600.0,
        Unit::Percent => v * 100.0,
    };
    let max = points.iter().filter_map(|(_, v)| v.map(scale)).fold(
        match unit {
            Unit::Percent => 100.0,
            Unit::Hours => 1.0,
        },
        f64::max,
    );
    let n = points.len().max(2) as f64;
    let x = |i: usize| left + (w - left - 24.0) * (i as f64) / (n - 1.0);
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let coords: Vec<(f64, f64, String, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, (label, v))| v.map(|v| (x(i), y(scale(v)), label.clone(), scale(v))))
        .collect();
    let line: String = coords
        .iter()
        .map(|(px, py, _, _)| format!("{px:.1},{py:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    let suffix = match unit {
        Unit::Hours => " h",
        Unit::Percent => " %",
    };
    let id = format!("chart-{}", key.replace('.', "-"));
    html! {
        svg.chart viewBox={ "0 0 " (w) " " (h) } role="img" aria-labelledby=(id) width="100%" {
            title #(id) { (title) ", last " (points.len()) " periods" }
            line x1=(left) y1=(y(0.0)) x2=(w - 8.0) y2=(y(0.0)) stroke="#8c959f" stroke-width="1" {}
            line x1=(left) y1=(top) x2=(left) y2=(y(0.0)) stroke="#8c959f" stroke-width="1" {}
            text x=(left - 6.0) y=(top + 4.0) text-anchor="end" font-size="11" fill="#4b5563" { (format!("{max:.0}")) (suffix) }
            text x=(left - 6.0) y=(y(0.0)) text-anchor="end" font-size="11" fill="#4b5563" { "0" }
            @for (i, (label, _)) in points.iter().enumerate() {
                @if i % 2 == 1 || points.len() <= 6 {
                    text x=(x(i)) y=(h - 6.0) text-anchor="middle" font-size="11" fill="#4b5563" { (label) }
                }
            }
            @if coords.len() > 1 { polyline points=(line) fill="none" stroke="#0b57d0" stroke-width="2" {} }
            @for (px, py, label, v) in &coords {
                circle cx=(format!("{px:.1}")) cy=(format!("{py:.1}")) r="3.5" fill="#0b57d0" {
                    title { (label) ": " (format!("{v:.1}")) (suffix) }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct DrillQuery {
    family: String,
    from: String,
    to: String,
}

/// `GET /dashboard/incidents?family=…&from=…&to=…`: the incidents a metric
/// counted in a period.
pub(crate) async fn incidents(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<DrillQuery>,
) -> Response {
    if !viewer.is_staff() {
        return Redirect::to("/portal").into_response();
    }
    let outcome = async {
        let family = Family::parse(&query.family)
            .ok_or_else(|| ApiError::invalid("family must be accepted, resolved or first-resolved"))?;
        let from: Timestamp = query
            .from
            .parse()
            .map_err(|_| ApiError::invalid("from is not a time"))?;
        let to: Timestamp = query.to.parse().map_err(|_| ApiError::invalid("to is not a time"))?;
        let period = Period { from, to };
        let facts = crate::practice::gather(&state).await?;
        let mut numbers: Vec<i64> = facts
            .iter()
            .filter(|f| !f.cancelled && family.instant(f).is_some_and(|t| period.contains(t)))
            .map(|f| f.number)
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        let total = numbers.len();
        let mut shown = Vec::new();
        for number in numbers.into_iter().take(200) {
            if let Some(incident) = state.store.get_incident(&IncidentRef::Number(number)).await? {
                shown.push(incident);
            }
        }
        Ok::<_, ApiError>((family, period, total, shown))
    }
    .await;
    let (family, period, total, shown) = match outcome {
        Ok(found) => found,
        Err(error) => return error_page(Some(&viewer), &error),
    };
    let zone = viewer.zone();
    let markup = html! {
        h1 { "Incidents " (family.name().replace('-', " ")) }
        p { (view::time(period.from, &zone)) " to " (view::time(period.to, &zone)) ": " (total) " incidents"
            @if total > shown.len() { " (the newest " (shown.len()) " shown)" } "." }
        ul.cards {
            @for i in &shown {
                li.card {
                    a href={ "/incidents/INC-" (i.number) } { strong { "INC-" (i.number) } " " (i.title) }
                    div.card-meta { (priority_badge(i.priority.as_str())) " " (view::state_words(i.state.as_str())) }
                }
            }
        }
        p { a href="/dashboard" { "Back to the dashboard" } }
    };
    respond(
        StatusCode::OK,
        layout(Some(&viewer), "Incidents behind a metric", markup),
    )
}
