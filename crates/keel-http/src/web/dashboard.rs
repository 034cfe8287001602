//! The live dashboard for incident managers and agents: the backlog now (by
//! state and age, SLA at risk and breached), "speed vs effectiveness" side by
//! side, and every practice metric of metrics.md per week or month over the
//! last twelve, grouped as an incident manager reads them (detection, speed,
//! effectiveness, users, workload and waiting): the latest value with its
//! change against the previous period, a server-drawn SVG chart and a table
//! of values. A metric the timeline cannot give yet shows why instead of an
//! empty chart. Every count links to the incidents behind it: the list of
//! incidents a metric counted in a period, chosen by the same instant and
//! conditions as `keel_domain::metrics::report`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keel_domain::Timestamp;
use keel_domain::metrics::{self, IncidentFacts, Period, Report};
use keel_store::{AGE_BUCKETS, IncidentRef};
use maud::{Markup, html};
use serde::Deserialize;

use super::view::{self, priority_badge};
use super::{Viewer, error_page, layout, respond};
use crate::AppState;
use crate::error::ApiError;

/// Each metric's value and the count behind it, by name.
type Headlines = BTreeMap<String, (Option<f64>, usize)>;

/// How a metric's values are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// A duration in seconds, shown in minutes or hours.
    Hours,
    /// A share 0…1, shown in per cent.
    Percent,
    /// A mean count per incident.
    Number,
    /// A mean score 1…5.
    Score,
}

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
}

/// One metric on the dashboard.
struct Metric {
    /// The headline name (`Report::headlines`).
    key: &'static str,
    title: &'static str,
    unit: Unit,
    better: Better,
    /// Which incidents the metric counts in a period.
    family: Family,
    /// More values of the same incidents, shown in the values table: (headline name, column heading).
    extra: &'static [(&'static str, &'static str)],
    /// What the metric measures, in a sentence.
    what: &'static str,
}

/// A group of metrics under one heading.
struct Section {
    id: &'static str,
    title: &'static str,
    intro: &'static str,
    metrics: &'static [Metric],
}

/// No further values in the values table.
const NONE: &[(&str, &str)] = &[];

