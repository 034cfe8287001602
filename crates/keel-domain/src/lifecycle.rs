//! The rules: which command is allowed in which state, by whom, and which
//! changes it records. [`register`] opens an incident; [`decide`] handles every
//! later command. Both are pure: same input, same changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::detection::Severity;
use crate::{
    Actor, Channel, DomainError, HoldReason, Impact, Incident, Priority, PriorityMatrix, Role, Source, State,
    Timestamp, Urgency, UserId, Visibility,
};

/// Longest title, in characters.
pub const MAX_TITLE: usize = 300;
/// Longest free text (description, notes, comment), in characters.
pub const MAX_TEXT: usize = 65_536;
/// Longest short field (service, category, code, …), in characters.
pub const MAX_SHORT: usize = 200;

/// What a person gives when registering an incident.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrationInput {
    pub title: String,
    pub description: Option<String>,
    pub impact: Option<Impact>,
    pub urgency: Option<Urgency>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub source: Option<Source>,
    pub channel: Option<Channel>,
    pub location: Option<String>,
    pub symptoms: Option<String>,
    pub impacted: Option<String>,
    pub observed_at: Option<Timestamp>,
    pub last_known_good_at: Option<Timestamp>,
    pub auto_fix_tried: Option<bool>,
    pub auto_fix_note: Option<String>,
    pub team: Option<String>,
    pub owner: Option<UserId>,
    pub major: bool,
    /// The rule that classified it (monitoring), recorded in the timeline.
    pub classified_by: Option<String>,
}

/// The record as registered: the data of the first timeline entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
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
    pub owner: UserId,
    pub reported_by: UserId,
    pub major: bool,
    /// The classification rule that set its fields, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classified_by: Option<String>,
}

/// A change of classification fields. `None` leaves a field alone; for text
/// fields an empty string clears it. Only fields that really change are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// Recomputed by [`decide`] when impact or urgency change; never taken from input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symptoms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impacted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fix_tried: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fix_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<bool>,
}

fn set_text(field: &mut Option<String>, value: Option<&String>) {
    if let Some(value) = value {
        *field = if value.is_empty() { None } else { Some(value.clone()) };
    }
}

impl ClassificationPatch {
    /// Writes the patch onto an incident (used by `apply`; no rules here).
    pub(crate) fn apply_to(&self, inc: &mut Incident) {
        if let Some(title) = &self.title {
            inc.title.clone_from(title);
        }
        set_text(&mut inc.description, self.description.as_ref());
        if let Some(v) = self.impact {
            inc.impact = v;
        }
        if let Some(v) = self.urgency {
            inc.urgency = v;
        }
        if let Some(v) = self.priority {
            inc.priority = v;
        }
        set_text(&mut inc.service, self.service.as_ref());
        set_text(&mut inc.ci, self.ci.as_ref());
        set_text(&mut inc.category, self.category.as_ref());
        set_text(&mut inc.subcategory, self.subcategory.as_ref());
        if let Some(v) = self.source {
            inc.source = v;
        }
        if let Some(v) = self.channel {
            inc.channel = v;
        }
        set_text(&mut inc.location, self.location.as_ref());
        set_text(&mut inc.symptoms, self.symptoms.as_ref());
        set_text(&mut inc.impacted, self.impacted.as_ref());
        if self.observed_at.is_some() {
            inc.observed_at = self.observed_at;
        }
        if self.last_known_good_at.is_some() {
            inc.last_known_good_at = self.last_known_good_at;
        }
        if self.auto_fix_tried.is_some() {
            inc.auto_fix_tried = self.auto_fix_tried;
        }
        set_text(&mut inc.auto_fix_note, self.auto_fix_note.as_ref());
        if let Some(v) = self.major {
            inc.major = v;
        }
    }

