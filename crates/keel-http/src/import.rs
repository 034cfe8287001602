//! `POST /api/v1/import`: history from another tool, in the versioned
//! JSON-lines format of `docs/import-format.md` (`keel-import/1`). Each line
//! is one incident: it is registered under its source's number and its
//! events are replayed in order through the normal lifecycle (`decide`,
//! sealed into the hash chain) with their original times as claimed times.
//! An incident whose number exists is skipped, so importing again changes
//! nothing. A line keel refuses is reported with the reason; what it stored
//! before the refused event stays.
//!
//! With `replay=true` the history goes through today's pipeline as if it
//! were happening: incidents are registered in time order through the
//! classification rules, and the SLA policies in force are applied over the
//! claimed times (`keel_domain::sla_watch::replay`): the targets, warnings
//! and breaches a live sweep would have written enter the timeline at the
//! instants they would have happened, so the metrics show how the team's
//! past would have fared under its rules and SLAs.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use futures_util::StreamExt;
use keel_domain::Change;
use keel_domain::sla_watch::SlaPolicies;
use keel_domain::{
    Actor, Claimed, ClassificationPatch, ClosureInput, Command, HoldReason, Impact, RegistrationInput, Role, Timestamp,
    Urgency, UserId, Visibility,
};
use keel_store::{ExecuteRequest, IncidentRef, RegisterRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;

/// The one format version this server reads.
pub const FORMAT: &str = "keel-import/1";
/// Lines (incidents) per request.
pub const MAX_LINES: usize = 2000;
/// Incidents imported at the same time (each is one write).
const PARALLEL: usize = 32;

/// One incident of the import format.
#[derive(Debug, Deserialize)]
struct Record {
    format: String,
    source: String,
    key: String,
    number: i64,
    title: String,
    description: Option<String>,
    impact: Option<u8>,
    urgency: Option<u8>,
    service: Option<String>,
    ci: Option<String>,
    category: Option<String>,
    subcategory: Option<String>,
    location: Option<String>,
    source_kind: Option<String>,
    channel: Option<String>,
    #[serde(default)]
    major: bool,
    reported_by: Option<String>,
    events: Vec<Event>,
    /// What the source recorded of its SLA.
    sla: Option<SourceSla>,
}

/// The SLA verdicts a source recorded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSla {
    response_met: Option<bool>,
    resolution_met: Option<bool>,
}

/// One event of an imported incident.
#[derive(Debug, Deserialize)]
struct Event {
    at: String,
    kind: String,
    actor: Option<String>,
    team: Option<String>,
    owner: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    cause: Option<String>,
    code: Option<String>,
    notes: Option<String>,
    satisfaction: Option<u8>,
    feedback: Option<String>,
    body: Option<String>,
    visibility: Option<String>,
    impact: Option<u8>,
    urgency: Option<u8>,
    category: Option<String>,
    subcategory: Option<String>,
    service: Option<String>,
    ci: Option<String>,
}

/// Options of `POST /api/v1/import`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Register through today's classification rules and apply today's SLA
    /// policies over the claimed times, in time order.
    #[serde(default)]
    pub replay: bool,
}

/// What a replay applies: the rules and SLA policies in force.
struct Replay {
    rules: Arc<Vec<keel_domain::rules::Rule>>,
    policies: SlaPolicies,
}

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportSummary {
    /// Whether the lines went through today's rules and SLA policies.
    pub replayed: bool,
    /// SLA entries (targets, warnings, breaches) a replay wrote.
    pub sla_entries: usize,
    /// Incidents registered by this request (also those stopped by a refused event).
    pub imported: usize,
    /// Incidents whose number already existed (imported before).
    pub skipped: usize,
    /// Timeline entries written.
    pub entries: usize,
    /// Lines keel refused, with the reason (the incident keeps what came before the refused event).
    pub failed: Vec<ImportFailure>,
}

/// A refused line.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportFailure {
    /// 1-based line number in the request body.
    pub line: usize,
    /// The source's key, when the line could be read.
    pub key: Option<String>,
    pub error: String,
}

enum Outcome {
    /// Registered with this many entries (of which SLA entries); with the
    /// reason when an event was refused.
    Imported(usize, usize, Option<String>),
    Skipped,
}

fn person(source: &str, name: Option<&str>) -> UserId {
    UserId::new(format!("{source}:{}", name.unwrap_or("import")))
}

