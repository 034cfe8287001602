//! Practice metrics: how well incident management works, computed from the
//! incidents' true timelines rather than from counters that can drift. Pure:
//! entries and `now` come in, numbers come out.
//!
//! Two steps. [`facts`] folds one incident's timeline into [`IncidentFacts`]:
//! the instants and counts every metric needs. [`report`] aggregates facts over
//! a [`Period`] into a [`Report`]; [`group_by`] splits facts by a context
//! (team, service, …) first, and [`compare`] sets a report beside the one of
//! the previous period.
//!
//! # The time of an entry
//!
//! An entry happened at its claimed `occurred_at` when it carries one (late
//! documentation and imported history keep the true time there), else at its
//! `recorded_at`. One exception: a registration opened by monitoring carries
//! the *signal's start* as its claimed `occurred_at` (and the same instant as
//! `observed_at`), so when an event-integration registration claims exactly
//! its `observed_at`, it was received at its `recorded_at`.
//!
//! Where keel announced no target of its own, a verdict another tool
//! recorded (`sla_outcome`, imported history) stands in: the resolution one
//! counts once the incident is resolved.
//!
//! SLA verdicts are the exception to the rule: the SLA clocks run on server
//! time (`recorded_at`), so the response and resolution entries are compared
//! with the announced due times by their `recorded_at` — unless the targets
//! were announced with a claimed time, as a replayed import does
//! (`sla_watch::replay`): that history runs on claimed time throughout.
//!
//! # Facts of one incident
//!
//! - `occurred_at`: the earliest of the record's (final) `observed_at` and the
//!   claimed start (`started_at`, else `occurred_at`) of any attached alert.
//! - `detected_at`: the earliest of the registration's time and the first
//!   `alert_attached`. `registered_at`: the registration's time.
//! - `accepted_at`, `diagnosed_at`: the first such entry. `first_resolved_at`:
//!   the first resolution. `resolved_at`: the last resolution, only while it
//!   stands (a reopen without a later resolution, or a cancellation, clears
//!   it). `closed_at`: the close.
//! - team changes: `assigned` entries that set a team after the first team was
//!   known (at registration or by the first assignment). Owner changes:
//!   `assigned` entries that set an owner, and escalations (ownership moves).
//! - hold time: each `put_on_hold` runs until the entry that ends it
//!   (`resumed`, `resolved` or `cancelled`); a hold still open at the end of
//!   the timeline counts up to `now` (the incident is waiting now). Resolved
//!   incidents never have an open hold, so `now` never affects their waiting
//!   share.
//! - `resolved_automatically`: the standing resolution says `automated` and
//!   no human acted between registration and it. An entry is human unless its
//!   actor is the system actor, or its kind is one only machines write
//!   (`alert_attached`, `alert_recovered`, `alert_flapping`, `sla_*`,
//!   `escalated`). Monitoring writes under its integration creator's id, so
//!   an acknowledgement or a reopen from the sender counts as human (an
//!   acknowledgement is a person acting in the monitoring tool).
//! - `known_solution`: the standing resolution used a known solution or
//!   recorded a workaround.
//! - `first_time_resolution`: resolved (standing), no team change after the
//!   first assignment, never reopened.
//! - SLA: the targets of the latest `sla_targets_set`. The response event is
//!   the first acceptance, or the first resolution when that came first (as
//!   the SLA clock counts it); the resolution event is the standing
//!   resolution. A target is missed when the timeline records its breach, met
//!   when the event came no later than the announced due time; otherwise
//!   missed, unless a hold or a reopen came before the event: those may have
//!   moved the due time after it was announced, and without a recorded
//!   breach the target counts as met. `None` when no target was announced or
//!   the event has not happened.
//!
//! # Which incidents count for which metric
//!
//! Cancelled incidents (not incidents, or duplicates) count for no metric;
//! the report gives their number. Each other incident counts for a metric in
//! the period that holds the instant named here (`[from, to)`), so one
//! incident counts once per metric across consecutive periods:
//!
//! | metric | counted in the period of | value |
//! | --- | --- | --- |
//! | `detection_lag` | `detected_at` (with `occurred_at` known) | `detected_at − occurred_at` |
//! | `detected_by_monitoring` | `detected_at` | share whose first signal was monitoring |
//! | `time_to_acceptance` | `accepted_at` | `accepted_at − detected_at` |
//! | `time_of_diagnosis` | `diagnosed_at` (accepted) | `diagnosed_at − accepted_at` |
//! | `time_to_resolve` | `resolved_at` | `resolved_at − detected_at`; business hours with a calendar |
//! | `reassignments` | `resolved_at` | mean team changes; mean owner changes |
//! | `waiting_share` | `resolved_at` | Σ hold time ÷ Σ (`resolved_at − registered_at`), overall and per reason |
//! | `first_time_resolution` | `resolved_at` | share |
//! | `resolution_target_met` | `resolved_at` (with a verdict) | share |
//! | `acceptance_target_met` | the response event (with a verdict) | share |
//! | `user_satisfaction` | `closed_at` | mean score of the answers; answers ÷ closures |
//! | `resolved_automatically` | `resolved_at` | share |
//! | `resolved_before_users_reported` | — | undefined: the timeline does not link user reports yet |
//! | `known_solution_reuse` | `resolved_at` | share |
//! | `incident_model_use` | — | undefined: keel has no incident models yet |
//! | `reopen_rate` | `first_resolved_at` | share reopened at least once (as of now) |
//!
//! Waiting share is a ratio of sums (time-weighted), not a mean of ratios, so
//! a one-minute incident on hold for its whole life does not outweigh a week.
//!
//! Durations are reported in seconds as the median and the 90th percentile by
//! the nearest-rank method: sort ascending, take the value at rank
//! `⌈p/100 · n⌉` (1-based). Every reported value is an observed one; the
//! median of an even count is the lower middle value. Durations are not
//! clamped: a claimed time that puts an event before its predecessor gives a
//! negative duration, which shows the bad claim rather than hiding it.
//!
//! A value is `None` when it is undefined: no incident counted, or (for a
//! ratio) a zero denominator; metrics the timeline cannot give carry a note.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sla::{Calendar, working_time_between};
use crate::{Change, Channel, Entry, HoldReason, Priority, Source, State, Timestamp, UserId, fold};