/// Every metric of metrics.md shown as a trend, by section.
const SECTIONS: [Section; 5] = [
    Section {
        id: "detection",
        title: "Detection",
        intro: "How soon failures are noticed, and by whom.",
        metrics: &[
            Metric {
                key: "detection_lag.median_secs",
                title: "Detection lag (median)",
                unit: Unit::Hours,
                better: Better::Lower,
                family: Family::DetectedWithStart,
                extra: &[("detection_lag.p90_secs", "p90")],
                what: "From the first symptom to the first report or event, for incidents detected in the period whose start is known.",
            },
            Metric {
                key: "detected_by_monitoring",
                title: "Detected by monitoring",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Detected,
                extra: NONE,
                what: "Share of the incidents detected in the period whose first signal was a monitoring event.",
            },
            Metric {
                key: "resolved_before_users_reported",
                title: "Resolved before users reported",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Resolved,
                extra: NONE,
                what: "Share of monitoring-detected incidents resolved before any user report was linked.",
            },
        ],
    },
    Section {
        id: "speed",
        title: "Speed",
        intro: "How fast incidents are taken on, understood and resolved, and whether the agreed targets hold.",
        metrics: &[
            Metric {
                key: "time_to_acceptance.median_secs",
                title: "Time to acceptance (median)",
                unit: Unit::Hours,
                better: Better::Lower,
                family: Family::Accepted,
                extra: &[("time_to_acceptance.p90_secs", "p90")],
                what: "From detection to the first acceptance, for incidents accepted in the period.",
            },
            Metric {
                key: "time_of_diagnosis.median_secs",
                title: "Time of diagnosis (median)",
                unit: Unit::Hours,
                better: Better::Lower,
                family: Family::Diagnosed,
                extra: &[("time_of_diagnosis.p90_secs", "p90")],
                what: "From acceptance to the first diagnosis, for incidents diagnosed in the period.",
            },
            Metric {
                key: "time_to_resolve.median_secs",
                title: "Time to resolve (median)",
                unit: Unit::Hours,
                better: Better::Lower,
                family: Family::Resolved,
                extra: &[
                    ("time_to_resolve.p90_secs", "p90"),
                    ("time_to_resolve_business_hours.median_secs", "business hours"),
                    ("time_to_resolve_business_hours.p90_secs", "business hours p90"),
                ],
                what: "From detection to the standing resolution, for incidents resolved in the period.",
            },
            Metric {
                key: "acceptance_target_met",
                title: "Acceptance target met",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Responded,
                extra: NONE,
                what: "Share of responses (first acceptance, or resolution when sooner) within the SLA response target.",
            },
            Metric {
                key: "resolution_target_met",
                title: "Resolution target met",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::ResolvedWithTarget,
                extra: NONE,
                what: "Share of resolutions within the SLA resolution target, among incidents with a target.",
            },
        ],
    },
    Section {
        id: "effectiveness",
        title: "Effectiveness",
        intro: "Whether resolutions hold and what helps reach them.",
        metrics: &[
            Metric {
                key: "first_time_resolution",
                title: "First-time resolution",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Resolved,
                extra: NONE,
                what: "Share resolved by the first assigned team, with no reassignment and never reopened.",
            },
            Metric {
                key: "reopen_rate",
                title: "Reopen rate",
                unit: Unit::Percent,
                better: Better::Lower,
                family: Family::FirstResolved,
                extra: NONE,
                what: "Share of the incidents first resolved in the period that were reopened at least once.",
            },
            Metric {
                key: "known_solution_reuse",
                title: "Known solution reuse",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Resolved,
                extra: NONE,
                what: "Share of resolutions that used a recorded known error, article or workaround.",
            },
            Metric {
                key: "resolved_automatically",
                title: "Resolved automatically",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Resolved,
                extra: NONE,
                what: "Share resolved by automation with no human action between registration and resolution.",
            },
            Metric {
                key: "incident_model_use",
                title: "Incident model use",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Detected,
                extra: NONE,
                what: "Share of incidents handled under an incident model.",
            },
        ],
    },
    Section {
        id: "users",
        title: "Users",
        intro: "What the people affected say when an incident is closed.",
        metrics: &[
            Metric {
                key: "user_satisfaction.mean",
                title: "User satisfaction (mean, 1–5)",
                unit: Unit::Score,
                better: Better::Higher,
                family: Family::Rated,
                extra: NONE,
                what: "Mean score of the closure survey answers given in the period.",
            },
            Metric {
                key: "user_satisfaction.response_rate",
                title: "Survey response rate",
                unit: Unit::Percent,
                better: Better::Higher,
                family: Family::Closed,
                extra: NONE,
                what: "Share of the incidents closed in the period whose reporter answered the survey.",
            },
        ],
    },
    Section {
        id: "workload",
        title: "Workload and waiting",
        intro: "How often incidents change hands and how long they wait.",
        metrics: &[
            Metric {
                key: "reassignments.team_changes",
                title: "Team changes per incident",
                unit: Unit::Number,
                better: Better::Lower,
                family: Family::Resolved,
                extra: NONE,
                what: "Mean team changes after the first assignment, for incidents resolved in the period.",
            },
            Metric {
                key: "reassignments.owner_changes",
                title: "Owner changes per incident",
                unit: Unit::Number,
                better: Better::Lower,
                family: Family::Resolved,
                extra: NONE,
                what: "Mean owner changes (assignments and escalations), for incidents resolved in the period.",
            },
            Metric {
                key: "waiting_share",
                title: "Waiting share",
                unit: Unit::Percent,
                better: Better::Lower,
                family: Family::Resolved,
                extra: &[
                    ("waiting_share.awaiting_user", "Awaiting user"),
                    ("waiting_share.awaiting_supplier", "Awaiting supplier"),
                    ("waiting_share.awaiting_change", "Awaiting change"),
                    ("waiting_share.other", "Other"),
                ],
                what: "Time on hold over time from registration to resolution, for incidents resolved in the period.",
            },
        ],
    },
];

/// The metrics of "speed vs effectiveness", by headline name.
const SPEED_VS_EFFECTIVENESS: [&str; 3] = ["time_to_resolve.median_secs", "reopen_rate", "first_time_resolution"];

