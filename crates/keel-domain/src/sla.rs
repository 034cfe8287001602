//! SLA clocks: business-hours calendars, working-time arithmetic, pauses, and
//! the response and resolution clocks of an incident measured against an
//! [`SlaPolicy`].
//!
//! Everything here is pure: time zones come in as [`TimeZone`] values (the
//! adapter loads them), `now` is a parameter, and all arithmetic is exact to
//! the microsecond.
//!
//! # Working time
//!
//! A [`Calendar`] is either 24×7 or weekly working hours in a time zone, with
//! holidays. A working interval `[start, end)` on a local date is the real
//! span from the *first instant the wall clock shows `start`* to the first
//! instant it shows `end` (`24:00` = midnight of the next day). So:
//!
//! - across a jump forward (spring), a local time inside the skipped hour
//!   maps to the instant of the jump: `01:00–04:00` on the night clocks go from
//!   02:00 to 03:00 is 2 real hours;
//! - across a jump back (autumn), a local time inside the repeated hour maps
//!   to its first occurrence: `01:00–04:00` on that night is 4 real hours;
//! - intervals are closed at the start and open at the end: an instant equal
//!   to an interval's end is not working time, but [`add_working_time`] may
//!   land on it (the earliest instant at which the duration has elapsed).
//!
//! The arithmetic walks local days, skipping whole weeks at once wherever no
//! offset change and no holiday falls in them, so a span of months costs a
//! handful of steps per DST change or holiday, not one per day or minute.
//!
//! # Clocks
//!
//! [`SlaPolicy::evaluate`] reads an incident's history as [`SlaEvent`]s (see
//! [`events_from_timeline`]) and reports a [`SlaClock`] for the response
//! target (registration → first acceptance, or resolution if that came first)
//! and the resolution target (registration → resolution):
//!
//! - holds whose reason is in the policy's `pause_on` pause both clocks; only
//!   the working time inside a pause is not counted;
//! - the time between a resolution and a reopen does not count: the
//!   resolution clock stops at resolution and continues, with the elapsed
//!   time kept, at the reopen; its verdict is taken at the last resolution;
//! - a priority change switches the target (measured from registration, so
//!   the elapsed time is kept and the due time recomputed); a clock that has
//!   stopped keeps the target of the priority in force when it stopped;
//! - a clock is breached from its due time on (elapsed ≥ target); the target
//!   is met when its event happens no later than the due time, missed when
//!   later; cancellation stops both open clocks in state `cancelled`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Change, DomainError, HoldReason, Priority, Timestamp};

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// Instants are clamped to ± this many µs around the epoch (about 6,300
/// years), which keeps every local date well inside jiff's range and all
/// arithmetic far from `i64` overflow.
const LIMIT: i64 = 200_000_000_000_000_000;

fn clamp(at: Timestamp) -> i64 {
    at.as_micros().clamp(-LIMIT, LIMIT)
}

fn offset_micros(offset: Offset) -> i64 {
    i64::from(offset.seconds()) * SECOND
}

fn jiff_ts(micros: i64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(micros).ok()
}

// ---------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------

/// A signed span of time in microseconds: SLA targets, elapsed working time,
/// remaining time (negative once overdue).
///
/// On the wire it is text in jiff's friendly format (`"4h 30m"`, `"15m"`,
/// `"720h"`, `"-1h 5m"`); ISO 8601 (`"PT4H30M"`) is accepted as well. Days
/// are not a unit (a working day is not 24 hours): write hours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// `micros` microseconds.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// `secs` seconds (saturating).
    #[must_use]
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(SECOND))
    }

    /// `mins` minutes (saturating).
    #[must_use]
    pub const fn from_mins(mins: i64) -> Self {
        Self(mins.saturating_mul(MINUTE))
    }

    /// `hours` hours (saturating).
    #[must_use]
    pub const fn from_hours(hours: i64) -> Self {
        Self(hours.saturating_mul(HOUR))
    }

    /// The span in microseconds.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whether the span is below zero.
    #[must_use]
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl std::ops::Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Sub for Duration {
    type Output = Duration;
    fn sub(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use jiff::fmt::friendly::{Direction, SpanPrinter};
        static PRINTER: SpanPrinter = SpanPrinter::new().direction(Direction::Sign);
        f.write_str(&PRINTER.duration_to_string(&jiff::SignedDuration::from_micros(self.0)))
    }
}

impl FromStr for Duration {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| DomainError::Invalid(format!("{text:?} is not a duration ({why}; e.g. \"4h 30m\")"));
        let parsed: jiff::SignedDuration = text.trim().parse().map_err(|e: jiff::Error| bad(&e.to_string()))?;
        if parsed.subsec_nanos() % 1_000 != 0 {
            return Err(bad("finer than a microsecond"));
        }
        i64::try_from(parsed.as_micros())
            .ok()
            .filter(|micros| micros.abs() <= LIMIT)
            .map(Duration)
            .ok_or_else(|| bad("too long"))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------
// Calendars
// ---------------------------------------------------------------------------

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When SLA time counts: always (24×7), or working hours in a time zone.
///
/// Built from a [`CalendarSpec`] by [`Calendar::from_spec`] (which validates
/// it), or [`Calendar::always`]. Serialises to the spec's JSON form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    hours: Option<Box<Hours>>,
}

/// Weekly working hours in a time zone, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hours {
    tz: TimeZone,
    zone_name: String,
    /// Per weekday (Monday first), sorted disjoint `[start, end)` intervals in
    /// µs since local midnight; `end` may be 24:00. Touching intervals are merged.
    week: [Vec<(i64, i64)>; 7],
    /// The sum of all intervals of the week.
    week_total: i64,
    /// Local dates without working time, as days since 1970-01-01.
    holidays: BTreeSet<i64>,
}

/// The readable (JSON, TOML) form of a [`Calendar`], as configured.
///
/// Either the string `"24x7"`, or an object
/// `{"time_zone":"Europe/Berlin","hours":{"mon":[["09:00","17:00"]],…},"holidays":["2026-12-25"]}`
/// where `hours` maps days (`mon` … `sun`) to `[start, end]` pairs of local
/// times `HH:MM` (or `HH:MM:SS`), `end` up to `24:00`; days left out have no
/// working time. The spec is checked by [`Calendar::from_spec`], not here, so
/// that mistakes get a clear message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CalendarSpec {
    /// Every instant is working time (`"24x7"`).
    #[default]
    AlwaysOn,
    /// Working hours in a time zone.
    WorkingHours(WorkingHoursSpec),
}

/// The object form of a [`CalendarSpec`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursSpec {
    /// IANA name of the time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Day (`mon` … `sun`) → `[start, end]` local times.
    #[serde(serialize_with = "serialize_hours")]
    pub hours: BTreeMap<String, Vec<(String, String)>>,
    /// Local dates (`YYYY-MM-DD`) without working time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

const ALWAYS_ON: &str = "24x7";

/// Writes the days in week order rather than alphabetically.
fn serialize_hours<S: Serializer>(
    hours: &BTreeMap<String, Vec<(String, String)>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut days: Vec<_> = hours.iter().collect();
    days.sort_by_key(|(name, _)| DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(name)).unwrap_or(7));
    let mut map = serializer.serialize_map(Some(days.len()))?;
    for (name, intervals) in days {
        map.serialize_entry(name, intervals)?;
    }
    map.end()
}

impl Serialize for CalendarSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CalendarSpec::AlwaysOn => serializer.serialize_str(ALWAYS_ON),
            CalendarSpec::WorkingHours(spec) => spec.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for CalendarSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(name) if name.eq_ignore_ascii_case(ALWAYS_ON) => Ok(CalendarSpec::AlwaysOn),
            serde_json::Value::String(name) => Err(D::Error::custom(format!(
                "unknown calendar {name:?}: use \"24x7\" or an object with time_zone, hours and holidays"
            ))),
            value => WorkingHoursSpec::deserialize(value)
                .map(CalendarSpec::WorkingHours)
                .map_err(D::Error::custom),
        }
    }
}

impl CalendarSpec {
    /// The IANA name of the time zone the calendar needs, if any.
    #[must_use]
    pub fn time_zone(&self) -> Option<&str> {
        match self {
            CalendarSpec::AlwaysOn => None,
            CalendarSpec::WorkingHours(spec) => Some(&spec.time_zone),
        }
    }
}

/// Parses `HH:MM` or `HH:MM:SS` (00:00 … 24:00) into µs since midnight.
fn parse_local_time(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let field = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<i64>().ok());
    let (h, m, s) = (field(0)?, field(1)?, field(2)?);
    if m > 59 || s > 59 || h > 24 || (h == 24 && (m, s) != (0, 0)) {
        return None;
    }
    Some(h * HOUR + m * MINUTE + s * SECOND)
}

