//! Each node's in-memory copy of the metrics' per-incident facts
//! (`keel_domain::metrics::IncidentFacts`), so that a report over a million
//! incidents is a pass over memory, not a million timeline reads.
//!
//! Everything here is derived from the timelines and can be thrown away:
//! * the database keeps the facts of each incident for the version they were
//!   folded at (`incident_facts`); a newer version makes the row stale, and
//!   `keel rebuild-metrics` (or [`rebuild`]) empties the table so that every
//!   timeline is folded again;
//! * a node loads those rows once (folding the timelines that have none) and
//!   then, before each report, reads only the incidents written since its
//!   last catch-up — by any node: the walk goes by the server time of the
//!   last write (`incidents.updated_at`, indexed), rewound by [`MARGIN`] so
//!   that a transaction that committed late or a node whose clock lags a
//!   little is not missed;
//! * the facts of an incident on hold count its open hold up to the moment
//!   they were folded, so they are held in memory but never kept in the
//!   database; no metric counts the hold of an unresolved incident, so no
//!   report depends on that moment;
//! * a report takes the whole set as one shared snapshot (no copy); a
//!   catch-up that changes something while a report still reads the old
//!   snapshot copies the list of pointers, never the facts.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use keel_domain::metrics::{self, IncidentFacts};
use keel_domain::{Entry, State, Timestamp};
use keel_store::{IncidentRef, Store, StoreError, WrittenAfter};
use tokio::sync::Mutex;

/// How far back each catch-up rereads before the last one: longer than a
/// write transaction lasts plus the clock difference between nodes.
pub const MARGIN_MICROS: i64 = 15 * 1_000_000;
/// Incidents read per page.
const PAGE: u32 = 2_000;
/// Timelines read at once when facts must be folded.
const FOLDS_AT_ONCE: usize = 8;

/// An incident's id, version and entries.
type Timeline = (String, u64, Vec<Entry>);

/// Every incident's facts, in the order the node learnt of them.
pub type Snapshot = Arc<Vec<Arc<IncidentFacts>>>;

/// Where one incident's facts are, and for which version.
struct Slot {
    version: u64,
    index: usize,
}

#[derive(Default)]
struct Known {
    loaded: bool,
    /// The last incident read, in order of last write.
    position: Option<WrittenAfter>,
    /// This node's clock when the last catch-up started.
    caught_up_at: Option<Timestamp>,
    slots: HashMap<String, Slot>,
    all: Snapshot,
}

impl Known {
    fn put(&mut self, id: String, version: u64, facts: IncidentFacts) {
        let facts = Arc::new(facts);
        match self.slots.get_mut(&id) {
            Some(slot) => {
                slot.version = version;
                if let Some(place) = Arc::make_mut(&mut self.all).get_mut(slot.index) {
                    *place = facts;
                }
            }
            None => {
                let all = Arc::make_mut(&mut self.all);
                self.slots.insert(
                    id,
                    Slot {
                        version,
                        index: all.len(),
                    },
                );
                all.push(facts);
            }
        }
    }
}

/// What a catch-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Incidents read from the database.
    pub read: usize,
    /// Of those, incidents whose timeline had to be folded (no kept facts).
    pub folded: usize,
    /// Incidents known after the catch-up.
    pub known: usize,
}

/// The node's facts; one per process, shared by every request.
#[derive(Default)]
pub struct FactsCache {
    known: Mutex<Known>,
}

impl FactsCache {
    /// The facts of every incident, after catching up with every write
    /// since the last call.
    pub async fn current(&self, store: &dyn Store, now: Timestamp) -> Result<Snapshot, StoreError> {
        let mut known = self.known.lock().await;
        catch_up(&mut known, store, now).await?;
        Ok(Arc::clone(&known.all))
    }

    /// Catches up without reporting (a node warms its copy at start).
    pub async fn warm(&self, store: &dyn Store, now: Timestamp) -> Result<CatchUp, StoreError> {
        let mut known = self.known.lock().await;
        catch_up(&mut known, store, now).await
    }
}

/// Forgets every kept fact in the database and folds every timeline again,
/// keeping the new facts. Returns what was done.
pub async fn rebuild(store: &dyn Store, now: Timestamp) -> Result<(u64, CatchUp), StoreError> {
    let cleared = store.clear_facts().await?;
    let mut known = Known::default();
    let done = catch_up(&mut known, store, now).await?;
    Ok((cleared, done))
}

async fn catch_up(known: &mut Known, store: &dyn Store, now: Timestamp) -> Result<CatchUp, StoreError> {
    let system = keel_store::plan::system_actor().user;
    let start = match (known.loaded, known.position, known.caught_up_at) {
        (true, Some(position), Some(caught_up_at)) => {
            let rewound = Timestamp::from_micros(caught_up_at.as_micros().saturating_sub(MARGIN_MICROS));
            if rewound < position.updated_at {
                WrittenAfter {
                    updated_at: rewound,
                    number: 0,
                }
            } else {
                position
            }
        }
        _ => WrittenAfter {
            updated_at: Timestamp::from_micros(i64::MIN),
            number: 0,
        },
    };
    let mut done = CatchUp::default();
    let mut after = start;
    // The rewound window was read before: mostly known versions, so ids and
    // versions suffice there; past it, kept facts spare folding.
    let seen_until = known.position.filter(|_| known.loaded);
    loop {
        let with_facts = seen_until.is_none_or(|p| (after.updated_at, after.number) >= (p.updated_at, p.number));
        let page = store.incidents_changed_since(after, PAGE, with_facts).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = WrittenAfter {
            updated_at: last.updated_at,
            number: last.number,
        };
        done.read += page.len();
        let mut to_fold = Vec::new();
        for changed in page {
            if known
                .slots
                .get(&changed.id)
                .is_some_and(|s| s.version == changed.version)
            {
                continue;
            }
            match changed
                .facts
                .as_deref()
                .and_then(|json| serde_json::from_str::<IncidentFacts>(json).ok())
            {
                Some(facts) => known.put(changed.id, changed.version, facts),
                None => to_fold.push((changed.id, changed.version)),
            }
        }
        done.folded += to_fold.len();
        let timelines: Vec<Result<Timeline, StoreError>> = stream::iter(to_fold)
            .map(|(id, version)| async move {
                let entries = store.timeline(&IncidentRef::Id(id.clone()), 0, None).await?;
                Ok((id, version, entries))
            })
            .buffer_unordered(FOLDS_AT_ONCE)
            .collect()
            .await;
        let mut keep = Vec::new();
        for folded in timelines {
            let (id, version, entries) = folded?;
            if let Some(facts) = metrics::facts(&entries, &system, now) {
                // An open hold counts up to now: such facts are not kept.
                if facts.state != State::OnHold
                    && let Ok(json) = serde_json::to_string(&facts)
                {
                    keep.push((id.clone(), version, json));
                }
                known.put(id, version, facts);
            }
        }
        store.put_facts(keep).await?;
    }
    known.position = Some(later(after, known.position));
    known.caught_up_at = Some(now);
    known.loaded = true;
    done.known = known.slots.len();
    Ok(done)
}

/// The later of two walk positions.
fn later(a: WrittenAfter, b: Option<WrittenAfter>) -> WrittenAfter {
    match b {
        Some(b) if (b.updated_at, b.number) > (a.updated_at, a.number) => b,
        _ => a,
    }
}
