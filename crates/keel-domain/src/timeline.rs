//! The timeline: append-only entries, each sealed with a SHA-256 hash over a
//! canonical encoding of its content and its predecessor's hash. Verifying
//! recomputes the chain and names the first entry that does not fit.
//!
//! The canonical encoding is JSON with object keys sorted at every level, no
//! insignificant whitespace, times as integer microseconds. It is written here
//! by hand so that no serde feature flag elsewhere in the build can change it.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Change, DomainError, Timestamp, UserId};

/// The `prev_hash` of the first entry of every incident.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How far in the future (µs) a claimed time may lie, to allow for clock skew
/// between a client and the server.
const CLAIM_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// One stored timeline entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: u64,
    pub kind: String,
    pub actor: UserId,
    pub recorded_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Times a person claims for work documented late. They are shown as claims;
/// `recorded_at` is always the server's own clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    pub occurred_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

impl Claimed {
    /// Checks that the claims are in the past (allowing for clock skew) and
    /// that work did not complete before it started.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the claim that does not hold.
    pub fn check(&self, now: Timestamp) -> Result<(), DomainError> {
        let limit = now.as_micros().saturating_add(CLAIM_SKEW_MICROS);
        for (name, value) in [
            ("occurred_at", self.occurred_at),
            ("started_at", self.started_at),
            ("completed_at", self.completed_at),
        ] {
            if value.is_some_and(|t| t.as_micros() > limit) {
                return Err(DomainError::Invalid(format!(
                    "{name} lies in the future; claimed times document work already done"
                )));
            }
        }
        if let (Some(start), Some(end)) = (self.started_at, self.completed_at)
            && end < start
        {
            return Err(DomainError::Invalid("completed_at is before started_at".into()));
        }
        Ok(())
    }
}

/// The result of checking one incident's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries: u64,
    pub first_bad_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Seals a change as entry `seq` after `prev_hash`.