    /// Drops the fields that already hold the requested value.
    fn without_unchanged(mut self, inc: &Incident) -> Self {
        fn same_text(current: Option<&String>, wanted: &Option<String>) -> bool {
            match wanted {
                Some(w) if w.is_empty() => current.is_none(),
                Some(w) => current == Some(w),
                None => true,
            }
        }
        if self.title.as_ref() == Some(&inc.title) {
            self.title = None;
        }
        if same_text(inc.description.as_ref(), &self.description) {
            self.description = None;
        }
        if self.impact == Some(inc.impact) {
            self.impact = None;
        }
        if self.urgency == Some(inc.urgency) {
            self.urgency = None;
        }
        macro_rules! drop_same_text {
            ($($f:ident),*) => { $( if same_text(inc.$f.as_ref(), &self.$f) { self.$f = None; } )* };
        }
        drop_same_text!(
            service,
            ci,
            category,
            subcategory,
            location,
            symptoms,
            impacted,
            auto_fix_note
        );
        if self.source == Some(inc.source) {
            self.source = None;
        }
        if self.channel == Some(inc.channel) {
            self.channel = None;
        }
        if self.observed_at.is_some() && self.observed_at == inc.observed_at {
            self.observed_at = None;
        }
        if self.last_known_good_at.is_some() && self.last_known_good_at == inc.last_known_good_at {
            self.last_known_good_at = None;
        }
        if self.auto_fix_tried.is_some() && self.auto_fix_tried == inc.auto_fix_tried {
            self.auto_fix_tried = None;
        }
        if self.major == Some(inc.major) {
            self.major = None;
        }
        self
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What closing records besides a note: the reporter's confirmation and
/// satisfaction, the effort spent, and whether a review is needed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClosureInput {
    pub satisfaction: Option<u8>,
    pub feedback: Option<String>,
    pub time_spent_minutes: Option<u32>,
    pub review_needed: bool,
}

/// A request to change an existing incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Reclassify(Box<ClassificationPatch>),
    Accept,
    Hold {
        reason: HoldReason,
        note: Option<String>,
    },
    Resume {
        note: Option<String>,
    },
    Diagnose {
        cause: Option<String>,
        note: Option<String>,
    },
    Resolve {
        code: String,
        notes: String,
        workaround: Option<String>,
        known_solution: bool,
        automated: bool,
    },
    Close {
        note: Option<String>,
        closure: ClosureInput,
    },
    Reopen {
        reason: String,
    },
    Cancel {
        reason: String,
    },
    Assign {
        team: Option<String>,
        owner: Option<UserId>,
        add_collaborators: Vec<UserId>,
    },
    Comment {
        body: String,
        visibility: Visibility,
    },
    /// Monitoring: an alert joins the incident.
    AttachAlert {
        dedup_key: String,
        summary: String,
        severity: Severity,
    },
    /// Monitoring: the sender acknowledged an alert; a new incident is accepted.
    AcknowledgeAlert {
        dedup_key: String,
    },
    /// Monitoring: an alert recovered; with `auto_resolve`, the incident
    /// resolves when no alert of it is open any more.
    RecoverAlert {
        dedup_key: String,
        auto_resolve: bool,
    },
    /// The SLA sweep: announce the targets in force (at registration and
    /// whenever priority or service change them).
    SetSlaTargets {
        priority: Priority,
        response_due: Option<Timestamp>,
        resolution_due: Option<Timestamp>,
    },
    /// The SLA sweep: a target crossed its at-risk threshold (recorded once).
    SlaAtRisk {
        target: String,
        due_at: Option<Timestamp>,
    },
    /// The SLA sweep: a target passed its due time unmet (recorded once).
    SlaBreached {
        target: String,
        due_at: Option<Timestamp>,
    },
    /// History from another tool: the SLA verdict the source recorded for a
    /// target ("response" or "resolution"); the metrics use it where keel
    /// announced no target of its own.
    RecordSlaOutcome {
        target: String,
        met: bool,
    },
    /// The sweep: nobody accepted in time; ownership moves to escalation
    /// level `level`'s person (recorded once per level).
    Escalate {
        level: u32,
        to: UserId,
    },
    /// A person joins the swarm on the incident (functional help from
    /// another team); collaborators see it in their views.
    Join {
        user: UserId,
    },
    /// A collaborator leaves the swarm.
    Leave {
        user: UserId,
    },
    /// Monitoring: an alert changed state too often; automatic resolution
    /// and reopening stop until it settles.
    FlagFlapping {
        dedup_key: String,
        changes: u32,
        within_secs: u32,
    },
}

