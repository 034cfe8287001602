//! On-call schedules: who is on call when, in the way PagerDuty and Grafana
//! OnCall model it. A [`Schedule`] is a stack of rotation [`Layer`]s in one
//! time zone plus absolute [`Override`]s; [`who_is_on_call`] answers for one
//! instant, [`shifts`] flattens the schedule over a range, and [`ical_feed`]
//! renders shifts as an iCalendar (RFC 5545) feed.
//!
//! # Semantics
//!
//! - **Rotation.** A layer hands off from `users[k % n]` to `users[(k + 1) % n]`
//!   at its hand-offs `k = 1, 2, …`, hand-off 0 being the layer's `start`.
//!   Calendar rotations ([`Rotation::Days`], [`Rotation::Weeks`]) hand off at
//!   the same *local* wall-clock time as `start`, every N days: across a DST
//!   change such a shift lasts 23 or 25 real hours. [`Rotation::Hours`] hands
//!   off every N *real* hours, so its local hand-off time drifts by an hour
//!   across a DST change. Local times that do not exist (spring-forward gap)
//!   are moved forward by the gap's length, local times that exist twice
//!   (fall-back fold) mean the earlier one (RFC 5545's and Temporal's
//!   "compatible" rule). The rotation index at an instant is computed
//!   arithmetically (fixed rotations) or from civil day differences (calendar
//!   rotations), never by walking from the start.
//! - **Restrictions.** A layer with restrictions is active only inside them
//!   (e.g. Monday–Friday 09:00–17:00 local). The rotation keeps running behind
//!   the restrictions, as in PagerDuty: a restriction masks the layer, it does
//!   not pause the hand-offs.
//! - **Precedence.** Where several layers are active, the one listed *last*
//!   wins. Every override beats every layer; of overlapping overrides the one
//!   listed last wins. Where nothing is active, nobody is on call (a gap).
//! - **Layer bounds.** A layer is active from its `start` (inclusive) to its
//!   optional `end` (exclusive), both local date-times in the schedule's zone.
//!
//! The schedule's zone is named by [`Schedule::time_zone`] but passed to the
//! queries as a resolved [`TimeZone`]: looking a zone up reads the system's
//! time zone database, which is I/O and therefore the caller's job. Instants
//! are half-open intervals `[start, end)` at microsecond precision.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::{DomainError, Timestamp, UserId};

/// How far [`who_is_on_call`] looks back and ahead for the bounds of the
/// current shift: 1024 days. Beyond that, `since`/`until` are `None`.
pub const HORIZON_DAYS: i64 = 1024;

/// The longest rotation accepted: 366 days (8784 hours, 52 weeks).
pub const MAX_ROTATION_DAYS: u32 = 366;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
const SECONDS_PER_DAY: u32 = 86_400;

// ---------------------------------------------------------------------------
// The schedule
// ---------------------------------------------------------------------------

/// An on-call schedule: rotation layers in one time zone, plus overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The IANA name of the zone the layers' local times are in (e.g. `Europe/Berlin`).
    pub time_zone: String,
    /// Rotation layers, lowest precedence first.
    #[serde(default)]
    pub layers: Vec<Layer>,
    /// Absolute overrides (holidays, swaps), lowest precedence first; all beat every layer.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// One rotation: an ordered list of users taking turns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// The rotation order; a user may appear more than once.
    pub users: Vec<UserId>,
    /// How long each turn lasts.
    pub rotation: Rotation,
    /// Local date-time (schedule zone) of the first hand-off, to `users[0]`; the layer is inactive before it.
    #[serde(with = "local_date_time")]
    pub start: DateTime,
    /// Local date-time (schedule zone) from which the layer is inactive; `None`: it never ends.
    #[serde(default, with = "opt_local_date_time", skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime>,
    /// When present, the layer is active only inside these local time windows (their union).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrictions: Vec<Restriction>,
}

/// The length of a turn in a rotation.
///
/// On the wire a string `"<N>h"`, `"<N>d"` or `"<N>w"`, or a bare number of
/// days (`7` is `"7d"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rotation {
    /// N real hours (fixed length, 3600 s each, whatever the wall clock does).
    Hours(u32),
    /// N calendar days: hand-off at the same local time every N days.
    Days(u32),
    /// N calendar weeks: hand-off at the same local time and weekday every N weeks.
    Weeks(u32),
}

