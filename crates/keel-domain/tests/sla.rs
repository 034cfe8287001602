//! SLA clocks through the public API: property tests of the working-time
//! arithmetic (inverse, additivity, monotonicity, and agreement with a
//! per-minute brute force across DST changes in several zones), of pauses
//! (a pause never brings a due time forward) and of policy evaluation (more
//! time never decreases elapsed time), plus a real timeline read end to end.

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use keel_domain::sla::{
    Calendar, CalendarSpec, Due, Duration, Pause, SlaEvent, SlaEventKind, SlaPolicy, SlaState, SlaTargets,
    WorkingHoursSpec, add_working_time, due_with_pauses, elapsed_with_pauses, events_from_timeline,
    working_time_between,
};
use keel_domain::{
    Actor, Change, ClassificationPatch, Command, HoldReason, Impact, Incident, Priority, PriorityMatrix,
    RegistrationInput, Role, Timestamp, Urgency, UserId, apply, decide, register,
};
use proptest::prelude::*;

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

const ZONES: [&str; 7] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Europe/London",
    "UTC",
];

/// Instants near DST changes of the zones above (2026), and one quiet one.
const NEAR: [&str; 9] = [
    "2026-03-29T01:00:00Z",
    "2026-10-25T01:00:00Z",
    "2026-03-08T07:00:00Z",
    "2026-11-01T06:00:00Z",
    "2026-04-04T15:00:00Z",
    "2026-10-03T15:30:00Z",
    "2026-04-05T03:00:00Z",
    "2026-09-06T04:00:00Z",
    "2026-06-15T12:00:00Z",
];

fn ts(text: &str) -> Timestamp {
    text.parse().expect("RFC 3339")
}

fn plus(at: Timestamp, micros: i64) -> Timestamp {
    Timestamp::from_micros(at.as_micros() + micros)
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("the system tzdb has the zone")
}

/// A generated working-hours calendar, kept in plain form for the oracle.
#[derive(Clone, Debug)]
struct Setup {
    zone: &'static str,
    /// Per weekday (Monday first), intervals in minutes of the day.
    week: [Vec<(i64, i64)>; 7],
    holidays: BTreeSet<jiff::civil::Date>,
}

impl Setup {
    fn calendar(&self) -> Calendar {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let clock = |minutes: i64| format!("{:02}:{:02}", minutes / 60, minutes % 60);
        let hours = names
            .iter()
            .zip(&self.week)
            .filter(|(_, intervals)| !intervals.is_empty())
            .map(|(name, intervals)| {
                (
                    name.to_string(),
                    intervals.iter().map(|&(s, e)| (clock(s), clock(e))).collect(),
                )
            })
            .collect();
        let spec = CalendarSpec::WorkingHours(WorkingHoursSpec {
            time_zone: self.zone.to_string(),
            hours,
            holidays: self.holidays.iter().map(ToString::to_string).collect(),
        });
        Calendar::from_spec(&spec, |name| TimeZone::get(name).ok()).expect("generated calendars are valid")
    }

    /// Whether a local wall-clock minute (minutes since 1970-01-01T00:00
    /// local) is a working one.
    fn works_at_local(&self, local_minute: i64) -> bool {
        let ts = jiff::Timestamp::from_second(local_minute * 60).expect("in range");
        let local = TimeZone::UTC.to_datetime(ts);
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
        self.week[local.weekday().to_monday_zero_offset() as usize]
            .iter()
            .any(|&(start, end)| start <= minute && minute < end)
    }

    /// Working minutes in `minutes` whole minutes from `from`, by brute force:
    /// a minute counts when the wall clock shows working time — the wall
    /// clock held at its highest reading while it repeats an hour, which is
    /// the calendar's rule "a local time is at its first occurrence". (A
    /// skipped hour needs no rule: its times are never shown.)
    fn count_minutes(&self, from: Timestamp, minutes: i64) -> i64 {
        let tz = zone(self.zone);
        let local_minute = |i: i64| {
            let at = jiff::Timestamp::from_microsecond(from.as_micros() + i * MINUTE).expect("in range");
            (at.as_second() + i64::from(tz.to_offset(at).seconds())).div_euclid(60)
        };
        // Clocks never go back by more than a few hours: a day of history is plenty.
        let mut highest = (-24 * 60..0).map(local_minute).max().unwrap_or(i64::MIN);
        let mut count = 0;
        for i in 0..minutes {
            highest = highest.max(local_minute(i));
            if self.works_at_local(highest) {
                count += 1;
            }
        }
        count
    }
}