fn format_local_time(micros: i64) -> String {
    let (h, m, s) = (micros / HOUR, micros % HOUR / MINUTE, micros % MINUTE / SECOND);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_day(text: &str) -> Option<i64> {
    let date: jiff::civil::Date = text.trim().parse().ok()?;
    let zoned = date.to_zoned(TimeZone::UTC).ok()?;
    Some(zoned.timestamp().as_second().div_euclid(86_400))
}

fn format_day(day: i64) -> String {
    match jiff::Timestamp::from_second(day.saturating_mul(86_400)) {
        Ok(ts) => TimeZone::UTC.to_datetime(ts).date().to_string(),
        Err(_) => format!("day {day}"),
    }
}

impl Calendar {
    /// The 24×7 calendar: every instant is working time.
    #[must_use]
    pub const fn always() -> Self {
        Self { hours: None }
    }

    /// Checks a spec and builds the calendar. `zone` resolves the spec's time
    /// zone name (the adapter passes e.g. `|name| TimeZone::get(name).ok()`);
    /// it is not called for a 24×7 calendar.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] for an unknown time zone or day, a malformed
    /// time or date, an interval that ends before it starts, intervals of a
    /// day that overlap, or a week without any working time.
    pub fn from_spec(spec: &CalendarSpec, zone: impl FnOnce(&str) -> Option<TimeZone>) -> Result<Self, DomainError> {
        let spec = match spec {
            CalendarSpec::AlwaysOn => return Ok(Self::always()),
            CalendarSpec::WorkingHours(spec) => spec,
        };
        let invalid = |message: String| DomainError::Invalid(format!("calendar: {message}"));
        let tz =
            zone(spec.time_zone.trim()).ok_or_else(|| invalid(format!("unknown time zone {:?}", spec.time_zone)))?;

        let mut week: [Vec<(i64, i64)>; 7] = Default::default();
        for (name, intervals) in &spec.hours {
            let index = DAY_NAMES
                .iter()
                .position(|d| d.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| invalid(format!("unknown day {name:?} (use mon, tue, wed, thu, fri, sat, sun)")))?;
            for (start_text, end_text) in intervals {
                let time = |text: &String| {
                    parse_local_time(text)
                        .ok_or_else(|| invalid(format!("bad time {text:?} on {name} (use HH:MM from 00:00 to 24:00)")))
                };
                let (start, end) = (time(start_text)?, time(end_text)?);
                if start >= end {
                    return Err(invalid(format!(
                        "interval {start_text}-{end_text} on {name} does not end after it starts"
                    )));
                }
                week[index].push((start, end));
            }
        }
        for (index, intervals) in week.iter_mut().enumerate() {
            intervals.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
            for &(start, end) in intervals.iter() {
                match merged.last_mut() {
                    Some(last) if start < last.1 => {
                        return Err(invalid(format!(
                            "intervals {}-{} and {}-{} on {} overlap",
                            format_local_time(last.0),
                            format_local_time(last.1),
                            format_local_time(start),
                            format_local_time(end),
                            DAY_NAMES[index]
                        )));
                    }
                    Some(last) if start == last.1 => last.1 = end,
                    _ => merged.push((start, end)),
                }
            }
            *intervals = merged;
        }
        let week_total: i64 = week.iter().flatten().map(|(start, end)| end - start).sum();
        if week_total == 0 {
            return Err(invalid("no working hours on any day".into()));
        }
        let holidays = spec
            .holidays
            .iter()
            .map(|text| parse_day(text).ok_or_else(|| invalid(format!("bad holiday {text:?} (use YYYY-MM-DD)"))))
            .collect::<Result<BTreeSet<i64>, _>>()?;
        Ok(Self {
            hours: Some(Box::new(Hours {
                tz,
                zone_name: spec.time_zone.trim().to_string(),
                week,
                week_total,
                holidays,
            })),
        })
    }

    /// The spec this calendar was built from (normalised: sorted, merged).
    #[must_use]
    pub fn to_spec(&self) -> CalendarSpec {
        let Some(hours) = &self.hours else {
            return CalendarSpec::AlwaysOn;
        };
        let days = hours
            .week
            .iter()
            .zip(DAY_NAMES)
            .filter(|(intervals, _)| !intervals.is_empty())
            .map(|(intervals, name)| {
                let pairs = intervals
                    .iter()
                    .map(|&(start, end)| (format_local_time(start), format_local_time(end)))
                    .collect();
                (name.to_string(), pairs)
            })
            .collect();
        CalendarSpec::WorkingHours(WorkingHoursSpec {
            time_zone: hours.zone_name.clone(),
            hours: days,
            holidays: hours.holidays.iter().map(|&day| format_day(day)).collect(),
        })
    }

    /// Whether this is the 24×7 calendar.
    #[must_use]
    pub fn is_always(&self) -> bool {
        self.hours.is_none()
    }

    /// The time zone of the working hours (`None` for 24×7).
    #[must_use]
    pub fn time_zone(&self) -> Option<&TimeZone> {
        self.hours.as_ref().map(|hours| &hours.tz)
    }

    /// Whether `at` is working time (interval starts count, ends do not).
    #[must_use]
    pub fn is_working_time(&self, at: Timestamp) -> bool {
        let Some(hours) = &self.hours else {
            return true;
        };
        let at = clamp(at);
        let mut cursor = Cursor::containing(hours, at);
        // The day after can begin before `at` only when the clocks go back
        // across midnight; look at both.
        for _ in 0..2 {
            if cursor.intervals().any(|(start, end)| start <= at && at < end) {
                return true;
            }
            cursor.advance();
        }
        false
    }
}

impl Serialize for Calendar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_spec().serialize(serializer)
    }
}

impl Hours {
    fn offset_at(&self, at: i64) -> i64 {
        jiff_ts(at).map_or(0, |ts| offset_micros(self.tz.to_offset(ts)))
    }

    /// The first offset change strictly after `at` (`i64::MAX` if none).
    fn next_transition(&self, at: i64) -> i64 {
        jiff_ts(at)
            .and_then(|ts| self.tz.following(ts).next())
            .map_or(i64::MAX, |transition| transition.timestamp().as_microsecond())
    }

    /// The local date (days since 1970-01-01) of an instant.
    fn local_day(&self, at: i64) -> i64 {
        (at + self.offset_at(at)).div_euclid(DAY)
    }

    /// The first instant at which the wall clock shows `civil` (local µs
    /// since 1970-01-01T00:00) or later: the exact instant normally, the first
    /// occurrence in a repeated hour, the instant of the jump in a skipped one.
    fn first_instant(&self, civil: i64) -> i64 {
        let Some(ts) = jiff_ts(civil) else {
            return civil;
        };
        match self.tz.to_ambiguous_timestamp(TimeZone::UTC.to_datetime(ts)).offset() {
            AmbiguousOffset::Unambiguous { offset } => civil - offset_micros(offset),
            AmbiguousOffset::Fold { before, after } => {
                (civil - offset_micros(before)).min(civil - offset_micros(after))
            }
            AmbiguousOffset::Gap { before, after } => {
                // Before the jump the clock shows less than `civil`, after it more.
                let (early, late) = (civil - offset_micros(after), civil - offset_micros(before));
                self.next_transition(early).max(early).min(late)
            }
        }
    }
}

/// A position in the walk over local days of a working-hours calendar.
struct Cursor<'h> {
    hours: &'h Hours,
    /// The local date, as days since 1970-01-01.
    day: i64,
    /// The first instant of `day` (its `00:00`).
    start: i64,
    /// Whether the wall clock shows exactly `00:00` at `start`.
    exact: bool,
    /// The first offset change after `start`.
    next_transition: i64,
}

impl<'h> Cursor<'h> {
    fn on_day(hours: &'h Hours, day: i64) -> Self {
        let start = hours.first_instant(day * DAY);
        Self {
            hours,
            day,
            start,
            exact: start + hours.offset_at(start) == day * DAY,
            next_transition: hours.next_transition(start),
        }
    }

    /// The day whose local date is that of `at`; it starts at or before `at`,
    /// and every earlier day's intervals end at or before `at`.
    fn containing(hours: &'h Hours, at: i64) -> Self {
        Self::on_day(hours, hours.local_day(at))
    }

    /// Whether the whole day, up to the next midnight, has one offset: then
    /// every local time of it is `start` plus its time of day.
    fn regular(&self) -> bool {
        self.exact && self.start + DAY < self.next_transition
    }

    fn weekday(&self) -> usize {
        // 1970-01-01 was a Thursday (index 3 with Monday first).
        (self.day + 3).rem_euclid(7) as usize
    }

    /// The real working intervals of the day, in order (none on a holiday).
    fn intervals(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let list: &[(i64, i64)] = if self.hours.holidays.contains(&self.day) {
            &[]
        } else {
            &self.hours.week[self.weekday()]
        };
        let regular = self.regular();
        list.iter().map(move |&(start, end)| {
            if regular {
                (self.start + start, self.start + end)
            } else {
                let midnight = self.day * DAY;
                (
                    self.hours.first_instant(midnight + start),
                    self.hours.first_instant(midnight + end),
                )
            }
        })
    }

    fn advance(&mut self) {
        if self.regular() {
            self.day += 1;
            self.start += DAY;
        } else {
            *self = Self::on_day(self.hours, self.day + 1);
        }
    }

    /// How many whole weeks from this day on have one offset and no holiday:
    /// each of them has exactly the calendar's weekly working time.
    fn plain_weeks(&self) -> i64 {
        if !self.regular() {
            return 0;
        }
        let by_transition = self.next_transition.saturating_sub(self.start).saturating_sub(1) / WEEK;
        let by_holiday = self
            .hours
            .holidays
            .range(self.day..)
            .next()
            .map_or(i64::MAX, |holiday| (holiday - self.day) / 7);
        by_transition.min(by_holiday)
    }

    fn skip_weeks(&mut self, weeks: i64) {
        self.day += 7 * weeks;
        self.start += weeks * WEEK;
    }
}

fn hours_between(hours: &Hours, from: i64, to: i64) -> i64 {
    if to <= from {
        return 0;
    }
    let mut cursor = Cursor::containing(hours, from);
    let mut total = 0;
    while cursor.start < to {
        if cursor.start >= from {
            let weeks = cursor.plain_weeks().min((to - cursor.start) / WEEK);
            if weeks > 0 {
                total += weeks * hours.week_total;
                cursor.skip_weeks(weeks);
                continue;
            }
        }
        for (start, end) in cursor.intervals() {
            let (start, end) = (start.max(from), end.min(to));
            if end > start {
                total += end - start;
            }
        }
        cursor.advance();
    }
    total
}

fn hours_add(hours: &Hours, from: i64, duration: i64) -> i64 {
    if duration <= 0 {
        return from;
    }
    let mut cursor = Cursor::containing(hours, from);
    let mut remaining = duration;
    loop {
        if cursor.start > LIMIT {
            return LIMIT;
        }
        if cursor.start >= from {
            let weeks = cursor
                .plain_weeks()
                .min((remaining - 1) / hours.week_total)
                .min((LIMIT - cursor.start) / WEEK + 1);
            if weeks > 0 {
                remaining -= weeks * hours.week_total;
                cursor.skip_weeks(weeks);
                continue;
            }
        }
        for (start, end) in cursor.intervals() {
            let start = start.max(from);
            if end > start {
                if end - start >= remaining {
                    return start + remaining;
                }
                remaining -= end - start;
            }
        }
        cursor.advance();
    }
}

