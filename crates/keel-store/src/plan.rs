//! The write plan both engines share: given the incident as stored (and the
//! hash at the head of its chain), run the domain's rules and produce the
//! sealed entries and the new projection to store. Engines only add SQL.

use keel_domain::detection::{
    AlertStatus, Classification, Reaction, RecoveryPolicy, SignalAction, classify, is_flapping, react, record_change,
};
use keel_domain::timeline::{GENESIS_HASH, seal};
use keel_domain::{Actor, Channel, Claimed, Command, MAX_TEXT, MAX_TITLE, RegistrationInput, Role, Source, UserId};
use keel_domain::{Entry, Incident, State, Timestamp, apply, decide, register_classified};

use crate::{Alert, ExecuteRequest, IngestOutcome, IngestRequest, Integration, RegisterRequest, Signal, StoreError};

/// What a write stores: new entries (in order) and the incident after them.
#[derive(Debug)]
pub struct Planned {
    pub entries: Vec<Entry>,
    pub incident: Incident,
}

/// Plans the registration of incident number `number`.
///
/// # Errors
/// When the domain refuses the registration.
pub fn plan_registration(request: &RegisterRequest, number: i64, now: Timestamp) -> Result<Planned, StoreError> {
    request.claimed.check(now)?;
    let change = register_classified(
        request.input.clone(),
        &request.rules,
        &request.labels,
        number,
        &request.actor,
        &request.matrix,
    )?;
    let entry = seal(
        &request.id,
        1,
        GENESIS_HASH,
        &request.actor.user,
        now,
        request.claimed,
        &change,
    );
    let incident = apply(None, &request.id, 1, &request.actor.user, now, &change)
        .ok_or_else(|| StoreError::Other("registration produced no incident".into()))?;
    Ok(Planned {
        entries: vec![entry],
        incident,
    })
}

/// Plans the registration of incident `number` followed by `commands` on
/// it, as one write: the incident row is stored once, in its final state.
///
/// # Errors
/// When the domain refuses the registration or a command.
pub fn plan_opening(
    request: &RegisterRequest,
    commands: &[ExecuteRequest],
    number: i64,
    now: Timestamp,
) -> Result<Planned, StoreError> {
    let mut planned = plan_registration(request, number, now)?;
    for command in commands {
        let head = planned.entries.last().map(|e| e.hash.clone()).unwrap_or_default();
        let next = plan_command(command, &planned.incident, &head, now)?;
        planned.entries.extend(next.entries);
        planned.incident = next.incident;
    }
    Ok(planned)
}

/// Whether a write changed what SLA clocks depend on, so the incident's
/// timer must be recomputed.
#[must_use]
pub fn sla_dirty(planned: &Planned) -> bool {
    planned.entries.iter().any(|e| {
        matches!(
            e.kind.as_str(),
            "accepted" | "put_on_hold" | "resumed" | "resolved" | "reopened" | "closed" | "cancelled" | "reclassified"
        )
    })
}

/// The actor of the SLA sweep.
#[must_use]
pub fn system_actor() -> Actor {
    Actor {
        user: UserId::new("keel"),
        role: Role::Admin,
    }
}

