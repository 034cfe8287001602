//! The incident as it stands: a projection folded from its timeline entries.
//! [`apply`] holds no rules; it only records what [`crate::decide`] allowed.

use serde::{Deserialize, Serialize};

use crate::lifecycle::Change;
use crate::{Channel, HoldReason, Impact, Priority, Source, State, Timestamp, Urgency, UserId};

/// How an incident was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub code: String,
    pub notes: String,
    pub resolved_by: UserId,
    pub resolved_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
    pub known_solution: bool,
    pub automated: bool,
}

/// How an incident was closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub closed_by: UserId,
    /// Closed by the person who reported it: the user confirmed the fix.
    pub confirmed_by_reporter: bool,
    pub satisfaction: Option<u8>,
    pub feedback: Option<String>,
    pub time_spent_minutes: Option<u32>,
    pub review_needed: bool,
}

/// The current state of one incident, derived from its timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub state: State,
    pub impact: Impact,
    pub urgency: Urgency,
    pub priority: Priority,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub source: Source,
    pub channel: Channel,
    pub location: Option<String>,
    pub symptoms: Option<String>,
    pub impacted: Option<String>,
    pub observed_at: Option<Timestamp>,
    pub last_known_good_at: Option<Timestamp>,
    pub auto_fix_tried: Option<bool>,
    pub auto_fix_note: Option<String>,
    pub team: Option<String>,
    /// Exactly one owner at every moment: the type has no "nobody".
    pub owner: UserId,
    pub reported_by: UserId,
    pub collaborators: Vec<UserId>,
    pub major: bool,
    pub hold_reason: Option<HoldReason>,
    pub cause: Option<String>,
    pub resolution: Option<Resolution>,
    #[serde(default)]
    pub closure: Option<Closure>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub diagnosed_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub reassignments: u32,
    pub reopens: u32,
    /// Dedup keys of the monitoring alerts of this incident that are still open.
    #[serde(default)]
    pub open_alerts: Vec<String>,
    /// What SLA clocks need of the history (registration, accept, holds, …).
    #[serde(default)]
    pub sla_events: Vec<crate::sla::SlaEvent>,
    /// The escalation level reached (ownership moved up because nobody accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_level: Option<u32>,
    /// SLA bookkeeping from the timeline: targets announced, warnings and
    /// breaches recorded (each once per target).
    #[serde(default)]
    pub sla: SlaRecord,
    /// The sequence number of the last timeline entry.
    pub version: u64,
}

/// What the timeline says about an incident's SLA so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaRecord {
    /// The priority whose targets were last announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<crate::Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_due: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_due: Option<Timestamp>,
    /// Targets ("response", "resolution") warned about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warned: Vec<String>,
    /// Targets recorded as breached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breached: Vec<String>,
}