fn between_micros(calendar: &Calendar, from: i64, to: i64) -> i64 {
    match &calendar.hours {
        None => (to - from).max(0),
        Some(hours) => hours_between(hours, from, to),
    }
}

fn add_micros(calendar: &Calendar, from: i64, duration: i64) -> i64 {
    match &calendar.hours {
        None => from.saturating_add(duration.max(0)).min(LIMIT),
        Some(hours) => hours_add(hours, from, duration.min(2 * LIMIT)),
    }
}

/// The working time of `calendar` in `[from, to)`; zero when `to <= from`.
/// Instants beyond about ±6,300 years from 1970 are clamped.
#[must_use]
pub fn working_time_between(calendar: &Calendar, from: Timestamp, to: Timestamp) -> Duration {
    Duration(between_micros(calendar, clamp(from), clamp(to)))
}

/// The earliest instant at which `duration` of working time has elapsed after
/// `from`: inside a working interval or at its end, never at the start of the
/// next one. A zero or negative duration gives `from` itself. Results beyond
/// about 6,300 years from 1970 saturate there.
#[must_use]
pub fn add_working_time(calendar: &Calendar, from: Timestamp, duration: Duration) -> Timestamp {
    Timestamp::from_micros(add_micros(calendar, clamp(from), duration.0))
}

// ---------------------------------------------------------------------------
// Pauses
// ---------------------------------------------------------------------------

/// An interval during which a clock does not run; `until: None` while it
/// lasts. Pauses may overlap and come in any order; their union counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: Timestamp,
    pub until: Option<Timestamp>,
}

/// When a clock reaches its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// At this instant (in the past if already reached).
    At(Timestamp),
    /// Not known: the clock is paused now and has not reached its target;
    /// this much working time remains.
    Paused { remaining: Duration },
}

/// The stretches `[from, to)` during which a clock ran, up to `now`.
struct Run {
    segments: Vec<(i64, i64)>,
    /// Whether it is running at `now` (its last segment, if any, ends at `now`).
    running: bool,
    now: i64,
}

impl Run {
    fn from_pauses(start: i64, pauses: &[Pause], now: i64) -> Self {
        let now = now.max(start);
        let mut spans: Vec<(i64, i64)> = pauses
            .iter()
            .map(|pause| (clamp(pause.from), pause.until.map_or(i64::MAX, clamp)))
            .filter(|&(from, until)| from < until && from <= now && until > start)
            .collect();
        spans.sort_unstable();
        let mut segments = Vec::new();
        let mut cursor = start;
        for (from, until) in spans {
            if from > cursor {
                segments.push((cursor, from));
            }
            cursor = cursor.max(until);
        }
        let running = cursor <= now;
        if cursor < now {
            segments.push((cursor, now));
        }
        Self { segments, running, now }
    }
}

/// Working time per segment and in total.
struct Measured<'r> {
    run: &'r Run,
    works: Vec<i64>,
    elapsed: i64,
}

impl<'r> Measured<'r> {
    fn new(calendar: &Calendar, run: &'r Run) -> Self {
        let works: Vec<i64> = run
            .segments
            .iter()
            .map(|&(from, to)| between_micros(calendar, from, to))
            .collect();
        let elapsed = works.iter().sum();
        Self { run, works, elapsed }
    }

    /// The first instant at which the clock's elapsed time reaches
    /// `threshold`: in the past if it has, projected from `now` if it runs,
    /// unknown if it does not run and has not reached it.
    fn crossing(&self, calendar: &Calendar, threshold: i64) -> Option<i64> {
        let mut before = 0;
        for (&(from, _), &work) in self.run.segments.iter().zip(&self.works) {
            if before + work >= threshold {
                return Some(add_micros(calendar, from, threshold - before));
            }
            before += work;
        }
        self.run
            .running
            .then(|| add_micros(calendar, self.run.now, threshold - before))
    }
}

/// The working time of `calendar` from `start` to `now`, less the working time
/// inside `pauses` (counted once where pauses overlap; their nights and
/// weekends were not working time anyway).
#[must_use]
pub fn elapsed_with_pauses(calendar: &Calendar, start: Timestamp, pauses: &[Pause], now: Timestamp) -> Duration {
    let run = Run::from_pauses(clamp(start), pauses, clamp(now));
    Duration(Measured::new(calendar, &run).elapsed)
}

/// When a clock started at `start` and paused by `pauses` reaches `target`,
/// as known at `now`: the instant (past or future, assuming no further
/// pauses), or — while paused before reaching it — the remaining time.
#[must_use]
pub fn due_with_pauses(
    calendar: &Calendar,
    start: Timestamp,
    target: Duration,
    pauses: &[Pause],
    now: Timestamp,
) -> Due {
    let run = Run::from_pauses(clamp(start), pauses, clamp(now));
    let measured = Measured::new(calendar, &run);
    match measured.crossing(calendar, target.0) {
        Some(at) => Due::At(Timestamp::from_micros(at)),
        None => Due::Paused {
            remaining: Duration(target.0 - measured.elapsed),
        },
    }
}

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// The targets for one priority; a missing target is not measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaTargets {
    /// Registration → acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Duration>,
    /// Registration → resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Duration>,
}

const fn default_at_risk_percent() -> u8 {
    80
}

/// The readable form of an [`SlaPolicy`]:
/// `{"calendar": …, "targets": {"P1": {"response": "15m", "resolution": "4h"}, …},
/// "pause_on": ["awaiting_user"], "at_risk_percent": 80}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicySpec {
    /// Defaults to 24×7.
    #[serde(default)]
    pub calendar: CalendarSpec,
    #[serde(default)]
    pub targets: BTreeMap<Priority, SlaTargets>,
    /// Hold reasons that pause the clocks.
    #[serde(default)]
    pub pause_on: Vec<HoldReason>,
    /// The share of a target (in %, 1–100, default 80; the threshold is
    /// rounded down to the microsecond) from which a clock is at risk.
    #[serde(default = "default_at_risk_percent")]
    pub at_risk_percent: u8,
}

/// An SLA (one per service): targets per priority, counted in a calendar,
/// paused by some hold reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlaPolicy {
    calendar: Calendar,
    targets: BTreeMap<Priority, SlaTargets>,
    pause_on: Vec<HoldReason>,
    at_risk_percent: u8,
}

impl SlaPolicy {
    /// A checked policy.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] for a negative target or an `at_risk_percent`
    /// outside 1–100.
    pub fn new(
        calendar: Calendar,
        targets: BTreeMap<Priority, SlaTargets>,
        pause_on: impl IntoIterator<Item = HoldReason>,
        at_risk_percent: u8,
    ) -> Result<Self, DomainError> {
        for (priority, target) in &targets {
            for (name, value) in [("response", target.response), ("resolution", target.resolution)] {
                if value.is_some_and(Duration::is_negative) {
                    return Err(DomainError::Invalid(format!(
                        "SLA {name} target for {priority} is negative"
                    )));
                }
            }
        }
        if !(1..=100).contains(&at_risk_percent) {
            return Err(DomainError::Invalid(format!(
                "SLA at_risk_percent must be between 1 and 100, got {at_risk_percent}"
            )));
        }
        let mut reasons: Vec<HoldReason> = Vec::new();
        for reason in pause_on {
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        Ok(Self {
            calendar,
            targets,
            pause_on: reasons,
            at_risk_percent,
        })
    }

    /// Checks a spec and builds the policy; `zone` resolves the calendar's
    /// time zone name (see [`Calendar::from_spec`]).
    ///
    /// # Errors
    /// As [`Calendar::from_spec`] and [`SlaPolicy::new`].
    pub fn from_spec(spec: &SlaPolicySpec, zone: impl FnOnce(&str) -> Option<TimeZone>) -> Result<Self, DomainError> {
        let calendar = Calendar::from_spec(&spec.calendar, zone)?;
        Self::new(
            calendar,
            spec.targets.clone(),
            spec.pause_on.iter().copied(),
            spec.at_risk_percent,
        )
    }

    /// The calendar the targets are counted in.
    #[must_use]
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The targets for a priority (none set: nothing measured).
    #[must_use]
    pub fn targets(&self, priority: Priority) -> SlaTargets {
        self.targets.get(&priority).copied().unwrap_or_default()
    }

    /// Whether a hold for `reason` pauses the clocks.
    #[must_use]
    pub fn pauses_on(&self, reason: HoldReason) -> bool {
        self.pause_on.contains(&reason)
    }

    /// The share of a target after which a clock is at risk.
    #[must_use]
    pub fn at_risk_percent(&self) -> u8 {
        self.at_risk_percent
    }
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

/// What happened to an incident, as far as SLA clocks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlaEventKind {
    Registered { priority: Priority },
    Accepted,
    PutOnHold { reason: HoldReason },
    Resumed,
    Resolved,
    Reopened,
    Closed,
    Cancelled,
    PriorityChanged { priority: Priority },
}

/// One step of an incident's history, at the time the caller chose
/// (recorded or claimed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaEvent {
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: SlaEventKind,
}

