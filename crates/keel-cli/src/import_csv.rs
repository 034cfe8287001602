//! Any CSV → `keel-import/1` records (see `docs/import-format.md`), driven by
//! a mapping file (TOML; see `docs/import-csv-mapping.md`): which column holds
//! the case key, its number, the time, the actor, the fields, and whether a
//! row is one *event* (process-mining logs: an activity column mapped through
//! `[activities]`) or a *snapshot* of the record after an update (audit logs:
//! a state column mapped through `[states]`, diffed against the previous
//! snapshot like `import_servicenow` does).
//!
//! Rows are grouped by key (anywhere in the file) and ordered by time, then
//! file position. Every case becomes one record whose events keel's
//! lifecycle (`keel_domain::lifecycle::decide`) accepts in order:
//!
//! * `accepted` from new; from on hold it is a `resumed`, from resolved a
//!   `reopened`; already accepted: nothing.
//! * `put_on_hold` from accepted; from new an `accepted` is inserted first;
//!   from resolved a `reopened`; on hold for another reason: `resumed` + hold.
//! * `resolved` from new/accepted/on hold; a second one is dropped, except
//!   after a close, where it reopens (the work went on) and resolves again.
//! * `closed` from resolved; from an open state a `resolved` is inserted. The
//!   close waits until the end of the case: anything later that reopens
//!   (an accept, a hold, a resolve, a reopen, an open state) drops it, since
//!   keel reopens only resolved incidents.
//! * `cancelled` from an open state; rows after it are ignored.
//! * A changed team/owner → `assigned`; changed impact, urgency, category,
//!   subcategory, service or ci → `reclassified`; both only while the incident
//!   is open (keel refuses them on resolved ones).
//! * Times going backwards (an inserted close after later comments) are
//!   raised to the previous event's and counted.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::import_servicenow::{civil_from_days, days_from_civil};

/// keel channels (`channel` of a record).
const CHANNELS: [&str; 5] = ["portal", "email", "api", "phone", "event_integration"];
const HOLD_REASONS: [&str; 4] = ["awaiting_user", "awaiting_supplier", "awaiting_change", "other"];
const SOURCE_KINDS: [&str; 4] = ["user", "monitoring", "specialist", "supplier"];
const MAX_TITLE: usize = 300;

/// What one row of the file is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// One activity of the case (an event log).
    Events,
    /// The case's record after an update (an audit log).
    Snapshots,
}

/// Where a case's keel number comes from.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Numbering {
    /// The digits of the key (`INC0000045` → 45, `Case3608` → 3608).
    #[default]
    KeyDigits,
    /// 1, 2, … in the order the keys first appear in the file.
    RowOrder,
    /// The `number` column (first row of the case).
    Column,
}

/// What to do with an activity that `[activities]` does not list.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownActivity {
    /// An internal comment whose body is the activity.
    #[default]
    Comment,
    Skip,
    Error,
}

/// What to do with a state that `[states]` does not list.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnknownState {
    Skip,
    #[default]
    Error,
}

/// Column names (as in the header row).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub key: String,
    pub time: String,
    pub number: Option<String>,
    pub activity: Option<String>,
    pub state: Option<String>,
    pub actor: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub team: Option<String>,
    pub owner: Option<String>,
    pub impact: Option<String>,
    pub urgency: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub channel: Option<String>,
    pub location: Option<String>,
    pub reported_by: Option<String>,
}

/// The mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// `source` of every record (`helpdesk`, `jira`, …).
    pub source: String,
    pub rows: RowKind,
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Values that mean "no value" (default: empty only).
    #[serde(default = "no_missing")]
    pub missing: Vec<String>,
    #[serde(default)]
    pub number: Numbering,
    /// `%Y %m %d %H %M %S %f %z %%`, anything else literal.
    pub time_format: String,
    /// `UTC` (default) or a fixed offset `+01:00`, for times without `%z`.
    pub timezone: Option<String>,
    /// Title when there is no title column or value; `{key}` and `{source}`
    /// are replaced. Default `{source} {key}`.
    pub title: Option<String>,
    pub source_kind: Option<String>,
    #[serde(default)]
    pub unknown_activities: UnknownActivity,
    #[serde(default)]
    pub unknown_states: UnknownState,
    pub columns: Columns,
    #[serde(default)]
    pub activities: BTreeMap<String, String>,
    #[serde(default)]
    pub states: BTreeMap<String, String>,
    /// Text of impact/urgency/priority values → 1…4 (values starting with a
    /// digit need no entry: `2 - Medium` is 2).
    #[serde(default)]
    pub levels: BTreeMap<String, u8>,
    /// Channel values → keel channels (values already keel's need no entry).
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
}

fn comma() -> String {
    ",".into()
}

fn no_missing() -> Vec<String> {
    vec![String::new()]
}

impl Mapping {
    /// Reads a mapping file.
    ///
    /// # Errors
    /// When it cannot be read or is not a valid mapping.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("mapping {}", path.display()))
    }

    /// Parses a mapping (TOML).
    ///
    /// # Errors
    /// When it is not valid TOML or misses or misnames a setting.
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// What a mapped activity or state does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// The row is the registration (nothing more).
    Registered,
    Skip,
    Accept,
    Hold(&'static str),
    Resume,
    Diagnose,
    Resolve,
    Reopen,
    Close,
    Cancel,
    Comment,
    Reclassify,
    Assign,
    /// Snapshots: the record is new again.
    New,
}

fn hold_reason(reason: Option<&str>, what: &str) -> Result<&'static str> {
    let Some(reason) = reason else {
        return Ok("other");
    };
    HOLD_REASONS.iter().find(|r| **r == reason).copied().with_context(|| {
        format!(
            "{what}: unknown hold reason {reason:?} (one of {})",
            HOLD_REASONS.join(", ")
        )
    })
}

/// `[activities]` value → action.
fn activity_action(value: &str, name: &str) -> Result<Action> {
    let what = format!("[activities] {name:?}");
    let (kind, reason) = value.split_once(':').map_or((value, None), |(k, r)| (k, Some(r)));
    if reason.is_some() && kind != "put_on_hold" {
        bail!("{what}: only put_on_hold takes a reason, not {value:?}");
    }
    Ok(match kind {
        "registered" => Action::Registered,
        "skip" => Action::Skip,
        "accepted" => Action::Accept,
        "put_on_hold" => Action::Hold(hold_reason(reason, &what)?),
        "resumed" => Action::Resume,
        "diagnosed" => Action::Diagnose,
        "resolved" => Action::Resolve,
        "reopened" => Action::Reopen,
        "closed" => Action::Close,
        "cancelled" => Action::Cancel,
        "commented" => Action::Comment,
        "reclassified" => Action::Reclassify,
        "assigned" => Action::Assign,
        other => bail!(
            "{what}: unknown event kind {other:?} (registered, accepted, put_on_hold[:reason], resumed, \
             diagnosed, resolved, reopened, closed, cancelled, commented, reclassified, assigned or skip)"
        ),
    })
}