/// The incident after one more change. `incident` is `None` only for the
/// registration. A change that does not fit (a non-registration without an
/// incident) leaves the input as it was: deciding, not applying, refuses.
#[must_use]
pub fn apply(
    incident: Option<Incident>,
    id: &str,
    seq: u64,
    actor: &UserId,
    at: Timestamp,
    change: &Change,
) -> Option<Incident> {
    if let Change::Registered(reg) = change {
        return Some(Incident {
            id: id.to_string(),
            number: reg.number,
            title: reg.title.clone(),
            description: reg.description.clone(),
            state: State::New,
            impact: reg.impact,
            urgency: reg.urgency,
            priority: reg.priority,
            service: reg.service.clone(),
            ci: reg.ci.clone(),
            category: reg.category.clone(),
            subcategory: reg.subcategory.clone(),
            source: reg.source,
            channel: reg.channel,
            location: reg.location.clone(),
            symptoms: reg.symptoms.clone(),
            impacted: reg.impacted.clone(),
            observed_at: reg.observed_at,
            last_known_good_at: reg.last_known_good_at,
            auto_fix_tried: reg.auto_fix_tried,
            auto_fix_note: reg.auto_fix_note.clone(),
            team: reg.team.clone(),
            owner: reg.owner.clone(),
            reported_by: reg.reported_by.clone(),
            collaborators: Vec::new(),
            major: reg.major,
            hold_reason: None,
            cause: None,
            resolution: None,
            closure: None,
            created_at: at,
            updated_at: at,
            accepted_at: None,
            diagnosed_at: None,
            resolved_at: None,
            closed_at: None,
            reassignments: 0,
            reopens: 0,
            open_alerts: Vec::new(),
            sla_events: crate::sla::events_from_timeline(&[(at, change)]),
            sla: SlaRecord::default(),
            escalation_level: None,
            version: seq,
        });
    }
    let mut inc = incident?;
    inc.version = seq;
    inc.updated_at = at;
    inc.sla_events.extend(crate::sla::events_from_timeline(&[(at, change)]));
    match change {
        Change::Registered(_) => {}
        Change::Reclassified(patch) => patch.apply_to(&mut inc),
        Change::Accepted {} => {
            inc.state = State::Accepted;
            inc.accepted_at.get_or_insert(at);
        }
        Change::PutOnHold { reason, .. } => {
            inc.state = State::OnHold;
            inc.hold_reason = Some(*reason);
        }
        Change::Resumed { .. } => {
            inc.state = State::Accepted;
            inc.hold_reason = None;
        }
        Change::Diagnosed { cause, .. } => {
            if cause.is_some() {
                inc.cause.clone_from(cause);
            }
            inc.diagnosed_at.get_or_insert(at);
        }
        Change::Resolved {
            code,
            notes,
            workaround,
            known_solution,
            automated,
        } => {
            inc.state = State::Resolved;
            inc.hold_reason = None;
            inc.resolved_at = Some(at);
            inc.resolution = Some(Resolution {
                code: code.clone(),
                notes: notes.clone(),
                resolved_by: actor.clone(),
                resolved_at: at,
                workaround: workaround.clone(),
                known_solution: *known_solution,
                automated: *automated,
            });
        }
        Change::Closed {
            satisfaction,
            feedback,
            time_spent_minutes,
            review_needed,
            ..
        } => {
            inc.state = State::Closed;
            inc.closed_at = Some(at);
            inc.closure = Some(Closure {
                closed_by: actor.clone(),
                confirmed_by_reporter: *actor == inc.reported_by,
                satisfaction: *satisfaction,
                feedback: feedback.clone(),
                time_spent_minutes: *time_spent_minutes,
                review_needed: *review_needed,
            });
        }
        Change::Reopened { .. } => {
            inc.state = State::Accepted;
            inc.reopens += 1;
            inc.resolved_at = None;
            inc.resolution = None;
        }
        Change::Cancelled { .. } => {
            inc.state = State::Cancelled;
            inc.hold_reason = None;
            inc.closed_at = Some(at);
        }
        Change::Assigned {
            team,
            owner,
            add_collaborators,
            ..
        } => {
            // A reassignment moves the incident to another team; the first
            // assignment of a team and owner changes within a team are not.
            if let Some(team) = team {
                if inc.team.as_ref().is_some_and(|current| current != team) {
                    inc.reassignments += 1;
                }
                inc.team = Some(team.clone());
            }
            if let Some(owner) = owner {
                inc.owner = owner.clone();
                inc.collaborators.retain(|c| c != owner);
            }
            for user in add_collaborators {
                if *user != inc.owner && !inc.collaborators.contains(user) {
                    inc.collaborators.push(user.clone());
                }
            }
        }
        Change::Commented { .. } => {}
        Change::AlertAttached { dedup_key, .. } => {
            if !inc.open_alerts.contains(dedup_key) {
                inc.open_alerts.push(dedup_key.clone());
            }
        }
        Change::AlertRecovered { dedup_key } => inc.open_alerts.retain(|k| k != dedup_key),
        Change::AlertFlapping { .. } => {}
        Change::CollaboratorJoined { user } => {
            if *user != inc.owner && !inc.collaborators.contains(user) {
                inc.collaborators.push(user.clone());
            }
        }
        Change::CollaboratorLeft { user } => inc.collaborators.retain(|c| c != user),
        // Kept for the metrics; the record's own SLA state is keel's.
        Change::SlaOutcome { .. } => {}
        Change::Escalated { level, to, .. } => {
            inc.collaborators.retain(|c| c != to);
            inc.owner = to.clone();
            inc.escalation_level = Some(*level);
        }
        Change::SlaTargetsSet {
            priority,
            response_due,
            resolution_due,
        } => {
            inc.sla.priority = Some(*priority);
            inc.sla.response_due = *response_due;
            inc.sla.resolution_due = *resolution_due;
        }
        Change::SlaAtRisk { target, .. } => {
            if !inc.sla.warned.contains(target) {
                inc.sla.warned.push(target.clone());
            }
        }
        Change::SlaBreached { target, .. } => {
            if !inc.sla.breached.contains(target) {
                inc.sla.breached.push(target.clone());
            }
        }
    }
    Some(inc)
}

/// Folds a whole timeline (in sequence order) into the incident it describes.
#[must_use]
pub fn fold<'a>(
    id: &str,
    entries: impl IntoIterator<Item = (u64, &'a UserId, Timestamp, &'a Change)>,
) -> Option<Incident> {
    let mut incident = None;
    for (seq, actor, at, change) in entries {
        incident = apply(incident, id, seq, actor, at, change);
    }
    incident
}