/// A window of local time in which a layer is active.
///
/// `days` are the weekdays the window *starts* on. If `to` is not after
/// `from` (e.g. 22:00–06:00) the window runs overnight into the next day;
/// `to` may be `24:00` (the end of the day), so `00:00`–`24:00` is a whole day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// Weekdays the window starts on; missing on the wire means every day.
    #[serde(default = "every_day")]
    pub days: Vec<Day>,
    /// Local start time of day, `"HH:MM"` or `"HH:MM:SS"`.
    pub from: TimeOfDay,
    /// Local end time of day, `"HH:MM"`, `"HH:MM:SS"` or `"24:00"`.
    pub to: TimeOfDay,
}

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    #[serde(alias = "mon")]
    Monday,
    #[serde(alias = "tue")]
    Tuesday,
    #[serde(alias = "wed")]
    Wednesday,
    #[serde(alias = "thu")]
    Thursday,
    #[serde(alias = "fri")]
    Friday,
    #[serde(alias = "sat")]
    Saturday,
    #[serde(alias = "sun")]
    Sunday,
}

impl Day {
    /// Monday to Friday.
    pub const WEEKDAYS: [Day; 5] = [Day::Monday, Day::Tuesday, Day::Wednesday, Day::Thursday, Day::Friday];
    /// Monday to Sunday.
    pub const ALL: [Day; 7] = [
        Day::Monday,
        Day::Tuesday,
        Day::Wednesday,
        Day::Thursday,
        Day::Friday,
        Day::Saturday,
        Day::Sunday,
    ];

    fn weekday(self) -> Weekday {
        match self {
            Day::Monday => Weekday::Monday,
            Day::Tuesday => Weekday::Tuesday,
            Day::Wednesday => Weekday::Wednesday,
            Day::Thursday => Weekday::Thursday,
            Day::Friday => Weekday::Friday,
            Day::Saturday => Weekday::Saturday,
            Day::Sunday => Weekday::Sunday,
        }
    }
}

fn every_day() -> Vec<Day> {
    Day::ALL.to_vec()
}

/// A local time of day with second precision, from `00:00` to `24:00` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeOfDay(u32);

impl TimeOfDay {
    /// `24:00`, the end of a day (valid only as a restriction's `to`).
    pub const END_OF_DAY: TimeOfDay = TimeOfDay(SECONDS_PER_DAY);

    /// `hour:minute`; `None` unless it is `00:00`..=`23:59` or `24:00`.
    #[must_use]
    pub fn hm(hour: u32, minute: u32) -> Option<Self> {
        Self::from_seconds(hour.checked_mul(3600)?.checked_add(minute.checked_mul(60)?)?).filter(|_| minute < 60)
    }

    /// Seconds after local midnight; `None` above 86 400 (`24:00`).
    #[must_use]
    pub fn from_seconds(seconds: u32) -> Option<Self> {
        (seconds <= SECONDS_PER_DAY).then_some(Self(seconds))
    }

    /// Seconds after local midnight (86 400 for `24:00`).
    #[must_use]
    pub fn as_seconds(self) -> u32 {
        self.0
    }

    fn to_time(self) -> Option<Time> {
        let s = self.0;
        if s >= SECONDS_PER_DAY {
            return None;
        }
        Time::new(
            i8::try_from(s / 3600).ok()?,
            i8::try_from(s / 60 % 60).ok()?,
            i8::try_from(s % 60).ok()?,
            0,
        )
        .ok()
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 {
            write!(f, "{h:02}:{m:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}")
        }
    }
}

impl FromStr for TimeOfDay {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || DomainError::Invalid(format!("not a time of day (HH:MM, HH:MM:SS or 24:00): {text:?}"));
        let parts: Vec<&str> = text.trim().split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let mut numbers = [0_u32; 3];
        for (i, part) in parts.iter().enumerate() {
            let digits_ok = match i {
                0 => (1..=2).contains(&part.len()),
                _ => part.len() == 2,
            };
            if !digits_ok || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            numbers[i] = part.parse().map_err(|_| bad())?;
        }
        let [h, m, s] = numbers;
        if h > 24 || m > 59 || s > 59 || (h == 24 && (m, s) != (0, 0)) {
            return Err(bad());
        }
        Ok(Self(h * 3600 + m * 60 + s))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Someone on call from `start` to `end` regardless of the layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Who is on call instead.
    pub user: UserId,
    /// First instant of the override (inclusive).
    pub start: Timestamp,
    /// End of the override (exclusive).
    pub end: Timestamp,
}