fn claimed(at: &str) -> Result<Claimed, String> {
    let at: Timestamp = at.parse().map_err(|e| format!("event time {at:?}: {e}"))?;
    Ok(Claimed {
        occurred_at: Some(at),
        ..Claimed::default()
    })
}

fn level<T: TryFrom<u8>>(value: Option<u8>, what: &str) -> Result<Option<T>, String> {
    value
        .map(|v| T::try_from(v).map_err(|_| format!("{what} must be 1 to 4, not {v}")))
        .transpose()
}

fn choice<T: serde::de::DeserializeOwned>(value: Option<&String>, what: &str) -> Result<Option<T>, String> {
    value
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| format!("unknown {what} {v:?}"))
        })
        .transpose()
}

fn command(source: &str, event: &Event) -> Result<Command, String> {
    let text = |v: &Option<String>| v.clone().filter(|t| !t.trim().is_empty());
    Ok(match event.kind.as_str() {
        "assigned" => {
            if event.team.is_none() && event.owner.is_none() {
                return Err("an assigned event needs team or owner".into());
            }
            Command::Assign {
                team: text(&event.team),
                owner: event.owner.as_deref().map(|o| person(source, Some(o))),
                add_collaborators: Vec::new(),
            }
        }
        "accepted" => Command::Accept,
        "put_on_hold" => Command::Hold {
            reason: choice::<HoldReason>(event.reason.as_ref(), "hold reason")?.unwrap_or(HoldReason::Other),
            note: text(&event.note),
        },
        "resumed" => Command::Resume {
            note: text(&event.note),
        },
        "diagnosed" => Command::Diagnose {
            cause: text(&event.cause),
            note: text(&event.note),
        },
        "resolved" => Command::Resolve {
            code: text(&event.code).unwrap_or_else(|| "resolved".into()),
            notes: text(&event.notes).unwrap_or_else(|| "(imported)".into()),
            workaround: None,
            known_solution: false,
            automated: false,
        },
        "reopened" => Command::Reopen {
            reason: text(&event.reason).unwrap_or_else(|| "(imported)".into()),
        },
        "closed" => Command::Close {
            note: text(&event.note),
            closure: ClosureInput {
                satisfaction: event.satisfaction,
                feedback: text(&event.feedback),
                ..ClosureInput::default()
            },
        },
        "cancelled" => Command::Cancel {
            reason: text(&event.reason).unwrap_or_else(|| "(imported)".into()),
        },
        "commented" => Command::Comment {
            body: event.body.clone().unwrap_or_default(),
            visibility: choice::<Visibility>(event.visibility.as_ref(), "visibility")?.unwrap_or(Visibility::Internal),
        },
        "reclassified" => Command::Reclassify(Box::new(ClassificationPatch {
            impact: level::<Impact>(event.impact, "impact")?,
            urgency: level::<Urgency>(event.urgency, "urgency")?,
            category: event.category.clone(),
            subcategory: event.subcategory.clone(),
            service: event.service.clone(),
            ci: event.ci.clone(),
            ..ClassificationPatch::default()
        })),
        other => return Err(format!("unknown event kind {other:?}")),
    })
}

/// When a record's incident was registered (its first event), to order a
/// replay; a record whose time does not parse sorts first and is refused
/// when imported.
fn opened_at(record: &Record) -> Option<Timestamp> {
    record.events.first().and_then(|e| e.at.parse().ok())
}

/// The SLA commands a live sweep would have issued over the history that
/// `request` and `commands` make, merged into `commands` at their instants.
/// Returns how many were added (none when no policy applies or keel would
/// refuse the history: the import then reports the refusal).
fn add_sla_commands(
    state: &AppState,
    policies: &SlaPolicies,
    request: &RegisterRequest,
    commands: &mut Vec<ExecuteRequest>,
    number: i64,
) -> usize {
    let now = state.clock.now();
    let Ok(planned) = keel_store::plan::plan_opening(request, commands, number, now) else {
        return 0;
    };
    let Some(policy) = policies.for_incident(&planned.incident) else {
        return 0;
    };
    let changes: Vec<(Timestamp, Change)> = planned
        .entries
        .iter()
        .filter_map(|e| {
            Change::from_parts(&e.kind, &e.data)
                .ok()
                .map(|c| (e.occurred_at.unwrap_or(e.recorded_at), c))
        })
        .collect();
    let pairs: Vec<(Timestamp, &Change)> = changes.iter().map(|(t, c)| (*t, c)).collect();
    let events = keel_domain::sla::events_from_timeline(&pairs);
    let sla = keel_domain::sla_watch::replay(policy, &events, now);
    let added = sla.len();
    for (at, command) in sla {
        // After every event at or before the instant.
        let place = commands
            .iter()
            .position(|c| c.claimed.occurred_at.is_some_and(|t| t > at))
            .unwrap_or(commands.len());
        commands.insert(
            place,
            ExecuteRequest {
                incident: IncidentRef::Number(number),
                command,
                actor: keel_store::plan::system_actor(),
                claimed: Claimed {
                    occurred_at: Some(at),
                    ..Claimed::default()
                },
                expected_version: None,
                matrix: Arc::clone(&state.matrix),
            },
        );
    }
    added
}