/// `[states]` value → action (the state the snapshot is in).
fn state_action(value: &str, name: &str) -> Result<Action> {
    let what = format!("[states] {name:?}");
    let (kind, reason) = value.split_once(':').map_or((value, None), |(k, r)| (k, Some(r)));
    if reason.is_some() && kind != "on_hold" {
        bail!("{what}: only on_hold takes a reason, not {value:?}");
    }
    Ok(match kind {
        "new" => Action::New,
        "accepted" => Action::Accept,
        "on_hold" => Action::Hold(hold_reason(reason, &what)?),
        "resolved" => Action::Resolve,
        "closed" => Action::Close,
        "cancelled" => Action::Cancel,
        "skip" => Action::Skip,
        other => bail!(
            "{what}: unknown state {other:?} (new, accepted, on_hold[:reason], resolved, closed, cancelled or skip)"
        ),
    })
}

/// One piece of a time format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Lit(char),
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Fraction of a second; `dot`: a `.` before it, optional with it.
    Frac {
        dot: bool,
    },
    Zone,
}

fn compile_format(format: &str) -> Result<Vec<Spec>> {
    let mut out = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(Spec::Lit(c));
            continue;
        }
        let spec = match chars.next() {
            Some('Y') => Spec::Year,
            Some('m') => Spec::Month,
            Some('d') => Spec::Day,
            Some('H') => Spec::Hour,
            Some('M') => Spec::Minute,
            Some('S') => Spec::Second,
            Some('z') => Spec::Zone,
            Some('%') => Spec::Lit('%'),
            Some('f') => {
                if out.last() == Some(&Spec::Lit('.')) {
                    out.pop();
                    Spec::Frac { dot: true }
                } else {
                    Spec::Frac { dot: false }
                }
            }
            Some(other) => bail!("time_format {format:?}: %{other} is not supported (use %Y %m %d %H %M %S %f %z %%)"),
            None => bail!("time_format {format:?} ends with a lone %"),
        };
        out.push(spec);
    }
    for needed in [Spec::Year, Spec::Month, Spec::Day] {
        if !out.contains(&needed) {
            bail!("time_format {format:?} needs %Y, %m and %d");
        }
    }
    Ok(out)
}

/// `UTC`/`Z` or `±hh:mm` → seconds east of UTC.
fn parse_offset(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if matches!(raw, "UTC" | "utc" | "Z" | "z" | "GMT") {
        return Some(0);
    }
    let (sign, rest) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) || rest.len() > 5 {
        return None;
    }
    let hh: i64 = digits.get(..2)?.parse().ok()?;
    let mm: i64 = if digits.len() == 4 {
        digits.get(2..)?.parse().ok()?
    } else {
        0
    };
    (hh <= 14 && mm < 60).then_some(sign * (hh * 3600 + mm * 60))
}

/// Parses `raw` with a compiled format → microseconds since the epoch (UTC).
fn parse_time(specs: &[Spec], raw: &str, default_offset: i64) -> Option<i64> {
    let s = raw.trim();
    let bytes = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize, min: usize, max: usize| -> Option<(i64, usize)> {
        let start = *i;
        while *i < bytes.len() && *i - start < max && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        let n = *i - start;
        if n < min {
            return None;
        }
        s.get(start..*i)?.parse().ok().map(|v| (v, n))
    };
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut micros) = (0, 0, 0, 0, 0, 0, 0);
    let mut offset = default_offset;
    for spec in specs {
        match *spec {
            Spec::Lit(c) => {
                let mut buf = [0u8; 4];
                let lit = c.encode_utf8(&mut buf).as_bytes();
                if !bytes.get(i..)?.starts_with(lit) {
                    return None;
                }
                i += lit.len();
            }
            Spec::Year => y = digits(&mut i, 4, 4)?.0,
            Spec::Month => mo = digits(&mut i, 1, 2)?.0,
            Spec::Day => d = digits(&mut i, 1, 2)?.0,
            Spec::Hour => h = digits(&mut i, 1, 2)?.0,
            Spec::Minute => mi = digits(&mut i, 1, 2)?.0,
            Spec::Second => sec = digits(&mut i, 1, 2)?.0,
            Spec::Frac { dot } => {
                if dot {
                    if bytes.get(i) != Some(&b'.') {
                        continue;
                    }
                    i += 1;
                }
                let (v, n) = digits(&mut i, 1, 9)?;
                let n = u32::try_from(n).ok()?;
                micros = if n <= 6 {
                    v * 10_i64.pow(6 - n)
                } else {
                    v / 10_i64.pow(n - 6)
                };
            }
            Spec::Zone => {
                let rest = s.get(i..)?;
                let len = if rest.starts_with(['Z', 'z']) {
                    1
                } else {
                    let sign = usize::from(rest.starts_with(['+', '-']));
                    sign + rest
                        .get(sign..)?
                        .bytes()
                        .take_while(|b| b.is_ascii_digit() || *b == b':')
                        .count()
                };
                offset = parse_offset(rest.get(..len)?)?;
                i += len;
            }
        }
    }
    if i != bytes.len() || !(1..=12).contains(&mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if civil_from_days(days) != (y, mo, d) {
        return None;
    }
    let seconds = ((days * 24 + h) * 60 + mi) * 60 + sec.min(59) - offset;
    Some(seconds * 1_000_000 + micros)
}

/// Microseconds since the epoch → RFC 3339 (UTC).
fn rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rest / 3600, rest / 60 % 60, rest % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:06}Z")
    }
}

/// Column positions: `(name, position)`.
type Col = Option<(String, usize)>;

/// The mapping checked against the header row.
struct Plan<'m> {
    mapping: &'m Mapping,
    specs: Vec<Spec>,
    default_offset: i64,
    key: (String, usize),
    time: (String, usize),
    op: (String, usize),
    number: Col,
    actor: Col,
    title: Col,
    description: Col,
    team: Col,
    owner: Col,
    impact: Col,
    urgency: Col,
    priority: Col,
    category: Col,
    subcategory: Col,
    service: Col,
    ci: Col,
    channel: Col,
    location: Col,
    reported_by: Col,
    actions: HashMap<String, Action>,
}