const MICROS_PER_SEC: f64 = 1_000_000.0;

/// Everything the metrics need to know about one incident.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct IncidentFacts {
    pub number: i64,
    pub occurred_at: Option<Timestamp>,
    pub detected_at: Timestamp,
    pub registered_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub diagnosed_at: Option<Timestamp>,
    pub first_resolved_at: Option<Timestamp>,
    /// The last resolution, while it stands.
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub cancelled: bool,
    pub state: State,
    pub detected_by_monitoring: bool,
    pub first_team: Option<String>,
    pub team_changes: u32,
    pub owner_changes: u32,
    pub reopens: u32,
    /// Time on hold in µs (an open hold counts up to `now`).
    pub hold_micros: i64,
    /// Time on hold in µs by reason (wire names, e.g. `awaiting_user`).
    pub hold_micros_by_reason: BTreeMap<String, i64>,
    pub resolved_automatically: bool,
    pub known_solution: bool,
    pub satisfaction: Option<u8>,
    pub reopened_at_least_once: bool,
    pub first_time_resolution: bool,
    pub response_due: Option<Timestamp>,
    pub resolution_due: Option<Timestamp>,
    /// When the response clock stopped: first acceptance, or first resolution if earlier.
    pub responded_at: Option<Timestamp>,
    pub acceptance_target_met: Option<bool>,
    pub resolution_target_met: Option<bool>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    pub priority: Priority,
    pub team: Option<String>,
    pub source: Source,
    pub major: bool,
}

/// The time an entry happened, for metrics: its claim, else when it was recorded.
fn at(entry: &Entry) -> Timestamp {
    entry.occurred_at.unwrap_or(entry.recorded_at)
}

/// The time an entry counts at for the SLA: server time, unless the targets
/// were announced in claimed time (a replayed history).
fn sla_time(entry: &Entry, claimed: bool) -> Timestamp {
    if claimed { at(entry) } else { entry.recorded_at }
}