async fn import_one(state: &AppState, record: Record, replay: Option<&Replay>) -> Result<Outcome, String> {
    if record.format != FORMAT {
        return Err(format!("format must be {FORMAT:?}, not {:?}", record.format));
    }
    if !(1..=9_007_199_254_740_991).contains(&record.number) {
        return Err(format!("number {} is out of range", record.number));
    }
    let Some((first, rest)) = record.events.split_first() else {
        return Err("an incident needs events, the first being registered".into());
    };
    if first.kind != "registered" {
        return Err(format!("the first event must be registered, not {:?}", first.kind));
    }
    let exists = state
        .store
        .get_incident(&IncidentRef::Number(record.number))
        .await
        .map_err(|e| e.to_string())?;
    if exists.is_some() {
        return Ok(Outcome::Skipped);
    }
    let source = record.source.as_str();
    let reporter = Actor {
        user: person(source, record.reported_by.as_deref().or(first.actor.as_deref())),
        role: Role::Agent,
    };
    let input = RegistrationInput {
        title: record.title.clone(),
        description: record.description.clone(),
        impact: level(record.impact, "impact")?,
        urgency: level(record.urgency, "urgency")?,
        service: record.service.clone(),
        ci: record.ci.clone(),
        category: record.category.clone(),
        subcategory: record.subcategory.clone(),
        source: choice(record.source_kind.as_ref(), "source_kind")?,
        channel: choice(record.channel.as_ref(), "channel")?,
        location: record.location.clone(),
        major: record.major,
        ..RegistrationInput::default()
    };
    let request = RegisterRequest {
        id: crate::new_id(),
        input,
        actor: reporter,
        claimed: claimed(&first.at)?,
        matrix: Arc::clone(&state.matrix),
        rules: replay.map(|r| Arc::clone(&r.rules)).unwrap_or_default(),
        labels: std::collections::BTreeMap::new(),
        number: Some(record.number),
    };
    let mut commands = Vec::with_capacity(rest.len() + 2);
    for (i, event) in rest.iter().enumerate() {
        commands.push(ExecuteRequest {
            incident: IncidentRef::Number(record.number),
            command: command(source, event).map_err(|e| format!("event {}: {e}", i + 2))?,
            actor: Actor {
                user: person(source, event.actor.as_deref()),
                role: Role::Agent,
            },
            claimed: claimed(&event.at).map_err(|e| format!("event {}: {e}", i + 2))?,
            expected_version: None,
            matrix: Arc::clone(&state.matrix),
        });
    }
    // The source's SLA verdicts, as of its last event, under keel's own actor.
    let last_at = record.events.last().map_or(first.at.as_str(), |e| e.at.as_str());
    for (target, met) in [
        ("response", record.sla.as_ref().and_then(|s| s.response_met)),
        ("resolution", record.sla.as_ref().and_then(|s| s.resolution_met)),
    ] {
        if let Some(met) = met {
            commands.push(ExecuteRequest {
                incident: IncidentRef::Number(record.number),
                command: Command::RecordSlaOutcome {
                    target: target.to_string(),
                    met,
                },
                actor: keel_store::plan::system_actor(),
                claimed: claimed(last_at)?,
                expected_version: None,
                matrix: Arc::clone(&state.matrix),
            });
        }
    }
    if let Some(replay) = replay
        && !replay.policies.is_empty()
    {
        let added = add_sla_commands(state, &replay.policies, &request, &mut commands, record.number);
        if added > 0 {
            // The history passed a dry run of the same plan before the SLA
            // commands were added, and those are no-ops where they do not
            // apply: a failure here is the store's, reported as such.
            return match state.store.open_with(request.clone(), commands).await {
                Ok(incident) => Ok(Outcome::Imported(
                    usize::try_from(incident.version).unwrap_or(0),
                    added,
                    None,
                )),
                Err(error) => Err(error.to_string()),
            };
        }
    }
    // The whole history in one write; if keel refuses an event, store it
    // event by event instead, so that what came before the refusal stays.
    match state.store.open_with(request.clone(), commands.clone()).await {
        Ok(incident) => Ok(Outcome::Imported(
            usize::try_from(incident.version).unwrap_or(0),
            0,
            None,
        )),
        Err(keel_store::StoreError::Domain(_)) => step_by_step(state, request, commands, rest).await,
        Err(error) => Err(error.to_string()),
    }
}