impl Command {
    /// The action's name, as in the API path.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Command::Reclassify(_) => "reclassify",
            Command::Accept => "accept",
            Command::Hold { .. } => "hold",
            Command::Resume { .. } => "resume",
            Command::Diagnose { .. } => "diagnose",
            Command::Resolve { .. } => "resolve",
            Command::Close { .. } => "close",
            Command::Reopen { .. } => "reopen",
            Command::Cancel { .. } => "cancel",
            Command::Assign { .. } => "assign",
            Command::Comment { .. } => "comment",
            Command::AttachAlert { .. } => "attach alert",
            Command::AcknowledgeAlert { .. } => "acknowledge alert",
            Command::RecoverAlert { .. } => "recover alert",
            Command::FlagFlapping { .. } => "flag flapping",
            Command::Join { .. } => "join",
            Command::Escalate { .. } => "escalate",
            Command::SetSlaTargets { .. } => "set SLA targets",
            Command::SlaAtRisk { .. } => "warn of SLA risk",
            Command::SlaBreached { .. } => "record an SLA breach",
            Command::RecordSlaOutcome { .. } => "record an SLA outcome",
            Command::Leave { .. } => "leave",
        }
    }
}

/// What happened to an incident: the data of one timeline entry. Names are in
/// the past tense; the serde tag is the entry's `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Change {
    Registered(Registration),
    Reclassified(ClassificationPatch),
    Accepted {},
    PutOnHold {
        reason: HoldReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Resumed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Diagnosed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Resolved {
        code: String,
        notes: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workaround: Option<String>,
        #[serde(default)]
        known_solution: bool,
        #[serde(default)]
        automated: bool,
    },
    Closed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The reporter's satisfaction, 1 (very unhappy) … 5 (very happy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        satisfaction: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feedback: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_spent_minutes: Option<u32>,
        #[serde(default)]
        review_needed: bool,
    },
    Reopened {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
    Assigned {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<UserId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_team: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_owner: Option<UserId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add_collaborators: Vec<UserId>,
    },
    Commented {
        body: String,
        visibility: Visibility,
    },
    AlertAttached {
        dedup_key: String,
        summary: String,
        severity: Severity,
    },
    AlertRecovered {
        dedup_key: String,
    },
    AlertFlapping {
        dedup_key: String,
        changes: u32,
        within_secs: u32,
    },
    CollaboratorJoined {
        user: UserId,
    },
    Escalated {
        level: u32,
        to: UserId,
        previous: UserId,
    },
    SlaTargetsSet {
        priority: Priority,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_due: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolution_due: Option<Timestamp>,
    },
    SlaAtRisk {
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<Timestamp>,
    },
    SlaBreached {
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<Timestamp>,
    },
    CollaboratorLeft {
        user: UserId,
    },
    /// The SLA verdict another tool recorded (imported history).
    SlaOutcome {
        target: String,
        met: bool,
    },
}

impl Change {
    /// The entry kind and data as stored.
    #[must_use]
    pub fn to_parts(&self) -> (String, Value) {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let data = value
            .get_mut("data")
            .map(Value::take)
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        (kind, data)
    }

    /// Reads a stored entry's kind and data back.
    ///
    /// # Errors
    /// When the stored data does not describe a known change.
    pub fn from_parts(kind: &str, data: &Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "data": data }))
    }
}

fn text(name: &str, value: Option<String>, max: usize) -> Result<Option<String>, DomainError> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(DomainError::Invalid(format!("{name} is longer than {max} characters")))
        }
        Some(v) if v.contains('\0') => Err(DomainError::Invalid(format!("{name} contains a NUL character"))),
        Some(v) => {
            let trimmed = v.trim();
            Ok(if trimmed.is_empty() {
                None
            } else {
                Some(trimmed.to_string())
            })
        }
        None => Ok(None),
    }
}

fn required(name: &str, value: String, max: usize) -> Result<String, DomainError> {
    text(name, Some(value), max)?.ok_or_else(|| DomainError::Invalid(format!("{name} must not be empty")))
}

/// Checks patch text fields; keeps empty strings (they clear a field).
fn patch_text(name: &str, value: Option<String>, max: usize) -> Result<Option<String>, DomainError> {
    match value {
        Some(v) if v.trim().is_empty() => Ok(Some(String::new())),
        other => text(name, other, max),
    }
}

/// Registers a new incident as number `number`, for `actor`.
///
/// # Errors
/// [`DomainError::Invalid`] for a missing title or over-long text;
/// [`DomainError::Forbidden`] when an end user tries to set owner, team or
/// the major flag.
pub fn register(
    input: RegistrationInput,
    number: i64,
    actor: &Actor,
    matrix: &PriorityMatrix,
) -> Result<Change, DomainError> {
    register_classified(input, &[], &std::collections::BTreeMap::new(), number, actor, matrix)
}