/// The commands the sweep runs on `incident` and its verdict.
#[must_use]
pub fn plan_sweep(
    incident: &Incident,
    request: &crate::SweepRequest,
    now: Timestamp,
) -> (Vec<ExecuteRequest>, keel_domain::sla_watch::Verdict) {
    let mut verdict = keel_domain::sla_watch::judge(incident, &request.policies, now);
    if let Some(ladder) = incident.team.as_ref().and_then(|t| request.escalations.get(t)) {
        let (command, next) = keel_domain::escalation::step(incident, ladder, now);
        verdict.commands.extend(command);
        verdict.next_at = match (verdict.next_at, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let commands = verdict
        .commands
        .iter()
        .map(|command| ExecuteRequest {
            incident: crate::IncidentRef::Id(incident.id.clone()),
            command: command.clone(),
            actor: system_actor(),
            claimed: Claimed::default(),
            expected_version: None,
            matrix: std::sync::Arc::clone(&request.matrix),
        })
        .collect();
    (commands, verdict)
}

/// The notifications the sweep's new entries call for: at-risk, breach and
/// escalation, to the (new) owner and the team's lead.
#[must_use]
pub fn sla_notifications(
    incident: &Incident,
    entries: &[Entry],
    team_leads: &std::collections::BTreeMap<String, UserId>,
    now: Timestamp,
) -> Vec<crate::Notification> {
    let mut recipients = vec![incident.owner.as_str().to_string()];
    if let Some(lead) = incident.team.as_ref().and_then(|t| team_leads.get(t))
        && lead != &incident.owner
    {
        recipients.push(lead.as_str().to_string());
    }
    entries
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "sla_at_risk" | "sla_breached" | "escalated"))
        .map(|e| crate::Notification {
            id: uuid::Uuid::now_v7().to_string(),
            incident_id: incident.id.clone(),
            kind: e.kind.clone(),
            recipients: recipients.clone(),
            payload: serde_json::json!({
                "event": e.kind,
                "target": e.data.get("target"),
                "due_at": e.data.get("due_at"),
                "incident": {
                    "id": incident.id,
                    "number": incident.number,
                    "title": incident.title,
                    "priority": incident.priority.as_str(),
                    "state": incident.state.as_str(),
                    "service": incident.service,
                    "team": incident.team,
                    "owner": incident.owner.as_str(),
                },
                "recipients": recipients,
                "recorded_at": e.recorded_at.to_string(),
            }),
            created_at: now,
            attempts: 0,
        })
        .collect()
}

/// Plans a command on `current`, whose chain ends in `head_hash`. `now` is
/// raised to the last entry's time if the clock stepped back, so that
/// `recorded_at` never decreases along a timeline.
///
/// # Errors
/// On a stale `If-Match` or when the domain refuses the command.
pub fn plan_command(
    request: &ExecuteRequest,
    current: &Incident,
    head_hash: &str,
    now: Timestamp,
) -> Result<Planned, StoreError> {
    if let Some(expected) = request.expected_version
        && expected != current.version
    {
        return Err(StoreError::VersionMismatch {
            expected,
            current: current.version,
        });
    }
    request.claimed.check(now)?;
    let now = now.max(current.updated_at);
    let changes = decide(current, request.command.clone(), &request.actor, &request.matrix)?;
    let mut entries = Vec::with_capacity(changes.len());
    let mut incident = Some(current.clone());
    let mut prev_hash = head_hash.to_string();
    for (offset, change) in changes.iter().enumerate() {
        let seq = current.version + offset as u64 + 1;
        let entry = seal(
            &current.id,
            seq,
            &prev_hash,
            &request.actor.user,
            now,
            request.claimed,
            change,
        );
        prev_hash.clone_from(&entry.hash);
        incident = apply(incident, &current.id, seq, &request.actor.user, now, change);
        entries.push(entry);
    }
    let incident = incident.ok_or_else(|| StoreError::Other("command lost the incident".into()))?;
    Ok(Planned { entries, incident })
}

/// The lower-cased text the `q` filter searches: number, title, description.
#[must_use]
pub fn search_text(incident: &Incident) -> String {
    format!(
        "inc-{} {} {}",
        incident.number,
        incident.title,
        incident.description.as_deref().unwrap_or_default()
    )
    .to_lowercase()
}

/// Who monitoring acts as: the integration's creator, in a staff role. The
/// same person owns the incidents it opens until routing gives them a team
/// lead or on-call owner.
#[must_use]
pub fn monitoring_actor(integration: &Integration) -> Actor {
    Actor {
        user: UserId::new(integration.created_by.clone()),
        role: Role::Agent,
    }
}

/// How a signal is classified under its integration's policy: the
/// severity mapping, then the first matching rule.
#[must_use]
pub fn classification(request: &IngestRequest) -> Classification {
    let signal = &request.signal;
    let integration = &request.integration;
    classify(
        &integration.policy,
        signal.severity,
        |name| signal.field(name),
        (
            signal.service.clone().or_else(|| integration.service.clone()),
            signal.ci.clone(),
            integration.team.clone(),
        ),
    )
}

