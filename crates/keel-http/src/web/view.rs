//! Pieces of pages shared by the console, the portal and the status page:
//! words for states and priorities, times in the viewer's zone, timeline
//! entries in plain language, SLA badges with countdowns. All text goes
//! through maud's escaping.

use std::collections::HashMap;

use keel_domain::{Entry, Incident, Priority, Timestamp};
use keel_store::IncidentFilter;
use maud::{Markup, html};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// The wire name of a value (its serde name).
pub(crate) fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A lifecycle state in words.
pub(crate) fn state_words(state: &str) -> &'static str {
    match state {
        "new" => "New",
        "accepted" => "Accepted",
        "on_hold" => "On hold",
        "resolved" => "Resolved",
        "closed" => "Closed",
        "cancelled" => "Cancelled",
        _ => "Unknown",
    }
}

/// The states a queue filter offers, with "open" first.
pub(crate) const STATE_CHOICES: [(&str, &str); 8] = [
    ("open", "Open (new, accepted, on hold)"),
    ("", "Any state"),
    ("new", "New"),
    ("accepted", "Accepted"),
    ("on_hold", "On hold"),
    ("resolved", "Resolved"),
    ("closed", "Closed"),
    ("cancelled", "Cancelled"),
];

pub(crate) fn hold_words(reason: &str) -> &'static str {
    match reason {
        "awaiting_user" => "waiting for the user",
        "awaiting_supplier" => "waiting for a supplier",
        "awaiting_change" => "waiting for a change",
        _ => "other reason",
    }
}

pub(crate) fn sla_words(state: &str) -> &'static str {
    match state {
        "within" => "Within target",
        "at_risk" => "At risk",
        "breached" => "Breached",
        "met" => "Met",
        "missed" => "Missed",
        "cancelled" => "Stopped",
        _ => "No SLA",
    }
}

pub(crate) fn priority_badge(priority: &str) -> Markup {
    let class = match Priority::parse(priority) {
        Some(Priority::P1) => "badge p1",
        Some(Priority::P2) => "badge p2",
        Some(Priority::P3) => "badge p3",
        _ => "badge p4",
    };
    html! { span class=(class) { (priority) } }
}

pub(crate) fn state_badge(state: &str) -> Markup {
    html! { span class={ "badge state-" (state) } data-testid="state" { (state_words(state)) } }
}

pub(crate) fn impact_words(level: u8) -> &'static str {
    match level {
        1 => "1 – Extensive: a whole service or many people",
        2 => "2 – Significant: a department, a site or a key group",
        3 => "3 – Moderate: a few people or a team",
        _ => "4 – Minor: one person",
    }
}

pub(crate) fn urgency_words(level: u8) -> &'static str {
    match level {
        1 => "1 – Critical: work has stopped, damage grows by the minute",
        2 => "2 – High: work is badly hampered, it gets worse soon",
        3 => "3 – Medium: work goes on with difficulty",
        _ => "4 – Low: an inconvenience, a workaround exists",
    }
}

/// A time in the viewer's zone, machine-readable in `datetime`.
pub(crate) fn time(at: Timestamp, zone: &jiff::tz::TimeZone) -> Markup {
    let (iso, shown) = match jiff::Timestamp::from_microsecond(at.as_micros()) {
        Ok(ts) => {
            let local = ts.to_zoned(zone.clone());
            (ts.to_string(), local.strftime("%Y-%m-%d %H:%M %Z").to_string())
        }
        Err(_) => (String::new(), "?".into()),
    };
    html! { time datetime=(iso) { (shown) } }
}

/// A due time that counts down in the browser (`data-countdown`).
pub(crate) fn countdown(at: Timestamp, now: Timestamp, zone: &jiff::tz::TimeZone) -> Markup {
    let iso = jiff::Timestamp::from_microsecond(at.as_micros())
        .map(|t| t.to_string())
        .unwrap_or_default();
    html! {
        (time(at, zone))
        " "
        span.countdown data-countdown=(iso) { "(" (relative(at.as_micros() - now.as_micros())) ")" }
    }
}

/// "in 2 h 5 min" / "12 min ago".
pub(crate) fn relative(delta_micros: i64) -> String {
    let minutes = delta_micros.abs() / 60_000_000;
    let text = if minutes >= 48 * 60 {
        format!("{} d", minutes / (24 * 60))
    } else if minutes >= 60 {
        format!("{} h {} min", minutes / 60, minutes % 60)
    } else {
        format!("{minutes} min")
    };
    if delta_micros >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Names of people by id (ids of unknown people are shown as they are).
pub(crate) struct Names {
    known: HashMap<String, String>,
    /// Active staff (id, name), by name: who can own work.
    pub staff: Vec<(String, String)>,
    /// Shown for everyone else (the portal names only "You").
    others: Option<&'static str>,
}

impl Names {
    pub async fn load(state: &AppState) -> Result<Self, ApiError> {
        let users = state.store.list_users().await?;
        let staff = users
            .iter()
            .filter(|u| u.role.is_staff() && !u.disabled)
            .map(|u| (u.id.clone(), u.name.clone()))
            .collect();
        Ok(Self {
            known: users.into_iter().map(|u| (u.id, u.name)).collect(),
            staff,
            others: None,
        })
    }
    /// Names for an end user's pages: themselves as "You", staff as the service desk.
    pub fn for_reporter(user_id: &str) -> Self {
        Self {
            known: HashMap::from([(user_id.to_string(), "You".to_string())]),
            staff: Vec::new(),
            others: Some("the service desk"),
        }
    }
    pub fn of<'a>(&'a self, id: &'a str) -> &'a str {
        self.known.get(id).map(String::as_str).or(self.others).unwrap_or(id)
    }
}

fn text<'a>(data: &'a Value, field: &str) -> Option<&'a str> {
    data.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// One timeline entry in plain words. `names` is `None` on public pages,