impl<'m> Plan<'m> {
    fn new(mapping: &'m Mapping, headers: &csv::StringRecord) -> Result<Self> {
        if mapping.source.trim().is_empty() {
            bail!("mapping: source must not be empty");
        }
        let names: Vec<&str> = headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim())
            .collect();
        let find = |field: &str, name: &str| -> Result<(String, usize)> {
            names
                .iter()
                .position(|h| *h == name)
                .map(|i| (name.to_string(), i))
                .with_context(|| {
                    format!(
                        "mapping: columns.{field} = {name:?} is not a column of the file (its columns: {})",
                        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                    )
                })
        };
        let opt = |field: &str, name: &Option<String>| name.as_deref().map(|n| find(field, n)).transpose();
        let c = &mapping.columns;
        let (op, actions) = match mapping.rows {
            RowKind::Events => {
                let name = c
                    .activity
                    .as_deref()
                    .context("mapping: rows = \"events\" needs columns.activity")?;
                let mut actions = HashMap::new();
                for (k, v) in &mapping.activities {
                    actions.insert(k.clone(), activity_action(v, k)?);
                }
                (find("activity", name)?, actions)
            }
            RowKind::Snapshots => {
                let name = c
                    .state
                    .as_deref()
                    .context("mapping: rows = \"snapshots\" needs columns.state")?;
                if mapping.states.is_empty() {
                    bail!("mapping: rows = \"snapshots\" needs a [states] table");
                }
                let mut actions = HashMap::new();
                for (k, v) in &mapping.states {
                    actions.insert(k.clone(), state_action(v, k)?);
                }
                (find("state", name)?, actions)
            }
        };
        if mapping.number == Numbering::Column && c.number.is_none() {
            bail!("mapping: number = \"column\" needs columns.number");
        }
        let delimiter = mapping.delimiter.as_bytes();
        if delimiter.len() != 1 {
            bail!(
                "mapping: delimiter must be one ASCII character, not {:?}",
                mapping.delimiter
            );
        }
        for (text, level) in &mapping.levels {
            if !(1..=4).contains(level) {
                bail!("mapping: [levels] {text:?} = {level}: levels are 1 (highest) … 4");
            }
        }
        for (text, channel) in &mapping.channels {
            if !CHANNELS.contains(&channel.as_str()) {
                bail!(
                    "mapping: [channels] {text:?} = {channel:?}: not a keel channel ({})",
                    CHANNELS.join(", ")
                );
            }
        }
        if let Some(kind) = &mapping.source_kind
            && !SOURCE_KINDS.contains(&kind.as_str())
        {
            bail!(
                "mapping: source_kind {kind:?} is not one of {}",
                SOURCE_KINDS.join(", ")
            );
        }
        let default_offset = match &mapping.timezone {
            None => 0,
            Some(zone) => parse_offset(zone)
                .with_context(|| format!("mapping: timezone {zone:?}: use UTC or a fixed offset such as \"+01:00\""))?,
        };
        Ok(Self {
            mapping,
            specs: compile_format(&mapping.time_format).map_err(|e| anyhow::anyhow!("mapping: {e}"))?,
            default_offset,
            key: find("key", &c.key)?,
            time: find("time", &c.time)?,
            op,
            number: opt("number", &c.number)?,
            actor: opt("actor", &c.actor)?,
            title: opt("title", &c.title)?,
            description: opt("description", &c.description)?,
            team: opt("team", &c.team)?,
            owner: opt("owner", &c.owner)?,
            impact: opt("impact", &c.impact)?,
            urgency: opt("urgency", &c.urgency)?,
            priority: opt("priority", &c.priority)?,
            category: opt("category", &c.category)?,
            subcategory: opt("subcategory", &c.subcategory)?,
            service: opt("service", &c.service)?,
            ci: opt("ci", &c.ci)?,
            channel: opt("channel", &c.channel)?,
            location: opt("location", &c.location)?,
            reported_by: opt("reported_by", &c.reported_by)?,
            actions,
        })
    }

    /// The value of a column, `None` when missing; runs of spaces become one.
    fn text(&self, record: &csv::StringRecord, col: &Col) -> Option<String> {
        let (_, i) = col.as_ref()?;
        let raw = record.get(*i)?.trim();
        if self.mapping.missing.iter().any(|m| m.trim() == raw) {
            return None;
        }
        Some(if raw.contains("  ") {
            raw.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            raw.to_string()
        })
    }

    /// A level 1…4: leading digits or `[levels]`.
    fn level(&self, record: &csv::StringRecord, col: &Col, line: u64) -> Result<Option<u8>> {
        let Some(raw) = self.text(record, col) else {
            return Ok(None);
        };
        let digits: String = raw.chars().take_while(char::is_ascii_digit).collect();
        let level = if digits.is_empty() {
            self.mapping
                .levels
                .get(&raw)
                .or_else(|| {
                    self.mapping
                        .levels
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&raw))
                        .map(|(_, v)| v)
                })
                .copied()
        } else {
            digits.parse().ok().filter(|v| (1..=4).contains(v))
        };
        match level {
            Some(level) => Ok(Some(level)),
            None => {
                let name = col.as_ref().map_or("", |(n, _)| n.as_str());
                bail!("line {line}, column {name:?}: {raw:?} is not a level 1…4 (add it to [levels])")
            }
        }
    }

    fn channel(&self, record: &csv::StringRecord, stats: &mut Stats) -> Option<&'static str> {
        let raw = self.text(record, &self.channel)?;
        let mapped = self.mapping.channels.get(&raw).map_or(raw.as_str(), String::as_str);
        let found = CHANNELS.iter().find(|c| c.eq_ignore_ascii_case(mapped)).copied();
        if found.is_none() {
            stats.unknown_channels += 1;
        }
        found
    }
}

/// Fields a row may carry.
#[derive(Debug, Default)]
struct Fields {
    title: Option<String>,
    description: Option<String>,
    team: Option<String>,
    owner: Option<String>,
    impact: Option<u8>,
    urgency: Option<u8>,
    category: Option<String>,
    subcategory: Option<String>,
    service: Option<String>,
    ci: Option<String>,
    channel: Option<&'static str>,
    location: Option<String>,
    reported_by: Option<String>,
}

#[derive(Debug)]
struct Row {
    seq: u64,
    at: i64,
    actor: Option<String>,
    action: Action,
    /// The activity or state as written.
    label: String,
    fields: Fields,
}

struct Case {
    key: String,
    first_line: u64,
    number_raw: Option<String>,
    rows: Vec<Row>,
}

/// What a conversion saw and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Data rows read (header excluded).
    pub rows: u64,
    pub cases: u64,
    pub events: u64,
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Final keel state per case (`new`, `accepted`, `on_hold`, `resolved`,
    /// `closed`, `cancelled`).
    pub final_states: BTreeMap<&'static str, u64>,
    /// Rows skipped by the mapping (`skip`, or unknown with `skip`).
    pub rows_skipped: u64,
    /// Unknown activities recorded as internal comments.
    pub unknown_commented: u64,
    /// Transitions to where the incident already was (nothing emitted).
    pub redundant: u64,
    /// `accepted` inserted before a hold or diagnosis from new.
    pub acceptances_inserted: u64,
    /// `resolved` inserted before a close from an open state.
    pub resolutions_inserted: u64,
    /// Closes dropped because the case went on (keel reopens only resolved).
    pub closes_undone: u64,
    /// Snapshots going back to `new` from accepted/on hold.
    pub back_to_new: u64,
    /// Assignments, reclassifications or diagnoses while resolved (refused by keel).
    pub not_open: u64,
    /// Rows after a cancellation.
    pub after_cancel: u64,
    /// Reclassifications that changed nothing, kept as internal comments.
    pub empty_reclassifications: u64,
    /// Channel values that are no keel channel (left out).
    pub unknown_channels: u64,
    /// Event times raised to the previous event's.
    pub clamped_times: u64,
}

impl Stats {
    /// One line for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "converted {} rows into {} incidents, {} events (final states {:?}; {} rows skipped, {} unknown \
             activities as comments, {} closes undone, {} resolutions and {} acceptances inserted, {} times raised)",
            self.rows,
            self.cases,
            self.events,
            self.final_states,
            self.rows_skipped,
            self.unknown_commented,
            self.closes_undone,
            self.resolutions_inserted,
            self.acceptances_inserted,
            self.clamped_times
        )
    }
}

/// Records (one `keel-import/1` object per case, by number) and statistics.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub records: Vec<Value>,
    pub stats: Stats,
}