/// The registration a signal that opens an incident asks for. The signal's
/// start time becomes the claimed `occurred_at` (unless it lies in the
/// future: senders' clocks drift, and the event is still worth an incident).
#[must_use]
pub fn registration_for(
    signal: &Signal,
    integration: &Integration,
    class: &Classification,
    team_owners: &std::collections::BTreeMap<String, UserId>,
    now: Timestamp,
) -> (RegistrationInput, Claimed) {
    let title: String = signal.summary.chars().take(MAX_TITLE).collect();
    let mut description = format!(
        "Opened by monitoring integration {:?} ({}) for alert {:?}{}.",
        integration.name,
        integration.kind.as_str(),
        signal.dedup_key,
        signal
            .source
            .as_ref()
            .map_or_else(String::new, |s| format!(" from {s}"))
    );
    if !signal.labels.is_empty() {
        let labels: Vec<String> = signal.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        description.push_str(&format!("\nLabels: {}", labels.join(", ")));
    }
    for (text, url) in &signal.links {
        description.push_str(&format!("\n{text}: {url}"));
    }
    let input = RegistrationInput {
        title,
        // NUL cannot be stored; senders' links and labels are shown without it.
        description: Some(description.replace('\0', "").chars().take(MAX_TEXT).collect()),
        impact: Some(class.impact),
        urgency: Some(class.urgency),
        service: class.service.clone(),
        ci: class.ci.clone(),
        category: class.category.clone(),
        source: Some(Source::Monitoring),
        channel: Some(Channel::EventIntegration),
        observed_at: signal.occurred_at.filter(|t| *t <= now),
        team: class.team.clone(),
        major: class.major,
        classified_by: class.rule.clone(),
        owner: class.team.as_ref().and_then(|t| team_owners.get(t)).cloned(),
        ..RegistrationInput::default()
    };
    let claimed = Claimed {
        occurred_at: signal.occurred_at.filter(|t| *t <= now),
        ..Claimed::default()
    };
    (input, claimed)
}

/// What the engine found out before planning a signal: its alert, and —
/// only when the signal may open or join an incident — the active
/// maintenance window and the incidents it could join.
#[derive(Debug, Default)]
pub struct IngestContext {
    pub existing: Option<Alert>,
    /// An active maintenance window for the signal's service or CI.
    pub maintenance: Option<String>,
    /// The incident the alert belonged to last time.
    pub own_incident: Option<Incident>,
    /// The incident of the alert's group (most recently seen alert).
    pub group_incident: Option<Incident>,
    /// An open incident of the same service or CI with an alert seen inside
    /// the correlation window.
    pub correlated_incident: Option<Incident>,
}

/// What a signal writes: maybe a registration, then commands (in order),
/// then the alert row.
#[derive(Debug)]
pub struct IngestPlan {
    pub register: Option<RegisterRequest>,
    pub commands: Vec<ExecuteRequest>,
    pub alert: Option<Alert>,
    pub outcome: IngestOutcome,
}

/// The reaction a signal gets before any lookup beyond its alert: a repeat
/// of an alert that never got an incident (maintenance) counts as opening.
#[must_use]
pub fn first_reaction(existing: Option<&Alert>, action: SignalAction) -> Reaction {
    match react(existing.map(|a| a.status), action) {
        Reaction::Repeat if existing.is_some_and(|a| a.incident_id.is_none()) => Reaction::Open,
        other => other,
    }
}

/// Whether an incident resolved recently enough (under `window_secs`) that a
/// new trigger reopens it.
#[must_use]
pub fn reopens(incident: &Incident, window_secs: u32, now: Timestamp) -> bool {
    incident.state == State::Resolved
        && incident
            .resolved_at
            .is_some_and(|at| now.as_micros() - at.as_micros() <= i64::from(window_secs) * 1_000_000)
}