/// The wire name of a hold reason.
#[must_use]
pub const fn hold_reason_name(reason: HoldReason) -> &'static str {
    match reason {
        HoldReason::AwaitingUser => "awaiting_user",
        HoldReason::AwaitingSupplier => "awaiting_supplier",
        HoldReason::AwaitingChange => "awaiting_change",
        HoldReason::Other => "other",
    }
}

const HOLD_REASONS: [HoldReason; 4] = [
    HoldReason::AwaitingUser,
    HoldReason::AwaitingSupplier,
    HoldReason::AwaitingChange,
    HoldReason::Other,
];

/// Kinds of entry that only machines write (ingest and the SLA sweep).
fn machine_only(change: &Change) -> bool {
    matches!(
        change,
        Change::AlertAttached { .. }
            | Change::AlertRecovered { .. }
            | Change::AlertFlapping { .. }
            | Change::SlaTargetsSet { .. }
            | Change::SlaAtRisk { .. }
            | Change::SlaBreached { .. }
            | Change::SlaOutcome { .. }
            | Change::Escalated { .. }
    )
}

/// The verdict on one SLA target (see the module doc).
fn verdict(breached: bool, due: Option<Timestamp>, event: Option<(Timestamp, bool)>) -> Option<bool> {
    let due = due?;
    let (event_recorded, due_may_have_moved) = event?;
    if breached {
        return Some(false);
    }
    Some(event_recorded <= due || due_may_have_moved)
}

