//! The shapes of the API: request bodies and response views. They are not
//! domain types: they parse and check outside input, and present the domain
//! in a stable wire form documented in the OpenAPI schema.

use keel_domain::{Channel, Claimed, Entry, Impact, Incident, Source, Timestamp, Urgency};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Reads an optional RFC 3339 time.
pub fn time(name: &str, value: Option<&String>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|text| {
            text.parse::<Timestamp>()
                .map_err(|e| ApiError::invalid(format!("{name}: {e}")))
        })
        .transpose()
}

/// Reads a snake_case enum value, listing the allowed ones on error.
pub fn choice<T: serde::de::DeserializeOwned>(
    name: &str,
    value: Option<&String>,
    allowed: &str,
) -> Result<Option<T>, ApiError> {
    value
        .map(|text| {
            serde_json::from_value(Value::String(text.clone()))
                .map_err(|_| ApiError::invalid(format!("{name} must be one of {allowed}, not {text:?}")))
        })
        .transpose()
}

pub fn impact(value: Option<u8>) -> Result<Option<Impact>, ApiError> {
    value.map(|v| Impact::try_from(v).map_err(ApiError::from)).transpose()
}

pub fn urgency(value: Option<u8>) -> Result<Option<Urgency>, ApiError> {
    value.map(|v| Urgency::try_from(v).map_err(ApiError::from)).transpose()
}

pub const SOURCES: &str = "user, monitoring, specialist, supplier";
pub const CHANNELS: &str = "portal, email, api, phone, event_integration";

pub fn source(value: Option<&String>) -> Result<Option<Source>, ApiError> {
    choice("source", value, SOURCES)
}

pub fn channel(value: Option<&String>) -> Result<Option<Channel>, ApiError> {
    choice("channel", value, CHANNELS)
}

/// Claimed times for work documented late; every write body may carry them.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ClaimedTimes {
    /// When the thing being recorded happened (RFC 3339), if earlier than now.
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

impl ClaimedTimes {
    pub fn parse(&self) -> Result<Claimed, ApiError> {
        Ok(Claimed {
            occurred_at: time("occurred_at", self.occurred_at.as_ref())?,
            started_at: time("started_at", self.started_at.as_ref())?,
            completed_at: time("completed_at", self.completed_at.as_ref())?,
        })
    }
}

/// `POST /api/v1/incidents`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    #[schema(min_length = 1, max_length = 300)]
    pub title: String,
    pub description: Option<String>,
    /// 1 (extensive) … 4 (minor); default 3.
    #[schema(minimum = 1, maximum = 4)]
    pub impact: Option<u8>,
    /// 1 (critical) … 4 (low); default 3.
    #[schema(minimum = 1, maximum = 4)]
    pub urgency: Option<u8>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    /// user | monitoring | specialist | supplier
    pub source: Option<String>,
    /// portal | email | api | phone | event_integration
    pub channel: Option<String>,
    /// When the symptoms were first observed (RFC 3339).
    #[schema(format = DateTime)]
    pub observed_at: Option<String>,
    /// The last time the service was known to work (RFC 3339).
    #[schema(format = DateTime)]
    pub last_known_good_at: Option<String>,
    pub location: Option<String>,
    pub symptoms: Option<String>,
    /// Who and how many are affected.
    pub impacted: Option<String>,
    pub auto_fix_tried: Option<bool>,
    pub auto_fix_note: Option<String>,
    pub team: Option<String>,
    /// User id of the owner; default: the registering user.
    pub owner: Option<String>,
    pub major: Option<bool>,
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// `PATCH /api/v1/incidents/{id}`: classification fields; an empty string clears a text field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchIncident {
    #[schema(min_length = 1, max_length = 300)]
    pub title: Option<String>,
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 4)]
    pub impact: Option<u8>,
    #[schema(minimum = 1, maximum = 4)]
    pub urgency: Option<u8>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub source: Option<String>,
    pub channel: Option<String>,
    #[schema(format = DateTime)]
    pub observed_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_known_good_at: Option<String>,
    pub location: Option<String>,
    pub symptoms: Option<String>,
    pub impacted: Option<String>,
    pub auto_fix_tried: Option<bool>,
    pub auto_fix_note: Option<String>,
    pub major: Option<bool>,
    /// Not here: team and owner move with the `assign` action, which counts reassignments.
    pub team: Option<String>,
    /// Not here: see `team`.
    pub owner: Option<String>,
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// The body of `POST /api/v1/incidents/{id}/actions/{action}`; which fields
/// count depends on the action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// hold: awaiting_user | awaiting_supplier | awaiting_change | other. reopen, cancel: free text.
    pub reason: Option<String>,
    pub note: Option<String>,
    /// diagnose: the cause found.
    pub cause: Option<String>,
    /// resolve: resolution code.
    pub code: Option<String>,
    /// resolve: what was done.
    pub notes: Option<String>,
    pub workaround: Option<String>,
    pub known_solution: Option<bool>,
    pub automated: Option<bool>,
    /// assign: the new team.
    pub team: Option<String>,
    /// assign: the new owner (user id).
    pub owner: Option<String>,
    /// assign: users who join the swarm.
    pub collaborators: Option<Vec<String>>,
    /// join, leave: the person (user id); default: you.
    pub user: Option<String>,
    /// close: the reporter's satisfaction, 1 … 5.
    #[schema(minimum = 1, maximum = 5)]
    pub satisfaction: Option<u8>,
    /// close: the reporter's words.
    pub feedback: Option<String>,
    /// close: effort spent on the incident, in minutes.
    pub time_spent_minutes: Option<u32>,
    /// close: a post-incident review is needed.
    pub review_needed: Option<bool>,
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// `POST /api/v1/incidents/{id}/comments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    #[schema(min_length = 1)]
    pub body: String,
    /// internal (default) | public
    pub visibility: Option<String>,
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// The resolution of an incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionView {
    pub code: String,
    pub notes: String,
    pub resolved_by: String,
    pub resolved_at: String,
    pub workaround: Option<String>,
    pub known_solution: bool,
    pub automated: bool,
}

