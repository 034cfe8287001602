//! The write plan both engines share: given the incident as stored (and the
//! hash at the head of its chain), run the domain's rules and produce the
//! sealed entries and the new projection to store. Engines only add SQL.

use keel_domain::timeline::{GENESIS_HASH, seal};
use keel_domain::{Entry, Incident, Timestamp, apply, decide, register};

use crate::{ExecuteRequest, RegisterRequest, StoreError};

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