fn metric(key: &str) -> Option<&'static Metric> {
    SECTIONS.iter().flat_map(|s| s.metrics.iter()).find(|m| m.key == key)
}

/// Which incidents a metric counts in a period: the instant that must lie in
/// the period and what else the incident must have (see the table in the
/// module doc of `keel_domain::metrics`). Cancelled incidents never count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// `detected_at`.
    Detected,
    /// `detected_at`, with `occurred_at` known.
    DetectedWithStart,
    /// `accepted_at`.
    Accepted,
    /// `diagnosed_at`, accepted.
    Diagnosed,
    /// `responded_at`, with a response-target verdict.
    Responded,
    /// The standing `resolved_at`.
    Resolved,
    /// The standing `resolved_at`, with a resolution-target verdict.
    ResolvedWithTarget,
    /// `first_resolved_at`.
    FirstResolved,
    /// `closed_at`.
    Closed,
    /// `closed_at`, with a satisfaction score.
    Rated,
}

impl Family {
    const ALL: [Family; 10] = [
        Family::Detected,
        Family::DetectedWithStart,
        Family::Accepted,
        Family::Diagnosed,
        Family::Responded,
        Family::Resolved,
        Family::ResolvedWithTarget,
        Family::FirstResolved,
        Family::Closed,
        Family::Rated,
    ];

    fn name(self) -> &'static str {
        match self {
            Family::Detected => "detected",
            Family::DetectedWithStart => "detected-with-start",
            Family::Accepted => "accepted",
            Family::Diagnosed => "diagnosed",
            Family::Responded => "responded",
            Family::Resolved => "resolved",
            Family::ResolvedWithTarget => "resolved-with-target",
            Family::FirstResolved => "first-resolved",
            Family::Closed => "closed",
            Family::Rated => "rated",
        }
    }

    /// The heading of the drill-down list: "Incidents …".
    fn words(self) -> &'static str {
        match self {
            Family::Detected => "detected",
            Family::DetectedWithStart => "detected, with a known start",
            Family::Accepted => "accepted",
            Family::Diagnosed => "diagnosed after acceptance",
            Family::Responded => "responded to, with a response target",
            Family::Resolved => "resolved",
            Family::ResolvedWithTarget => "resolved, with a resolution target",
            Family::FirstResolved => "first resolved",
            Family::Closed => "closed",
            Family::Rated => "closed with a satisfaction score",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == text)
    }

    /// Whether the metrics of this family count `f` in `period`.
    fn counts(self, f: &IncidentFacts, period: Period) -> bool {
        let within = |t: Option<Timestamp>| t.is_some_and(|t| period.contains(t));
        !f.cancelled
            && match self {
                Family::Detected => period.contains(f.detected_at),
                Family::DetectedWithStart => period.contains(f.detected_at) && f.occurred_at.is_some(),
                Family::Accepted => within(f.accepted_at),
                Family::Diagnosed => within(f.diagnosed_at) && f.accepted_at.is_some(),
                Family::Responded => within(f.responded_at) && f.acceptance_target_met.is_some(),
                Family::Resolved => within(f.resolved_at),
                Family::ResolvedWithTarget => within(f.resolved_at) && f.resolution_target_met.is_some(),
                Family::FirstResolved => within(f.first_resolved_at),
                Family::Closed => within(f.closed_at),
                Family::Rated => within(f.closed_at) && f.satisfaction.is_some(),
            }
    }
}

/// Whether `f` can count for any metric in `span`: not cancelled, and one of
/// the instants that put an incident into a period lies in it.
fn relevant(f: &IncidentFacts, span: Period) -> bool {
    !f.cancelled
        && (span.contains(f.detected_at)
            || [
                f.accepted_at,
                f.diagnosed_at,
                f.responded_at,
                f.first_resolved_at,
                f.resolved_at,
                f.closed_at,
            ]
            .into_iter()
            .any(|t| t.is_some_and(|t| span.contains(t))))
}