#[must_use]
pub fn seal(
    incident_id: &str,
    seq: u64,
    prev_hash: &str,
    actor: &UserId,
    recorded_at: Timestamp,
    claimed: Claimed,
    change: &Change,
) -> Entry {
    let (kind, data) = change.to_parts();
    let mut entry = Entry {
        seq,
        kind,
        actor: actor.clone(),
        recorded_at,
        occurred_at: claimed.occurred_at,
        started_at: claimed.started_at,
        completed_at: claimed.completed_at,
        data,
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    entry.hash = entry_hash(incident_id, &entry);
    entry
}

/// The hash an entry must carry: SHA-256 over the canonical encoding of all
/// its fields except the hash itself, and of the incident it belongs to.
#[must_use]
pub fn entry_hash(incident_id: &str, entry: &Entry) -> String {
    let time = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::from(t.as_micros()));
    let envelope = serde_json::json!({
        "v": 1,
        "incident": incident_id,
        "seq": entry.seq,
        "kind": entry.kind,
        "actor": entry.actor.as_str(),
        "recorded_at": entry.recorded_at.as_micros(),
        "occurred_at": time(entry.occurred_at),
        "started_at": time(entry.started_at),
        "completed_at": time(entry.completed_at),
        "data": entry.data,
        "prev_hash": entry.prev_hash,
    });
    let mut text = String::with_capacity(256);
    write_canonical(&envelope, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Checks an incident's stored entries (in the order storage returns them,
/// which must be by `seq`) against the chain, and against the head the
/// incident row recorded (`head`: last seq and hash), which catches a deleted
/// tail.
#[must_use]
pub fn verify(incident_id: &str, entries: &[Entry], head: Option<(u64, &str)>) -> VerifyReport {
    let mut prev_hash = GENESIS_HASH.to_string();
    let n_entries = entries.len() as u64;
    let bad = |seq: u64, problem: String| VerifyReport {
        ok: false,
        entries: n_entries,
        first_bad_seq: Some(seq),
        problem: Some(problem),
    };
    for (idx, entry) in entries.iter().enumerate() {
        let expected_seq = idx as u64 + 1;
        if entry.seq != expected_seq {
            return bad(
                expected_seq.min(entry.seq),
                format!(
                    "expected entry {expected_seq}, found {}: an entry is missing or out of order",
                    entry.seq
                ),
            );
        }
        if entry.prev_hash != prev_hash {
            return bad(
                entry.seq,
                format!(
                    "entry {} does not point to the hash of entry {}",
                    entry.seq,
                    entry.seq - 1
                ),
            );
        }
        if entry_hash(incident_id, entry) != entry.hash {
            return bad(
                entry.seq,
                format!("entry {} was altered: its content does not match its hash", entry.seq),
            );
        }
        prev_hash.clone_from(&entry.hash);
    }
    if let Some((head_seq, head_hash)) = head
        && (head_seq != n_entries || (n_entries > 0 && head_hash != prev_hash))
    {
        return bad(
            n_entries + 1,
            format!(
                "the incident records {head_seq} entries but the timeline holds {n_entries}: entries were removed or replaced"
            ),
        );
    }
    VerifyReport {
        ok: true,
        entries: n_entries,
        first_bad_seq: None,
        problem: None,
    }
}

/// Writes `value` as canonical JSON: sorted keys, no whitespace.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (idx, key) in keys.into_iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<Entry> {
        let actor = UserId::new("u1");
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let change = Change::Commented {
                    body: format!("note {seq}"),
                    visibility: crate::Visibility::Internal,
                };
                let entry = seal(
                    "inc-1",
                    seq,
                    &prev,
                    &actor,
                    Timestamp::from_micros(seq as i64),
                    Claimed::default(),
                    &change,
                );
                prev.clone_from(&entry.hash);
                entry
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = chain(5);
        let head = entries.last().map(|e| (e.seq, e.hash.as_str()));
        assert!(verify("inc-1", &entries, head).ok);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut entries = chain(5);
        entries[2].data["body"] = Value::from("rewritten");
        let report = verify("inc-1", &entries, None);
        assert_eq!(report.first_bad_seq, Some(3));
    }

    #[test]
    fn a_deleted_middle_entry_is_detected() {
        let mut entries = chain(5);
        entries.remove(1);
        assert_eq!(verify("inc-1", &entries, None).first_bad_seq, Some(2));
    }

    #[test]
    fn a_deleted_tail_is_detected_against_the_head() {
        let mut entries = chain(5);
        let head = (5, entries[4].hash.clone());
        entries.pop();
        let report = verify("inc-1", &entries, Some((head.0, &head.1)));
        assert!(!report.ok);
    }

    #[test]
    fn swapped_entries_are_detected() {
        let mut entries = chain(4);
        entries.swap(1, 2);
        assert_eq!(verify("inc-1", &entries, None).first_bad_seq, Some(2));
    }

    #[test]
    fn the_same_entry_in_another_incident_has_another_hash() {
        let entries = chain(1);
        assert_ne!(entry_hash("inc-2", &entries[0]), entries[0].hash);
    }

    #[test]
    fn canonical_encoding_sorts_keys_at_every_level() {
        let mut out = String::new();
        write_canonical(
            &serde_json::json!({"b": {"d": 1, "c": [2, {"f": 1, "e": 0}]}, "a": "x"}),
            &mut out,
        );
        assert_eq!(out, r#"{"a":"x","b":{"c":[2,{"e":0,"f":1}],"d":1}}"#);
    }

    #[test]
    fn claims_in_the_future_or_reversed_are_refused() {
        let now = Timestamp::from_micros(1_000_000_000_000);
        let late = Timestamp::from_micros(now.as_micros() + 3_600_000_000);
        assert!(
            Claimed {
                occurred_at: Some(late),
                ..Claimed::default()
            }
            .check(now)
            .is_err()
        );
        let start = Timestamp::from_micros(10);
        let end = Timestamp::from_micros(5);
        assert!(
            Claimed {
                started_at: Some(start),
                completed_at: Some(end),
                ..Claimed::default()
            }
            .check(now)
            .is_err()
        );
        assert!(
            Claimed {
                occurred_at: Some(start),
                ..Claimed::default()
            }
            .check(now)
            .is_ok()
        );
    }
}