/// Folds one incident's timeline (in sequence order) into its facts.
/// `system_actor` is the id keel's own workers write under; `now` ends a hold
/// still open. Entries whose kind this version does not know are skipped.
/// `None` for a timeline without a registration.
#[must_use]
pub fn facts(entries: &[Entry], system_actor: &UserId, now: Timestamp) -> Option<IncidentFacts> {
    let parsed: Vec<(&Entry, Change)> = entries
        .iter()
        .filter_map(|e| Change::from_parts(&e.kind, &e.data).ok().map(|c| (e, c)))
        .collect();
    let incident = fold(
        "metrics",
        parsed.iter().map(|(e, c)| (e.seq, &e.actor, e.recorded_at, c)),
    )?;
    let (reg_entry, registration) = parsed.iter().find_map(|(e, c)| match c {
        Change::Registered(r) => Some((*e, r)),
        _ => None,
    })?;

    let registered_at = match reg_entry.occurred_at {
        Some(claim) if registration.channel == Channel::EventIntegration && Some(claim) == registration.observed_at => {
            reg_entry.recorded_at
        }
        _ => at(reg_entry),
    };
    let mut detected_at = registered_at;
    let mut occurred_at = incident.observed_at;
    let mut first_alert_at: Option<Timestamp> = None;
    let mut accepted: Option<&Entry> = None;
    let mut diagnosed_at = None;
    let mut first_resolved: Option<&Entry> = None;
    let mut last_resolved: Option<(&Entry, &Change)> = None;
    let mut closed_at = None;
    let mut satisfaction = None;
    let mut first_team = registration.team.clone();
    let mut team_changes = 0u32;
    let mut owner_changes = 0u32;
    let mut open_hold: Option<(HoldReason, Timestamp)> = None;
    let mut hold_by_reason: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut holds_or_reopens_seen = false;
    let mut hold_or_reopen_before_response = false;
    let mut hold_or_reopen_before_resolution = false;
    let mut breached: Vec<&str> = Vec::new();
    let mut response_due = None;
    let mut resolution_due = None;
    // Targets announced with a claimed time (a replayed history) run on
    // claimed time; the live sweep's run on server time.
    let mut targets_claimed = false;
    // Verdicts another tool recorded (imported history), by target.
    let mut recorded_response: Option<bool> = None;
    let mut recorded_resolution: Option<bool> = None;

    let mut end_hold = |open: &mut Option<(HoldReason, Timestamp)>, until: Timestamp| {
        if let Some((reason, since)) = open.take() {
            *hold_by_reason.entry(hold_reason_name(reason)).or_insert(0) +=
                (until.as_micros() - since.as_micros()).max(0);
        }
    };

    for (entry, change) in &parsed {
        let when = at(entry);
        match change {
            Change::Registered(_) | Change::Reclassified(_) | Change::Commented { .. } => {}
            Change::Accepted {} => {
                if accepted.is_none() {
                    accepted = Some(entry);
                    if first_resolved.is_none() {
                        hold_or_reopen_before_response = holds_or_reopens_seen;
                    }
                }
            }
            Change::PutOnHold { reason, .. } => {
                holds_or_reopens_seen = true;
                end_hold(&mut open_hold, when);
                open_hold = Some((*reason, when));
            }
            Change::Resumed { .. } | Change::Cancelled { .. } => end_hold(&mut open_hold, when),
            Change::Diagnosed { .. } => {
                diagnosed_at.get_or_insert(when);
            }
            Change::Resolved { .. } => {
                end_hold(&mut open_hold, when);
                if first_resolved.is_none() {
                    first_resolved = Some(entry);
                    if accepted.is_none() {
                        hold_or_reopen_before_response = holds_or_reopens_seen;
                    }
                }
                hold_or_reopen_before_resolution = holds_or_reopens_seen;
                last_resolved = Some((entry, change));
            }
            Change::Closed { satisfaction: s, .. } => {
                closed_at = Some(when);
                satisfaction = *s;
            }
            Change::Reopened { .. } => holds_or_reopens_seen = true,
            Change::Assigned { team, owner, .. } => {
                if let Some(team) = team {
                    if first_team.is_some() {
                        team_changes += 1;
                    } else {
                        first_team = Some(team.clone());
                    }
                }
                if owner.is_some() {
                    owner_changes += 1;
                }
            }
            Change::Escalated { .. } => owner_changes += 1,
            Change::AlertAttached { .. } => {
                first_alert_at.get_or_insert(when);
                detected_at = detected_at.min(when);
                if let Some(start) = entry.started_at.or(entry.occurred_at) {
                    occurred_at = Some(occurred_at.map_or(start, |o| o.min(start)));
                }
            }
            Change::SlaTargetsSet {
                response_due: r,
                resolution_due: d,
                ..
            } => {
                response_due = *r;
                resolution_due = *d;
                targets_claimed = entry.occurred_at.is_some();
            }
            Change::SlaBreached { target, .. } => breached.push(target.as_str()),
            Change::SlaOutcome { target, met } => match target.as_str() {
                "response" => recorded_response = Some(*met),
                "resolution" => recorded_resolution = Some(*met),
                _ => {}
            },
            Change::AlertRecovered { .. }
            | Change::AlertFlapping { .. }
            | Change::CollaboratorJoined { .. }
            | Change::CollaboratorLeft { .. }
            | Change::SlaAtRisk { .. } => {}
        }
    }
    if open_hold.is_some() {
        end_hold(&mut open_hold, now);
    }

    let state = incident.state;
    let cancelled = state == State::Cancelled;
    let standing = last_resolved.filter(|_| matches!(state, State::Resolved | State::Closed));
    let resolved_at = standing.map(|(e, _)| at(e));
    let (automated, known) = match standing {
        Some((
            _,
            Change::Resolved {
                automated,
                known_solution,
                workaround,
                ..
            },
        )) => (*automated, *known_solution || workaround.is_some()),
        _ => (false, false),
    };
    // Human entries strictly between the registration and the resolution
    // (the resolution itself is written by whoever automated it).
    let human = |(entry, change): &(&Entry, Change)| {
        !machine_only(change) && entry.actor != *system_actor && !matches!(change, Change::Registered(_))
    };
    let resolved_automatically = automated
        && standing
            .is_some_and(|(resolution, _)| !parsed.iter().take_while(|(e, _)| e.seq < resolution.seq).any(human));

    let responded = match (accepted, first_resolved) {
        (Some(a), Some(r)) if r.seq < a.seq => Some(r),
        (Some(a), _) => Some(a),
        (None, r) => r,
    };
    let acceptance_target_met = verdict(
        breached.contains(&"response"),
        response_due,
        responded.map(|e| (sla_time(e, targets_claimed), hold_or_reopen_before_response)),
    )
    .or(recorded_response.filter(|_| response_due.is_none()));
    let resolution_target_met = verdict(
        breached.contains(&"resolution"),
        resolution_due,
        standing.map(|(e, _)| (sla_time(e, targets_claimed), hold_or_reopen_before_resolution)),
    )
    .or(recorded_resolution.filter(|_| resolution_due.is_none() && standing.is_some()));

    let detected_by_monitoring = registration.source == Source::Monitoring
        || registration.channel == Channel::EventIntegration
        || first_alert_at.is_some_and(|t| t < registered_at);
    let reopens = incident.reopens;
    let hold_micros = hold_by_reason.values().sum();
    Some(IncidentFacts {
        number: registration.number,
        occurred_at,
        detected_at,
        registered_at,
        accepted_at: accepted.map(at),
        diagnosed_at,
        first_resolved_at: first_resolved.map(at),
        resolved_at,
        closed_at,
        cancelled,
        state,
        detected_by_monitoring,
        first_team,
        team_changes,
        owner_changes,
        reopens,
        hold_micros,
        hold_micros_by_reason: hold_by_reason
            .into_iter()
            .map(|(reason, micros)| (reason.to_string(), micros))
            .collect(),
        resolved_automatically,
        known_solution: known,
        satisfaction,
        reopened_at_least_once: reopens > 0,
        first_time_resolution: resolved_at.is_some() && team_changes == 0 && reopens == 0,
        response_due,
        resolution_due,
        responded_at: responded.map(at),
        acceptance_target_met,
        resolution_target_met,
        service: incident.service,
        ci: incident.ci,
        category: incident.category,
        priority: incident.priority,
        team: incident.team,
        source: incident.source,
        major: incident.major,
    })
}