/// Converts a CSV (plain; see `import_servicenow::open` for gzip) with a mapping.
///
/// # Errors
/// When the mapping does not fit the file (a column it names is missing),
/// or a row has no key, an unreadable time, number or level, or an unknown
/// state or activity the mapping says to refuse; the error names the line
/// and the column.
pub fn convert<R: Read>(mapping: &Mapping, input: R) -> Result<Conversion> {
    let delimiter = mapping.delimiter.as_bytes().first().copied().unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input);
    let headers = reader.headers().context("reading the header row")?.clone();
    let plan = Plan::new(mapping, &headers)?;
    let mut stats = Stats::default();
    let mut cases: Vec<Case> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut record = csv::StringRecord::new();
    let mut seq = 0u64;
    loop {
        let more = reader
            .read_record(&mut record)
            .with_context(|| format!("reading CSV row {}", seq + 1))?;
        if !more {
            break;
        }
        seq += 1;
        stats.rows += 1;
        let line = record.position().map_or(seq + 1, csv::Position::line);
        let Some(key) = plan.text(&record, &Some(plan.key.clone())) else {
            bail!("line {line}, column {:?}: no case key", plan.key.0);
        };
        let label = plan.text(&record, &Some(plan.op.clone())).unwrap_or_default();
        let action = match plan.actions.get(&label) {
            Some(action) => *action,
            None => match mapping.rows {
                RowKind::Events => match mapping.unknown_activities {
                    UnknownActivity::Comment if !label.is_empty() => Action::Comment,
                    UnknownActivity::Comment | UnknownActivity::Skip => Action::Skip,
                    UnknownActivity::Error => bail!(
                        "line {line}, column {:?}: activity {label:?} is not in [activities]",
                        plan.op.0
                    ),
                },
                RowKind::Snapshots => match mapping.unknown_states {
                    UnknownState::Skip => Action::Skip,
                    UnknownState::Error => bail!(
                        "line {line}, column {:?}: state {label:?} is not in [states] (map it, or set \
                         unknown_states = \"skip\")",
                        plan.op.0
                    ),
                },
            },
        };
        if mapping.rows == RowKind::Events && action == Action::Comment && !plan.actions.contains_key(&label) {
            stats.unknown_commented += 1;
        }
        if action == Action::Skip {
            stats.rows_skipped += 1;
            continue;
        }
        let raw_time = record.get(plan.time.1).unwrap_or_default();
        let at = parse_time(&plan.specs, raw_time, plan.default_offset).with_context(|| {
            format!(
                "line {line}, column {:?}: {raw_time:?} does not match time_format {:?}",
                plan.time.0, mapping.time_format
            )
        })?;
        let priority = plan.level(&record, &plan.priority, line)?;
        let fields = Fields {
            title: plan.text(&record, &plan.title),
            description: plan.text(&record, &plan.description),
            team: plan.text(&record, &plan.team),
            owner: plan.text(&record, &plan.owner),
            impact: plan.level(&record, &plan.impact, line)?.or(priority),
            urgency: plan.level(&record, &plan.urgency, line)?.or(priority),
            category: plan.text(&record, &plan.category),
            subcategory: plan.text(&record, &plan.subcategory),
            service: plan.text(&record, &plan.service),
            ci: plan.text(&record, &plan.ci),
            channel: plan.channel(&record, &mut stats),
            location: plan.text(&record, &plan.location),
            reported_by: plan.text(&record, &plan.reported_by),
        };
        let row = Row {
            seq,
            at,
            actor: plan.text(&record, &plan.actor),
            action,
            label,
            fields,
        };
        if let Some(&i) = index.get(&key) {
            cases[i].rows.push(row);
        } else {
            index.insert(key.clone(), cases.len());
            cases.push(Case {
                number_raw: plan.text(&record, &plan.number),
                key,
                first_line: line,
                rows: vec![row],
            });
        }
    }
    let mut numbered = Vec::with_capacity(cases.len());
    let mut seen: HashMap<u64, String> = HashMap::new();
    for (i, case) in cases.into_iter().enumerate() {
        let number = number_of(&plan, &case, i)?;
        if let Some(other) = seen.insert(number, case.key.clone()) {
            bail!(
                "cases {other:?} and {:?} both give keel number {number} (choose another `number`)",
                case.key
            );
        }
        numbered.push((number, case));
    }
    numbered.sort_by_key(|(n, _)| *n);
    let mut records = Vec::with_capacity(numbered.len());
    for (number, mut case) in numbered {
        case.rows.sort_by_key(|r| (r.at, r.seq));
        stats.cases += 1;
        records.push(convert_case(mapping, number, &case, &mut stats));
    }
    Ok(Conversion { records, stats })
}

fn number_of(plan: &Plan, case: &Case, position: usize) -> Result<u64> {
    let range = 1..=(1u64 << 53);
    match plan.mapping.number {
        Numbering::RowOrder => Ok(position as u64 + 1),
        Numbering::KeyDigits => {
            let digits: String = case.key.chars().filter(char::is_ascii_digit).collect();
            digits.parse().ok().filter(|n| range.contains(n)).with_context(|| {
                format!(
                    "line {}, column {:?}: key {:?} has no number 1 … 2^53 in its digits (use number = \
                     \"row_order\" or \"column\")",
                    case.first_line, plan.key.0, case.key
                )
            })
        }
        Numbering::Column => {
            let name = plan.number.as_ref().map_or("", |(n, _)| n.as_str());
            let raw = case.number_raw.as_deref().unwrap_or_default();
            raw.parse().ok().filter(|n| range.contains(n)).with_context(|| {
                format!(
                    "line {}, column {name:?}: {raw:?} is not a number 1 … 2^53",
                    case.first_line
                )
            })
        }
    }
}

/// keel's state as the converted events leave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KState {
    New,
    Accepted,
    OnHold(&'static str),
    Resolved,
    Cancelled,
}

impl KState {
    const fn is_open(self) -> bool {
        matches!(self, Self::New | Self::Accepted | Self::OnHold(_))
    }
}

struct Sim<'a> {
    imported: String,
    state: KState,
    /// A close seen: (time, actor); emitted at the end unless the case goes on.
    pending_close: Option<(i64, &'a str)>,
    team: Option<&'a str>,
    owner: Option<&'a str>,
    impact: Option<u8>,
    urgency: Option<u8>,
    category: Option<&'a str>,
    subcategory: Option<&'a str>,
    service: Option<&'a str>,
    ci: Option<&'a str>,
    last_at: i64,
    events: Vec<Value>,
}

impl<'a> Sim<'a> {
    fn push(&mut self, at: i64, kind: &'static str, actor: &str, fields: Map<String, Value>, stats: &mut Stats) {
        let (event, clamped) =
            crate::import_servicenow::timed_event(rfc3339, &mut self.last_at, at, kind, actor, fields);
        stats.clamped_times += u64::from(clamped);
        self.events.push(event);
        stats.events += 1;
        *stats.events_by_kind.entry(kind).or_default() += 1;
    }

    fn simple(&mut self, at: i64, kind: &'static str, actor: &str, stats: &mut Stats) {
        self.push(at, kind, actor, Map::new(), stats);
    }

    /// From resolved (a pending close dropped) back to accepted.
    fn reopen(&mut self, at: i64, actor: &str, stats: &mut Stats) {
        if self.pending_close.take().is_some() {
            stats.closes_undone += 1;
        }
        let mut f = Map::new();
        f.insert("reason".into(), json!(self.imported));
        self.push(at, "reopened", actor, f, stats);
        self.state = KState::Accepted;
    }