/// Boundaries (in minutes) paired up into sorted, disjoint intervals.
fn intervals(step: i64) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::btree_set(0..=(24 * 60 / step), 0..7).prop_map(move |points| {
        let points: Vec<i64> = points.into_iter().map(|p| p * step).collect();
        points.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect()
    })
}

/// Calendars whose interval ends fall on multiples of `step` minutes.
fn setups(step: i64) -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(ZONES.to_vec()),
        prop::array::uniform7(intervals(step)),
        prop::collection::btree_set(0i64..400, 0..12),
    )
        .prop_map(|(zone, mut week, holiday_offsets)| {
            if week.iter().all(Vec::is_empty) {
                week[0].push((9 * 60, 17 * 60));
            }
            let first = jiff::civil::date(2026, 1, 1);
            let holidays = holiday_offsets
                .into_iter()
                .filter_map(|offset| first.checked_add(jiff::Span::new().days(offset)).ok())
                .collect();
            Setup { zone, week, holidays }
        })
}

/// An instant within ±12 days of a DST change, to the microsecond.
fn instants() -> impl Strategy<Value = Timestamp> {
    (prop::sample::select(NEAR.to_vec()), -12 * DAY..12 * DAY).prop_map(|(near, offset)| plus(ts(near), offset))
}

/// An instant within ±3 days of a DST change, on a whole minute.
fn minutes() -> impl Strategy<Value = Timestamp> {
    (prop::sample::select(NEAR.to_vec()), -3 * 24 * 60..3 * 24 * 60i64)
        .prop_map(|(near, offset)| plus(ts(near), offset * MINUTE))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn adding_working_time_is_the_inverse_of_measuring_it(
        setup in setups(15),
        from in instants(),
        micros in 0..70 * DAY,
    ) {
        let cal = setup.calendar();
        let duration = Duration::from_micros(micros);
        let due = add_working_time(&cal, from, duration);
        prop_assert!(due >= from);
        prop_assert_eq!(working_time_between(&cal, from, due), duration);
        if micros > 0 {
            // It lands inside working time or at the end of an interval: the
            // microsecond before counts, and it is the earliest such instant.
            let before = plus(due, -1);
            prop_assert!(cal.is_working_time(before), "{} is not working time", before);
            prop_assert_eq!(working_time_between(&cal, from, before), Duration::from_micros(micros - 1));
        }
    }

    #[test]
    fn working_time_adds_up_and_never_exceeds_real_time(
        setup in setups(15),
        a in instants(),
        b in instants(),
        c in instants(),
    ) {
        let cal = setup.calendar();
        let mut points = [a, b, c];
        points.sort();
        let [a, b, c] = points;
        let ab = working_time_between(&cal, a, b);
        let bc = working_time_between(&cal, b, c);
        prop_assert_eq!(working_time_between(&cal, a, c), ab + bc);
        prop_assert!(ab.as_micros() <= b.as_micros() - a.as_micros());
        prop_assert_eq!(working_time_between(&cal, c, a), Duration::ZERO);
    }

    #[test]
    fn more_time_never_means_less_working_time(
        setup in setups(30),
        from in instants(),
        d1 in 0..40 * DAY,
        d2 in 0..40 * DAY,
    ) {
        let cal = setup.calendar();
        let (short, long) = (d1.min(d2), d1.max(d2));
        let early = add_working_time(&cal, from, Duration::from_micros(short));
        let late = add_working_time(&cal, from, Duration::from_micros(long));
        prop_assert!(early <= late);
        prop_assert!(
            working_time_between(&cal, from, plus(from, short)) <= working_time_between(&cal, from, plus(from, long))
        );
        prop_assert!(
            working_time_between(&cal, plus(from, short), plus(from, long + DAY))
                <= working_time_between(&cal, from, plus(from, long + DAY))
        );
    }

    #[test]
    fn the_24x7_calendar_is_real_time(from in instants(), micros in 0..400 * DAY) {
        let cal = Calendar::always();
        let to = add_working_time(&cal, from, Duration::from_micros(micros));
        prop_assert_eq!(to, plus(from, micros));
        prop_assert_eq!(working_time_between(&cal, from, to), Duration::from_micros(micros));
    }
}