/// Like [`register`], after classification `rules` (with the signal's
/// `labels`, for event incidents) fill the fields the registration left
/// empty. What a rule sets is the system's doing: an end user may not set
/// team or major, but a rule may set them on the end user's report.
///
/// # Errors
/// As [`register`]; checked on the input before the rules apply.
pub fn register_classified(
    mut input: RegistrationInput,
    rules: &[crate::rules::Rule],
    labels: &std::collections::BTreeMap<String, String>,
    number: i64,
    actor: &Actor,
    matrix: &PriorityMatrix,
) -> Result<Change, DomainError> {
    if !actor.role.is_staff() && (input.owner.is_some() || input.team.is_some() || input.major) {
        return Err(DomainError::Forbidden(
            "end users cannot set owner, team or major when reporting".into(),
        ));
    }
    crate::rules::classify(rules, &mut input, labels);
    let impact = input.impact.unwrap_or(Impact::DEFAULT);
    let urgency = input.urgency.unwrap_or(Urgency::DEFAULT);
    Ok(Change::Registered(Registration {
        number,
        title: required("title", input.title, MAX_TITLE)?,
        description: text("description", input.description, MAX_TEXT)?,
        impact,
        urgency,
        priority: matrix.priority(impact, urgency),
        service: text("service", input.service, MAX_SHORT)?,
        ci: text("ci", input.ci, MAX_SHORT)?,
        category: text("category", input.category, MAX_SHORT)?,
        subcategory: text("subcategory", input.subcategory, MAX_SHORT)?,
        source: input.source.unwrap_or(Source::User),
        channel: input.channel.unwrap_or(if actor.role == Role::EndUser {
            Channel::Portal
        } else {
            Channel::Api
        }),
        location: text("location", input.location, MAX_SHORT)?,
        symptoms: text("symptoms", input.symptoms, MAX_TEXT)?,
        impacted: text("impacted", input.impacted, MAX_TEXT)?,
        observed_at: input.observed_at,
        last_known_good_at: input.last_known_good_at,
        auto_fix_tried: input.auto_fix_tried,
        auto_fix_note: text("auto_fix_note", input.auto_fix_note, MAX_TEXT)?,
        team: text("team", input.team, MAX_SHORT)?,
        owner: input.owner.unwrap_or_else(|| actor.user.clone()),
        reported_by: actor.user.clone(),
        major: input.major,
        classified_by: text("classified_by", input.classified_by, MAX_SHORT)?,
    }))
}