/// How an incident was closed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosureView {
    pub closed_by: String,
    pub confirmed_by_reporter: bool,
    pub satisfaction: Option<u8>,
    pub feedback: Option<String>,
    pub time_spent_minutes: Option<u32>,
    pub review_needed: bool,
}

/// An incident as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub number: i64,
    /// `INC-<number>`
    pub key: String,
    pub title: String,
    pub description: Option<String>,
    /// new | accepted | on_hold | resolved | closed | cancelled
    pub state: String,
    pub priority: String,
    pub impact: u8,
    pub urgency: u8,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub source: Value,
    pub channel: Value,
    pub location: Option<String>,
    pub symptoms: Option<String>,
    pub impacted: Option<String>,
    pub observed_at: Option<String>,
    pub last_known_good_at: Option<String>,
    pub auto_fix_tried: Option<bool>,
    pub auto_fix_note: Option<String>,
    pub team: Option<String>,
    pub owner: String,
    pub reported_by: String,
    pub collaborators: Vec<String>,
    pub major: bool,
    pub hold_reason: Value,
    pub cause: Option<String>,
    pub resolution: Option<ResolutionView>,
    pub closure: Option<ClosureView>,
    pub created_at: String,
    pub updated_at: String,
    pub accepted_at: Option<String>,
    pub diagnosed_at: Option<String>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub reassignments: u32,
    pub reopens: u32,
    /// The sequence number of the last timeline entry; send it back in `If-Match`.
    pub version: u64,
    /// Its SLA as of this answer; null when no SLA policy applies.
    pub sla: Option<crate::sla::SlaView>,
}

fn text(t: Option<Timestamp>) -> Option<String> {
    t.map(|t| t.to_string())
}