/// Plans one signal. Decisions only; the engine looked up `context` and
/// runs the plan's writes in one transaction.
#[must_use]
pub fn plan_ingest(request: &IngestRequest, context: IngestContext, now: Timestamp) -> IngestPlan {
    let integration = &request.integration;
    let signal = &request.signal;
    let policy = &integration.policy;
    let reaction = first_reaction(context.existing.as_ref(), signal.action);
    let class = classification(request);
    let mut changes = context.existing.as_ref().map(|a| a.changes.clone()).unwrap_or_default();
    let was_flapping = context.existing.as_ref().is_some_and(|a| a.flapping);
    let mut incident_id = context.existing.as_ref().and_then(|a| a.incident_id.clone());
    let mut register = None;
    let mut commands = Vec::new();
    let mut outcome = IngestOutcome {
        reaction,
        alert: None,
        opened_incident: false,
        reopened_incident: false,
        suppressed_by: None,
    };
    let actor = monitoring_actor(integration);
    let command = |id: &str, command: Command| ExecuteRequest {
        incident: crate::IncidentRef::Id(id.to_string()),
        command,
        actor: actor.clone(),
        claimed: Claimed::default(),
        expected_version: None,
        matrix: std::sync::Arc::clone(&request.matrix),
    };
    let flag = |changes: &[Timestamp]| Command::FlagFlapping {
        dedup_key: signal.dedup_key.clone(),
        changes: u32::try_from(changes.len()).unwrap_or(u32::MAX),
        within_secs: policy.flapping.within_secs,
    };
    let mut flapping = was_flapping;
    match reaction {
        Reaction::Open => {
            if context
                .existing
                .as_ref()
                .is_some_and(|a| a.status == AlertStatus::Resolved)
            {
                record_change(&mut changes, now, &policy.flapping);
            }
            flapping = is_flapping(&changes, now, &policy.flapping);
            if let Some(window) = context.maintenance {
                outcome.suppressed_by = Some(window);
                incident_id = None;
            } else {
                let mut target = None;
                for candidate in [&context.own_incident, &context.group_incident].into_iter().flatten() {
                    if candidate.state.is_open() {
                        target = Some(candidate.id.clone());
                        break;
                    }
                    if reopens(candidate, policy.reopen_window_secs, now) {
                        commands.push(command(
                            &candidate.id,
                            Command::Reopen {
                                reason: format!("Alert {:?} fired again: {}", signal.dedup_key, signal.summary)
                                    .chars()
                                    .take(MAX_TEXT)
                                    .collect(),
                            },
                        ));
                        outcome.reopened_incident = true;
                        target = Some(candidate.id.clone());
                        break;
                    }
                }
                if target.is_none() {
                    target = context
                        .correlated_incident
                        .as_ref()
                        .filter(|i| i.state.is_open())
                        .map(|i| i.id.clone());
                }
                let id = match target {
                    Some(id) => id,
                    None => {
                        let (input, claimed) =
                            registration_for(signal, integration, &class, &request.routing.team_owners, now);
                        let request = RegisterRequest {
                            id: uuid::Uuid::now_v7().to_string(),
                            input,
                            actor: actor.clone(),
                            claimed,
                            matrix: std::sync::Arc::clone(&request.matrix),
                            rules: std::sync::Arc::clone(&request.routing.rules),
                            labels: signal.labels.clone(),
                            number: None,
                        };
                        let id = request.id.clone();
                        register = Some(request);
                        outcome.opened_incident = true;
                        id
                    }
                };
                commands.push(command(
                    &id,
                    Command::AttachAlert {
                        dedup_key: signal.dedup_key.clone(),
                        summary: signal.summary.clone(),
                        severity: signal.severity,
                    },
                ));
                if flapping && !was_flapping {
                    commands.push(command(&id, flag(&changes)));
                }
                incident_id = Some(id);
            }
        }
        Reaction::Recover => {
            record_change(&mut changes, now, &policy.flapping);
            flapping = is_flapping(&changes, now, &policy.flapping);
            if let Some(id) = &incident_id {
                if flapping && !was_flapping {
                    commands.push(command(id, flag(&changes)));
                }
                commands.push(command(
                    id,
                    Command::RecoverAlert {
                        dedup_key: signal.dedup_key.clone(),
                        auto_resolve: policy.on_recovery == RecoveryPolicy::Resolve && !flapping,
                    },
                ));
            }
        }
        Reaction::Acknowledge => {
            if let Some(id) = &incident_id {
                commands.push(command(
                    id,
                    Command::AcknowledgeAlert {
                        dedup_key: signal.dedup_key.clone(),
                    },
                ));
            }
        }
        Reaction::Repeat | Reaction::Ignore => {}
    }
    let mut alert = alert_after(context.existing, signal, reaction, &integration.id, incident_id, now);
    if let Some(alert) = &mut alert {
        alert.changes = changes;
        alert.flapping = flapping;
        if reaction == Reaction::Open {
            alert.suppressed_by.clone_from(&outcome.suppressed_by);
            alert.service = class.service;
            alert.ci = class.ci;
        }
    }
    outcome.alert.clone_from(&alert);
    IngestPlan {
        register,
        commands,
        alert,
        outcome,
    }
}