/// Decides which changes `command` by `actor` makes to `incident`. An empty
/// list means the command asked for what already holds.
///
/// # Errors
/// [`DomainError::IllegalTransition`] when the state does not allow the
/// command, [`DomainError::Forbidden`] when the actor may not, and
/// [`DomainError::Invalid`] for bad input.
pub fn decide(
    incident: &Incident,
    command: Command,
    actor: &Actor,
    matrix: &PriorityMatrix,
) -> Result<Vec<Change>, DomainError> {
    check_permission(incident, &command, actor)?;
    let state = incident.state;
    let illegal = |action: &'static str| Err(DomainError::IllegalTransition { action, state });
    let change = match command {
        Command::Reclassify(patch) => return reclassify(incident, *patch, matrix),
        Command::Accept => match state {
            State::New => Change::Accepted {},
            _ => return illegal("accept"),
        },
        Command::Hold { reason, note } => match state {
            State::Accepted => Change::PutOnHold {
                reason,
                note: text("note", note, MAX_TEXT)?,
            },
            _ => return illegal("hold"),
        },
        Command::Resume { note } => match state {
            State::OnHold => Change::Resumed {
                note: text("note", note, MAX_TEXT)?,
            },
            _ => return illegal("resume"),
        },
        Command::Diagnose { cause, note } => match state {
            State::Accepted | State::OnHold => {
                let cause = text("cause", cause, MAX_TEXT)?;
                let note = text("note", note, MAX_TEXT)?;
                if cause.is_none() && note.is_none() {
                    return Err(DomainError::Invalid("a diagnosis needs a cause or a note".into()));
                }
                Change::Diagnosed { cause, note }
            }
            _ => return illegal("diagnose"),
        },
        Command::Resolve {
            code,
            notes,
            workaround,
            known_solution,
            automated,
        } => match state {
            State::New | State::Accepted | State::OnHold => Change::Resolved {
                code: required("code", code, MAX_SHORT)?,
                notes: required("notes", notes, MAX_TEXT)?,
                workaround: text("workaround", workaround, MAX_TEXT)?,
                known_solution,
                automated,
            },
            _ => return illegal("resolve"),
        },
        Command::Close { note, closure } => match state {
            State::Resolved => {
                if closure.satisfaction.is_some_and(|s| !(1..=5).contains(&s)) {
                    return Err(DomainError::Invalid("satisfaction must be between 1 and 5".into()));
                }
                Change::Closed {
                    note: text("note", note, MAX_TEXT)?,
                    satisfaction: closure.satisfaction,
                    feedback: text("feedback", closure.feedback, MAX_TEXT)?,
                    time_spent_minutes: closure.time_spent_minutes,
                    review_needed: closure.review_needed,
                }
            }
            _ => return illegal("close"),
        },
        Command::Reopen { reason } => match state {
            State::Resolved => Change::Reopened {
                reason: required("reason", reason, MAX_TEXT)?,
            },
            _ => return illegal("reopen"),
        },
        Command::Cancel { reason } => match state {
            s if s.is_open() => Change::Cancelled {
                reason: required("reason", reason, MAX_TEXT)?,
            },
            _ => return illegal("cancel"),
        },
        Command::Assign {
            team,
            owner,
            add_collaborators,
        } => {
            if !state.is_open() {
                return illegal("assign");
            }
            return Ok(assign(incident, team, owner, add_collaborators)?.into_iter().collect());
        }
        Command::AttachAlert {
            dedup_key,
            summary,
            severity,
        } => {
            if !state.is_open() {
                return illegal("attach an alert to");
            }
            Change::AlertAttached {
                dedup_key,
                summary: required("summary", summary, MAX_TITLE * 4)?,
                severity,
            }
        }
        Command::AcknowledgeAlert { .. } => {
            // Accepting is the person's or the sender's first acknowledgement;
            // later ones change nothing.
            return Ok(if state == State::New {
                vec![Change::Accepted {}]
            } else {
                Vec::new()
            });
        }
        Command::RecoverAlert {
            dedup_key,
            auto_resolve,
        } => {
            let was_open = incident.open_alerts.contains(&dedup_key);
            let last_one = was_open && incident.open_alerts.len() == 1;
            let mut changes = vec![Change::AlertRecovered { dedup_key }];
            if auto_resolve && last_one && state.is_open() {
                changes.push(Change::Resolved {
                    code: "recovered (monitoring)".into(),
                    notes: "Every alert of this incident recovered.".into(),
                    workaround: None,
                    known_solution: false,
                    automated: true,
                });
            }
            return Ok(changes);
        }
        Command::SetSlaTargets {
            priority,
            response_due,
            resolution_due,
        } => {
            let same = incident.sla.priority == Some(priority)
                && incident.sla.response_due == response_due
                && incident.sla.resolution_due == resolution_due;
            if same || matches!(state, State::Closed | State::Cancelled) {
                return Ok(Vec::new());
            }
            Change::SlaTargetsSet {
                priority,
                response_due,
                resolution_due,
            }
        }
        Command::SlaAtRisk { target, due_at } => {
            if incident.sla.warned.contains(&target) || incident.sla.breached.contains(&target) {
                return Ok(Vec::new());
            }
            Change::SlaAtRisk { target, due_at }
        }
        Command::SlaBreached { target, due_at } => {
            if incident.sla.breached.contains(&target) {
                return Ok(Vec::new());
            }
            Change::SlaBreached { target, due_at }
        }
        Command::RecordSlaOutcome { target, met } => {
            if target != "response" && target != "resolution" {
                return Err(DomainError::Invalid(format!(
                    "an SLA outcome is for the response or the resolution target, not {target:?}"
                )));
            }
            Change::SlaOutcome { target, met }
        }
        Command::Escalate { level, to } => {
            if state != State::New || incident.escalation_level.is_some_and(|l| l >= level) {
                return Ok(Vec::new());
            }
            Change::Escalated {
                level,
                to,
                previous: incident.owner.clone(),
            }
        }
        Command::Join { user } => {
            if !state.is_open() {
                return illegal("join");
            }
            if user == incident.owner || incident.collaborators.contains(&user) {
                return Ok(Vec::new());
            }
            Change::CollaboratorJoined { user }
        }
        Command::Leave { user } => {
            if matches!(state, State::Closed | State::Cancelled) {
                return illegal("leave");
            }
            if !incident.collaborators.contains(&user) {
                return Ok(Vec::new());
            }
            Change::CollaboratorLeft { user }
        }
        Command::FlagFlapping {
            dedup_key,
            changes,
            within_secs,
        } => {
            if !state.is_open() {
                return Ok(Vec::new());
            }
            Change::AlertFlapping {
                dedup_key,
                changes,
                within_secs,
            }
        }
        Command::Comment { body, visibility } => Change::Commented {
            body: required("body", body, MAX_TEXT)?,
            visibility,
        },
    };
    Ok(vec![change])
}