// ---------------------------------------------------------------------------
// Rotation: text form
// ---------------------------------------------------------------------------

impl Rotation {
    /// The count of units (hours, days or weeks).
    #[must_use]
    pub fn count(self) -> u32 {
        match self {
            Rotation::Hours(n) | Rotation::Days(n) | Rotation::Weeks(n) => n,
        }
    }

    fn check(self) -> Result<(), String> {
        let (n, max, unit) = match self {
            Rotation::Hours(n) => (n, MAX_ROTATION_DAYS * 24, "hours"),
            Rotation::Days(n) => (n, MAX_ROTATION_DAYS, "days"),
            Rotation::Weeks(n) => (n, MAX_ROTATION_DAYS / 7, "weeks"),
        };
        if n == 0 {
            Err("the rotation length must be greater than zero".into())
        } else if n > max {
            Err(format!("the rotation length must be at most {max} {unit} (one year)"))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rotation::Hours(n) => write!(f, "{n}h"),
            Rotation::Days(n) => write!(f, "{n}d"),
            Rotation::Weeks(n) => write!(f, "{n}w"),
        }
    }
}

impl FromStr for Rotation {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            DomainError::Invalid(format!(
                "not a rotation length (like \"12h\", \"1d\", \"2w\" or a number of days): {text:?}"
            ))
        };
        let text = text.trim();
        let (digits, unit) = match text.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c.to_ascii_lowercase())),
            _ => (text, None),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        match unit {
            Some('h') => Ok(Rotation::Hours(n)),
            Some('d') | None => Ok(Rotation::Days(n)),
            Some('w') => Ok(Rotation::Weeks(n)),
            Some(_) => Err(bad()),
        }
    }
}

