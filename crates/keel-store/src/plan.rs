//! The write plan both engines share: given the incident as stored (and the
//! hash at the head of its chain), run the domain's rules and produce the
//! sealed entries and the new projection to store. Engines only add SQL.

use keel_domain::detection::{AlertStatus, Reaction, SignalAction};
use keel_domain::timeline::{GENESIS_HASH, seal};
use keel_domain::{Actor, Channel, Claimed, Command, MAX_TITLE, RegistrationInput, Role, Source, UserId};
use keel_domain::{Entry, Incident, Timestamp, apply, decide, register};

use crate::{Alert, ExecuteRequest, IngestRequest, Integration, RegisterRequest, Signal, StoreError};

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
    let change = register(request.input.clone(), number, &request.actor, &request.matrix)?;
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

/// The registration a signal that opens an incident asks for. The signal's
/// start time becomes the claimed `occurred_at` (unless it lies in the
/// future: senders' clocks drift, and the event is still worth an incident).
#[must_use]
pub fn registration_for(signal: &Signal, integration: &Integration, now: Timestamp) -> (RegistrationInput, Claimed) {
    let (impact, urgency) = signal.severity.impact_urgency();
    let title: String = signal.summary.chars().take(MAX_TITLE).collect();
    let input = RegistrationInput {
        title,
        description: Some(format!(
            "Opened by monitoring integration {:?} ({}) for alert {:?}{}.",
            integration.name,
            integration.kind.as_str(),
            signal.dedup_key,
            signal
                .source
                .as_ref()
                .map_or_else(String::new, |s| format!(" from {s}"))
        )),
        impact: Some(impact),
        urgency: Some(urgency),
        service: signal.service.clone().or_else(|| integration.service.clone()),
        source: Some(Source::Monitoring),
        channel: Some(Channel::EventIntegration),
        observed_at: signal.occurred_at.filter(|t| *t <= now),
        team: integration.team.clone(),
        ..RegistrationInput::default()
    };
    let claimed = Claimed {
        occurred_at: signal.occurred_at.filter(|t| *t <= now),
        ..Claimed::default()
    };
    (input, claimed)
}

/// The command a signal's reaction applies to the alert's incident.
#[must_use]
pub fn incident_command(reaction: Reaction, signal: &Signal) -> Option<Command> {
    match reaction {
        Reaction::Open => Some(Command::AttachAlert {
            dedup_key: signal.dedup_key.clone(),
            summary: signal.summary.clone(),
            severity: signal.severity,
        }),
        Reaction::Acknowledge => Some(Command::AcknowledgeAlert {
            dedup_key: signal.dedup_key.clone(),
        }),
        Reaction::Recover => Some(Command::RecoverAlert {
            dedup_key: signal.dedup_key.clone(),
            auto_resolve: true,
        }),
        Reaction::Repeat | Reaction::Ignore => None,
    }
}

/// The registration of the incident a signal opens.
#[must_use]
pub fn open_incident_request(request: &IngestRequest, now: Timestamp) -> RegisterRequest {
    let (input, claimed) = registration_for(&request.signal, &request.integration, now);
    RegisterRequest {
        id: uuid::Uuid::now_v7().to_string(),
        input,
        actor: monitoring_actor(&request.integration),
        claimed,
        matrix: std::sync::Arc::clone(&request.matrix),
    }
}

/// The command a signal's reaction applies to the incident `incident_id`, if any.
#[must_use]
pub fn alert_command_request(request: &IngestRequest, reaction: Reaction, incident_id: &str) -> Option<ExecuteRequest> {
    Some(ExecuteRequest {
        incident: crate::IncidentRef::Id(incident_id.to_string()),
        command: incident_command(reaction, &request.signal)?,
        actor: monitoring_actor(&request.integration),
        claimed: Claimed::default(),
        expected_version: None,
        matrix: std::sync::Arc::clone(&request.matrix),
    })
}

/// The alert after a signal; `None` when there is no alert to keep (an
/// acknowledge or resolve for an alert keel never saw).
#[must_use]
pub fn alert_after(
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