fn check_permission(incident: &Incident, command: &Command, actor: &Actor) -> Result<(), DomainError> {
    if actor.role.is_staff() {
        return Ok(());
    }
    let own = incident.reported_by == actor.user;
    let allowed = own
        && match command {
            Command::Comment { visibility, .. } => *visibility == Visibility::Public,
            Command::Close { .. } | Command::Reopen { .. } => true,
            _ => false,
        };
    if allowed {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!(
            "an end user may only comment publicly on, confirm (close) or reopen incidents they reported; not {}",
            command.name()
        )))
    }
}

fn reclassify(
    incident: &Incident,
    patch: ClassificationPatch,
    matrix: &PriorityMatrix,
) -> Result<Vec<Change>, DomainError> {
    if matches!(incident.state, State::Closed | State::Cancelled) {
        return Err(DomainError::IllegalTransition {
            action: "reclassify",
            state: incident.state,
        });
    }
    let mut patch = ClassificationPatch {
        title: match patch.title {
            Some(title) => Some(required("title", title, MAX_TITLE)?),
            None => None,
        },
        description: patch_text("description", patch.description, MAX_TEXT)?,
        service: patch_text("service", patch.service, MAX_SHORT)?,
        ci: patch_text("ci", patch.ci, MAX_SHORT)?,
        category: patch_text("category", patch.category, MAX_SHORT)?,
        subcategory: patch_text("subcategory", patch.subcategory, MAX_SHORT)?,
        location: patch_text("location", patch.location, MAX_SHORT)?,
        symptoms: patch_text("symptoms", patch.symptoms, MAX_TEXT)?,
        impacted: patch_text("impacted", patch.impacted, MAX_TEXT)?,
        auto_fix_note: patch_text("auto_fix_note", patch.auto_fix_note, MAX_TEXT)?,
        priority: None,
        ..patch
    }
    .without_unchanged(incident);
    if patch.impact.is_some() || patch.urgency.is_some() {
        let priority = matrix.priority(
            patch.impact.unwrap_or(incident.impact),
            patch.urgency.unwrap_or(incident.urgency),
        );
        if priority != incident.priority {
            patch.priority = Some(priority);
        }
    }
    Ok(if patch.is_empty() {
        Vec::new()
    } else {
        vec![Change::Reclassified(patch)]
    })
}

fn assign(
    incident: &Incident,
    team: Option<String>,
    owner: Option<UserId>,
    add: Vec<UserId>,
) -> Result<Option<Change>, DomainError> {
    let team = text("team", team, MAX_SHORT)?;
    if team.is_none() && owner.is_none() && add.is_empty() {
        return Err(DomainError::Invalid(
            "assign needs a team, an owner or collaborators".into(),
        ));
    }
    let team = team.filter(|t| incident.team.as_ref() != Some(t));
    let owner = owner.filter(|o| *o != incident.owner);
    let mut add_collaborators: Vec<UserId> = Vec::new();
    for user in add {
        let is_new = user != *owner.as_ref().unwrap_or(&incident.owner) && !incident.collaborators.contains(&user);
        if is_new && !add_collaborators.contains(&user) {
            add_collaborators.push(user);
        }
    }
    if team.is_none() && owner.is_none() && add_collaborators.is_empty() {
        return Ok(None);
    }
    Ok(Some(Change::Assigned {
        previous_team: team.as_ref().and(incident.team.clone()),
        previous_owner: owner.as_ref().map(|_| incident.owner.clone()),
        team,
        owner,
        add_collaborators,
    }))
}