/// The SLA events of a timeline, in its order, each at the time given with
/// it. Changes that do not affect SLA clocks (comments, assignments, alerts,
/// reclassifications that keep the priority, …) are left out.
#[must_use]
pub fn events_from_timeline(entries: &[(Timestamp, &Change)]) -> Vec<SlaEvent> {
    entries
        .iter()
        .filter_map(|&(at, change)| {
            let kind = match change {
                Change::Registered(registration) => SlaEventKind::Registered {
                    priority: registration.priority,
                },
                Change::Reclassified(patch) => SlaEventKind::PriorityChanged {
                    priority: patch.priority?,
                },
                Change::Accepted {} => SlaEventKind::Accepted,
                Change::PutOnHold { reason, .. } => SlaEventKind::PutOnHold { reason: *reason },
                Change::Resumed { .. } => SlaEventKind::Resumed,
                Change::Resolved { .. } => SlaEventKind::Resolved,
                Change::Reopened { .. } => SlaEventKind::Reopened,
                Change::Closed { .. } => SlaEventKind::Closed,
                Change::Cancelled { .. } => SlaEventKind::Cancelled,
                // Everything else leaves the clocks alone.
                _ => return None,
            };
            Some(SlaEvent { at, kind })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// Where a clock stands against its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Running (or paused) below the at-risk threshold.
    Within,
    /// Running (or paused) at or past the at-risk threshold, before the due time.
    AtRisk,
    /// Still open at or past its due time.
    Breached,
    /// The target event happened no later than the due time.
    Met,
    /// The target event happened after the due time.
    Missed,
    /// The incident was cancelled before the target event: not measured.
    Cancelled,
}

impl SlaState {
    /// Whether the clock can still change state (within, at risk, breached).
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(self, SlaState::Within | SlaState::AtRisk | SlaState::Breached)
    }
}

/// One clock (response or resolution) of an incident, as of a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    /// The target in force: that of the current priority, or of the priority
    /// when the clock stopped.
    pub target: Duration,
    /// Working time counted so far (pauses and resolved-until-reopened excluded).
    pub elapsed: Duration,
    /// `target − elapsed`; negative once overrun.
    pub remaining: Duration,
    pub state: SlaState,
    /// Open but not running (on a hold that pauses).
    pub paused: bool,
    /// The instant elapsed reaches (or reached) the target; the clock is
    /// breached from then on. `None` while paused before reaching it, or when
    /// it stopped before reaching it. Projected assuming no further pauses.
    pub due_at: Option<Timestamp>,
    /// Likewise for the at-risk threshold.
    pub at_risk_at: Option<Timestamp>,
    /// When the clock stopped: acceptance / last resolution, or cancellation.
    pub stopped_at: Option<Timestamp>,
}

impl SlaClock {
    /// The next instant after `now` at which the clock's state will change if
    /// nothing else happens (at risk, then breached): a timer for a scheduler.
    #[must_use]
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        if !self.state.is_open() || self.paused {
            return None;
        }
        [self.at_risk_at, self.due_at]
            .into_iter()
            .flatten()
            .filter(|&at| at > now)
            .min()
    }
}

/// The SLA clocks of one incident, as of a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaReport {
    /// The moment evaluated.
    pub as_of: Timestamp,
    /// The priority in force.
    pub priority: Priority,
    /// `None` when the policy sets no response target for the priority.
    pub response: Option<SlaClock>,
    /// `None` when the policy sets no resolution target for the priority.
    pub resolution: Option<SlaClock>,
}

impl SlaReport {
    /// The earliest instant after [`SlaReport::as_of`] at which either clock
    /// changes state, if nothing else happens.
    #[must_use]
    pub fn next_change(&self) -> Option<Timestamp> {
        [self.response, self.resolution]
            .into_iter()
            .flatten()
            .filter_map(|clock| clock.next_change(self.as_of))
            .min()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The target event (acceptance, resolution).
    Done,
    Cancelled,
}

/// One clock being replayed from the history.
struct Track {
    segments: Vec<(i64, i64)>,
    running_since: Option<i64>,
    stop: Option<(i64, Stop, Priority)>,
}

impl Track {
    fn set_running(&mut self, at: i64, running: bool) {
        match (self.running_since, running) {
            (None, true) => self.running_since = Some(at),
            (Some(since), false) => {
                if at > since {
                    self.segments.push((since, at));
                }
                self.running_since = None;
            }
            _ => {}
        }
    }

    fn stop(&mut self, at: i64, how: Stop, priority: Priority) {
        if self.stop.is_none() {
            self.stop = Some((at, how, priority));
        }
    }

    fn finish(mut self, now: i64) -> Run {
        let running = self.running_since.is_some();
        if let Some(since) = self.running_since.take()
            && now > since
        {
            self.segments.push((since, now));
        }
        Run {
            segments: self.segments,
            running,
            now,
        }
    }
}

impl SlaPolicy {
    /// The incident's clocks as of `now`, from its history in timeline order.
    ///
    /// Events are taken in the order given; a time earlier than the one
    /// before it counts as that one (times never go backwards), and events
    /// after `now` are not yet history. Events before the registration are
    /// ignored. `None` when there is no registration (by `now`).
    #[must_use]
    pub fn evaluate(&self, events: &[SlaEvent], now: Timestamp) -> Option<SlaReport> {
        let now_micros = clamp(now);
        let mut rest = events
            .iter()
            .skip_while(|event| !matches!(event.kind, SlaEventKind::Registered { .. }));
        let registration = rest.next()?;
        let SlaEventKind::Registered { mut priority } = registration.kind else {
            return None;
        };
        let registered = clamp(registration.at);
        if registered > now_micros {
            return None;
        }
        let new_track = || Track {
            segments: Vec::new(),
            running_since: Some(registered),
            stop: None,
        };
        let (mut response, mut resolution) = (new_track(), new_track());
        let mut hold: Option<HoldReason> = None;
        let (mut resolved, mut closed, mut cancelled) = (false, false, false);
        let mut last = registered;

        for event in rest {
            let at = clamp(event.at).max(last);
            if at > now_micros {
                break;
            }
            last = at;
            match event.kind {
                SlaEventKind::Registered { .. } => {}
                SlaEventKind::PriorityChanged { priority: new } => priority = new,
                SlaEventKind::Accepted => response.stop(at, Stop::Done, priority),
                SlaEventKind::PutOnHold { reason } => hold = Some(reason),
                SlaEventKind::Resumed => hold = None,
                SlaEventKind::Resolved | SlaEventKind::Closed if !cancelled => {
                    hold = None;
                    // Resolving answers the user as well: it completes a
                    // response that was never accepted.
                    response.stop(at, Stop::Done, priority);
                    if matches!(event.kind, SlaEventKind::Closed) {
                        closed = true;
                    }
                    if !resolved {
                        resolved = true;
                        resolution.stop(at, Stop::Done, priority);
                    }
                }
                SlaEventKind::Reopened if resolved && !closed && !cancelled => {
                    hold = None;
                    resolved = false;
                    resolution.stop = None;
                }
                SlaEventKind::Cancelled if !cancelled && !closed => {
                    hold = None;
                    cancelled = true;
                    response.stop(at, Stop::Cancelled, priority);
                    if !resolved {
                        resolution.stop(at, Stop::Cancelled, priority);
                    }
                }
                SlaEventKind::Resolved | SlaEventKind::Closed | SlaEventKind::Reopened | SlaEventKind::Cancelled => {}
            }
            let paused = hold.is_some_and(|reason| self.pauses_on(reason));
            for track in [&mut response, &mut resolution] {
                let running = track.stop.is_none() && !paused;
                track.set_running(at, running);
            }
        }

        let clock = |track: Track, pick: fn(SlaTargets) -> Option<Duration>| {
            let target = pick(self.targets(track.stop.map_or(priority, |(_, _, p)| p)))?;
            let stop = track.stop;
            Some(self.clock(&track.finish(now_micros), target, stop.map(|(at, how, _)| (at, how))))
        };
        Some(SlaReport {
            as_of: Timestamp::from_micros(now_micros),
            priority,
            response: clock(response, |t| t.response),
            resolution: clock(resolution, |t| t.resolution),
        })
    }