/// Each zone with the instants of its 2026 offset changes.
const CHANGES: [(&str, [&str; 2]); 6] = [
    ("Europe/Berlin", ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"]),
    ("Europe/London", ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"]),
    ("America/New_York", ["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"]),
    ("Australia/Lord_Howe", ["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"]),
    ("America/Santiago", ["2026-04-05T03:00:00Z", "2026-09-06T04:00:00Z"]),
    ("Asia/Kolkata", ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"]),
];

/// Quarter-hour interval ends, often in the small hours where clocks change.
fn night_intervals() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::btree_set(prop_oneof![0..=16i64, 0..=96i64], 0..7).prop_map(|points| {
        let points: Vec<i64> = points.into_iter().map(|p| p * 15).collect();
        points.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect()
    })
}

/// A calendar in a zone, and a whole-minute span that covers or nears one of
/// the zone's offset changes.
fn night_cases() -> impl Strategy<Value = (Setup, Timestamp, i64)> {
    (
        prop::sample::select(CHANGES.to_vec()),
        any::<bool>(),
        prop::array::uniform7(night_intervals()),
        -2 * 24 * 60..60i64,
        0..3 * 24 * 60i64,
    )
        .prop_map(|((zone, changes), second, mut week, offset, span)| {
            if week.iter().all(Vec::is_empty) {
                week[6].push((60, 4 * 60));
            }
            let change = ts(changes[usize::from(second)]);
            let setup = Setup {
                zone,
                week,
                holidays: BTreeSet::new(),
            };
            (setup, plus(change, offset * MINUTE), span)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Counting minute by minute with the wall clock gives the same answer,
    /// across DST changes, holidays and midnights.
    #[test]
    fn working_time_agrees_with_a_minute_by_minute_count(
        setup in setups(15),
        from in minutes(),
        span in 0..4 * 24 * 60i64,
    ) {
        let cal = setup.calendar();
        let to = plus(from, span * MINUTE);
        let counted = setup.count_minutes(from, span);
        prop_assert_eq!(working_time_between(&cal, from, to), Duration::from_mins(counted));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The same over the very nights the clocks change, with shifts that
    /// start or end in the skipped or repeated hour.
    #[test]
    fn working_time_over_dst_nights_agrees_with_a_minute_by_minute_count((setup, from, span) in night_cases()) {
        let cal = setup.calendar();
        let to = plus(from, span * MINUTE);
        let counted = setup.count_minutes(from, span);
        prop_assert_eq!(working_time_between(&cal, from, to), Duration::from_mins(counted));
        let due = add_working_time(&cal, from, Duration::from_mins(counted));
        prop_assert_eq!(working_time_between(&cal, from, due), Duration::from_mins(counted));
        prop_assert!(due <= to);
    }
}

// --- pauses ------------------------------------------------------------------

fn office() -> Calendar {
    let day = vec![("09:00".to_string(), "17:00".to_string())];
    let hours = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| (d.to_string(), day.clone()))
        .collect();
    let spec = CalendarSpec::WorkingHours(WorkingHoursSpec {
        time_zone: "Europe/Berlin".into(),
        hours,
        holidays: vec!["2026-04-03".into(), "2026-04-06".into()],
    });
    Calendar::from_spec(&spec, |name| TimeZone::get(name).ok()).expect("valid")
}

fn pauses(start: Timestamp) -> impl Strategy<Value = Vec<Pause>> {
    prop::collection::vec((0..30 * DAY, prop::option::weighted(0.8, 1..5 * DAY)), 0..4).prop_map(move |list| {
        list.into_iter()
            .map(|(offset, len)| Pause {
                from: plus(start, offset),
                until: len.map(|len| plus(start, offset + len)),
            })
            .collect()
    })
}

fn pause_case() -> impl Strategy<Value = (Timestamp, Vec<Pause>, Pause, i64, i64, i64)> {
    instants().prop_flat_map(|start| {
        (
            Just(start),
            pauses(start),
            pauses(start).prop_map(|p| p.into_iter().next()),
            0..30 * DAY,
            0..30 * DAY,
            HOUR..20 * DAY,
        )
            .prop_map(|(start, pauses, extra, t1, t2, target)| {
                let extra = extra.unwrap_or(Pause {
                    from: start,
                    until: Some(start),
                });
                (start, pauses, extra, t1, t2, target)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_pause_never_brings_the_due_time_forward(
        (start, pauses, extra, t1, _t2, target) in pause_case(),
        always in any::<bool>(),
    ) {
        let cal = if always { Calendar::always() } else { office() };
        let now = plus(start, t1);
        let target = Duration::from_micros(target);
        let mut more = pauses.clone();
        more.push(extra);
        let elapsed = elapsed_with_pauses(&cal, start, &pauses, now);
        let elapsed_more = elapsed_with_pauses(&cal, start, &more, now);
        prop_assert!(elapsed_more <= elapsed);
        prop_assert!(elapsed <= working_time_between(&cal, start, now));
        match (due_with_pauses(&cal, start, target, &pauses, now), due_with_pauses(&cal, start, target, &more, now)) {
            (Due::At(without), Due::At(with)) => prop_assert!(with >= without, "{} < {}", with, without),
            (Due::Paused { .. }, Due::At(_)) => prop_assert!(false, "an extra pause resumed the clock"),
            (_, Due::Paused { remaining }) => prop_assert_eq!(remaining, target - elapsed_more),
        }
    }

    #[test]
    fn paused_elapsed_time_never_decreases_with_time(
        (start, pauses, _extra, t1, t2, target) in pause_case(),
    ) {
        let cal = office();
        let (a, b) = (plus(start, t1.min(t2)), plus(start, t1.max(t2)));
        prop_assert!(elapsed_with_pauses(&cal, start, &pauses, a) <= elapsed_with_pauses(&cal, start, &pauses, b));
        // A due time, once it has passed, stays where it was.
        if let Due::At(due) = due_with_pauses(&cal, start, Duration::from_micros(target), &pauses, a)
            && due <= a
        {
            prop_assert_eq!(due_with_pauses(&cal, start, Duration::from_micros(target), &pauses, b), Due::At(due));
        }
    }
}

// --- policies ----------------------------------------------------------------

fn policy(calendar: Calendar) -> SlaPolicy {
    let targets = BTreeMap::from([
        (
            Priority::P1,
            SlaTargets {
                response: Some(Duration::from_mins(15)),
                resolution: Some(Duration::from_hours(4)),
            },
        ),
        (
            Priority::P2,
            SlaTargets {
                response: Some(Duration::from_hours(1)),
                resolution: Some(Duration::from_hours(8)),
            },
        ),
        (
            Priority::P3,
            SlaTargets {
                response: Some(Duration::from_hours(4)),
                resolution: Some(Duration::from_hours(24)),
            },
        ),
    ]);
    SlaPolicy::new(
        calendar,
        targets,
        [HoldReason::AwaitingUser, HoldReason::AwaitingSupplier],
        80,
    )
    .expect("valid")
}

fn priorities() -> impl Strategy<Value = Priority> {
    prop::sample::select(vec![Priority::P1, Priority::P2, Priority::P3])
}

fn kinds() -> impl Strategy<Value = SlaEventKind> {
    prop_oneof![
        Just(SlaEventKind::Accepted),
        prop::sample::select(vec![
            HoldReason::AwaitingUser,
            HoldReason::AwaitingSupplier,
            HoldReason::AwaitingChange,
            HoldReason::Other
        ])
        .prop_map(|reason| SlaEventKind::PutOnHold { reason }),
        Just(SlaEventKind::Resumed),
        Just(SlaEventKind::Resolved),
        Just(SlaEventKind::Reopened),
        Just(SlaEventKind::Closed),
        Just(SlaEventKind::Cancelled),
        priorities().prop_map(|priority| SlaEventKind::PriorityChanged { priority }),
    ]
}

/// A registration followed by arbitrary events (not necessarily legal ones:
/// the evaluation must cope) at increasing times.
fn histories() -> impl Strategy<Value = Vec<SlaEvent>> {
    (
        instants(),
        priorities(),
        prop::collection::vec((0..2 * DAY, kinds()), 0..12),
    )
        .prop_map(|(start, priority, steps)| {
            let mut at = start;
            let mut events = vec![SlaEvent {
                at,
                kind: SlaEventKind::Registered { priority },
            }];
            for (gap, kind) in steps {
                at = plus(at, gap);
                events.push(SlaEvent { at, kind });
            }
            events
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn clocks_never_lose_elapsed_time_and_states_match_their_instants(
        events in histories(),
        t1 in 0..20 * DAY,
        t2 in 0..20 * DAY,
        always in any::<bool>(),
    ) {
        let policy = policy(if always { Calendar::always() } else { office() });
        let start = events[0].at;
        let (a, b) = (plus(start, t1.min(t2)), plus(start, t1.max(t2)));
        let early = policy.evaluate(&events, a).expect("registered");
        let late = policy.evaluate(&events, b).expect("registered");
        for (early, late) in [(early.response, late.response), (early.resolution, late.resolution)] {
            if let (Some(early), Some(late)) = (early, late) {
                prop_assert!(early.elapsed <= late.elapsed);
            }
        }
        for report in [early, late] {
            let now = report.as_of;
            for clock in [report.response, report.resolution].into_iter().flatten() {
                prop_assert_eq!(clock.remaining, clock.target - clock.elapsed);
                match clock.state {
                    SlaState::Breached => prop_assert!(clock.due_at.is_some_and(|due| due <= now)),
                    SlaState::AtRisk => {
                        prop_assert!(clock.at_risk_at.is_some_and(|at| at <= now));
                        prop_assert!(clock.due_at.is_none_or(|due| due > now));
                    }
                    SlaState::Within => {
                        prop_assert!(clock.at_risk_at.is_none_or(|at| at > now));
                        prop_assert!(clock.elapsed < clock.target || clock.target == Duration::ZERO);
                    }
                    SlaState::Met => prop_assert!(clock.stopped_at.is_some()),
                    SlaState::Missed => prop_assert!(clock.due_at.zip(clock.stopped_at).is_some_and(|(d, s)| d < s)),
                    SlaState::Cancelled => prop_assert!(clock.stopped_at.is_some()),
                }
                if clock.state.is_open() && !clock.paused {
                    prop_assert!(clock.due_at.is_some());
                }
                if let Some(next) = clock.next_change(now) {
                    prop_assert!(next > now);
                }
            }
            let quiet = |next: Timestamp| events.iter().all(|e| e.at <= now || e.at > next);
            if let Some(next) = report.next_change().filter(|&next| quiet(next)) {
                // At the timer the state has changed.
                let then = policy.evaluate(&events, next).expect("registered");
                let before = [report.response, report.resolution].map(|c| c.map(|c| c.state));
                let after = [then.response, then.resolution].map(|c| c.map(|c| c.state));
                prop_assert_ne!(before, after);
            }
        }
    }

    #[test]
    fn a_pausing_hold_never_brings_a_due_time_forward(
        priority in priorities(),
        start in instants(),
        hold_at in 0..3 * DAY,
        hold_for in 0..3 * DAY,
        now in 0..6 * DAY,
    ) {
        let policy = policy(office());
        let registered = SlaEvent { at: start, kind: SlaEventKind::Registered { priority } };
        let hold = [
            SlaEvent { at: plus(start, hold_at), kind: SlaEventKind::PutOnHold { reason: HoldReason::AwaitingUser } },
            SlaEvent { at: plus(start, hold_at + hold_for), kind: SlaEventKind::Resumed },
        ];
        let now = plus(start, now);
        let plain = policy.evaluate(&[registered], now).expect("registered");
        let held = policy.evaluate(&[registered, hold[0], hold[1]], now).expect("registered");
        for (plain, held) in [(plain.response, held.response), (plain.resolution, held.resolution)] {
            let (plain, held) = (plain.expect("target"), held.expect("target"));
            prop_assert!(held.elapsed <= plain.elapsed);
            if let (Some(without), Some(with)) = (plain.due_at, held.due_at) {
                prop_assert!(with >= without);
            }
        }
    }
}

// --- a real timeline ---------------------------------------------------------

/// A timeline built by the real lifecycle, with times we choose.
struct Timeline {
    actor: Actor,
    incident: Option<Incident>,
    entries: Vec<(Timestamp, Change)>,
}

impl Timeline {
    fn open(at: Timestamp, impact: u8, urgency: u8) -> Self {
        let actor = Actor {
            user: UserId::new("agent"),
            role: Role::Agent,
        };
        let input = RegistrationInput {
            title: "mail is down".into(),
            impact: Some(Impact::try_from(impact).expect("1..4")),
            urgency: Some(Urgency::try_from(urgency).expect("1..4")),
            ..RegistrationInput::default()
        };
        let change = register(input, 1, &actor, &PriorityMatrix::default()).expect("valid registration");
        let mut timeline = Self {
            actor,
            incident: None,
            entries: Vec::new(),
        };
        timeline.append(at, change);
        timeline
    }

    fn append(&mut self, at: Timestamp, change: Change) {
        let seq = self.entries.len() as u64 + 1;
        self.incident = apply(self.incident.take(), "inc-1", seq, &self.actor.user, at, &change);
        self.entries.push((at, change));
    }

    fn run(&mut self, at: Timestamp, command: Command) {
        let incident = self.incident.clone().expect("registered");
        for change in decide(&incident, command, &self.actor, &PriorityMatrix::default()).expect("legal") {
            self.append(at, change);
        }
    }

    fn events(&self) -> Vec<SlaEvent> {
        let borrowed: Vec<(Timestamp, &Change)> = self.entries.iter().map(|(at, change)| (*at, change)).collect();
        events_from_timeline(&borrowed)
    }
}

fn berlin(text: &str) -> Timestamp {
    let civil: jiff::civil::DateTime = text.parse().expect("civil");
    let zoned = civil.to_zoned(zone("Europe/Berlin")).expect("in range");
    Timestamp::from_micros(zoned.timestamp().as_microsecond())
}

#[test]
fn a_lifecycle_timeline_drives_the_clocks() {
    // Impact 2 × urgency 2 is P3 in the default matrix; 1 × 1 is P1.
    let mut timeline = Timeline::open(berlin("2026-03-16T09:00"), 2, 2);
    timeline.run(
        berlin("2026-03-16T09:30"),
        Command::Comment {
            body: "looking".into(),
            visibility: keel_domain::Visibility::Internal,
        },
    );
    timeline.run(berlin("2026-03-16T10:00"), Command::Accept);
    timeline.run(
        berlin("2026-03-16T11:00"),
        Command::Reclassify(Box::new(ClassificationPatch {
            impact: Some(Impact::try_from(1).expect("1")),
            urgency: Some(Urgency::try_from(1).expect("1")),
            ..ClassificationPatch::default()
        })),
    );
    timeline.run(
        berlin("2026-03-16T12:00"),
        Command::Hold {
            reason: HoldReason::AwaitingUser,
            note: None,
        },
    );
    timeline.run(berlin("2026-03-17T10:00"), Command::Resume { note: None });
    timeline.run(
        berlin("2026-03-17T11:00"),
        Command::Resolve {
            code: "fixed".into(),
            notes: "restarted the relay".into(),
            workaround: None,
            known_solution: false,
            automated: false,
        },
    );
    timeline.run(
        berlin("2026-03-18T09:00"),
        Command::Reopen {
            reason: "back again".into(),
        },
    );

    let events = timeline.events();
    let kinds: Vec<SlaEventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            SlaEventKind::Registered { priority: Priority::P3 },
            SlaEventKind::Accepted,
            SlaEventKind::PriorityChanged { priority: Priority::P1 },
            SlaEventKind::PutOnHold {
                reason: HoldReason::AwaitingUser
            },
            SlaEventKind::Resumed,
            SlaEventKind::Resolved,
            SlaEventKind::Reopened,
        ]
    );

    let policy = policy(office());
    let report = policy
        .evaluate(&events, berlin("2026-03-18T09:30"))
        .expect("registered");
    assert_eq!(report.priority, Priority::P1);
    let response = report.response.expect("response");
    // Accepted after 1h under P3 (4h): met, and the later P1 does not change that.
    assert_eq!(
        (response.state, response.target, response.elapsed),
        (SlaState::Met, Duration::from_hours(4), Duration::from_hours(1))
    );
    let resolution = report.resolution.expect("resolution");
    // 09:00–12:00 Monday, 10:00–11:00 Tuesday, 09:00–09:30 Wednesday: 4h30 ≥ P1's 4h.
    assert_eq!(resolution.elapsed, Duration::from_mins(270));
    assert_eq!(resolution.state, SlaState::Breached);
    // It reached P1's 4h at the first resolution (met then) and is breached from the reopen on.
    assert_eq!(resolution.due_at, Some(berlin("2026-03-17T11:00")));
    assert_eq!(resolution.at_risk_at, Some(berlin("2026-03-17T10:12")));
}

/// Timings, for the record: `cargo test --release -p keel-domain --test sla -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn timings() {
    use std::hint::black_box;
    use std::time::Instant;
    let cal = office();
    let ny = {
        let day = vec![
            ("08:00".to_string(), "12:00".to_string()),
            ("13:00".to_string(), "18:00".to_string()),
        ];
        let hours = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| (d.to_string(), day.clone()))
            .collect();
        let spec = CalendarSpec::WorkingHours(WorkingHoursSpec {
            time_zone: "America/New_York".into(),
            hours,
            holidays: vec![
                "2026-07-03".into(),
                "2026-09-07".into(),
                "2026-11-26".into(),
                "2026-12-25".into(),
            ],
        });
        Calendar::from_spec(&spec, |name| TimeZone::get(name).ok()).expect("valid")
    };
    let start = ts("2026-02-02T10:17:00Z");
    let runs = 100_000;
    let time = |name: &str, f: &dyn Fn(i64) -> i64| {
        let began = Instant::now();
        let mut sum = 0i64;
        for i in 0..runs {
            sum = sum.wrapping_add(f(i));
        }
        let each = began.elapsed() / runs as u32;
        println!("{name:<60} {each:>10.2?} per call ({})", sum % 7);
    };
    for (label, cal) in [
        ("Berlin office", &cal),
        ("New York split day", &ny),
        ("24x7", &Calendar::always()),
    ] {
        time(&format!("{label}: add 30 days × 8h of working time"), &|i| {
            add_working_time(black_box(cal), plus(start, i * MINUTE), Duration::from_hours(240)).as_micros()
        });
        time(&format!("{label}: add 720h of working time"), &|i| {
            add_working_time(black_box(cal), plus(start, i * MINUTE), Duration::from_hours(720)).as_micros()
        });
        time(&format!("{label}: working time over a year"), &|i| {
            working_time_between(black_box(cal), plus(start, i * MINUTE), plus(start, 365 * DAY)).as_micros()
        });
        time(&format!("{label}: working time over 2 hours"), &|i| {
            working_time_between(
                black_box(cal),
                plus(start, i * MINUTE),
                plus(start, i * MINUTE + 2 * HOUR),
            )
            .as_micros()
        });
    }
    let policy = policy(cal.clone());
    let events = [
        SlaEvent {
            at: start,
            kind: SlaEventKind::Registered { priority: Priority::P3 },
        },
        SlaEvent {
            at: plus(start, HOUR),
            kind: SlaEventKind::Accepted,
        },
        SlaEvent {
            at: plus(start, 3 * HOUR),
            kind: SlaEventKind::PutOnHold {
                reason: HoldReason::AwaitingUser,
            },
        },
        SlaEvent {
            at: plus(start, 2 * DAY),
            kind: SlaEventKind::Resumed,
        },
        SlaEvent {
            at: plus(start, 3 * DAY),
            kind: SlaEventKind::PriorityChanged { priority: Priority::P2 },
        },
    ];
    time("policy: evaluate an open incident with a hold, 10 days on", &|i| {
        let report = policy
            .evaluate(black_box(&events), plus(start, 10 * DAY + i * MINUTE))
            .expect("registered");
        report.resolution.and_then(|c| c.due_at).map_or(0, Timestamp::as_micros)
    });
}