/// The alert after a signal; `None` when there is no alert to keep (an
/// acknowledge or resolve for an alert keel never saw).
#[must_use]
fn alert_after(
    existing: Option<Alert>,
    signal: &Signal,
    reaction: Reaction,
    integration_id: &str,
    incident_id: Option<String>,
    now: Timestamp,
) -> Option<Alert> {
    let mut alert = match existing {
        Some(alert) => alert,
        None if signal.action == SignalAction::Trigger => Alert {
            id: uuid::Uuid::now_v7().to_string(),
            integration_id: integration_id.to_string(),
            dedup_key: signal.dedup_key.clone(),
            group_key: signal.group_key.clone(),
            status: AlertStatus::Triggered,
            summary: signal.summary.clone(),
            severity: signal.severity,
            source: signal.source.clone(),
            incident_id: None,
            count: 0,
            first_seen: now,
            last_seen: now,
            service: None,
            ci: None,
            changes: Vec::new(),
            flapping: false,
            suppressed_by: None,
        },
        None => return None,
    };
    alert.last_seen = now;
    alert.incident_id = incident_id;
    if signal.group_key.is_some() {
        alert.group_key.clone_from(&signal.group_key);
    }
    match reaction {
        Reaction::Open | Reaction::Repeat => {
            alert.status = if reaction == Reaction::Open {
                AlertStatus::Triggered
            } else {
                alert.status
            };
            alert.count += 1;
            alert.summary.clone_from(&signal.summary);
            alert.severity = signal.severity;
            if signal.source.is_some() {
                alert.source.clone_from(&signal.source);
            }
        }
        Reaction::Acknowledge => alert.status = AlertStatus::Acknowledged,
        Reaction::Recover => alert.status = AlertStatus::Resolved,
        Reaction::Ignore => {}
    }
    Some(alert)
}

/// Reads an integration's stored policy.
///
/// # Errors
/// When the JSON is not a policy.
pub fn parse_policy(text: &str) -> Result<keel_domain::detection::IngestPolicy, serde_json::Error> {
    serde_json::from_str(text)
}

/// An integration's policy as stored.
#[must_use]
pub fn policy_json(policy: &keel_domain::detection::IngestPolicy) -> String {
    serde_json::to_string(policy).unwrap_or_else(|_| "{}".into())
}

/// Reads an alert's stored state changes (microseconds since the epoch).
///
/// # Errors
/// When the JSON is not a list of numbers.
pub fn parse_changes(text: &str) -> Result<Vec<Timestamp>, serde_json::Error> {
    Ok(serde_json::from_str::<Vec<i64>>(text)?
        .into_iter()
        .map(Timestamp::from_micros)
        .collect())
}