// ---------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------

/// A half-open span of time `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Period {
    /// Whether `t` lies in the period.
    #[must_use]
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    /// The period of the same length that ends where this one starts.
    #[must_use]
    pub fn previous(&self) -> Period {
        let length = self.to.as_micros().saturating_sub(self.from.as_micros());
        Period {
            from: Timestamp::from_micros(self.from.as_micros().saturating_sub(length)),
            to: self.from,
        }
    }

    fn holds(&self, t: Option<Timestamp>) -> bool {
        t.is_some_and(|t| self.contains(t))
    }
}

/// Durations: median and 90th percentile (nearest rank), in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DurationMetric {
    pub count: usize,
    pub median_secs: Option<f64>,
    pub p90_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// A share: `hits` of `count`, as a fraction 0…1.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShareMetric {
    pub value: Option<f64>,
    pub count: usize,
    pub hits: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// A mean over `count` incidents.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MeanMetric {
    pub value: Option<f64>,
    pub count: usize,
}

/// Team and owner changes per resolved incident.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reassignments {
    /// Mean team changes after the first assignment.
    pub team_changes: MeanMetric,
    /// Mean owner changes (assignments and escalations).
    pub owner_changes: MeanMetric,
}

/// Time on hold as a share of time from registration to resolution.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WaitingShare {
    /// Over all hold reasons; `count` is the number of resolved incidents.
    pub overall: MeanMetric,
    /// Per hold reason (every reason listed).
    pub by_reason: BTreeMap<String, MeanMetric>,
}

/// Closure survey answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    /// Mean score (1–5) over the answers; `count` = answers.
    pub mean: MeanMetric,
    /// Answers ÷ closures; `count` = closures.
    pub response_rate: ShareMetric,
}

/// Every practice metric over one period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Incidents considered (not cancelled).
    pub incidents: usize,
    /// Cancelled incidents, left out of every metric.
    pub cancelled: usize,
    pub detection_lag: DurationMetric,
    pub detected_by_monitoring: ShareMetric,
    pub time_to_acceptance: DurationMetric,
    pub time_of_diagnosis: DurationMetric,
    pub time_to_resolve: DurationMetric,
    /// `time_to_resolve` counted in working time of the calendar given (undefined without one).
    pub time_to_resolve_business_hours: DurationMetric,
    pub reassignments: Reassignments,
    pub waiting_share: WaitingShare,
    pub first_time_resolution: ShareMetric,
    pub resolution_target_met: ShareMetric,
    pub acceptance_target_met: ShareMetric,
    pub user_satisfaction: Satisfaction,
    pub resolved_automatically: ShareMetric,
    pub resolved_before_users_reported: ShareMetric,
    pub known_solution_reuse: ShareMetric,
    pub incident_model_use: ShareMetric,
    pub reopen_rate: ShareMetric,
}