impl Serialize for Rotation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rotation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Rotation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rotation length like \"12h\", \"1d\", \"2w\" or a number of days")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Rotation, E> {
                u32::try_from(n)
                    .map(Rotation::Days)
                    .map_err(|_| E::custom("the rotation length is too large"))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Rotation, E> {
                let n = u64::try_from(n).map_err(|_| E::custom("the rotation length must be greater than zero"))?;
                self.visit_u64(n)
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Rotation, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// ---------------------------------------------------------------------------
// Local date-times on the wire
// ---------------------------------------------------------------------------

/// Parses a local date-time such as `2026-03-30T09:00` or `2026-03-30T09:00:00`;
/// refuses offsets and zone annotations (the schedule's zone applies).
fn parse_local(text: &str) -> Result<DateTime, String> {
    let explain = || format!("not a local date-time without offset or zone, like 2026-03-30T09:00: {text:?}");
    let time_part = text.split_once(['T', 't', ' ']).map_or("", |(_, t)| t);
    if time_part.contains(['Z', 'z', '+', '-', '[']) {
        return Err(explain());
    }
    text.parse::<DateTime>().map_err(|_| explain())
}

mod local_date_time {
    use super::*;

    pub fn serialize<S: Serializer>(dt: &DateTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(dt)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_local(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_local_date_time {
    use super::*;

    pub fn serialize<S: Serializer>(dt: &Option<DateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match dt {
            Some(dt) => serializer.collect_str(dt),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| parse_local(&t))
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

impl Schedule {
    /// Checks the rules of a schedule: a zone name, at least one user per
    /// layer, a rotation length of 1 h..1 year, whole-second local times, a
    /// layer end after its start, restrictions with at least one day and a
    /// non-empty window, overrides ending after they start.
    ///
    /// Whether `time_zone` names a real zone is the caller's check (it needs
    /// the time zone database). The queries never fail: a layer that breaks
    /// these rules simply contributes nobody.
    ///
    /// # Errors
    ///
    /// [`DomainError::Invalid`] naming the first offending field, e.g.
    /// `layers[1].users: a layer needs at least one user`.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |path: String, message: &str| Err(DomainError::Invalid(format!("{path}: {message}")));
        if self.time_zone.trim().is_empty() {
            return invalid("time_zone".into(), "a schedule needs a time zone (e.g. Europe/Berlin)");
        }
        if self.layers.len() > 20 || self.overrides.len() > 1000 {
            return invalid("layers".into(), "a schedule has at most 20 layers and 1000 overrides");
        }
        if let Some(i) = self.layers.iter().position(|l| l.users.len() > 200) {
            return invalid(
                format!("layers[{i}].users"),
                "a layer rotates through at most 200 users",
            );
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let at = |field: &str| format!("layers[{i}].{field}");
            if layer.users.is_empty() {
                return invalid(at("users"), "a layer needs at least one user");
            }
            if let Some(j) = layer.users.iter().position(|u| u.as_str().trim().is_empty()) {
                return invalid(format!("layers[{i}].users[{j}]"), "a user id must not be empty");
            }
            if let Err(message) = layer.rotation.check() {
                return invalid(at("rotation"), &message);
            }
            if layer.start.subsec_nanosecond() != 0 {
                return invalid(at("start"), "local times have whole seconds");
            }
            if let Some(end) = layer.end {
                if end.subsec_nanosecond() != 0 {
                    return invalid(at("end"), "local times have whole seconds");
                }
                if end <= layer.start {
                    return invalid(at("end"), "a layer must end after it starts");
                }
            }
            for (j, r) in layer.restrictions.iter().enumerate() {
                let at = |field: &str| format!("layers[{i}].restrictions[{j}].{field}");
                if r.days.is_empty() {
                    return invalid(
                        at("days"),
                        "a restriction needs at least one day (omit `days` for every day)",
                    );
                }
                if r.from.0 >= SECONDS_PER_DAY {
                    return invalid(at("from"), "a restriction starts before 24:00");
                }
                if r.from == r.to {
                    return invalid(
                        at("to"),
                        "a restriction window must not be empty (for a whole day use 00:00 to 24:00)",
                    );
                }
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            if o.user.as_str().trim().is_empty() {
                return invalid(format!("overrides[{i}].user"), "a user id must not be empty");
            }
            if o.end <= o.start {
                return invalid(format!("overrides[{i}].end"), "an override must end after it starts");
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

/// What put someone on call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftSource {
    /// The layer at this index of [`Schedule::layers`].
    Layer(usize),
    /// The override at this index of [`Schedule::overrides`].
    Override(usize),
}

/// One continuous stretch of one user on call in the flattened schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// Who is on call.
    pub user: UserId,
    /// First instant (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// What puts them on call at `start` (a merged shift may continue through other sources).
    pub source: ShiftSource,
}

/// The answer of [`who_is_on_call`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    /// Who is on call.
    pub user: UserId,
    /// Since when this user has been on call without interruption; `None`
    /// if longer than [`HORIZON_DAYS`].
    pub since: Option<Timestamp>,
    /// The next instant the answer changes (someone else or nobody); `None`
    /// if it does not change within [`HORIZON_DAYS`].
    pub until: Option<Timestamp>,
    /// What puts them on call at the instant asked about.
    pub source: ShiftSource,
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// Who is on call at `at`, and the bounds of their current continuous shift
/// (the same bounds [`shifts`] reports). `tz` is the schedule's zone.
#[must_use]
pub fn who_is_on_call(schedule: &Schedule, tz: &TimeZone, at: Timestamp) -> Option<OnCall> {
    let t = clamp(at.as_micros());
    let here = point(schedule, tz, t)?;
    let mut reach = 2 * MICROS_PER_DAY;
    loop {
        let lo = clamp(t.saturating_sub(reach));
        let hi = clamp(t.saturating_add(reach));
        let flat = flatten(schedule, tz, lo, hi);
        let shift = flat.iter().find(|s| s.start <= t && t < s.end)?;
        let same = |x: Option<Piece<'_>>| x.is_some_and(|p| p.user == here.user);
        let since_known = shift.start > lo || lo <= JIFF_MIN || !same(point(schedule, tz, lo - 1));
        let until_known = shift.end < hi || hi >= JIFF_MAX || !same(point(schedule, tz, hi));
        if (since_known && until_known) || reach >= HORIZON_DAYS * MICROS_PER_DAY {
            return Some(OnCall {
                user: here.user.clone(),
                since: since_known.then_some(Timestamp::from_micros(shift.start)),
                until: until_known.then_some(Timestamp::from_micros(shift.end)),
                source: here.source,
            });
        }
        reach = (reach * 8).min(HORIZON_DAYS * MICROS_PER_DAY);
    }
}

/// The flattened schedule over `[from, to)`: sorted, non-overlapping shifts,
/// one user each, merged where the same user continues, clipped to the range.
/// Stretches where nobody is on call have no shift. `tz` is the schedule's zone.
///
/// The work grows with the hand-offs and restriction windows inside the
/// range (not with the time since the layers started), so adapters should
/// bound the range they accept (a year is plenty for views and feeds).
#[must_use]
pub fn shifts(schedule: &Schedule, tz: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Shift> {
    flatten(schedule, tz, clamp(from.as_micros()), clamp(to.as_micros()))
        .into_iter()
        .map(Piece::into_shift)
        .collect()
}

/// The shifts of [`shifts`] that belong to `user`.
#[must_use]
pub fn shifts_for_user(
    schedule: &Schedule,
    tz: &TimeZone,
    user: &UserId,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Shift> {
    flatten(schedule, tz, clamp(from.as_micros()), clamp(to.as_micros()))
        .into_iter()
        .filter(|p| p.user == user)
        .map(Piece::into_shift)
        .collect()
}

// ---------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------

/// Microsecond bounds of what jiff can represent; every instant is clamped into them.
const JIFF_MIN: i64 = -377_705_023_201_000_000;
const JIFF_MAX: i64 = 253_402_207_200_999_999;

fn clamp(us: i64) -> i64 {
    us.clamp(JIFF_MIN, JIFF_MAX)
}

fn to_jiff(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(clamp(us)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn local_of(tz: &TimeZone, us: i64) -> DateTime {
    tz.to_datetime(to_jiff(us))
}

/// The instant of a local date-time ("compatible" disambiguation), `None` out of range.
fn resolve(tz: &TimeZone, dt: DateTime) -> Option<i64> {
    let ts = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
    Some(ts.as_microsecond())
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn day_number(date: Date) -> i64 {
    let (y, m, d) = (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `n` days after 1970-01-01, `None` outside jiff's range.
fn date_of_day_number(n: i64) -> Option<Date> {
    let z = n.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Date::new(i16::try_from(y).ok()?, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()
}

/// A stretch of one user from one source, in microseconds.
#[derive(Clone, Copy, Debug)]
struct Piece<'a> {
    start: i64,
    end: i64,
    user: &'a UserId,
    source: ShiftSource,
}

impl Piece<'_> {
    fn into_shift(self) -> Shift {
        Shift {
            user: self.user.clone(),
            start: Timestamp::from_micros(self.start),
            end: Timestamp::from_micros(self.end),
            source: self.source,
        }
    }
}

/// Appends `piece`, extending the last one when the same user continues.
fn push_merged<'a>(out: &mut Vec<Piece<'a>>, piece: Piece<'a>) {
    if piece.start >= piece.end {
        return;
    }
    if let Some(last) = out.last_mut()
        && last.end == piece.start
        && last.user == piece.user
    {
        last.end = piece.end;
        return;
    }
    out.push(piece);
}

/// The hand-off instants of a layer's rotation.
enum Clock<'a> {
    /// Hand-off k at `start + k * period`.
    Fixed { start: i64, period: i64 },
    /// Hand-off k at local `start_day + k * step` days, at `time`.
    Civil {
        tz: &'a TimeZone,
        start_day: i64,
        time: Time,
        step: i64,
    },
}

impl Clock<'_> {
    fn handoff(&self, k: i64) -> Option<i64> {
        match *self {
            Clock::Fixed { start, period } => start.checked_add(k.checked_mul(period)?),
            Clock::Civil {
                tz,
                start_day,
                time,
                step,
            } => {
                let date = date_of_day_number(start_day.checked_add(k.checked_mul(step)?)?)?;
                resolve(tz, date.to_datetime(time))
            }
        }
    }

    /// The index of the turn containing `t` (hand-off(k) <= t < hand-off(k+1)); `t` is at or after hand-off 0.
    fn index_at(&self, t: i64) -> i64 {
        match *self {
            Clock::Fixed { start, period } => (t - start).div_euclid(period),
            Clock::Civil {
                tz, start_day, step, ..
            } => {
                let days = day_number(local_of(tz, t).date()) - start_day;
                let mut k = days.div_euclid(step).max(0);
                // The estimate is off by at most one turn (hand-off time later in the day, DST).
                for _ in 0..4 {
                    if k > 0 && self.handoff(k).is_none_or(|h| h > t) {
                        k -= 1;
                    } else {
                        break;
                    }
                }
                for _ in 0..4 {
                    if self.handoff(k + 1).is_some_and(|h| h <= t) {
                        k += 1;
                    } else {
                        break;
                    }
                }
                k
            }
        }
    }
}

/// The pieces of layer `index` within `[from, to)`.
fn layer_pieces<'a>(layer: &'a Layer, index: usize, tz: &TimeZone, from: i64, to: i64) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    if layer.users.is_empty() || layer.rotation.check().is_err() {
        return out;
    }
    let Some(start) = resolve(tz, layer.start) else {
        return out;
    };
    let end = layer.end.and_then(|e| resolve(tz, e)).unwrap_or(JIFF_MAX);
    let (lo, hi) = (from.max(start), to.min(end));
    if lo >= hi {
        return out;
    }
    let n = i64::try_from(layer.users.len()).unwrap_or(i64::MAX);
    if let Some(only) = layer.users.first()
        && layer.users.iter().all(|u| u == only)
    {
        // One person (perhaps listed several times): the hand-offs change nothing.
        push_merged(
            &mut out,
            Piece {
                start: lo,
                end: hi,
                user: only,
                source: ShiftSource::Layer(index),
            },
        );
        return mask(out, layer, tz, lo, hi);
    }
    let civil = |step: i64| Clock::Civil {
        tz,
        start_day: day_number(layer.start.date()),
        time: layer.start.time(),
        step,
    };
    let clock = match layer.rotation {
        Rotation::Hours(n) => Clock::Fixed {
            start,
            period: i64::from(n) * MICROS_PER_HOUR,
        },
        Rotation::Days(n) => civil(i64::from(n)),
        Rotation::Weeks(n) => civil(7 * i64::from(n)),
    };
    let mut k = clock.index_at(lo);
    let mut turn_start = lo;
    while turn_start < hi {
        let turn_end = clock.handoff(k + 1).unwrap_or(JIFF_MAX).min(hi);
        let user = usize::try_from(k.rem_euclid(n)).ok().and_then(|i| layer.users.get(i));
        if let Some(user) = user {
            push_merged(
                &mut out,
                Piece {
                    start: turn_start,
                    end: turn_end,
                    user,
                    source: ShiftSource::Layer(index),
                },
            );
        }
        turn_start = turn_start.max(turn_end);
        k += 1;
    }
    mask(out, layer, tz, lo, hi)
}

/// Keeps the parts of a layer's pieces inside its restrictions (all of them if it has none).
fn mask<'a>(pieces: Vec<Piece<'a>>, layer: &Layer, tz: &TimeZone, lo: i64, hi: i64) -> Vec<Piece<'a>> {
    if layer.restrictions.is_empty() {
        pieces
    } else {
        intersect(&pieces, &restriction_windows(&layer.restrictions, tz, lo, hi))
    }
}

/// The union of a layer's restriction windows within `[lo, hi)`, sorted and disjoint.
fn restriction_windows(restrictions: &[Restriction], tz: &TimeZone, lo: i64, hi: i64) -> Vec<(i64, i64)> {
    let first = day_number(local_of(tz, lo).date()) - 2;
    let last = day_number(local_of(tz, hi).date());
    let mut windows = Vec::new();
    for day in first..=last {
        let Some(date) = date_of_day_number(day) else {
            continue;
        };
        let weekday = date.weekday();
        for r in restrictions {
            if r.days.is_empty() || r.from == r.to || !r.days.iter().any(|d| d.weekday() == weekday) {
                continue;
            }
            let Some(from) = r.from.to_time() else {
                continue;
            };
            let Some(start) = resolve(tz, date.to_datetime(from)) else {
                continue;
            };
            let end_date = if r.to <= r.from || r.to == TimeOfDay::END_OF_DAY {
                date_of_day_number(day + 1)
            } else {
                Some(date)
            };
            let end_time = r.to.to_time().unwrap_or(Time::midnight());
            let Some(end) = end_date.and_then(|d| resolve(tz, d.to_datetime(end_time))) else {
                continue;
            };
            let (s, e) = (start.max(lo), end.min(hi));
            if s < e {
                windows.push((s, e));
            }
        }
    }
    windows.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
    for (s, e) in windows {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The parts of `pieces` inside `windows` (both sorted and disjoint).
fn intersect<'a>(pieces: &[Piece<'a>], windows: &[(i64, i64)]) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(p), Some(&(ws, we))) = (pieces.get(i), windows.get(j)) {
        let (s, e) = (p.start.max(ws), p.end.min(we));
        if s < e {
            push_merged(&mut out, Piece { start: s, end: e, ..*p });
        }
        if p.end <= we {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The flattened schedule over `[from, to)` (already clamped).
fn flatten<'a>(schedule: &'a Schedule, tz: &TimeZone, from: i64, to: i64) -> Vec<Piece<'a>> {
    if from >= to {
        return Vec::new();
    }
    // Sources in increasing precedence: layers in order, then overrides in order.
    let mut sources: Vec<Vec<Piece<'a>>> = Vec::with_capacity(schedule.layers.len() + schedule.overrides.len());
    for (i, layer) in schedule.layers.iter().enumerate() {
        sources.push(layer_pieces(layer, i, tz, from, to));
    }
    for (i, o) in schedule.overrides.iter().enumerate() {
        let (s, e) = (clamp(o.start.as_micros()).max(from), clamp(o.end.as_micros()).min(to));
        if s < e {
            sources.push(vec![Piece {
                start: s,
                end: e,
                user: &o.user,
                source: ShiftSource::Override(i),
            }]);
        }
    }
    let mut bounds: Vec<i64> = sources.iter().flatten().flat_map(|p| [p.start, p.end]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut cursors = vec![0_usize; sources.len()];
    let mut out = Vec::new();
    for pair in bounds.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (pieces, cursor) in sources.iter().zip(cursors.iter_mut()).rev() {
            while pieces.get(*cursor).is_some_and(|p| p.end <= a) {
                *cursor += 1;
            }
            if let Some(p) = pieces.get(*cursor).filter(|p| p.start <= a) {
                push_merged(&mut out, Piece { start: a, end: b, ..*p });
                break;
            }
        }
    }
    out
}

/// Who is on call at the instant `t`, as a one-microsecond piece.
fn point<'a>(schedule: &'a Schedule, tz: &TimeZone, t: i64) -> Option<Piece<'a>> {
    if !(JIFF_MIN..JIFF_MAX).contains(&t) {
        return None;
    }
    flatten(schedule, tz, t, t + 1).into_iter().next()
}

// ---------------------------------------------------------------------------
// iCalendar feed
// ---------------------------------------------------------------------------

/// Renders shifts as an iCalendar (RFC 5545) feed, one `VEVENT` per shift.
///
/// Meant for one person's shifts ([`shifts_for_user`]) in one schedule:
/// `calendar_name` is the schedule's name (the events' `SUMMARY` is
/// `On call: <calendar_name>`), `user_display_name` names the person in the
/// calendar title and descriptions. `dtstamp` is when the feed is generated
/// (the caller's `now`). Times are UTC (`…Z`) at whole seconds (start rounded
/// down, end up); each `UID` is a hash of calendar, user and start, so it is
/// stable while the shift keeps its start. Events are `TRANSP:TRANSPARENT`
/// (on call is not busy). Lines end in CRLF and are folded at 75 octets.
#[must_use]
pub fn ical_feed(calendar_name: &str, user_display_name: &str, shifts: &[Shift], dtstamp: Timestamp) -> String {
    let mut out = String::new();
    let cal = escape_text(calendar_name);
    let who = escape_text(user_display_name);
    let stamp = ical_utc(dtstamp.as_micros(), false);
    for line in [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//keel//on-call schedule//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H".to_owned(),
        "X-PUBLISHED-TTL:PT1H".to_owned(),
        format!("X-WR-CALNAME:On call: {cal} ({who})"),
    ] {
        push_folded(&mut out, &line);
    }
    for shift in shifts {
        let uid = shift_uid(calendar_name, &shift.user, shift.start);
        for line in [
            "BEGIN:VEVENT".to_owned(),
            format!("UID:{uid}@keel"),
            format!("DTSTAMP:{stamp}"),
            format!("DTSTART:{}", ical_utc(shift.start.as_micros(), false)),
            format!("DTEND:{}", ical_utc(shift.end.as_micros(), true)),
            format!("SUMMARY:On call: {cal}"),
            format!("DESCRIPTION:{who} is on call for {cal}."),
            "TRANSP:TRANSPARENT".to_owned(),
            "END:VEVENT".to_owned(),
        ] {
            push_folded(&mut out, &line);
        }
    }
    push_folded(&mut out, "END:VCALENDAR");
    out
}

fn shift_uid(calendar_name: &str, user: &UserId, start: Timestamp) -> String {
    let mut hash = Sha256::new();
    hash.update(calendar_name.as_bytes());
    hash.update([0]);
    hash.update(user.as_str().as_bytes());
    hash.update([0]);
    hash.update(start.as_micros().to_be_bytes());
    let digest = hash.finalize();
    hex::encode(&digest[..16])
}

/// `YYYYMMDDTHHMMSSZ`, rounding down (or up) to whole seconds.
fn ical_utc(us: i64, round_up: bool) -> String {
    let seconds = if round_up {
        us.div_euclid(MICROS_PER_SECOND) + i64::from(us.rem_euclid(MICROS_PER_SECOND) != 0)
    } else {
        us.div_euclid(MICROS_PER_SECOND)
    };
    let dt = TimeZone::UTC.to_datetime(to_jiff(seconds.saturating_mul(MICROS_PER_SECOND)));
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// RFC 5545 TEXT escaping: backslash, semicolon, comma, newline; other control characters dropped.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line folded at 75 octets (never inside a UTF-8 character), with CRLF.
fn push_folded(out: &mut String, line: &str) {
    let mut rest = line;
    let mut limit = 75;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = 74;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        for n in [-800_000, -719_468, -1, 0, 1, 59, 60, 365, 20_000, 2_932_896] {
            let date = date_of_day_number(n).expect("in range");
            assert_eq!(day_number(date), n);
        }
        assert_eq!(
            date_of_day_number(0).expect("in range"),
            Date::new(1970, 1, 1).expect("valid")
        );
        assert_eq!(day_number(Date::new(2026, 3, 29).expect("valid")), 20_541);
    }

    #[test]
    fn jiff_bounds_match() {
        assert_eq!(JIFF_MIN, jiff::Timestamp::MIN.as_microsecond());
        assert_eq!(JIFF_MAX, jiff::Timestamp::MAX.as_microsecond());
    }

    #[test]
    fn folding_never_splits_a_character() {
        let line = format!("SUMMARY:{}", "ä".repeat(60));
        let mut out = String::new();
        push_folded(&mut out, &line);
        for physical in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(physical.len() <= 75, "{physical:?}");
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("{line}\r\n"));
    }

    #[test]
    fn text_escaping() {
        assert_eq!(escape_text("a,b;c\\d\r\ne\nf\u{7}"), "a\\,b\\;c\\\\d\\ne\\nf");
    }

    #[test]
    fn rotations_parse_and_print() {
        for (text, rotation) in [
            ("12h", Rotation::Hours(12)),
            ("1d", Rotation::Days(1)),
            ("2W", Rotation::Weeks(2)),
            ("3", Rotation::Days(3)),
        ] {
            assert_eq!(text.parse::<Rotation>().expect("valid"), rotation);
        }
        for bad in ["", "h", "1x", "-1d", "1.5d", "d1"] {
            assert!(bad.parse::<Rotation>().is_err(), "{bad}");
        }
        assert_eq!(Rotation::Weeks(1).to_string(), "1w");
    }

    #[test]
    fn times_of_day_parse_and_print() {
        assert_eq!("09:00".parse::<TimeOfDay>().expect("valid"), TimeOfDay(9 * 3600));
        assert_eq!("9:30:15".parse::<TimeOfDay>().expect("valid").to_string(), "09:30:15");
        assert_eq!("24:00".parse::<TimeOfDay>().expect("valid"), TimeOfDay::END_OF_DAY);
        for bad in ["24:01", "12:60", "12", "12:5", "a:00", "12:00:00:00"] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn local_date_times_refuse_offsets() {
        assert!(parse_local("2026-03-30T09:00").is_ok());
        assert!(parse_local("2026-03-30T09:00:00").is_ok());
        for bad in [
            "2026-03-30T09:00Z",
            "2026-03-30T09:00+01:00",
            "2026-03-30T09:00-05:00",
            "2026-03-30T09:00[Europe/Berlin]",
        ] {
            assert!(parse_local(bad).is_err(), "{bad}");
        }
    }
}