/// A value as shown.
fn shown(unit: Unit, value: Option<f64>) -> String {
    match (unit, value) {
        (_, None) => "—".into(),
        (Unit::Hours, Some(secs)) if secs.abs() < 3600.0 => format!("{:.0} min", secs / 60.0),
        (Unit::Hours, Some(secs)) => format!("{:.1} h", secs / 3600.0),
        (Unit::Percent, Some(share)) => format!("{:.0} %", share * 100.0),
        (Unit::Number, Some(mean)) => format!("{mean:.2}"),
        (Unit::Score, Some(mean)) => format!("{mean:.1}"),
    }
}

/// The change from `previous` to `current`, in words and with an arrow:
/// relative for durations, in points for shares, absolute for means.
fn change(metric: &Metric, current: Option<f64>, previous: Option<f64>, noun: &str) -> Markup {
    let (Some(now), Some(then)) = (current, previous) else {
        let which = if current.is_none() { "this" } else { "the previous" };
        return html! { p.change { "No change to show: no value for " (which) " " (noun) "." } };
    };
    let diff = now - then;
    // The amount as shown, and the least amount that shows as a change.
    let (amount, size, least) = match metric.unit {
        Unit::Hours if then != 0.0 => {
            let relative = (diff / then.abs() * 100.0).abs();
            (format!("{relative:.0} %"), relative, 0.5)
        }
        Unit::Hours => (shown(Unit::Hours, Some(diff.abs())), diff.abs(), 30.0),
        Unit::Percent => (format!("{:.0} points", (diff * 100.0).abs()), (diff * 100.0).abs(), 0.5),
        Unit::Number => (format!("{:.2}", diff.abs()), diff.abs(), 0.005),
        Unit::Score => (format!("{:.1}", diff.abs()), diff.abs(), 0.05),
    };
    if size < least {
        return html! {
            p.change.same { span aria-hidden="true" { "= " } "Unchanged vs previous " (noun) }
        };
    }
    let up = diff > 0.0;
    let better = up == (metric.better == Better::Higher);
    html! {
        p.change.(if better { "better" } else { "worse" }) {
            span aria-hidden="true" { (if up { "▲ " } else { "▼ " }) }
            span.visually-hidden { (if up { "Up " } else { "Down " }) }
            (amount) " vs previous " (noun) " "
            span.verdict { "(" (if better { "better" } else { "worse" }) ")" }
        }
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

/// One period's metrics.
struct Column {
    label: String,
    period: Period,
    values: Headlines,
}

/// Every period's metrics, and the notes of the metrics the timeline cannot give.
struct Trends {
    columns: Vec<Column>,
    /// Headline name → why it has no value (as of the latest period).
    notes: BTreeMap<&'static str, &'static str>,
}

/// Why a metric has no value, when the report says so.
fn note(report: &Report, key: &str) -> Option<&'static str> {
    match key.split('.').next().unwrap_or_default() {
        "detection_lag" => report.detection_lag.note,
        "time_to_acceptance" => report.time_to_acceptance.note,
        "time_of_diagnosis" => report.time_of_diagnosis.note,
        "time_to_resolve" => report.time_to_resolve.note,
        "detected_by_monitoring" => report.detected_by_monitoring.note,
        "first_time_resolution" => report.first_time_resolution.note,
        "resolution_target_met" => report.resolution_target_met.note,
        "acceptance_target_met" => report.acceptance_target_met.note,
        "resolved_automatically" => report.resolved_automatically.note,
        "resolved_before_users_reported" => report.resolved_before_users_reported.note,
        "known_solution_reuse" => report.known_solution_reuse.note,
        "incident_model_use" => report.incident_model_use.note,
        "reopen_rate" => report.reopen_rate.note,
        "user_satisfaction" if key.ends_with("response_rate") => report.user_satisfaction.response_rate.note,
        _ => None,
    }
}

/// The metrics of every period in `spans` (consecutive, oldest first) over
/// `facts`. One pass keeps the facts that can count anywhere in the whole
/// span; each period's report then reads only those.
/// `calendar_of` gives each incident's business-hours calendar (its SLA
/// policy's), for time to resolve in business hours.
fn trends<'a, 'c>(
    facts: impl Iterator<Item = &'a IncidentFacts>,
    spans: &[(String, Period)],
    calendar_of: impl Fn(&IncidentFacts) -> Option<&'c keel_domain::sla::Calendar> + Copy,
) -> Trends {
    let (Some((_, first)), Some((_, last))) = (spans.first(), spans.last()) else {
        return Trends {
            columns: Vec::new(),
            notes: BTreeMap::new(),
        };
    };
    let span = Period {
        from: first.from,
        to: last.to,
    };
    let shown: Vec<&IncidentFacts> = facts.filter(|f| relevant(f, span)).collect();
    let mut notes = BTreeMap::new();
    let mut columns = Vec::with_capacity(spans.len());
    for (i, (label, period)) in spans.iter().enumerate() {
        let report = metrics::report_with(shown.iter().copied(), *period, calendar_of);
        if i + 1 == spans.len() {
            for m in SECTIONS.iter().flat_map(|s| s.metrics.iter()) {
                if let Some(why) = note(&report, m.key) {
                    notes.insert(m.key, why);
                }
            }
        }
        columns.push(Column {
            label: label.clone(),
            period: *period,
            values: report.headlines(),
        });
    }
    Trends { columns, notes }
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

fn value_of(column: &Column, key: &str) -> (Option<f64>, usize) {
    column.values.get(key).copied().unwrap_or((None, 0))
}

async fn build(state: &AppState, viewer: &Viewer, monthly: bool) -> Result<Markup, ApiError> {
    let now = state.clock.now();
    let summary = state.store.backlog_summary(now).await?;
    let spans = periods(now, monthly);
    let facts = crate::practice::gather(state).await?;
    // Twelve reports over the facts of the span: CPU work, off the async threads.
    let policies = Arc::clone(&state.routing().await?.sla);
    let Trends { columns, notes } = tokio::task::spawn_blocking(move || {
        let policies = &*policies;
        trends(facts.iter().map(|f| &**f), &spans, |f| {
            policies
                .for_service(f.service.as_deref())
                .map(keel_domain::sla::SlaPolicy::calendar)
        })
    })
    .await
    .map_err(|e| keel_store::StoreError::Other(format!("dashboard computation failed: {e}")))?;
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
    let noun = if monthly { "month" } else { "week" };
    let latest = columns.last();
    let before = columns.len().checked_sub(2).and_then(|i| columns.get(i));
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
        @if let Some(column) = latest {
            section aria-labelledby="speed-h" {
                h2 #speed-h { "Speed vs effectiveness, " (noun) " of " (column.label) }
                p.hint { "Fast resolution only counts if it holds: look at the three together." }
                div.scroll {
                    table.compact {
                        caption.visually-hidden { "Speed beside effectiveness" }
                        thead { tr { th scope="col" { "Metric" } th scope="col" { "Value" } th scope="col" { "Change" } th scope="col" { "Of incidents" } } }
                        tbody {
                            @for m in SPEED_VS_EFFECTIVENESS.iter().filter_map(|k| metric(k)) {
                                @let (value, count) = value_of(column, m.key);
                                tr {
                                    th scope="row" { (m.title) }
                                    td { (shown(m.unit, value)) }
                                    td { (change(m, value, before.and_then(|b| value_of(b, m.key).0), noun)) }
                                    td { a href=(drill(m.family, column.period)) { (count) span.visually-hidden { " incidents behind " (m.title) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for section in &SECTIONS {
            @let heading = format!("trend-{}-h", section.id);
            section.trends aria-labelledby=(heading) {
                h2 #(heading) { (section.title) }
                p.hint { (section.intro) " Per " (noun) ", the last " (columns.len()) "; the latest " (noun) " may still be running." }
                div.charts {
                    @for m in section.metrics {
                        (card(m, &columns, notes.get(m.key).copied(), noun))
                    }
                }
            }
        }
        p.hint { "Every metric, with filters and CSV: " code { "GET /api/v1/metrics" } " or " code { "keel metrics" } ". "
            "Where the practice stands by capability level: " a href="/capability" { "capability self-assessment" } "." }
    })
}

/// One metric: its latest value and change, its chart and its values per
/// period; or, for a metric the timeline cannot give, why not.
fn card(m: &Metric, columns: &[Column], note: Option<&str>, noun: &str) -> Markup {
    let id = m.key.replace('.', "-");
    let heading = format!("metric-{id}-h");
    let points: Vec<(String, Option<f64>)> = columns
        .iter()
        .map(|c| (c.label.clone(), value_of(c, m.key).0))
        .collect();
    let latest = columns.last();
    let (value, count) = latest.map(|c| value_of(c, m.key)).unwrap_or((None, 0));
    let previous = columns
        .len()
        .checked_sub(2)
        .and_then(|i| columns.get(i))
        .and_then(|c| value_of(c, m.key).0);
    if let Some(note) = note.filter(|_| points.iter().all(|(_, v)| v.is_none())) {
        return html! {
            figure.chart.unmeasured #{ "metric-" (id) } {
                figcaption {
                    h3 #(heading) { (m.title) }
                    p.hint { (m.what) }
                }
                p.note { "Not measured yet: " (note) "." }
            }
        };
    }
    html! {
        figure.chart #{ "metric-" (id) } {
            figcaption {
                h3 #(heading) { (m.title) }
                @if let Some(column) = latest {
                    p.latest {
                        span.value { (shown(m.unit, value)) }
                        " in the " (noun) " of " (column.label) " · of "
                        a href=(drill(m.family, column.period)) {
                            (count) (if count == 1 { " incident" } else { " incidents" })
                            span.visually-hidden { " behind " (m.title) }
                        }
                    }
                    (change(m, value, previous, noun))
                }
                p.hint { (m.what) }
            }
            (chart(m.key, m.title, m.unit, noun, &points))
            details {
                summary { "Values" span.visually-hidden { " of " (m.title) } }
                div.scroll {
                    table.compact {
                        caption.visually-hidden { (m.title) " per " (noun) }
                        thead {
                            tr {
                                th scope="col" { (if noun == "month" { "Month" } else { "Week of" }) }
                                th scope="col" { (if m.extra.is_empty() { "Value" } else if m.unit == Unit::Hours { "Median" } else { "All" }) }
                                @for (_, column) in m.extra { th scope="col" { (column) } }
                                th scope="col" { "Of incidents" }
                            }
                        }
                        tbody {
                            @for c in columns {
                                @let (value, count) = value_of(c, m.key);
                                tr {
                                    th scope="row" { (c.label) }
                                    td { (shown(m.unit, value)) }
                                    @for (key, _) in m.extra { td { (shown(m.unit, value_of(c, key).0)) } }
                                    td { a href=(drill(m.family, c.period)) { (count) span.visually-hidden { " incidents behind " (m.title) ", " (c.label) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
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
fn chart(key: &str, title: &str, unit: Unit, noun: &str, points: &[(String, Option<f64>)]) -> Markup {
    let (w, h, left, bottom, top) = (560.0_f64, 180.0_f64, 48.0_f64, 24.0_f64, 12.0_f64);
    let scale = |v: f64| match unit {
        Unit::Hours => v / 3600.0,
        Unit::Percent => v * 100.0,
        Unit::Number | Unit::Score => v,
    };
    let values: Vec<f64> = points.iter().filter_map(|(_, v)| v.map(scale)).collect();
    let max = values.iter().copied().fold(
        match unit {
            Unit::Percent => 100.0,
            Unit::Score => 5.0,
            Unit::Hours | Unit::Number => 1.0,
        },
        f64::max,
    );
    // Negative durations (a bad claimed time) are drawn below the axis.
    let min = values.iter().copied().fold(0.0, f64::min);
    let n = points.len().max(2) as f64;
    let x = |i: usize| left + (w - left - 24.0) * (i as f64) / (n - 1.0);
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - min) / (max - min));
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
        Unit::Number | Unit::Score => "",
    };
    let digits = usize::from(matches!(unit, Unit::Number));
    let latest = points.last().and_then(|(_, v)| *v);
    let id = format!("chart-{}", key.replace('.', "-"));
    html! {
        svg.chart viewBox={ "0 0 " (w) " " (h) } role="img" aria-labelledby=(id) width="100%" {
            title #(id) {
                (title) " per " (noun) ", last " (points.len()) " " (noun) "s; latest "
                (shown(unit, latest)) "; the values are in the table below"
            }
            line x1=(left) y1=(y(0.0)) x2=(w - 8.0) y2=(y(0.0)) stroke="#8c959f" stroke-width="1" {}
            line x1=(left) y1=(top) x2=(left) y2=(y(min)) stroke="#8c959f" stroke-width="1" {}
            text x=(left - 6.0) y=(top + 4.0) text-anchor="end" font-size="11" fill="#4b5563" { (format!("{max:.digits$}")) (suffix) }
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
        let family = Family::parse(&query.family).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            ApiError::invalid(format!("family must be one of {}", names.join(", ")))
        })?;
        let from: Timestamp = query
            .from
            .parse()
            .map_err(|_| ApiError::invalid("from is not a time"))?;
        let to: Timestamp = query.to.parse().map_err(|_| ApiError::invalid("to is not a time"))?;
        let period = Period { from, to };
        let facts = crate::practice::gather(&state).await?;
        let mut numbers: Vec<i64> = tokio::task::spawn_blocking(move || {
            facts
                .iter()
                .map(|f| &**f)
                .filter(|f| family.counts(f, period))
                .map(|f| f.number)
                .collect()
        })
        .await
        .map_err(|e| keel_store::StoreError::Other(format!("drill-down failed: {e}")))?;
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
        h1 { "Incidents " (family.words()) }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keel_domain::metrics::{self, IncidentFacts, Period};
    use keel_domain::{Priority, Source, State, Timestamp};

    use super::{Better, SECTIONS, SPEED_VS_EFFECTIVENESS, Unit, change, metric, trends};

    const HOUR: i64 = 3_600_000_000;
    const WEEK: i64 = 7 * 24 * HOUR;

    fn base(number: i64, detected_at: Timestamp) -> IncidentFacts {
        IncidentFacts {
            number,
            occurred_at: None,
            detected_at,
            registered_at: detected_at,
            accepted_at: None,
            diagnosed_at: None,
            first_resolved_at: None,
            resolved_at: None,
            closed_at: None,
            cancelled: false,
            state: State::New,
            detected_by_monitoring: false,
            first_team: None,
            team_changes: 0,
            owner_changes: 0,
            reopens: 0,
            hold_micros: 0,
            hold_micros_by_reason: BTreeMap::new(),
            resolved_automatically: false,
            known_solution: false,
            satisfaction: None,
            reopened_at_least_once: false,
            first_time_resolution: false,
            response_due: None,
            resolution_due: None,
            responded_at: None,
            acceptance_target_met: None,
            resolution_target_met: None,
            service: None,
            ci: None,
            category: None,
            priority: Priority::P3,
            team: None,
            source: Source::User,
            major: false,
        }
    }

    /// Many incidents whose instants fall before, in and after three weeks
    /// starting at `start`, with every optional fact present or not.
    fn history(start: i64) -> Vec<IncidentFacts> {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        (0..600)
            .map(|i| {
                let when = |n: &mut dyn FnMut(u64) -> u64| {
                    // Weeks -1 … 3 around the three shown, or none.
                    let week = n(6);
                    (week < 5).then(|| {
                        Timestamp::from_micros(
                            start + (week as i64 - 1) * WEEK + n(WEEK as u64 / HOUR as u64) as i64 * HOUR,
                        )
                    })
                };
                let detected = when(&mut next).unwrap_or(Timestamp::from_micros(start - 3 * WEEK));
                let mut f = base(i, detected);
                f.occurred_at =
                    (next(3) > 0).then(|| Timestamp::from_micros(detected.as_micros() - next(10) as i64 * HOUR));
                f.accepted_at = when(&mut next);
                f.diagnosed_at = when(&mut next);
                f.responded_at = when(&mut next);
                f.first_resolved_at = when(&mut next);
                f.resolved_at = when(&mut next);
                f.closed_at = when(&mut next);
                f.cancelled = next(8) == 0;
                f.detected_by_monitoring = next(2) == 0;
                f.team_changes = next(3) as u32;
                f.owner_changes = next(4) as u32;
                f.hold_micros = next(5) as i64 * HOUR;
                f.hold_micros_by_reason = BTreeMap::from([("awaiting_user".to_string(), f.hold_micros)]);
                f.resolved_automatically = next(4) == 0;
                f.known_solution = next(3) == 0;
                f.satisfaction = (next(2) == 0).then(|| 1 + next(5) as u8);
                f.reopened_at_least_once = next(5) == 0;
                f.first_time_resolution = next(2) == 0;
                f.acceptance_target_met = (next(3) > 0).then(|| next(2) == 0);
                f.resolution_target_met = (next(3) > 0).then(|| next(2) == 0);
                f
            })
            .collect()
    }

    fn weeks(start: i64) -> Vec<(String, Period)> {
        (0..3)
            .map(|w| {
                let from = Timestamp::from_micros(start + w * WEEK);
                let to = Timestamp::from_micros(start + (w + 1) * WEEK);
                (format!("w{w}"), Period { from, to })
            })
            .collect()
    }

    const START: i64 = 1_780_000_000 * 1_000_000;

    #[test]
    fn every_drill_down_lists_exactly_the_incidents_its_metric_counted() {
        let facts = history(START);
        // Every incident under a calendar: business hours count the same incidents.
        let always = keel_domain::sla::Calendar::always();
        for (_, period) in weeks(START) {
            let headlines = metrics::report(&facts, period, Some(&always)).headlines();
            for m in SECTIONS.iter().flat_map(|s| s.metrics.iter()) {
                let listed = facts.iter().filter(|f| m.family.counts(f, period)).count();
                let (_, counted) = headlines[m.key];
                if ["resolved_before_users_reported", "incident_model_use"].contains(&m.key) {
                    assert_eq!(counted, 0, "{} is not measured", m.key);
                    continue;
                }
                assert!(counted > 0, "{}: the history exercises every metric", m.key);
                assert_eq!(listed, counted, "{} counts what its drill-down lists", m.key);
                for (extra, _) in m.extra {
                    assert_eq!(headlines[*extra].1, counted, "{extra} is over the same incidents");
                }
            }
        }
    }

    #[test]
    fn reports_over_the_facts_of_the_span_equal_reports_over_every_incident() {
        let facts = history(START);
        let spans = weeks(START);
        let shown = trends(facts.iter(), &spans, |_| None);
        assert_eq!(shown.columns.len(), 3);
        for (column, (_, period)) in shown.columns.iter().zip(&spans) {
            assert_eq!(column.values, metrics::report(&facts, *period, None).headlines());
        }
        assert_eq!(
            shown.notes.keys().copied().collect::<Vec<_>>(),
            ["incident_model_use", "resolved_before_users_reported"],
            "the metrics the timeline cannot give carry their note"
        );
    }

    #[test]
    fn every_headline_of_the_report_is_on_the_dashboard() {
        let report = metrics::report(&[], weeks(START)[0].1, None);
        let on_dashboard: Vec<&str> = SECTIONS
            .iter()
            .flat_map(|s| s.metrics.iter())
            .flat_map(|m| std::iter::once(m.key).chain(m.extra.iter().map(|(k, _)| *k)))
            .collect();
        for name in report.headlines().keys() {
            assert!(on_dashboard.contains(&name.as_str()), "{name} is missing");
        }
        assert!(SPEED_VS_EFFECTIVENESS.iter().all(|k| metric(k).is_some()));
    }

    #[test]
    fn the_change_says_its_direction_in_words_and_whether_it_is_better() {
        let tta = metric("time_to_acceptance.median_secs").expect("shown");
        assert_eq!(tta.better, Better::Lower);
        let faster = change(tta, Some(1800.0), Some(3600.0), "week").into_string();
        assert!(
            faster.contains("Down") && faster.contains("50 % vs previous week"),
            "{faster}"
        );
        assert!(
            faster.contains("(better)") && faster.contains("class=\"change better\""),
            "{faster}"
        );
        let share = metric("reopen_rate").expect("shown");
        assert_eq!(share.unit, Unit::Percent);
        let more = change(share, Some(0.25), Some(0.0), "month").into_string();
        assert!(
            more.contains("Up") && more.contains("25 points vs previous month"),
            "{more}"
        );
        assert!(more.contains("(worse)"), "{more}");
        let same = change(tta, Some(3600.0), Some(3600.0), "week").into_string();
        assert!(same.contains("Unchanged vs previous week"), "{same}");
        let none = change(tta, Some(3600.0), None, "week").into_string();
        assert!(
            none.contains("No change to show: no value for the previous week."),
            "{none}"
        );
    }
}