/// The value at percentile `p` of ascending `sorted` by the nearest-rank method.
fn nearest_rank(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // ⌈p·n/100⌉, at least 1.
    let rank = (n * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn durations(mut micros: Vec<i64>) -> DurationMetric {
    micros.sort_unstable();
    let secs = |v: Option<i64>| v.map(|m| m as f64 / MICROS_PER_SEC);
    DurationMetric {
        count: micros.len(),
        median_secs: secs(nearest_rank(&micros, 50)),
        p90_secs: secs(nearest_rank(&micros, 90)),
        note: None,
    }
}

fn mean(values: &[f64]) -> MeanMetric {
    MeanMetric {
        value: (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        count: values.len(),
    }
}

fn ratio(numerator: i64, denominator: i64, count: usize) -> MeanMetric {
    MeanMetric {
        value: (denominator > 0).then(|| numerator as f64 / denominator as f64),
        count,
    }
}

fn span(from: Timestamp, to: Timestamp) -> i64 {
    to.as_micros() - from.as_micros()
}

fn undefined(note: &'static str) -> ShareMetric {
    ShareMetric {
        note: Some(note),
        ..ShareMetric::default()
    }
}

/// Counts of a share as it is accumulated.
#[derive(Default)]
struct Tally {
    count: usize,
    hits: usize,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.count += 1;
        self.hits += usize::from(hit);
    }

    fn share(&self) -> ShareMetric {
        ShareMetric {
            value: (self.count > 0).then(|| self.hits as f64 / self.count as f64),
            count: self.count,
            hits: self.hits,
            note: None,
        }
    }
}

/// Every metric over `facts` for `period` (see the module doc for which
/// incident counts where). `calendar`, when given, measures time to resolve
/// in business hours too. One pass over the facts (a report may run over
/// a million incidents).
#[must_use]
pub fn report<'a>(
    facts: impl IntoIterator<Item = &'a IncidentFacts>,
    period: Period,
    calendar: Option<&Calendar>,
) -> Report {
    report_with(facts, period, |_| calendar)
}

/// [`report`] with each incident's own business-hours calendar (that of
/// its SLA policy), `None` for an incident without one. Time to resolve in
/// business hours counts the incidents that have a calendar; it is
/// undefined when none has.
#[must_use]
pub fn report_with<'a, 'c>(
    facts: impl IntoIterator<Item = &'a IncidentFacts>,
    period: Period,
    calendar_of: impl Fn(&IncidentFacts) -> Option<&'c Calendar>,
) -> Report {
    let mut any_calendar = false;
    let (mut incidents, mut cancelled) = (0usize, 0usize);
    let mut detection_lag = Vec::new();
    let mut detected_by_monitoring = Tally::default();
    let mut to_accept = Vec::new();
    let mut to_diagnose = Vec::new();
    let mut to_resolve = Vec::new();
    let mut to_resolve_working = Vec::new();
    let (mut elapsed, mut held) = (0i64, 0i64);
    let mut held_by_reason = [0i64; HOLD_REASONS.len()];
    let (mut resolved, mut team_changes, mut owner_changes) = (0usize, 0f64, 0f64);
    let mut first_time = Tally::default();
    let mut resolution_met = Tally::default();
    let mut acceptance_met = Tally::default();
    let mut automatic = Tally::default();
    let mut known_solution = Tally::default();
    let mut reopened = Tally::default();
    let (mut closed, mut scores) = (0usize, Vec::new());
    for f in facts {
        if f.cancelled {
            cancelled += 1;
            continue;
        }
        incidents += 1;
        if period.contains(f.detected_at) {
            if let Some(o) = f.occurred_at {
                detection_lag.push(span(o, f.detected_at));
            }
            detected_by_monitoring.add(f.detected_by_monitoring);
        }
        if let Some(a) = f.accepted_at.filter(|a| period.contains(*a)) {
            to_accept.push(span(f.detected_at, a));
        }
        if let (Some(d), Some(a)) = (f.diagnosed_at.filter(|d| period.contains(*d)), f.accepted_at) {
            to_diagnose.push(span(a, d));
        }
        if let Some(t) = f.resolved_at.filter(|t| period.contains(*t)) {
            resolved += 1;
            to_resolve.push(span(f.detected_at, t));
            if let Some(calendar) = calendar_of(f) {
                any_calendar = true;
                to_resolve_working.push(working_time_between(calendar, f.detected_at, t).as_micros());
            }
            elapsed += span(f.registered_at, t).max(0);
            held += f.hold_micros;
            for (slot, reason) in held_by_reason.iter_mut().zip(HOLD_REASONS) {
                *slot += f
                    .hold_micros_by_reason
                    .get(hold_reason_name(reason))
                    .copied()
                    .unwrap_or(0);
            }
            team_changes += f64::from(f.team_changes);
            owner_changes += f64::from(f.owner_changes);
            first_time.add(f.first_time_resolution);
            if let Some(met) = f.resolution_target_met {
                resolution_met.add(met);
            }
            automatic.add(f.resolved_automatically);
            known_solution.add(f.known_solution);
        }
        if period.holds(f.responded_at)
            && let Some(met) = f.acceptance_target_met
        {
            acceptance_met.add(met);
        }
        if period.holds(f.closed_at) {
            closed += 1;
            if let Some(score) = f.satisfaction {
                scores.push(f64::from(score));
            }
        }
        if period.holds(f.first_resolved_at) {
            reopened.add(f.reopened_at_least_once);
        }
    }
    let per_resolved = |sum: f64| MeanMetric {
        value: (resolved > 0).then(|| sum / resolved as f64),
        count: resolved,
    };
    Report {
        from: period.from,
        to: period.to,
        incidents,
        cancelled,
        detection_lag: durations(detection_lag),
        detected_by_monitoring: detected_by_monitoring.share(),
        time_to_acceptance: durations(to_accept),
        time_of_diagnosis: durations(to_diagnose),
        time_to_resolve: durations(to_resolve),
        time_to_resolve_business_hours: if any_calendar {
            durations(to_resolve_working)
        } else {
            DurationMetric {
                note: Some("no resolved incident under an SLA calendar"),
                ..DurationMetric::default()
            }
        },
        reassignments: Reassignments {
            team_changes: per_resolved(team_changes),
            owner_changes: per_resolved(owner_changes),
        },
        waiting_share: WaitingShare {
            overall: ratio(held, elapsed, resolved),
            by_reason: HOLD_REASONS
                .iter()
                .zip(held_by_reason)
                .map(|(reason, held)| (hold_reason_name(*reason).to_string(), ratio(held, elapsed, resolved)))
                .collect(),
        },
        first_time_resolution: first_time.share(),
        resolution_target_met: resolution_met.share(),
        acceptance_target_met: acceptance_met.share(),
        user_satisfaction: Satisfaction {
            response_rate: ShareMetric {
                value: (closed > 0).then(|| scores.len() as f64 / closed as f64),
                count: closed,
                hits: scores.len(),
                note: None,
            },
            mean: mean(&scores),
        },
        resolved_automatically: automatic.share(),
        // A user report linked to a monitoring-detected incident is not a
        // timeline entry yet, so the timeline cannot tell.
        resolved_before_users_reported: undefined("the timeline does not record linked user reports yet"),
        known_solution_reuse: known_solution.share(),
        incident_model_use: undefined("keel has no incident models yet"),
        reopen_rate: reopened.share(),
    }
}

// ---------------------------------------------------------------------------
// Grouping and trends
// ---------------------------------------------------------------------------

/// A context to group incidents by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// The final team.
    Team,
    Service,
    Ci,
    Category,
    /// The final priority.
    Priority,
    Source,
}