/// where people are not named.
pub(crate) fn entry(e: &Entry, names: Option<&Names>, zone: &jiff::tz::TimeZone) -> Markup {
    let data = &e.data;
    let who = |id: &str| -> String { names.map_or_else(|| "the service desk".to_string(), |n| n.of(id).to_string()) };
    let actor = who(e.actor.as_str());
    let public = data.get("visibility").and_then(Value::as_str) == Some("public");
    let (headline, detail): (String, Option<String>) = match e.kind.as_str() {
        "registered" => ("Registered".into(), text(data, "title").map(str::to_string)),
        "reclassified" => {
            let fields: Vec<&str> = data
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            (format!("Reclassified ({})", fields.join(", ")), None)
        }
        "accepted" => ("Accepted".into(), None),
        "put_on_hold" => (
            format!("Put on hold, {}", hold_words(text(data, "reason").unwrap_or("other"))),
            text(data, "note").map(str::to_string),
        ),
        "resumed" => ("Resumed".into(), text(data, "note").map(str::to_string)),
        "diagnosed" => (
            "Diagnosed".into(),
            text(data, "cause").or_else(|| text(data, "note")).map(str::to_string),
        ),
        "resolved" => (
            format!("Resolved ({})", text(data, "code").unwrap_or("")),
            text(data, "notes").map(str::to_string),
        ),
        "closed" => (
            "Closed".into(),
            data.get("satisfaction")
                .and_then(Value::as_u64)
                .map(|s| format!("Satisfaction {s} of 5. {}", text(data, "feedback").unwrap_or(""))),
        ),
        "reopened" => ("Reopened".into(), text(data, "reason").map(str::to_string)),
        "cancelled" => ("Cancelled".into(), text(data, "reason").map(str::to_string)),
        "assigned" => {
            let mut parts = Vec::new();
            if let Some(team) = text(data, "team") {
                parts.push(format!("team {team}"));
            }
            if let Some(owner) = text(data, "owner") {
                parts.push(who(owner));
            }
            if let Some(list) = data.get("add_collaborators").and_then(Value::as_array) {
                let added: Vec<String> = list.iter().filter_map(Value::as_str).map(&who).collect();
                if !added.is_empty() {
                    parts.push(format!("with {}", added.join(", ")));
                }
            }
            (format!("Assigned to {}", parts.join(", ")), None)
        }
        "commented" => (
            if public {
                "Public update".into()
            } else {
                "Internal note".into()
            },
            text(data, "body").map(str::to_string),
        ),
        "alert_attached" => (
            format!("Alert ({})", text(data, "severity").unwrap_or("")),
            text(data, "summary").map(str::to_string),
        ),
        "alert_recovered" => ("Alert recovered".into(), text(data, "dedup_key").map(str::to_string)),
        "alert_flapping" => ("Alert flapping".into(), text(data, "dedup_key").map(str::to_string)),
        "collaborator_joined" => (format!("{} joined", who(text(data, "user").unwrap_or(""))), None),
        "collaborator_left" => (format!("{} left", who(text(data, "user").unwrap_or(""))), None),
        "escalated" => (
            format!(
                "Escalated (level {}) to {}",
                data.get("level").and_then(Value::as_u64).unwrap_or(0),
                who(text(data, "to").unwrap_or(""))
            ),
            None,
        ),
        "sla_targets_set" => ("SLA targets set".into(), None),
        "sla_at_risk" => (
            format!("SLA {} target at risk", text(data, "target").unwrap_or("")),
            None,
        ),
        "sla_breached" => (
            format!("SLA {} target breached", text(data, "target").unwrap_or("")),
            None,
        ),
        "sla_outcome" => (
            format!(
                "The source recorded the SLA {} target as {}",
                text(data, "target").unwrap_or(""),
                if data.get("met").and_then(Value::as_bool) == Some(true) {
                    "met"
                } else {
                    "missed"
                }
            ),
            None,
        ),
        other => (other.replace('_', " "), None),
    };
    let claimed = e.occurred_at.or(e.started_at);
    html! {
        li.entry class={ "kind-" (e.kind) @if e.kind == "commented" && !public { " internal" } } id={ "e" (e.seq) } data-seq=(e.seq) {
            div.meta {
                (time(e.recorded_at, zone))
                " · " span.actor { (actor) }
                @if let Some(claimed) = claimed {
                    " · " span.claimed { "happened " (time(claimed, zone)) }
                }
            }
            div.what { strong { (headline) } }
            @if let Some(detail) = detail {
                p.detail { (detail) }
            }
        }
    }
}

/// Major incidents in these states, newest first.
pub(crate) async fn majors(state: &AppState, states: &[&str], limit: u32) -> Result<Vec<Incident>, ApiError> {
    Ok(state
        .store
        .list_incidents(
            &IncidentFilter {
                states: states.iter().map(|s| (*s).to_string()).collect(),
                major: Some(true),
                ..IncidentFilter::default()
            },
            keel_store::Page {
                limit,
                after_number: None,
            },
        )
        .await?)
}