    fn clock(&self, run: &Run, target: Duration, stop: Option<(i64, Stop)>) -> SlaClock {
        let measured = Measured::new(&self.calendar, run);
        let due = measured.crossing(&self.calendar, target.0);
        let threshold = (i128::from(target.0) * i128::from(self.at_risk_percent) / 100) as i64;
        let at_risk = measured.crossing(&self.calendar, threshold);
        let state = match stop {
            Some((_, Stop::Cancelled)) => SlaState::Cancelled,
            Some((at, Stop::Done)) if due.is_some_and(|due| due < at) => SlaState::Missed,
            Some((_, Stop::Done)) => SlaState::Met,
            None if due.is_some_and(|due| due <= run.now) => SlaState::Breached,
            None if at_risk.is_some_and(|at| at <= run.now) => SlaState::AtRisk,
            None => SlaState::Within,
        };
        SlaClock {
            target,
            elapsed: Duration(measured.elapsed),
            remaining: Duration(target.0 - measured.elapsed),
            state,
            paused: stop.is_none() && !run.running,
            due_at: due.map(Timestamp::from_micros),
            at_risk_at: at_risk.map(Timestamp::from_micros),
            stopped_at: stop.map(|(at, _)| Timestamp::from_micros(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zone(name: &str) -> Option<TimeZone> {
        TimeZone::get(name).ok()
    }

    fn calendar(value: serde_json::Value) -> Calendar {
        let spec: CalendarSpec = serde_json::from_value(value).expect("calendar spec");
        Calendar::from_spec(&spec, zone).expect("valid calendar")
    }

    fn calendar_error(value: serde_json::Value) -> String {
        let spec: CalendarSpec = serde_json::from_value(value).expect("calendar spec");
        match Calendar::from_spec(&spec, zone) {
            Err(DomainError::Invalid(message)) => message,
            other => panic!("expected an invalid calendar, got {other:?}"),
        }
    }

    /// Mon–Fri 09:00–17:00 in Berlin, Christmas Eve and Day off.
    fn office() -> Calendar {
        let day = json!([["09:00", "17:00"]]);
        calendar(json!({
            "time_zone": "Europe/Berlin",
            "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day},
            "holidays": ["2026-12-24", "2026-12-25"]
        }))
    }

    /// Every day the same hours in a zone.
    fn daily(tz: &str, start: &str, end: &str) -> Calendar {
        let day = json!([[start, end]]);
        calendar(json!({
            "time_zone": tz,
            "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}
        }))
    }

    /// A local wall-clock time (unambiguous ones only).
    fn local(tz: &str, text: &str) -> Timestamp {
        let civil: jiff::civil::DateTime = text.parse().expect("civil datetime");
        let zoned = civil.to_zoned(TimeZone::get(tz).expect("zone")).expect("in range");
        Timestamp::from_micros(zoned.timestamp().as_microsecond())
    }

    fn berlin(text: &str) -> Timestamp {
        local("Europe/Berlin", text)
    }

    fn utc(text: &str) -> Timestamp {
        text.parse().expect("RFC 3339")
    }

    fn h(hours: i64) -> Duration {
        Duration::from_hours(hours)
    }

    fn m(mins: i64) -> Duration {
        Duration::from_mins(mins)
    }

    fn between(calendar: &Calendar, from: Timestamp, to: Timestamp) -> Duration {
        working_time_between(calendar, from, to)
    }

    fn add(calendar: &Calendar, from: Timestamp, duration: Duration) -> Timestamp {
        let to = add_working_time(calendar, from, duration);
        assert_eq!(
            between(calendar, from, to),
            duration.max(Duration::ZERO),
            "inverse from {from}"
        );
        to
    }

    // --- durations -------------------------------------------------------

    #[test]
    fn durations_read_and_write_friendly_text() {
        assert_eq!("4h 30m".parse::<Duration>().expect("valid"), m(270));
        assert_eq!("PT15M".parse::<Duration>().expect("valid"), m(15));
        assert_eq!(h(720).to_string(), "720h");
        assert_eq!(serde_json::to_value(m(90)).expect("json"), json!("1h 30m"));
        assert_eq!(serde_json::from_value::<Duration>(json!("2h")).expect("json"), h(2));
        assert_eq!(Duration::from_mins(-65).to_string(), "-1h 5m");
        assert_eq!("-1h 5m".parse::<Duration>().expect("valid"), m(-65));
        assert_eq!(Duration::from_micros(1_500_000).to_string(), "1s 500ms");
        assert!("soon".parse::<Duration>().is_err());
        assert!("1ns".parse::<Duration>().is_err());
    }

    // --- calendar specs --------------------------------------------------

    #[test]
    fn calendar_specs_round_trip_in_week_order() {
        let cal = calendar(json!({
            "time_zone": "Europe/Berlin",
            "hours": {
                "sun": [["18:00", "24:00"]],
                "mon": [["13:00", "17:30"], ["08:00", "12:00"]],
                "fri": [["09:00", "12:00"], ["12:00", "15:00:30"]]
            },
            "holidays": ["2026-12-25", "2026-01-01"]
        }));
        let text = serde_json::to_string(&cal).expect("json");
        assert_eq!(
            text,
            r#"{"time_zone":"Europe/Berlin","hours":{"mon":[["08:00","12:00"],["13:00","17:30"]],"fri":[["09:00","15:00:30"]],"sun":[["18:00","24:00"]]},"holidays":["2026-01-01","2026-12-25"]}"#
        );
        let again: CalendarSpec = serde_json::from_str(&text).expect("spec");
        assert_eq!(Calendar::from_spec(&again, zone).expect("valid"), cal);
    }

    #[test]
    fn the_always_calendar_is_the_string_24x7() {
        let spec: CalendarSpec = serde_json::from_value(json!("24x7")).expect("spec");
        assert_eq!(spec, CalendarSpec::AlwaysOn);
        let cal = Calendar::from_spec(&spec, |_| None).expect("no zone needed");
        assert!(cal.is_always());
        assert_eq!(serde_json::to_value(&cal).expect("json"), json!("24x7"));
        assert!(serde_json::from_value::<CalendarSpec>(json!("24x5")).is_err());
        assert!(serde_json::from_value::<CalendarSpec>(json!({"time_zone": "UTC", "hours": {}, "x": 1})).is_err());
    }

    #[test]
    fn bad_calendars_are_refused_with_a_clear_message() {
        let with = |hours: serde_json::Value| json!({"time_zone": "Europe/Berlin", "hours": hours});
        let overlap = calendar_error(with(json!({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]})));
        assert!(
            overlap.contains("09:00-12:00 and 11:00-13:00 on mon overlap"),
            "{overlap}"
        );
        let backwards = calendar_error(with(json!({"tue": [["17:00", "09:00"]]})));
        assert!(
            backwards.contains("17:00-09:00 on tue does not end after it starts"),
            "{backwards}"
        );
        let empty = calendar_error(with(json!({"tue": [["09:00", "09:00"]]})));
        assert!(empty.contains("does not end after"), "{empty}");
        let day = calendar_error(with(json!({"monday": [["09:00", "17:00"]]})));
        assert!(day.contains("unknown day \"monday\""), "{day}");
        for bad in ["25:00", "24:01", "9:00", "09:60", "09", "09:00:00:00", "ab:cd", "-1:00"] {
            let message = calendar_error(with(json!({"wed": [[bad, "23:00"]]})));
            assert!(message.contains("bad time"), "{bad}: {message}");
        }
        let start_at_24 = calendar_error(with(json!({"wed": [["24:00", "24:00"]]})));
        assert!(start_at_24.contains("does not end after"), "{start_at_24}");
        let none = calendar_error(with(json!({})));
        assert!(none.contains("no working hours"), "{none}");
        let holiday = calendar_error(
            json!({"time_zone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["2026-02-30"]}),
        );
        assert!(holiday.contains("bad holiday \"2026-02-30\""), "{holiday}");
        let tz = calendar_error(json!({"time_zone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}}));
        assert!(tz.contains("unknown time zone \"Mars/Olympus\""), "{tz}");
    }

    #[test]
    fn touching_intervals_merge_and_days_are_case_insensitive() {
        let cal = calendar(json!({"time_zone": "UTC", "hours": {"Mon": [["12:00", "17:00"], ["09:00", "12:00"]]}}));
        let CalendarSpec::WorkingHours(spec) = cal.to_spec() else {
            panic!("working hours")
        };
        assert_eq!(
            spec.hours.get("mon"),
            Some(&vec![("09:00".to_string(), "17:00".to_string())])
        );
    }

    // --- working time ----------------------------------------------------

    #[test]
    fn working_time_within_a_day_counts_only_working_hours() {
        let cal = office();
        assert_eq!(
            between(&cal, berlin("2026-03-23T10:00"), berlin("2026-03-23T12:00")),
            h(2)
        );
        assert_eq!(
            between(&cal, berlin("2026-03-23T07:00"), berlin("2026-03-23T10:00")),
            h(1)
        );
        assert_eq!(
            between(&cal, berlin("2026-03-23T16:00"), berlin("2026-03-23T20:00")),
            h(1)
        );
        assert_eq!(
            between(&cal, berlin("2026-03-23T18:00"), berlin("2026-03-24T08:00")),
            h(0)
        );
        assert_eq!(
            between(&cal, berlin("2026-03-23T12:00"), berlin("2026-03-23T10:00")),
            h(0)
        );
        assert_eq!(add(&cal, berlin("2026-03-23T07:00"), h(1)), berlin("2026-03-23T10:00"));
        assert_eq!(
            add(&cal, berlin("2026-03-23T07:00"), Duration::ZERO),
            berlin("2026-03-23T07:00")
        );
    }

    #[test]
    fn working_time_crosses_weekends() {
        let cal = office();
        // Friday 16:00 + 2h = Monday 10:00 (CET, before the DST change).
        assert_eq!(add(&cal, berlin("2026-03-20T16:00"), h(2)), berlin("2026-03-23T10:00"));
        assert_eq!(
            between(&cal, berlin("2026-03-20T16:00"), berlin("2026-03-23T10:00")),
            h(2)
        );
        // Saturday counts nothing; a start in the weekend begins on Monday.
        assert_eq!(add(&cal, berlin("2026-03-21T12:00"), h(1)), berlin("2026-03-23T10:00"));
        assert_eq!(
            between(&cal, berlin("2026-03-21T00:00"), berlin("2026-03-23T00:00")),
            h(0)
        );
        // Five working days are a calendar week.
        assert_eq!(add(&cal, berlin("2026-03-16T09:00"), h(40)), berlin("2026-03-20T17:00"));
    }

    #[test]
    fn adding_lands_at_the_end_of_an_interval_not_the_start_of_the_next() {
        let cal = office();
        assert_eq!(add(&cal, berlin("2026-03-20T16:00"), h(1)), berlin("2026-03-20T17:00"));
        assert_eq!(add(&cal, berlin("2026-03-20T17:00"), Duration::from_micros(1)), {
            Timestamp::from_micros(berlin("2026-03-23T09:00").as_micros() + 1)
        });
        assert!(cal.is_working_time(berlin("2026-03-20T09:00")));
        assert!(cal.is_working_time(Timestamp::from_micros(berlin("2026-03-20T17:00").as_micros() - 1)));
        assert!(!cal.is_working_time(berlin("2026-03-20T17:00")));
        assert!(!cal.is_working_time(berlin("2026-03-21T10:00")));
    }

    #[test]
    fn holidays_have_no_working_time() {
        let cal = office();
        // Wednesday 23 December 16:00 + 2h: Thursday and Friday are holidays.
        assert_eq!(add(&cal, berlin("2026-12-23T16:00"), h(2)), berlin("2026-12-28T10:00"));
        assert_eq!(
            between(&cal, berlin("2026-12-24T00:00"), berlin("2026-12-28T00:00")),
            h(0)
        );
        assert!(!cal.is_working_time(berlin("2026-12-24T10:00")));
    }

    #[test]
    fn several_intervals_per_day_and_intervals_ending_at_midnight() {
        let cal = calendar(json!({
            "time_zone": "Europe/Berlin",
            "hours": {"sat": [["00:00", "06:00"], ["18:00", "24:00"]], "sun": [["00:00", "24:00"]]}
        }));
        // Saturday 2026-03-21 20:00: 4h to midnight, then Sunday runs through.
        assert_eq!(add(&cal, berlin("2026-03-21T20:00"), h(10)), berlin("2026-03-22T06:00"));
        assert_eq!(
            between(&cal, berlin("2026-03-21T00:00"), berlin("2026-03-23T00:00")),
            h(36)
        );
        assert_eq!(add(&cal, berlin("2026-03-21T05:00"), h(2)), berlin("2026-03-21T19:00"));
        // Sunday's 24h ends exactly at Monday 00:00 and the next block is Saturday.
        assert_eq!(add(&cal, berlin("2026-03-22T00:00"), h(24)), berlin("2026-03-23T00:00"));
        assert_eq!(add(&cal, berlin("2026-03-22T00:00"), h(25)), berlin("2026-03-28T01:00"));
        assert!(cal.is_working_time(berlin("2026-03-22T23:59")));
        assert!(!cal.is_working_time(berlin("2026-03-23T00:00")));
    }

    #[test]
    fn a_night_shift_over_the_spring_change_loses_the_skipped_hour() {
        // Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
        let cal = daily("Europe/Berlin", "01:00", "04:00");
        assert_eq!(
            between(&cal, berlin("2026-03-28T12:00"), berlin("2026-03-29T12:00")),
            h(2)
        );
        assert_eq!(
            between(&cal, berlin("2026-03-27T12:00"), berlin("2026-03-28T12:00")),
            h(3)
        );
        assert_eq!(
            add(&cal, berlin("2026-03-29T00:00"), m(90)),
            utc("2026-03-29T01:30:00Z")
        );
        assert_eq!(
            add(&cal, berlin("2026-03-29T00:00"), m(60)),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(add(&cal, berlin("2026-03-29T00:00"), h(2)), utc("2026-03-29T02:00:00Z"));
        assert_eq!(
            add(&cal, berlin("2026-03-29T00:00"), m(121)),
            utc("2026-03-29T23:01:00Z")
        );
    }

    #[test]
    fn a_night_shift_over_the_autumn_change_gains_the_repeated_hour() {
        // Berlin 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00Z).
        let cal = daily("Europe/Berlin", "01:00", "04:00");
        assert_eq!(
            between(&cal, berlin("2026-10-24T12:00"), berlin("2026-10-25T12:00")),
            h(4)
        );
        assert_eq!(
            add(&cal, berlin("2026-10-25T00:00"), m(150)),
            utc("2026-10-25T01:30:00Z")
        );
        assert_eq!(add(&cal, berlin("2026-10-25T00:00"), h(4)), utc("2026-10-25T03:00:00Z"));
        assert_eq!(add(&cal, berlin("2026-10-25T00:00"), h(3)), utc("2026-10-25T02:00:00Z"));
    }

    #[test]
    fn interval_ends_inside_skipped_or_repeated_hours() {
        let cal = daily("Europe/Berlin", "02:30", "05:00");
        // Spring: 02:30 does not exist; the shift starts when the clocks jump (01:00Z).
        assert_eq!(
            between(&cal, berlin("2026-03-29T00:00"), berlin("2026-03-29T12:00")),
            h(2)
        );
        assert_eq!(add(&cal, berlin("2026-03-29T00:00"), m(1)), utc("2026-03-29T01:01:00Z"));
        // Autumn: 02:30 happens twice; the shift starts at the first (00:30Z) and ends at 05:00 CET.
        assert_eq!(
            between(&cal, berlin("2026-10-25T00:00"), berlin("2026-10-25T12:00")),
            m(210)
        );
        assert_eq!(add(&cal, berlin("2026-10-25T00:00"), m(1)), utc("2026-10-25T00:31:00Z"));
        assert_eq!(
            add(&cal, berlin("2026-10-25T00:00"), m(210)),
            utc("2026-10-25T04:00:00Z")
        );
        // Ending inside the repeated hour: the first occurrence.
        let early = daily("Europe/Berlin", "00:00", "02:30");
        assert_eq!(
            between(&early, berlin("2026-10-25T00:00"), berlin("2026-10-25T12:00")),
            m(150)
        );
        assert!(early.is_working_time(utc("2026-10-25T00:29:00Z")));
        assert!(!early.is_working_time(utc("2026-10-25T01:29:00Z")));
    }

    #[test]
    fn clocks_going_back_across_midnight_keep_the_next_day_in_view() {
        // A zone whose summer time ends at 00:30 by going back to 23:30 of the
        // day before (2026-10-24T22:30Z): Sunday's 00:00 comes before
        // Saturday's last hour is over.
        let spec: CalendarSpec = serde_json::from_value(json!({
            "time_zone": "Test/Midnight",
            "hours": {"sun": [["00:00", "01:00"]]}
        }))
        .expect("spec");
        let posix = |_: &str| TimeZone::posix("XST-1XDT,M3.5.0/0:30,M10.5.0/0:30").ok();
        let cal = Calendar::from_spec(&spec, posix).expect("valid");
        // Sunday 00:00 XDT (22:00Z) to 01:00 XST (00:00Z): two real hours.
        assert_eq!(
            between(&cal, utc("2026-10-24T12:00:00Z"), utc("2026-10-25T12:00:00Z")),
            h(2)
        );
        // 22:45Z shows Saturday 23:45 (XST) yet is inside Sunday's shift.
        assert!(cal.is_working_time(utc("2026-10-24T22:45:00Z")));
        assert!(!cal.is_working_time(utc("2026-10-25T00:00:00Z")));
        assert_eq!(
            add(&cal, utc("2026-10-24T22:45:00Z"), m(30)),
            utc("2026-10-24T23:15:00Z")
        );
    }

    #[test]
    fn round_the_clock_time_across_dst_is_real_time() {
        let always = Calendar::always();
        let berlin_days = daily("Europe/Berlin", "00:00", "24:00");
        for cal in [&always, &berlin_days] {
            let from = berlin("2026-03-28T12:00");
            assert_eq!(add(cal, from, h(24)), utc("2026-03-29T11:00:00Z"));
            assert_eq!(add(cal, berlin("2026-10-24T12:00"), h(24)), utc("2026-10-25T10:00:00Z"));
        }
        // The local day of the spring change is 23 hours, of the autumn change 25.
        assert_eq!(
            between(&berlin_days, berlin("2026-03-29T00:00"), berlin("2026-03-30T00:00")),
            h(23)
        );
        assert_eq!(
            between(&berlin_days, berlin("2026-10-25T00:00"), berlin("2026-10-26T00:00")),
            h(25)
        );
    }

    #[test]
    fn new_york_office_hours_follow_the_local_clock_across_dst() {
        let day = json!([["09:00", "17:00"]]);
        let cal = calendar(json!({
            "time_zone": "America/New_York",
            "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}
        }));
        // 2026-03-08: EST → EDT. Friday 16:00 EST + 2h = Monday 10:00 EDT.
        assert_eq!(
            add(&cal, utc("2026-03-06T21:00:00Z"), h(2)),
            utc("2026-03-09T14:00:00Z")
        );
        // 2026-11-01: EDT → EST.
        assert_eq!(
            add(&cal, utc("2026-10-30T20:00:00Z"), h(2)),
            utc("2026-11-02T15:00:00Z")
        );
        let night = daily("America/New_York", "00:00", "04:00");
        let ny = |text| local("America/New_York", text);
        assert_eq!(between(&night, ny("2026-03-08T00:00"), ny("2026-03-08T12:00")), h(3));
        assert_eq!(between(&night, ny("2026-11-01T00:00"), ny("2026-11-01T12:00")), h(5));
    }

    #[test]
    fn a_year_of_office_hours_skips_weeks_but_stays_exact() {
        let cal = office();
        // 2026 has 261 weekdays; two of them are holidays.
        let year = between(&cal, berlin("2026-01-01T00:00"), berlin("2027-01-01T00:00"));
        assert_eq!(year, h(259 * 8));
        assert_eq!(add(&cal, berlin("2026-01-01T00:00"), year), berlin("2026-12-31T17:00"));
        let decade = add(&cal, berlin("2026-01-01T00:00"), h(10 * 52 * 40));
        assert_eq!(between(&cal, berlin("2026-01-01T00:00"), decade), h(10 * 52 * 40));
    }

    #[test]
    fn instants_far_away_saturate_instead_of_failing() {
        let cal = office();
        let far = add_working_time(&cal, Timestamp::from_micros(i64::MAX), h(1));
        assert_eq!(far.as_micros(), LIMIT);
        let huge = add_working_time(&cal, berlin("2026-01-01T00:00"), Duration::from_micros(i64::MAX));
        assert_eq!(huge.as_micros(), LIMIT);
        assert_eq!(
            add_working_time(
                &Calendar::always(),
                Timestamp::from_micros(0),
                Duration::from_micros(i64::MAX)
            )
            .as_micros(),
            LIMIT
        );
        assert!(
            working_time_between(
                &cal,
                Timestamp::from_micros(i64::MIN),
                Timestamp::from_micros(i64::MIN + 1)
            ) >= Duration::ZERO
        );
    }

    // --- pauses ----------------------------------------------------------

    fn pause(from: Timestamp, until: Option<Timestamp>) -> Pause {
        Pause { from, until }
    }

    #[test]
    fn pauses_over_nights_and_weekends_subtract_only_their_working_time() {
        let cal = office();
        let start = berlin("2026-03-16T10:00");
        // Monday 16:00 → Tuesday 10:00: 1h + 1h of working time paused.
        let night = [pause(berlin("2026-03-16T16:00"), Some(berlin("2026-03-17T10:00")))];
        assert_eq!(
            elapsed_with_pauses(&cal, start, &night, berlin("2026-03-17T12:00")),
            h(8)
        );
        // Friday 15:00 → Monday 11:00: 2h + 2h.
        let weekend = [pause(berlin("2026-03-20T15:00"), Some(berlin("2026-03-23T11:00")))];
        assert_eq!(
            elapsed_with_pauses(&cal, start, &weekend, berlin("2026-03-23T12:00")),
            h(7 + 32 + 3 - 4)
        );
        // Overlapping pauses count once.
        let both = [
            pause(berlin("2026-03-16T16:00"), Some(berlin("2026-03-17T10:00"))),
            pause(berlin("2026-03-16T12:00"), Some(berlin("2026-03-16T17:00"))),
        ];
        assert_eq!(
            elapsed_with_pauses(&cal, start, &both, berlin("2026-03-17T12:00")),
            h(2 + 2)
        );
    }

    #[test]
    fn due_time_accounts_for_past_pauses() {
        let cal = office();
        let start = berlin("2026-03-16T09:00");
        let lunch = [pause(berlin("2026-03-16T12:00"), Some(berlin("2026-03-16T14:00")))];
        assert_eq!(
            due_with_pauses(&cal, start, h(8), &lunch, berlin("2026-03-16T15:00")),
            Due::At(berlin("2026-03-17T11:00"))
        );
        assert_eq!(
            due_with_pauses(&cal, start, h(8), &[], berlin("2026-03-16T15:00")),
            Due::At(berlin("2026-03-16T17:00"))
        );
    }

    #[test]
    fn no_due_time_while_paused_only_the_remaining_time() {
        let cal = office();
        let start = berlin("2026-03-16T09:00");
        let open = [pause(berlin("2026-03-16T12:00"), None)];
        assert_eq!(
            due_with_pauses(&cal, start, h(8), &open, berlin("2026-03-18T15:00")),
            Due::Paused { remaining: h(5) }
        );
        // Breached before the pause: the due time stays known.
        assert_eq!(
            due_with_pauses(&cal, start, h(2), &open, berlin("2026-03-18T15:00")),
            Due::At(berlin("2026-03-16T11:00"))
        );
        // A pause that ended exactly now no longer pauses.
        let ended = [pause(berlin("2026-03-16T12:00"), Some(berlin("2026-03-16T14:00")))];
        assert_eq!(
            due_with_pauses(&cal, start, h(8), &ended, berlin("2026-03-16T14:00")),
            Due::At(berlin("2026-03-17T11:00"))
        );
    }

    // --- policies and clocks ---------------------------------------------

    fn policy(calendar: Calendar, pause_on: &[HoldReason]) -> SlaPolicy {
        let targets = BTreeMap::from([
            (
                Priority::P1,
                SlaTargets {
                    response: Some(m(15)),
                    resolution: Some(h(4)),
                },
            ),
            (
                Priority::P2,
                SlaTargets {
                    response: Some(h(1)),
                    resolution: Some(h(8)),
                },
            ),
            (
                Priority::P3,
                SlaTargets {
                    response: Some(h(4)),
                    resolution: Some(h(16)),
                },
            ),
            (
                Priority::P4,
                SlaTargets {
                    response: None,
                    resolution: Some(h(40)),
                },
            ),
        ]);
        SlaPolicy::new(calendar, targets, pause_on.iter().copied(), 80).expect("valid policy")
    }

    fn ev(at: Timestamp, kind: SlaEventKind) -> SlaEvent {
        SlaEvent { at, kind }
    }

    fn registered(at: Timestamp, priority: Priority) -> SlaEvent {
        ev(at, SlaEventKind::Registered { priority })
    }

    fn report(policy: &SlaPolicy, events: &[SlaEvent], now: Timestamp) -> SlaReport {
        policy.evaluate(events, now).expect("registered")
    }

    fn response(policy: &SlaPolicy, events: &[SlaEvent], now: Timestamp) -> SlaClock {
        report(policy, events, now).response.expect("response target")
    }

    fn resolution(policy: &SlaPolicy, events: &[SlaEvent], now: Timestamp) -> SlaClock {
        report(policy, events, now).resolution.expect("resolution target")
    }

    #[test]
    fn policy_specs_read_json_and_refuse_nonsense() {
        let days: Result<SlaPolicySpec, _> = serde_json::from_value(json!({"targets": {"P3": {"resolution": "3d"}}}));
        assert!(days.is_err(), "days are not a unit of working time");
        let spec: SlaPolicySpec = serde_json::from_value(json!({
            "calendar": {"time_zone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]}},
            "targets": {"P1": {"response": "15m", "resolution": "4h"}, "P3": {"resolution": "24h"}},
            "pause_on": ["awaiting_user", "awaiting_supplier"]
        }))
        .expect("spec");
        let policy = SlaPolicy::from_spec(&spec, zone).expect("valid");
        assert_eq!(policy.at_risk_percent(), 80);
        assert!(policy.pauses_on(HoldReason::AwaitingUser));
        assert!(!policy.pauses_on(HoldReason::Other));
        assert_eq!(
            policy.targets(Priority::P3),
            SlaTargets {
                response: None,
                resolution: Some(h(24))
            }
        );
        assert_eq!(policy.targets(Priority::P5), SlaTargets::default());
        let round: SlaPolicySpec = serde_json::from_value(serde_json::to_value(&policy).expect("json")).expect("spec");
        assert_eq!(round, spec);

        let with_percent = |percent: u8| SlaPolicy::new(Calendar::always(), BTreeMap::new(), [], percent);
        assert!(with_percent(0).is_err());
        assert!(with_percent(101).is_err());
        assert!(with_percent(100).is_ok());
        let negative = BTreeMap::from([(
            Priority::P1,
            SlaTargets {
                response: Some(h(-1)),
                resolution: None,
            },
        )]);
        assert!(SlaPolicy::new(Calendar::always(), negative, [], 80).is_err());
        let unknown: Result<SlaPolicySpec, _> = serde_json::from_value(json!({"targets": {}, "at_risk": 80}));
        assert!(unknown.is_err());
    }

    #[test]
    fn response_goes_within_at_risk_breached_at_exact_instants() {
        let policy = policy(office(), &[]);
        let events = [registered(berlin("2026-03-16T09:00"), Priority::P2)];
        let at = |now| response(&policy, &events, now);
        let just_before = Timestamp::from_micros(berlin("2026-03-16T09:48").as_micros() - 1);
        let clock = at(just_before);
        assert_eq!(clock.state, SlaState::Within);
        assert_eq!(clock.at_risk_at, Some(berlin("2026-03-16T09:48")));
        assert_eq!(clock.due_at, Some(berlin("2026-03-16T10:00")));
        assert_eq!(clock.next_change(just_before), Some(berlin("2026-03-16T09:48")));
        let risky = at(berlin("2026-03-16T09:48"));
        assert_eq!(risky.state, SlaState::AtRisk);
        assert_eq!(
            risky.next_change(berlin("2026-03-16T09:48")),
            Some(berlin("2026-03-16T10:00"))
        );
        assert_eq!(at(berlin("2026-03-16T10:00")).state, SlaState::Breached);
        let late = at(berlin("2026-03-16T11:00"));
        assert_eq!(
            (late.state, late.elapsed, late.remaining),
            (SlaState::Breached, h(2), h(-1))
        );
        assert_eq!(late.next_change(berlin("2026-03-16T11:00")), None);
        let report = report(&policy, &events, just_before);
        assert_eq!(report.next_change(), Some(berlin("2026-03-16T09:48")));
    }

    #[test]
    fn acceptance_at_the_due_time_meets_the_target_and_a_microsecond_later_misses_it() {
        let policy = policy(office(), &[]);
        let accepted_at = |at: Timestamp| {
            let events = [
                registered(berlin("2026-03-16T09:00"), Priority::P2),
                ev(at, SlaEventKind::Accepted),
            ];
            response(&policy, &events, berlin("2026-03-17T09:00"))
        };
        let on_time = accepted_at(berlin("2026-03-16T10:00"));
        assert_eq!(on_time.state, SlaState::Met);
        assert_eq!(on_time.stopped_at, Some(berlin("2026-03-16T10:00")));
        assert_eq!(on_time.elapsed, h(1));
        let late = accepted_at(Timestamp::from_micros(berlin("2026-03-16T10:00").as_micros() + 1));
        assert_eq!(late.state, SlaState::Missed);
        assert_eq!(late.due_at, Some(berlin("2026-03-16T10:00")));
        assert_eq!(late.next_change(berlin("2026-03-17T09:00")), None);
    }

    #[test]
    fn a_due_time_passed_at_friday_close_is_missed_on_monday_morning() {
        let policy = policy(office(), &[]);
        let events = [
            registered(berlin("2026-03-20T16:00"), Priority::P2),
            ev(berlin("2026-03-23T09:00"), SlaEventKind::Accepted),
        ];
        let weekend = response(&policy, &events, berlin("2026-03-21T12:00"));
        assert_eq!(
            (weekend.state, weekend.due_at),
            (SlaState::Breached, Some(berlin("2026-03-20T17:00")))
        );
        assert_eq!(
            response(&policy, &events, berlin("2026-03-23T12:00")).state,
            SlaState::Missed
        );
    }

    #[test]
    fn registered_in_the_weekend_the_clock_starts_on_monday() {
        let policy = policy(office(), &[]);
        let events = [registered(berlin("2026-03-21T10:00"), Priority::P2)];
        let clock = response(&policy, &events, berlin("2026-03-22T10:00"));
        assert_eq!((clock.state, clock.elapsed), (SlaState::Within, Duration::ZERO));
        assert_eq!(clock.due_at, Some(berlin("2026-03-23T10:00")));
        assert_eq!(clock.at_risk_at, Some(berlin("2026-03-23T09:48")));
    }

    #[test]
    fn holds_pause_only_for_the_reasons_of_the_policy() {
        let policy = policy(office(), &[HoldReason::AwaitingUser]);
        let hold = |reason| {
            [
                registered(berlin("2026-03-16T09:00"), Priority::P2),
                ev(berlin("2026-03-16T09:30"), SlaEventKind::Accepted),
                ev(berlin("2026-03-16T11:00"), SlaEventKind::PutOnHold { reason }),
            ]
        };
        let now = berlin("2026-03-17T11:00");
        let waiting = resolution(&policy, &hold(HoldReason::AwaitingUser), now);
        assert!(waiting.paused);
        assert_eq!(
            (waiting.state, waiting.elapsed, waiting.remaining),
            (SlaState::Within, h(2), h(6))
        );
        assert_eq!((waiting.due_at, waiting.next_change(now)), (None, None));
        let other = resolution(&policy, &hold(HoldReason::AwaitingSupplier), now);
        assert!(!other.paused);
        assert_eq!((other.state, other.elapsed), (SlaState::Breached, h(10)));
        assert_eq!(other.due_at, Some(berlin("2026-03-16T17:00")));

        // Resumed Tuesday 10:00: the held night and morning do not count.
        let mut resumed = hold(HoldReason::AwaitingUser).to_vec();
        resumed.push(ev(berlin("2026-03-17T10:00"), SlaEventKind::Resumed));
        let clock = resolution(&policy, &resumed, now);
        assert!(!clock.paused);
        assert_eq!((clock.state, clock.elapsed), (SlaState::Within, h(3)));
        assert_eq!(clock.due_at, Some(berlin("2026-03-17T16:00")));
        assert_eq!(clock.at_risk_at, Some(berlin("2026-03-17T14:24")));
    }

    #[test]
    fn a_paused_clock_that_already_breached_stays_breached() {
        let policy = policy(office(), &[HoldReason::AwaitingUser]);
        let events = [
            registered(berlin("2026-03-16T09:00"), Priority::P1),
            ev(berlin("2026-03-16T09:05"), SlaEventKind::Accepted),
            ev(
                berlin("2026-03-16T14:00"),
                SlaEventKind::PutOnHold {
                    reason: HoldReason::AwaitingUser,
                },
            ),
        ];
        let clock = resolution(&policy, &events, berlin("2026-03-18T14:00"));
        assert!(clock.paused);
        assert_eq!(clock.state, SlaState::Breached);
        assert_eq!(clock.due_at, Some(berlin("2026-03-16T13:00")));
    }

    #[test]
    fn raising_the_priority_switches_the_target_and_can_breach_at_once() {
        let policy = policy(office(), &[]);
        let mut events = vec![
            registered(berlin("2026-03-16T09:00"), Priority::P3),
            ev(berlin("2026-03-16T09:10"), SlaEventKind::Accepted),
        ];
        let before = resolution(&policy, &events, berlin("2026-03-16T15:00"));
        assert_eq!(
            (before.state, before.target, before.elapsed),
            (SlaState::Within, h(16), h(6))
        );
        assert_eq!(before.due_at, Some(berlin("2026-03-17T17:00")));
        events.push(ev(
            berlin("2026-03-16T15:00"),
            SlaEventKind::PriorityChanged { priority: Priority::P1 },
        ));
        let after = report(&policy, &events, berlin("2026-03-16T15:00"));
        assert_eq!(after.priority, Priority::P1);
        let clock = after.resolution.expect("P1 target");
        assert_eq!(
            (clock.state, clock.target, clock.elapsed),
            (SlaState::Breached, h(4), h(6))
        );
        assert_eq!(clock.due_at, Some(berlin("2026-03-16T13:00")));
        // The response was met under P3 and keeps that verdict and target.
        let response = after.response.expect("response target");
        assert_eq!((response.state, response.target), (SlaState::Met, h(4)));
    }

    #[test]
    fn lowering_the_priority_moves_the_due_time_out_keeping_elapsed_time() {
        let policy = policy(office(), &[]);
        let events = [
            registered(berlin("2026-03-16T09:00"), Priority::P1),
            ev(berlin("2026-03-16T09:10"), SlaEventKind::Accepted),
            ev(
                berlin("2026-03-16T11:00"),
                SlaEventKind::PriorityChanged { priority: Priority::P2 },
            ),
        ];
        let clock = resolution(&policy, &events, berlin("2026-03-16T12:00"));
        assert_eq!(
            (clock.state, clock.elapsed, clock.target),
            (SlaState::Within, h(3), h(8))
        );
        assert_eq!(clock.due_at, Some(berlin("2026-03-16T17:00")));
    }

    #[test]
    fn the_time_between_resolution_and_reopening_does_not_count() {
        let policy = policy(office(), &[]);
        let mut events = vec![
            registered(berlin("2026-03-16T09:00"), Priority::P2),
            ev(berlin("2026-03-16T09:30"), SlaEventKind::Accepted),
            ev(berlin("2026-03-16T11:00"), SlaEventKind::Resolved),
        ];
        let resolved = resolution(&policy, &events, berlin("2026-03-17T15:00"));
        assert_eq!((resolved.state, resolved.elapsed), (SlaState::Met, h(2)));
        assert_eq!(resolved.stopped_at, Some(berlin("2026-03-16T11:00")));
        events.push(ev(berlin("2026-03-17T15:00"), SlaEventKind::Reopened));
        let reopened = resolution(&policy, &events, berlin("2026-03-17T16:00"));
        assert_eq!(
            (reopened.state, reopened.elapsed, reopened.stopped_at),
            (SlaState::Within, h(3), None)
        );
        assert_eq!(reopened.due_at, Some(berlin("2026-03-18T13:00")));
        events.push(ev(berlin("2026-03-18T14:00"), SlaEventKind::Resolved));
        let missed = resolution(&policy, &events, berlin("2026-03-19T09:00"));
        assert_eq!((missed.state, missed.elapsed), (SlaState::Missed, h(9)));
        assert_eq!(missed.due_at, Some(berlin("2026-03-18T13:00")));
        // Reopening does not touch the response.
        assert_eq!(
            response(&policy, &events, berlin("2026-03-19T09:00")).state,
            SlaState::Met
        );
    }

    #[test]
    fn a_never_accepted_incident_keeps_breaching() {
        let policy = policy(office(), &[]);
        let events = [registered(berlin("2026-03-16T09:00"), Priority::P2)];
        let report = report(&policy, &events, berlin("2026-03-30T09:00"));
        let response = report.response.expect("response");
        assert_eq!((response.state, response.elapsed), (SlaState::Breached, h(80)));
        assert_eq!(response.due_at, Some(berlin("2026-03-16T10:00")));
        assert_eq!(report.resolution.map(|c| c.state), Some(SlaState::Breached));
        assert_eq!(report.next_change(), None);
    }

    #[test]
    fn resolving_without_accepting_completes_the_response() {
        let policy = policy(office(), &[]);
        let events = [
            registered(berlin("2026-03-16T09:00"), Priority::P2),
            ev(berlin("2026-03-16T09:20"), SlaEventKind::Resolved),
            ev(berlin("2026-03-16T12:00"), SlaEventKind::Closed),
        ];
        let report = report(&policy, &events, berlin("2026-03-17T09:00"));
        assert_eq!(
            report.response.map(|c| (c.state, c.elapsed)),
            Some((SlaState::Met, m(20)))
        );
        assert_eq!(
            report.resolution.map(|c| (c.state, c.elapsed)),
            Some((SlaState::Met, m(20)))
        );
    }

    #[test]
    fn cancelling_stops_the_open_clocks_unmeasured() {
        let policy = policy(office(), &[]);
        let events = [
            registered(berlin("2026-03-16T09:00"), Priority::P2),
            ev(berlin("2026-03-16T09:30"), SlaEventKind::Accepted),
            ev(berlin("2026-03-16T12:00"), SlaEventKind::Cancelled),
            ev(berlin("2026-03-16T13:00"), SlaEventKind::Reopened),
            ev(berlin("2026-03-16T14:00"), SlaEventKind::Resolved),
        ];
        let report = report(&policy, &events, berlin("2026-03-20T09:00"));
        assert_eq!(report.response.map(|c| c.state), Some(SlaState::Met));
        let clock = report.resolution.expect("resolution");
        assert_eq!((clock.state, clock.elapsed), (SlaState::Cancelled, h(3)));
        assert_eq!(clock.stopped_at, Some(berlin("2026-03-16T12:00")));
        assert!(!clock.paused);
        assert_eq!(report.next_change(), None);
        let never_accepted = [
            registered(berlin("2026-03-16T09:00"), Priority::P2),
            ev(berlin("2026-03-16T12:00"), SlaEventKind::Cancelled),
        ];
        let report = self::report(&policy, &never_accepted, berlin("2026-03-20T09:00"));
        assert_eq!(report.response.map(|c| c.state), Some(SlaState::Cancelled));
    }

    #[test]
    fn a_24_hour_target_across_dst_is_24_real_hours() {
        let policy = policy(Calendar::always(), &[]);
        let targets = BTreeMap::from([(
            Priority::P1,
            SlaTargets {
                response: None,
                resolution: Some(h(24)),
            },
        )]);
        let policy = SlaPolicy::new(policy.calendar().clone(), targets, [], 80).expect("valid");
        let events = [registered(berlin("2026-03-28T12:00"), Priority::P1)];
        let clock = resolution(&policy, &events, berlin("2026-03-28T13:00"));
        assert_eq!(clock.due_at, Some(utc("2026-03-29T11:00:00Z")));
        assert_eq!(
            clock.at_risk_at,
            Some(Timestamp::from_micros(
                utc("2026-03-29T11:00:00Z").as_micros() - h(24).as_micros() / 5
            ))
        );
        assert_eq!(report(&policy, &events, berlin("2026-03-28T13:00")).response, None);
    }

    #[test]
    fn history_is_read_as_of_now_with_times_that_never_go_back() {
        let policy = policy(office(), &[]);
        let events = [
            registered(berlin("2026-03-16T09:00"), Priority::P2),
            // Claimed earlier than the registration: counts as at the registration.
            ev(berlin("2026-03-16T08:00"), SlaEventKind::Accepted),
            ev(berlin("2026-03-16T12:00"), SlaEventKind::Resolved),
        ];
        let clock = response(&policy, &events, berlin("2026-03-16T10:00"));
        assert_eq!((clock.state, clock.elapsed), (SlaState::Met, Duration::ZERO));
        // Before the resolution happened, the resolution clock still runs.
        let running = resolution(&policy, &events, berlin("2026-03-16T11:00"));
        assert_eq!((running.state, running.elapsed), (SlaState::Within, h(2)));
        assert!(policy.evaluate(&events, berlin("2026-03-16T08:59")).is_none());
        assert!(policy.evaluate(&events[1..], berlin("2026-03-17T08:59")).is_none());
    }

    #[test]
    fn priorities_without_targets_have_no_clocks() {
        let policy = policy(office(), &[]);
        let report = report(
            &policy,
            &[registered(berlin("2026-03-16T09:00"), Priority::P4)],
            berlin("2026-03-16T10:00"),
        );
        assert_eq!(report.response, None);
        assert!(report.resolution.is_some());
        let none = self::report(
            &policy,
            &[registered(berlin("2026-03-16T09:00"), Priority::P5)],
            berlin("2026-03-16T10:00"),
        );
        assert_eq!((none.response, none.resolution, none.next_change()), (None, None, None));
    }
}