/// The group of incidents without a value for the key.
pub const UNSET: &str = "(none)";

/// Splits `facts` by `key`; incidents without a value go under [`UNSET`].
#[must_use]
pub fn group_by<'a>(
    facts: impl IntoIterator<Item = &'a IncidentFacts>,
    key: GroupKey,
) -> BTreeMap<String, Vec<&'a IncidentFacts>> {
    // Borrowed names while splitting: no allocation per incident.
    let mut groups: std::collections::HashMap<&'a str, Vec<&'a IncidentFacts>> = std::collections::HashMap::new();
    for f in facts {
        let name = match key {
            GroupKey::Team => f.team.as_deref(),
            GroupKey::Service => f.service.as_deref(),
            GroupKey::Ci => f.ci.as_deref(),
            GroupKey::Category => f.category.as_deref(),
            GroupKey::Priority => Some(f.priority.as_str()),
            GroupKey::Source => Some(match f.source {
                Source::User => "user",
                Source::Monitoring => "monitoring",
                Source::Specialist => "specialist",
                Source::Supplier => "supplier",
            }),
        };
        groups.entry(name.unwrap_or(UNSET)).or_default().push(f);
    }
    groups.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One metric now and in the previous period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trend {
    pub current: Option<f64>,
    /// The incidents behind `current`.
    pub count: usize,
    pub previous: Option<f64>,
    /// `current − previous`; undefined when either is.
    pub change: Option<f64>,
}