impl From<&Incident> for IncidentView {
    fn from(inc: &Incident) -> Self {
        Self {
            id: inc.id.clone(),
            number: inc.number,
            key: format!("INC-{}", inc.number),
            title: inc.title.clone(),
            description: inc.description.clone(),
            state: inc.state.as_str().to_string(),
            priority: inc.priority.as_str().to_string(),
            impact: inc.impact.get(),
            urgency: inc.urgency.get(),
            service: inc.service.clone(),
            ci: inc.ci.clone(),
            category: inc.category.clone(),
            subcategory: inc.subcategory.clone(),
            source: serde_json::to_value(inc.source).unwrap_or(Value::Null),
            channel: serde_json::to_value(inc.channel).unwrap_or(Value::Null),
            location: inc.location.clone(),
            symptoms: inc.symptoms.clone(),
            impacted: inc.impacted.clone(),
            observed_at: text(inc.observed_at),
            last_known_good_at: text(inc.last_known_good_at),
            auto_fix_tried: inc.auto_fix_tried,
            auto_fix_note: inc.auto_fix_note.clone(),
            team: inc.team.clone(),
            owner: inc.owner.to_string(),
            reported_by: inc.reported_by.to_string(),
            collaborators: inc.collaborators.iter().map(ToString::to_string).collect(),
            major: inc.major,
            hold_reason: serde_json::to_value(inc.hold_reason).unwrap_or(Value::Null),
            cause: inc.cause.clone(),
            resolution: inc.resolution.as_ref().map(|r| ResolutionView {
                code: r.code.clone(),
                notes: r.notes.clone(),
                resolved_by: r.resolved_by.to_string(),
                resolved_at: r.resolved_at.to_string(),
                workaround: r.workaround.clone(),
                known_solution: r.known_solution,
                automated: r.automated,
            }),
            closure: inc.closure.as_ref().map(|c| ClosureView {
                closed_by: c.closed_by.to_string(),
                confirmed_by_reporter: c.confirmed_by_reporter,
                satisfaction: c.satisfaction,
                feedback: c.feedback.clone(),
                time_spent_minutes: c.time_spent_minutes,
                review_needed: c.review_needed,
            }),
            created_at: inc.created_at.to_string(),
            updated_at: inc.updated_at.to_string(),
            accepted_at: text(inc.accepted_at),
            diagnosed_at: text(inc.diagnosed_at),
            resolved_at: text(inc.resolved_at),
            closed_at: text(inc.closed_at),
            reassignments: inc.reassignments,
            reopens: inc.reopens,
            version: inc.version,
            sla: None,
        }
    }
}

/// One timeline entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub seq: u64,
    /// registered | reclassified | accepted | put_on_hold | resumed | diagnosed | resolved | closed | reopened | cancelled | assigned | commented
    pub kind: String,
    /// The user id of who wrote it.
    pub actor: String,
    /// When the server wrote it; never editable.
    pub recorded_at: String,
    /// Claimed: when it happened, if documented late.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&Entry> for EntryView {
    fn from(e: &Entry) -> Self {
        Self {
            seq: e.seq,
            kind: e.kind.clone(),
            actor: e.actor.to_string(),
            recorded_at: e.recorded_at.to_string(),
            occurred_at: text(e.occurred_at),
            started_at: text(e.started_at),
            completed_at: text(e.completed_at),
            data: e.data.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The result of checking an incident's hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    pub entries: u64,
    pub first_bad_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub email: String,
    /// end_user | agent | incident_manager | admin
    pub role: String,
    pub password: Option<String>,
    /// IANA zone, e.g. "Europe/Berlin".
    pub time_zone: Option<String>,
    /// `[{"kind": "email|sms|phone|chat|webhook", "address": "…"}]`
    #[schema(value_type = Option<Vec<Object>>)]
    pub contact_methods: Option<Vec<keel_store::ContactMethod>>,
}

/// `PATCH /api/v1/users/{id}`: what to change. Role and disabled are for admins.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    pub name: Option<String>,
    pub role: Option<String>,
    /// An empty string clears it.
    pub time_zone: Option<String>,
    pub disabled: Option<bool>,
    /// Replaces the list.
    #[schema(value_type = Option<Vec<Object>>)]
    pub contact_methods: Option<Vec<keel_store::ContactMethod>>,
    /// At least 12 characters.
    pub password: Option<String>,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub time_zone: Option<String>,
    pub created_at: String,
    pub disabled: bool,
    #[schema(value_type = Vec<Object>)]
    pub contact_methods: Vec<keel_store::ContactMethod>,
}

impl From<&keel_store::User> for UserView {
    fn from(u: &keel_store::User) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role.as_str().to_string(),
            time_zone: u.time_zone.clone(),
            created_at: u.created_at.to_string(),
            disabled: u.disabled,
            contact_methods: u.contact_methods.clone(),
        }
    }
}

/// `POST /api/v1/users/{id}/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

/// A new API token; the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token: String,
    pub created_at: String,
}