    fn accept(&mut self, at: i64, actor: &str, stats: &mut Stats) {
        match self.state {
            KState::New => {
                self.simple(at, "accepted", actor, stats);
                self.state = KState::Accepted;
            }
            KState::OnHold(_) => self.resume(at, actor, stats),
            KState::Resolved => self.reopen(at, actor, stats),
            KState::Accepted | KState::Cancelled => stats.redundant += 1,
        }
    }

    fn resume(&mut self, at: i64, actor: &str, stats: &mut Stats) {
        if matches!(self.state, KState::OnHold(_)) {
            self.simple(at, "resumed", actor, stats);
            self.state = KState::Accepted;
        } else {
            stats.redundant += 1;
        }
    }

    fn hold(&mut self, at: i64, reason: &'static str, note: &str, actor: &str, stats: &mut Stats) {
        match self.state {
            KState::New => {
                stats.acceptances_inserted += 1;
                self.accept(at, actor, stats);
            }
            KState::OnHold(current) if current != reason => self.resume(at, actor, stats),
            KState::Resolved => self.reopen(at, actor, stats),
            KState::OnHold(_) | KState::Cancelled => {
                stats.redundant += 1;
                return;
            }
            KState::Accepted => {}
        }
        let mut f = Map::new();
        f.insert("reason".into(), json!(reason));
        if !note.is_empty() {
            f.insert("note".into(), json!(note));
        }
        self.push(at, "put_on_hold", actor, f, stats);
        self.state = KState::OnHold(reason);
    }

    fn resolve(&mut self, at: i64, actor: &str, stats: &mut Stats) {
        match self.state {
            KState::Resolved if self.pending_close.is_some() => self.reopen(at, actor, stats),
            KState::Resolved | KState::Cancelled => {
                stats.redundant += 1;
                return;
            }
            KState::New | KState::Accepted | KState::OnHold(_) => {}
        }
        let mut f = Map::new();
        f.insert("code".into(), json!("resolved"));
        f.insert("notes".into(), json!(self.imported));
        self.push(at, "resolved", actor, f, stats);
        self.state = KState::Resolved;
    }

    fn close(&mut self, at: i64, actor: &'a str, stats: &mut Stats) {
        if self.state.is_open() {
            stats.resolutions_inserted += 1;
            self.resolve(at, actor, stats);
        }
        if self.state == KState::Resolved && self.pending_close.is_none() {
            self.pending_close = Some((at, actor));
        } else {
            stats.redundant += 1;
        }
    }

    fn cancel(&mut self, at: i64, actor: &str, stats: &mut Stats) {
        if self.state.is_open() {
            let mut f = Map::new();
            f.insert("reason".into(), json!(self.imported));
            self.push(at, "cancelled", actor, f, stats);
            self.state = KState::Cancelled;
        } else {
            stats.redundant += 1;
        }
    }

    fn comment(&mut self, at: i64, actor: &str, body: &str, stats: &mut Stats) {
        let mut f = Map::new();
        f.insert("body".into(), json!(body));
        f.insert("visibility".into(), json!("internal"));
        self.push(at, "commented", actor, f, stats);
    }

    /// Changed team/owner → `assigned`; changed classification →
    /// `reclassified` (while open). Returns whether a reclassification was
    /// emitted.
    fn sync(&mut self, row: &'a Row, actor: &str, stats: &mut Stats) -> bool {
        let f = &row.fields;
        let team = f.team.as_deref().filter(|t| Some(*t) != self.team);
        let owner = f.owner.as_deref().filter(|o| Some(*o) != self.owner);
        if !(self.state.is_open() && self.pending_close.is_none()) {
            // Kept for after a reopen, as the values still differ then.
            let differs = f.impact.is_some_and(|v| Some(v) != self.impact)
                || f.urgency.is_some_and(|v| Some(v) != self.urgency)
                || [
                    (&f.category, self.category),
                    (&f.subcategory, self.subcategory),
                    (&f.service, self.service),
                    (&f.ci, self.ci),
                ]
                .iter()
                .any(|(new, current)| new.as_deref().is_some_and(|v| Some(v) != *current));
            if team.is_some() || owner.is_some() || differs {
                stats.not_open += 1;
            }
            return false;
        }
        let mut reclass = Map::new();
        for (name, new, current) in [
            ("impact", f.impact, &mut self.impact),
            ("urgency", f.urgency, &mut self.urgency),
        ] {
            if let Some(v) = new.filter(|v| Some(*v) != *current) {
                reclass.insert(name.into(), json!(v));
                *current = Some(v);
            }
        }
        for (name, new, current) in [
            ("category", &f.category, &mut self.category),
            ("subcategory", &f.subcategory, &mut self.subcategory),
            ("service", &f.service, &mut self.service),
            ("ci", &f.ci, &mut self.ci),
        ] {
            if let Some(v) = new.as_deref().filter(|v| Some(*v) != *current) {
                reclass.insert(name.into(), json!(v));
                *current = Some(v);
            }
        }
        if team.is_some() || owner.is_some() {
            let mut a = Map::new();
            if let Some(team) = team {
                a.insert("team".into(), json!(team));
                self.team = Some(team);
            }
            if let Some(owner) = owner {
                a.insert("owner".into(), json!(owner));
                self.owner = Some(owner);
            }
            self.push(row.at, "assigned", actor, a, stats);
        }
        if reclass.is_empty() {
            return false;
        }
        self.push(row.at, "reclassified", actor, reclass, stats);
        true
    }

    /// Whether `action` takes a resolved incident back to an open state.
    fn reopens(&self, action: Action) -> bool {
        self.state == KState::Resolved
            && match action {
                Action::Accept | Action::Hold(_) | Action::Reopen | Action::New => true,
                Action::Resolve => self.pending_close.is_some(),
                _ => false,
            }
    }

    fn apply(&mut self, row: &'a Row, actor: &'a str, reclassified: bool, stats: &mut Stats) {
        let at = row.at;
        match row.action {
            Action::Registered | Action::Skip => {}
            Action::Accept => self.accept(at, actor, stats),
            Action::Hold(reason) => self.hold(at, reason, &row.label, actor, stats),
            Action::Resume => self.resume(at, actor, stats),
            Action::Resolve => self.resolve(at, actor, stats),
            Action::Close => self.close(at, actor, stats),
            Action::Cancel => self.cancel(at, actor, stats),
            Action::Reopen => {
                if self.state == KState::Resolved {
                    self.reopen(at, actor, stats);
                } else {
                    stats.redundant += 1;
                }
            }
            Action::New => match self.state {
                KState::Accepted => stats.back_to_new += 1,
                KState::OnHold(_) => {
                    stats.back_to_new += 1;
                    self.resume(at, actor, stats);
                }
                KState::Resolved => self.reopen(at, actor, stats),
                KState::New | KState::Cancelled => {}
            },
            Action::Comment => self.comment(at, actor, &row.label, stats),
            Action::Reclassify => {
                if !reclassified {
                    stats.empty_reclassifications += 1;
                    self.comment(at, actor, &row.label, stats);
                }
            }
            Action::Diagnose => {
                if !self.state.is_open() || self.pending_close.is_some() {
                    stats.not_open += 1;
                    return;
                }
                if self.state == KState::New {
                    stats.acceptances_inserted += 1;
                    self.accept(at, actor, stats);
                }
                let mut f = Map::new();
                f.insert("cause".into(), json!(row.label));
                self.push(at, "diagnosed", actor, f, stats);
            }
            Action::Assign => {
                // Without team/owner columns the row's actor takes it.
                if row.fields.team.is_none() && row.fields.owner.is_none() {
                    if !self.state.is_open() || self.pending_close.is_some() {
                        stats.not_open += 1;
                    } else if self.owner != Some(actor) {
                        let mut f = Map::new();
                        f.insert("owner".into(), json!(actor));
                        self.owner = Some(actor);
                        self.push(at, "assigned", actor, f, stats);
                    } else {
                        stats.redundant += 1;
                    }
                }
            }
        }
    }