impl Report {
    /// The headline value of every metric, by dotted name
    /// (`time_to_resolve.median_secs`, `reopen_rate`, …).
    #[must_use]
    pub fn values(&self) -> BTreeMap<String, Option<f64>> {
        self.headlines()
            .into_iter()
            .map(|(name, (value, _))| (name, value))
            .collect()
    }

    /// Every metric's headline value and the number of incidents behind it,
    /// by the names of [`Report::values`].
    #[must_use]
    pub fn headlines(&self) -> BTreeMap<String, (Option<f64>, usize)> {
        let mut out = BTreeMap::new();
        let mut put = |name: &str, value: Option<f64>, count: usize| {
            out.insert(name.to_string(), (value, count));
        };
        for (name, d) in [
            ("detection_lag", &self.detection_lag),
            ("time_to_acceptance", &self.time_to_acceptance),
            ("time_of_diagnosis", &self.time_of_diagnosis),
            ("time_to_resolve", &self.time_to_resolve),
            ("time_to_resolve_business_hours", &self.time_to_resolve_business_hours),
        ] {
            put(&format!("{name}.median_secs"), d.median_secs, d.count);
            put(&format!("{name}.p90_secs"), d.p90_secs, d.count);
        }
        for (name, s) in [
            ("detected_by_monitoring", &self.detected_by_monitoring),
            ("first_time_resolution", &self.first_time_resolution),
            ("resolution_target_met", &self.resolution_target_met),
            ("acceptance_target_met", &self.acceptance_target_met),
            ("resolved_automatically", &self.resolved_automatically),
            ("resolved_before_users_reported", &self.resolved_before_users_reported),
            ("known_solution_reuse", &self.known_solution_reuse),
            ("incident_model_use", &self.incident_model_use),
            ("reopen_rate", &self.reopen_rate),
            ("user_satisfaction.response_rate", &self.user_satisfaction.response_rate),
        ] {
            put(name, s.value, s.count);
        }
        let mean = |m: &MeanMetric| (m.value, m.count);
        for (name, (value, count)) in [
            ("user_satisfaction.mean", mean(&self.user_satisfaction.mean)),
            ("reassignments.team_changes", mean(&self.reassignments.team_changes)),
            ("reassignments.owner_changes", mean(&self.reassignments.owner_changes)),
            ("waiting_share", mean(&self.waiting_share.overall)),
        ] {
            put(name, value, count);
        }
        for (reason, m) in &self.waiting_share.by_reason {
            put(&format!("waiting_share.{reason}"), m.value, m.count);
        }
        out
    }
}

/// The change of every metric from `previous` to `current`, by the names of
/// [`Report::values`].
#[must_use]
pub fn compare(current: &Report, previous: &Report) -> BTreeMap<String, Trend> {
    let before = previous.values();
    current
        .headlines()
        .into_iter()
        .map(|(name, (now, count))| {
            let then = before.get(&name).copied().flatten();
            let change = match (now, then) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            };
            (
                name,
                Trend {
                    current: now,
                    count,
                    previous: then,
                    change,
                },
            )
        })
        .collect()
}