/// Registers, then runs the commands one at a time, stopping at the first refused.
async fn step_by_step(
    state: &AppState,
    request: RegisterRequest,
    commands: Vec<ExecuteRequest>,
    events: &[Event],
) -> Result<Outcome, String> {
    let incident = state.store.register(request).await.map_err(|e| e.to_string())?;
    let mut entries = 1;
    // The events, then what the record adds after them (the source's SLA verdicts).
    for (i, mut command) in commands.into_iter().enumerate() {
        command.incident = IncidentRef::Id(incident.id.clone());
        let what = events
            .get(i)
            .map_or_else(|| command.command.name().to_string(), |e| e.kind.clone());
        match state.store.execute(command).await {
            Ok(executed) => entries += executed.entries.len(),
            Err(error) => {
                let refused = format!("event {} ({what}): {error}", i + 2);
                return Ok(Outcome::Imported(entries, 0, Some(refused)));
            }
        }
    }
    Ok(Outcome::Imported(entries, 0, None))
}

/// Import incidents with their history (admin): the body is JSON lines in the `keel-import/1` format of
/// docs/import-format.md, at most 2,000 lines. Incidents keep their source's number; importing again
/// skips what exists. `replay=true`: through today's classification rules and SLA policies, in time order.
#[utoipa::path(post, path = "/api/v1/import", tag = "import", params(ImportQuery),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = ImportSummary), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ImportQuery>,
    body: Bytes,
) -> ApiResult<Json<ImportSummary>> {
    auth.require(Role::Admin)?;
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.len() > MAX_LINES {
        return Err(ApiError::invalid(format!(
            "at most {MAX_LINES} lines per request, not {}",
            lines.len()
        )));
    }
    let mut summary = ImportSummary::default();
    let mut records = Vec::new();
    for (line, text) in lines {
        match serde_json::from_str::<Record>(text) {
            Ok(record) => records.push((line, record)),
            Err(e) => summary.failed.push(ImportFailure {
                line,
                key: None,
                error: format!("not a {FORMAT} record: {e}"),
            }),
        }
    }
    let replay = if query.replay {
        // In time order: incidents are registered as they happened.
        records.sort_by_key(|(line, record)| (opened_at(record), *line));
        Some(Arc::new(Replay {
            rules: Arc::clone(&state.routing().await?.rules),
            policies: crate::sla::compile(&state.store.load_catalogue().await?),
        }))
    } else {
        None
    };
    summary.replayed = replay.is_some();
    let results: Vec<(usize, String, Result<Outcome, String>)> = futures_util::stream::iter(records)
        .map(|(line, record)| {
            let state = state.clone();
            let replay = replay.clone();
            async move {
                let key = record.key.clone();
                (line, key, import_one(&state, record, replay.as_deref()).await)
            }
        })
        // Started in order (so a replay registers in time order), finished as they come.
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for (line, key, result) in results {
        match result {
            Ok(Outcome::Imported(entries, sla, refused)) => {
                summary.imported += 1;
                summary.entries += entries;
                summary.sla_entries += sla;
                if let Some(error) = refused {
                    summary.failed.push(ImportFailure {
                        line,
                        key: Some(key),
                        error,
                    });
                }
            }
            Ok(Outcome::Skipped) => summary.skipped += 1,
            Err(error) => summary.failed.push(ImportFailure {
                line,
                key: Some(key),
                error,
            }),
        }
    }
    summary.failed.sort_by_key(|f| f.line);
    metrics::counter!("keel_incidents_imported_total").increment(summary.imported as u64);
    Ok(Json(summary))
}