/// An alert's state changes as stored.
#[must_use]
pub fn changes_json(changes: &[Timestamp]) -> String {
    let micros: Vec<i64> = changes.iter().map(|t| t.as_micros()).collect();
    serde_json::to_string(&micros).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keel_domain::PriorityMatrix;
    use keel_domain::detection::{IngestPolicy, Severity};

    use super::*;
    use crate::IntegrationKind;

    const HOUR: i64 = 3_600_000_000;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + micros)
    }

    fn integration(policy: IngestPolicy) -> Integration {
        Integration {
            id: "int".into(),
            name: "Prometheus".into(),
            kind: IntegrationKind::Generic,
            service: Some("web".into()),
            team: Some("ops".into()),
            key_hash: String::new(),
            key_hint: String::new(),
            disabled: false,
            created_by: "admin".into(),
            created_at: at(0),
            rotated_at: None,
            policy,
            signing_secret: None,
        }
    }

    fn request(policy: IngestPolicy, key: &str, action: SignalAction) -> IngestRequest {
        IngestRequest {
            integration: integration(policy),
            signal: Signal {
                dedup_key: key.into(),
                action,
                summary: "Disk full".into(),
                source: None,
                severity: Severity::Warning,
                occurred_at: None,
                service: None,
                group_key: None,
                ci: None,
                labels: std::collections::BTreeMap::new(),
                links: Vec::new(),
            },
            matrix: Arc::new(PriorityMatrix::default()),
            routing: Arc::default(),
        }
    }

    /// Runs a plan the way an engine would, without SQL: the incident store
    /// is one optional incident.
    fn run(plan: &IngestPlan, incident: &mut Option<(Incident, String)>, now: Timestamp) {
        if let Some(register) = &plan.register {
            let planned = plan_opening(register, &plan.commands, 1, now).expect("opening");
            let head = planned.entries.last().map(|e| e.hash.clone()).unwrap_or_default();
            *incident = Some((planned.incident, head));
            return;
        }
        for command in &plan.commands {
            let (current, head) = incident.take().expect("an incident to command");
            let planned = plan_command(command, &current, &head, now).expect("command");
            let head = planned.entries.last().map_or(head, |e| e.hash.clone());
            *incident = Some((planned.incident, head));
        }
    }

    fn step(
        policy: &IngestPolicy,
        alert: &mut Option<Alert>,
        incident: &mut Option<(Incident, String)>,
        action: SignalAction,
        now: Timestamp,
    ) -> IngestOutcome {
        let own = incident.as_ref().map(|(i, _)| i.clone());
        let context = IngestContext {
            existing: alert.clone(),
            own_incident: own.filter(|i| alert.as_ref().and_then(|a| a.incident_id.as_ref()) == Some(&i.id)),
            ..IngestContext::default()
        };
        let plan = plan_ingest(&request(policy.clone(), "disk", action), context, now);
        run(&plan, incident, now);
        alert.clone_from(&plan.alert);
        plan.outcome
    }

    #[test]
    fn a_trigger_inside_the_reopen_window_reopens_and_after_it_opens_anew() {
        let policy = IngestPolicy::standard();
        let (mut alert, mut incident) = (None, None);
        assert!(step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(0)).opened_incident);
        step(&policy, &mut alert, &mut incident, SignalAction::Resolve, at(1));
        assert_eq!(incident.as_ref().map(|(i, _)| i.state), Some(State::Resolved));
        let again = step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(HOUR - 1));
        assert!(again.reopened_incident && !again.opened_incident);
        assert_eq!(incident.as_ref().map(|(i, _)| i.reopens), Some(1));
        step(&policy, &mut alert, &mut incident, SignalAction::Resolve, at(HOUR));
        let late = step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(3 * HOUR));
        assert!(late.opened_incident, "past the window a trigger opens a new incident");
    }

    #[test]
    fn a_maintenance_window_stores_the_alert_without_an_incident() {
        let context = IngestContext {
            maintenance: Some("mw".into()),
            ..IngestContext::default()
        };
        let plan = plan_ingest(
            &request(IngestPolicy::standard(), "k", SignalAction::Trigger),
            context,
            at(0),
        );
        assert!(plan.register.is_none() && plan.commands.is_empty());
        assert_eq!(plan.outcome.name(), "suppressed");
        let alert = plan.alert.expect("the alert is kept");
        assert_eq!(
            (alert.incident_id.as_deref(), alert.suppressed_by.as_deref()),
            (None, Some("mw"))
        );
        // Its next repeat, outside the window, opens an incident.
        assert_eq!(first_reaction(Some(&alert), SignalAction::Trigger), Reaction::Open);
    }

    #[test]
    fn annotate_only_recovery_never_resolves() {
        let policy = IngestPolicy {
            on_recovery: keel_domain::detection::RecoveryPolicy::Annotate,
            ..IngestPolicy::standard()
        };
        let (mut alert, mut incident) = (None, None);
        step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(0));
        step(&policy, &mut alert, &mut incident, SignalAction::Resolve, at(1));
        let (incident, _) = incident.expect("incident");
        assert_eq!(incident.state, State::New);
        assert!(incident.open_alerts.is_empty());
    }

    #[test]
    fn flapping_stops_automatic_resolution_and_reopening() {
        let policy = IngestPolicy {
            flapping: keel_domain::detection::FlapPolicy {
                changes: 3,
                within_secs: 3600,
            },
            ..IngestPolicy::standard()
        };
        let (mut alert, mut incident) = (None, None);
        step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(0));
        step(&policy, &mut alert, &mut incident, SignalAction::Resolve, at(1)); // 1 change
        step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(2)); // 2
        step(&policy, &mut alert, &mut incident, SignalAction::Resolve, at(3)); // 3: flapping
        assert!(alert.as_ref().is_some_and(|a| a.flapping));
        let state = incident.as_ref().map(|(i, _)| i.state);
        assert_ne!(state, Some(State::Resolved), "a flapping recovery does not resolve");
        step(&policy, &mut alert, &mut incident, SignalAction::Trigger, at(4));
        step(&policy, &mut alert, &mut incident, SignalAction::Resolve, at(5));
        let (incident, _) = incident.expect("incident");
        assert_eq!(
            incident.reopens, 1,
            "one reopen before flapping was detected, none after"
        );
    }
}