    fn final_state(&self) -> &'static str {
        match self.state {
            KState::New => "new",
            KState::Accepted => "accepted",
            KState::OnHold(_) => "on_hold",
            KState::Resolved if self.pending_close.is_some() => "closed",
            KState::Resolved => "resolved",
            KState::Cancelled => "cancelled",
        }
    }
}

fn convert_case(mapping: &Mapping, number: u64, case: &Case, stats: &mut Stats) -> Value {
    let source = mapping.source.as_str();
    // A case is made with its first row: never empty.
    let Some(first) = case.rows.first() else {
        return Value::Null;
    };
    let f = &first.fields;
    let title = f.title.clone().unwrap_or_else(|| {
        mapping
            .title
            .as_deref()
            .unwrap_or("{source} {key}")
            .replace("{source}", source)
            .replace("{key}", &case.key)
    });
    let title: String = if title.trim().is_empty() {
        case.key.clone()
    } else {
        title.chars().take(MAX_TITLE).collect()
    };
    let mut sim = Sim {
        imported: format!("(imported from {source})"),
        state: KState::New,
        pending_close: None,
        team: None,
        owner: None,
        impact: f.impact,
        urgency: f.urgency,
        category: f.category.as_deref(),
        subcategory: f.subcategory.as_deref(),
        service: f.service.as_deref(),
        ci: f.ci.as_deref(),
        last_at: i64::MIN,
        events: Vec::with_capacity(case.rows.len() + 3),
    };
    for (i, row) in case.rows.iter().enumerate() {
        if sim.state == KState::Cancelled {
            stats.after_cancel += 1;
            continue;
        }
        let actor = row.actor.as_deref().unwrap_or(source);
        if i == 0 {
            sim.simple(row.at, "registered", actor, stats);
        }
        if sim.reopens(row.action) {
            sim.apply(row, actor, false, stats);
            sim.sync(row, actor, stats);
        } else {
            let reclassified = sim.sync(row, actor, stats);
            sim.apply(row, actor, reclassified, stats);
        }
    }
    *stats.final_states.entry(sim.final_state()).or_default() += 1;
    if let Some((at, actor)) = sim.pending_close.take() {
        sim.simple(at, "closed", actor, stats);
    }
    let mut record = Map::new();
    record.insert("format".into(), json!("keel-import/1"));
    record.insert("source".into(), json!(source));
    record.insert("key".into(), json!(case.key));
    record.insert("number".into(), json!(number));
    record.insert("title".into(), json!(title));
    let optional: [(&str, Option<Value>); 11] = [
        ("description", f.description.as_ref().map(|v| json!(v))),
        ("impact", f.impact.map(|v| json!(v))),
        ("urgency", f.urgency.map(|v| json!(v))),
        ("category", f.category.as_ref().map(|v| json!(v))),
        ("subcategory", f.subcategory.as_ref().map(|v| json!(v))),
        ("service", f.service.as_ref().map(|v| json!(v))),
        ("ci", f.ci.as_ref().map(|v| json!(v))),
        ("location", f.location.as_ref().map(|v| json!(v))),
        ("source_kind", mapping.source_kind.as_ref().map(|v| json!(v))),
        ("channel", f.channel.map(|v| json!(v))),
        ("reported_by", f.reported_by.as_ref().map(|v| json!(v))),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            record.insert(name.into(), value);
        }
    }
    record.insert("events".into(), Value::Array(sim.events));
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(rec: &Value) -> Vec<&str> {
        rec["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["kind"].as_str().expect("kind"))
            .collect()
    }

    fn run(mapping: &str, csv: &str) -> Result<Conversion> {
        convert(&Mapping::parse(mapping)?, csv.as_bytes())
    }

    const EVENTS: &str = r#"
source = "pm"
rows = "events"
time_format = "%Y/%m/%d %H:%M:%S.%f"
unknown_activities = "comment"
[columns]
key = "Case ID"
time = "Complete Timestamp"
activity = "Activity"
actor = "Resource"
priority = "priority"
[activities]
"Assign seriousness" = "reclassified"
"Take in charge ticket" = "accepted"
"Wait" = "put_on_hold:awaiting_user"
"Resolve ticket" = "resolved"
"Closed" = "closed"
[levels]
High = 1
Low = 4
"#;

    #[test]
    fn event_rows_follow_the_lifecycle() {
        let csv = "Case ID,Activity,Resource,Complete Timestamp,priority\n\
                   Case 7,Assign seriousness,Value 1,2012/10/09 14:50:17.000,Low\n\
                   Case 7,Wait,Value 1,2012/10/09 14:51:01.5,High\n\
                   Case 7,Resolve ticket,Value 2,2012/10/10 09:00:00.000,High\n\
                   Case 7,Closed,Value 3,2012/10/20 09:00:00,High\n\
                   Case 2,Resolve ticket,Value 2,2012/10/10 09:00:00.000,\n\
                   Case 2,Take in charge ticket,Value 2,2012/10/09 09:00:00.000,\n\
                   Case 2,VERIFIED,Value 2,2012/10/11 09:00:00.000,\n";
        let c = run(EVENTS, csv).expect("converts");
        assert_eq!(c.records.len(), 2);
        let (two, seven) = (&c.records[0], &c.records[1]);
        assert_eq!(two["number"], 2);
        assert_eq!(two["source"], "pm");
        assert_eq!(two["title"], "pm Case 2");
        // Rows are ordered by time; an unknown activity is an internal comment.
        assert_eq!(kinds(two), ["registered", "accepted", "resolved", "commented"]);
        assert_eq!(two["events"][3]["body"], "VERIFIED");
        assert_eq!(seven["impact"], 4);
        // Assign seriousness changes nothing on the first row (a comment);
        // the wait raises the priority (reclassified), then accepted is
        // inserted before the hold.
        assert_eq!(
            kinds(seven),
            [
                "registered",
                "commented",
                "reclassified",
                "accepted",
                "put_on_hold",
                "resolved",
                "closed"
            ]
        );
        let ev = seven["events"].as_array().expect("events");
        assert_eq!(ev[0]["at"], "2012-10-09T14:50:17Z");
        assert_eq!(ev[3]["at"], "2012-10-09T14:51:01.500000Z");
        assert_eq!(ev[4]["reason"], "awaiting_user");
        assert_eq!(ev[6]["actor"], "Value 3");
        assert_eq!(c.stats.final_states["closed"], 1);
        assert_eq!(c.stats.final_states["resolved"], 1);
        assert_eq!(c.stats.unknown_commented, 1);
    }

    #[test]
    fn closed_then_more_work_reopens_and_a_second_resolution_is_dropped() {
        let csv = "Case ID,Activity,Resource,Complete Timestamp,priority\n\
                   C1,Resolve ticket,A,2012/10/09 10:00:00.0,\n\
                   C1,Resolve ticket,A,2012/10/09 11:00:00.0,\n\
                   C1,Closed,B,2012/10/09 12:00:00.0,\n\
                   C1,Take in charge ticket,A,2012/10/10 12:00:00.0,\n\
                   C1,Closed,B,2012/10/11 12:00:00.0,\n";
        let c = run(EVENTS, csv).expect("converts");
        assert_eq!(
            kinds(&c.records[0]),
            ["registered", "resolved", "reopened", "resolved", "closed"]
        );
        assert_eq!(c.stats.closes_undone, 1);
        assert_eq!(c.stats.resolutions_inserted, 1);
        assert_eq!(c.stats.redundant, 1);
    }

    #[test]
    fn unknown_activities_can_be_skipped_or_refused() {
        let csv = "Case ID,Activity,Resource,Complete Timestamp,priority\n\
                   C1,Resolve ticket,A,2012/10/09 10:00:00.0,\n\
                   C1,Odd,A,2012/10/09 11:00:00.0,\n";
        let skip = EVENTS.replace("\"comment\"", "\"skip\"");
        let c = run(&skip, csv).expect("converts");
        assert_eq!(kinds(&c.records[0]), ["registered", "resolved"]);
        assert_eq!(c.stats.rows_skipped, 1);
        let refuse = EVENTS.replace("\"comment\"", "\"error\"");
        let e = run(&refuse, csv).expect_err("refused").to_string();
        assert!(
            e.contains("line 3") && e.contains("\"Activity\"") && e.contains("\"Odd\""),
            "{e}"
        );
    }

    const SNAPSHOTS: &str = r#"
source = "tracker"
rows = "snapshots"
delimiter = ";"
missing = ["", "?"]
number = "row_order"
time_format = "%d/%m/%Y %H:%M"
timezone = "+01:00"
[columns]
key = "number"
time = "updated"
state = "state"
actor = "by"
team = "group"
owner = "assignee"
impact = "impact"
urgency = "urgency"
category = "category"
channel = "contact"
title = "short"
[states]
New = "new"
Active = "accepted"
"Awaiting User" = "on_hold:awaiting_user"
"Awaiting Vendor" = "on_hold:awaiting_supplier"
Resolved = "resolved"
Closed = "closed"
Canceled = "cancelled"
"-100" = "skip"
[channels]
Phone = "phone"
"Self service" = "portal"
"#;

    #[test]
    fn snapshot_rows_are_diffed() {
        let csv = "number;state;updated;by;group;assignee;impact;urgency;category;contact;short\n\
                   T9;New;1/3/2016 09:00;U1;G1;?;2 - Medium;3 - Low;Net;Phone;Printer down\n\
                   T9;Awaiting User;1/3/2016 10:00;U1;G1;R1;2 - Medium;3 - Low;Net;Phone;Printer down\n\
                   T9;-100;1/3/2016 10:30;U1;G1;R1;2 - Medium;3 - Low;Net;Phone;Printer down\n\
                   T9;Awaiting Vendor;1/3/2016 11:00;U1;G2;R1;1 - High;3 - Low;Net;Phone;Printer down\n\
                   T9;Active;1/3/2016 12:00;U2;G2;R1;1 - High;3 - Low;Net;Phone;Printer down\n\
                   T9;Resolved;2/3/2016 12:00;U2;G2;R1;1 - High;3 - Low;Net;Phone;Printer down\n\
                   T9;Closed;8/3/2016 12:00;U9;G2;R1;1 - High;3 - Low;Net;Phone;Printer down\n\
                   T3;New;1/3/2016 08:00;U1;G1;?;?;?;?;Self service;?\n\
                   T3;Canceled;1/3/2016 08:30;U1;G1;?;?;?;?;Self service;?\n\
                   T3;Active;1/3/2016 08:40;U1;G1;?;?;?;?;Self service;?\n";
        let c = run(SNAPSHOTS, csv).expect("converts");
        assert_eq!(c.records.len(), 2);
        let t9 = &c.records[0];
        assert_eq!(t9["number"], 1);
        assert_eq!(t9["title"], "Printer down");
        assert_eq!(t9["channel"], "phone");
        assert_eq!((t9["impact"].clone(), t9["urgency"].clone()), (json!(2), json!(3)));
        assert_eq!(
            kinds(t9),
            [
                "registered",
                "assigned",
                "assigned",
                "accepted",
                "put_on_hold",
                "assigned",
                "reclassified",
                "resumed",
                "put_on_hold",
                "resumed",
                "resolved",
                "closed"
            ]
        );
        let ev = t9["events"].as_array().expect("events");
        // 09:00 at +01:00 is 08:00 UTC.
        assert_eq!(ev[0]["at"], "2016-03-01T08:00:00Z");
        assert_eq!(ev[1]["team"], "G1");
        assert_eq!(ev[2]["owner"], "R1");
        assert_eq!(ev[5]["team"], "G2");
        assert_eq!(ev[6]["impact"], 1);
        assert_eq!(ev[8]["reason"], "awaiting_supplier");
        let t3 = &c.records[1];
        assert_eq!(t3["title"], "tracker T3");
        assert_eq!(t3["channel"], "portal");
        assert_eq!(kinds(t3), ["registered", "assigned", "cancelled"]);
        assert_eq!(c.stats.after_cancel, 1);
        assert_eq!(c.stats.rows_skipped, 1);
    }

    #[test]
    fn a_closed_snapshot_followed_by_an_open_one_reopens_from_resolved() {
        let csv = "number;state;updated;by;group;assignee;impact;urgency;category;contact;short\n\
                   T1;Active;1/3/2016 09:00;U1;G1;?;?;?;?;?;x\n\
                   T1;Closed;1/3/2016 10:00;U1;G1;?;?;?;?;?;x\n\
                   T1;Active;2/3/2016 10:00;U1;G1;?;?;?;?;?;x\n\
                   T1;Closed;3/3/2016 10:00;U1;G1;?;?;?;?;?;x\n";
        let c = run(SNAPSHOTS, csv).expect("converts");
        assert_eq!(
            kinds(&c.records[0]),
            [
                "registered",
                "assigned",
                "accepted",
                "resolved",
                "reopened",
                "resolved",
                "closed"
            ]
        );
        assert_eq!(c.stats.resolutions_inserted, 2);
        assert_eq!(c.stats.closes_undone, 1);
    }

    #[test]
    fn mapping_errors_name_the_column_row_and_value() {
        let csv = "number;state;updated;by;group;assignee;impact;urgency;category;contact;short\n\
                   T1;Active;1/3/2016 09:00;U1;G1;?;?;?;?;?;x\n";
        let bad = SNAPSHOTS.replace("owner = \"assignee\"", "owner = \"assigned_to\"");
        let e = run(&bad, csv).expect_err("unknown column").to_string();
        assert!(e.contains("columns.owner") && e.contains("\"assigned_to\""), "{e}");
        assert!(e.contains("\"assignee\""), "lists the file's columns: {e}");

        let e = run(SNAPSHOTS, &csv.replace("1/3/2016 09:00", "2016-03-01 09:00"))
            .expect_err("bad time")
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("\"updated\"") && e.contains("2016-03-01 09:00"),
            "{e}"
        );

        let e = run(SNAPSHOTS, &csv.replace("Active", "Paused"))
            .expect_err("state")
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("\"state\"") && e.contains("\"Paused\""),
            "{e}"
        );

        let e = run(SNAPSHOTS, &csv.replace(";?;?;?;?;x", ";Huge;?;?;?;x"))
            .expect_err("level")
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("\"impact\"") && e.contains("Huge"),
            "{e}"
        );

        let e = run(
            &SNAPSHOTS.replace("\"row_order\"", "\"key_digits\""),
            &csv.replace("T1", "TX"),
        )
        .expect_err("no digits")
        .to_string();
        assert!(
            e.contains("line 2") && e.contains("\"number\"") && e.contains("\"TX\""),
            "{e}"
        );

        let e = run(&SNAPSHOTS.replace("\"accepted\"", "\"active\""), csv)
            .expect_err("state name")
            .to_string();
        assert!(e.contains("[states] \"Active\"") && e.contains("\"active\""), "{e}");

        let e = run(&SNAPSHOTS.replace("time_format", "time_fromat"), csv)
            .expect_err("typo")
            .to_string();
        assert!(e.contains("time_fromat"), "{e}");

        let e = run(&SNAPSHOTS.replace("%H:%M\"", "%H:%M %Z\""), csv)
            .expect_err("format")
            .to_string();
        assert!(e.contains("%Z"), "{e}");
    }

    #[test]
    fn time_formats_parse() {
        let f = |fmt: &str, raw: &str| {
            compile_format(fmt)
                .ok()
                .and_then(|s| parse_time(&s, raw, 0))
                .map(rfc3339)
        };
        assert_eq!(
            f("%Y-%m-%d %H:%M:%S%z", "2010-01-13 08:40:25+00:00").as_deref(),
            Some("2010-01-13T08:40:25Z")
        );
        assert_eq!(
            f("%Y-%m-%d %H:%M:%S%z", "2010-01-13 08:40:25+0130").as_deref(),
            Some("2010-01-13T07:10:25Z")
        );
        assert_eq!(
            f("%Y-%m-%dT%H:%M:%S.%f%z", "2010-01-13T08:40:25Z").as_deref(),
            Some("2010-01-13T08:40:25Z")
        );
        assert_eq!(
            f("%Y/%m/%d %H:%M:%S.%f", "2012/10/09 14:50:17.123456789").as_deref(),
            Some("2012-10-09T14:50:17.123456Z")
        );
        assert_eq!(
            f("%d/%m/%Y %H:%M", "29/2/2016 01:16").as_deref(),
            Some("2016-02-29T01:16:00Z")
        );
        assert_eq!(f("%d/%m/%Y %H:%M", "30/2/2016 01:16"), None);
        assert_eq!(f("%d/%m/%Y %H:%M", "1/3/2016 01:16 x"), None);
        assert_eq!(f("%d/%m/%Y", "1/3/2016").as_deref(), Some("2016-03-01T00:00:00Z"));
        assert!(compile_format("%H:%M").is_err());
        assert_eq!(parse_offset("-05:30"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_offset("Europe/Rome"), None);
    }

    /// The 4TU helpdesk log with docs/examples/helpdesk-mapping.toml.
    #[test]
    fn the_whole_helpdesk_log_converts_with_the_example_mapping() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = root.join("../../../shared/data/helpdesk-4tu-italian-software-company/helpdesk.csv");
        assert!(
            path.exists(),
            "the data set is expected at {} (../shared/data)",
            path.display()
        );
        let mapping = Mapping::load(&root.join("../../docs/examples/helpdesk-mapping.toml")).expect("mapping");
        let started = std::time::Instant::now();
        let c = convert(&mapping, std::fs::File::open(&path).expect("opens")).expect("converts");
        let took = started.elapsed();
        eprintln!("{} in {took:?}", c.stats.summary());
        eprintln!("events by kind: {:?}", c.stats.events_by_kind);
        eprintln!("{:?}", c.stats);

        // The raw file, read independently: each case's last activity (rows
        // are in time order within a case in this export).
        let mut raw = csv::Reader::from_path(&path).expect("raw");
        let headers = raw.headers().expect("headers").clone();
        let col = |n: &str| headers.iter().position(|h| h == n).expect("column");
        let (case_col, activity_col) = (col("case:concept:name"), col("concept:name"));
        // Remarks (bug-tracker states, interventions) change no state: a
        // case's state is that of its last other activity.
        let remarks = [
            "VERIFIED",
            "RESOLVED",
            "INVALID",
            "DUPLICATE",
            "Resolve SW anomaly",
            "Schedule intervention",
            "Assign seriousness",
            "Create SW anomaly",
        ];
        let mut last: HashMap<String, String> = HashMap::new();
        let mut rows = 0;
        for r in raw.records() {
            let r = r.expect("row");
            rows += 1;
            let entry = last.entry(r[case_col].to_string()).or_default();
            if !remarks.contains(&&r[activity_col]) {
                *entry = r[activity_col].to_string();
            }
        }
        let ends = |a: &str| last.values().filter(|v| *v == a).count() as u64;
        let (log_closed, log_resolved) = (ends("Closed"), ends("Resolve ticket"));

        assert_eq!(c.stats.rows, rows);
        assert_eq!(rows, 21_348);
        assert_eq!(last.len(), 4_580);
        assert_eq!(c.records.len(), 4_580);
        let mut numbers = std::collections::HashSet::new();
        let mut at_least_two = 0;
        let mut closed = 0;
        for rec in &c.records {
            assert_eq!(rec["format"], "keel-import/1");
            assert_eq!(rec["source"], "helpdesk");
            assert!(numbers.insert(rec["number"].as_u64().expect("number")));
            let title = rec["title"].as_str().expect("title");
            assert!((1..=300).contains(&title.chars().count()));
            let ev = rec["events"].as_array().expect("events");
            assert_eq!(ev[0]["kind"], "registered");
            assert!(ev[1..].iter().all(|e| e["kind"] != "registered"));
            let times: Vec<&str> = ev.iter().map(|e| e["at"].as_str().expect("at")).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{rec}");
            if ev.len() >= 2 {
                at_least_two += 1;
            }
            if ev.last().is_some_and(|e| e["kind"] == "closed") {
                closed += 1;
            }
        }
        eprintln!(
            "log: {log_closed} cases end closed, {log_resolved} resolved; converted: {:?}",
            c.stats.final_states
        );
        assert!(at_least_two * 100 >= c.records.len() * 99, "{at_least_two}");
        assert_eq!(closed, log_closed);
        assert_eq!(c.stats.final_states.get("closed").copied(), Some(log_closed));
        assert_eq!(c.stats.final_states.get("resolved").copied(), Some(log_resolved));
        assert_eq!(
            c.stats.events,
            c.records.iter().map(|r| kinds(r).len() as u64).sum::<u64>()
        );
    }
}
