//! On-call schedules through the public API: rotations across DST changes
//! (Europe/Berlin, America/New_York), restrictions, layer precedence,
//! overrides, gaps, validation, the JSON shape and the iCalendar feed; then
//! property tests against a naive reference model (walks every hand-off from
//! the layer's start) and on the shape of the flattened schedule.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Unit};
use keel_domain::oncall::{
    Day, Layer, OnCall, Override, Restriction, Rotation, Schedule, Shift, ShiftSource, TimeOfDay, ical_feed, shifts,
    shifts_for_user, who_is_on_call,
};
use keel_domain::{DomainError, Timestamp, UserId};
use proptest::prelude::*;

const HOUR: i64 = 3_600_000_000;

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).expect("the system has a time zone database")
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("an RFC 3339 instant")
}

fn local(text: &str) -> DateTime {
    text.parse().expect("a civil date-time")
}

fn layer(names: &[&str], rotation: Rotation, start: &str) -> Layer {
    Layer {
        users: names.iter().map(|n| UserId::new(*n)).collect(),
        rotation,
        start: local(start),
        end: None,
        restrictions: Vec::new(),
    }
}

fn schedule(zone: &str, layers: Vec<Layer>, overrides: Vec<Override>) -> Schedule {
    let schedule = Schedule {
        time_zone: zone.into(),
        layers,
        overrides,
    };
    schedule.validate().expect("a valid schedule");
    schedule
}

fn cover(user: &str, start: &str, end: &str) -> Override {
    Override {
        user: UserId::new(user),
        start: at(start),
        end: at(end),
    }
}

fn hours(from: &str, to: &str) -> Restriction {
    Restriction {
        days: Day::WEEKDAYS.to_vec(),
        from: from.parse().expect("a time of day"),
        to: to.parse().expect("a time of day"),
    }
}

/// (user, start, end) of each shift, as text.
fn table(shifts: &[Shift]) -> Vec<(String, String, String)> {
    shifts
        .iter()
        .map(|s| (s.user.to_string(), s.start.to_string(), s.end.to_string()))
        .collect()
}

fn row(user: &str, start: &str, end: &str) -> (String, String, String) {
    (user.into(), start.into(), end.into())
}

fn length_hours(shift: &Shift) -> i64 {
    (shift.end.as_micros() - shift.start.as_micros()) / HOUR
}

fn local_of(tz: &TimeZone, t: Timestamp) -> DateTime {
    tz.to_datetime(jiff::Timestamp::from_microsecond(t.as_micros()).expect("in range"))
}

fn on_call(schedule: &Schedule, tz: &TimeZone, t: &str) -> Option<OnCall> {
    who_is_on_call(schedule, tz, at(t))
}

fn expect_on_call(answer: Option<OnCall>, user: &str, since: &str, until: &str) {
    let answer = answer.expect("someone is on call");
    assert_eq!(answer.user.as_str(), user);
    assert_eq!(answer.since, Some(at(since)), "since");
    assert_eq!(answer.until, Some(at(until)), "until");
}

// ---------------------------------------------------------------------------
// Rotations and DST
// ---------------------------------------------------------------------------

#[test]
fn daily_rotation_hands_off_at_nine_local_across_berlin_spring_forward() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob", "carol"], Rotation::Days(1), "2026-03-27T09:00")],
        vec![],
    );
    let got = shifts(&s, &tz, at("2026-03-27T08:00:00Z"), at("2026-03-31T07:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("alice", "2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z"),
            row("bob", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"),
            row("carol", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"),
            row("alice", "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"),
        ]
    );
    assert_eq!(got.iter().map(length_hours).collect::<Vec<_>>(), [24, 23, 24, 24]);
    for shift in &got {
        assert_eq!(local_of(&tz, shift.start).time().to_string(), "09:00:00");
        assert_eq!(shift.source, ShiftSource::Layer(0));
    }
    expect_on_call(
        on_call(&s, &tz, "2026-03-29T00:30:00Z"),
        "bob",
        "2026-03-28T08:00:00Z",
        "2026-03-29T07:00:00Z",
    );
}

#[test]
fn daily_rotation_hands_off_at_nine_local_across_berlin_fall_back() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob", "carol"], Rotation::Days(1), "2026-10-23T09:00")],
        vec![],
    );
    let got = shifts(&s, &tz, at("2026-10-23T07:00:00Z"), at("2026-10-26T08:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("alice", "2026-10-23T07:00:00Z", "2026-10-24T07:00:00Z"),
            row("bob", "2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z"),
            row("carol", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"),
        ]
    );
    assert_eq!(got.iter().map(length_hours).collect::<Vec<_>>(), [24, 25, 24]);
    expect_on_call(
        on_call(&s, &tz, "2026-10-25T01:30:00Z"),
        "bob",
        "2026-10-24T07:00:00Z",
        "2026-10-25T08:00:00Z",
    );
}

#[test]
fn weekly_rotation_hands_off_on_monday_at_nine_local() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob"], Rotation::Weeks(1), "2026-03-23T09:00")],
        vec![],
    );
    let got = shifts(&s, &tz, at("2026-03-23T08:00:00Z"), at("2026-04-13T07:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("alice", "2026-03-23T08:00:00Z", "2026-03-30T07:00:00Z"),
            row("bob", "2026-03-30T07:00:00Z", "2026-04-06T07:00:00Z"),
            row("alice", "2026-04-06T07:00:00Z", "2026-04-13T07:00:00Z"),
        ]
    );
    assert_eq!(got.iter().map(length_hours).collect::<Vec<_>>(), [167, 168, 168]);
    for shift in &got {
        let start = local_of(&tz, shift.start);
        assert_eq!(start.weekday(), jiff::civil::Weekday::Monday);
        assert_eq!(start.time().to_string(), "09:00:00");
    }
    expect_on_call(
        on_call(&s, &tz, "2026-04-05T21:59:00Z"),
        "bob",
        "2026-03-30T07:00:00Z",
        "2026-04-06T07:00:00Z",
    );
}

#[test]
fn twelve_hour_rotation_stays_twelve_real_hours_across_dst() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob"], Rotation::Hours(12), "2026-03-28T09:00")],
        vec![],
    );
    let got = shifts(&s, &tz, at("2026-03-28T08:00:00Z"), at("2026-03-30T08:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("alice", "2026-03-28T08:00:00Z", "2026-03-28T20:00:00Z"),
            row("bob", "2026-03-28T20:00:00Z", "2026-03-29T08:00:00Z"),
            row("alice", "2026-03-29T08:00:00Z", "2026-03-29T20:00:00Z"),
            row("bob", "2026-03-29T20:00:00Z", "2026-03-30T08:00:00Z"),
        ]
    );
    // The wall clock moved, so the local hand-off time did too: 09:00 → 10:00.
    assert_eq!(local_of(&tz, got[2].start).time().to_string(), "10:00:00");
    let autumn = shifts(&s, &tz, at("2026-10-24T08:00:00Z"), at("2026-10-27T08:00:00Z"));
    assert!(autumn.iter().all(|shift| length_hours(shift) == 12), "{autumn:?}");
    assert_eq!(autumn.len(), 6);
}

#[test]
fn new_york_daily_rotation_across_both_transitions() {
    let tz = zone("America/New_York");
    let spring = schedule(
        "America/New_York",
        vec![layer(&["a", "b", "c"], Rotation::Days(1), "2026-03-06T08:00")],
        vec![],
    );
    assert_eq!(
        table(&shifts(
            &spring,
            &tz,
            at("2026-03-06T13:00:00Z"),
            at("2026-03-09T12:00:00Z")
        )),
        vec![
            row("a", "2026-03-06T13:00:00Z", "2026-03-07T13:00:00Z"),
            row("b", "2026-03-07T13:00:00Z", "2026-03-08T12:00:00Z"),
            row("c", "2026-03-08T12:00:00Z", "2026-03-09T12:00:00Z"),
        ]
    );
    let fall = schedule(
        "America/New_York",
        vec![layer(&["a", "b", "c"], Rotation::Days(1), "2026-10-31T08:00")],
        vec![],
    );
    let got = shifts(&fall, &tz, at("2026-10-31T12:00:00Z"), at("2026-11-02T13:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("a", "2026-10-31T12:00:00Z", "2026-11-01T13:00:00Z"),
            row("b", "2026-11-01T13:00:00Z", "2026-11-02T13:00:00Z"),
        ]
    );
    assert_eq!(length_hours(&got[0]), 25);
}

#[test]
fn hand_offs_in_the_gap_move_forward_and_in_the_fold_take_the_earlier_time() {
    let tz = zone("America/New_York");
    // 02:30 does not exist on 2026-03-08: that hand-off happens at 03:30 EDT.
    let gap = schedule(
        "America/New_York",
        vec![layer(&["a", "b"], Rotation::Days(1), "2026-03-07T02:30")],
        vec![],
    );
    assert_eq!(
        table(&shifts(
            &gap,
            &tz,
            at("2026-03-07T07:30:00Z"),
            at("2026-03-09T06:30:00Z")
        )),
        vec![
            row("a", "2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z"),
            row("b", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"),
        ]
    );
    // 01:30 happens twice on 2026-11-01: the hand-off is at the first (EDT).
    let fold = schedule(
        "America/New_York",
        vec![layer(&["a", "b"], Rotation::Days(1), "2026-10-31T01:30")],
        vec![],
    );
    assert_eq!(
        table(&shifts(
            &fold,
            &tz,
            at("2026-10-31T05:30:00Z"),
            at("2026-11-02T06:30:00Z")
        )),
        vec![
            row("a", "2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z"),
            row("b", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"),
        ]
    );
}

#[test]
fn rotations_that_started_long_ago_are_computed_arithmetically() {
    let tz = zone("Europe/Berlin");
    let daily = schedule(
        "Europe/Berlin",
        vec![layer(&["a", "b", "c"], Rotation::Days(1), "1990-01-07T09:00")],
        vec![],
    );
    let days = Date::new(1990, 1, 7)
        .expect("valid")
        .until((Unit::Day, Date::new(2026, 3, 29).expect("valid")))
        .expect("in range")
        .get_days();
    let expected = ["a", "b", "c"][usize::try_from(days % 3).expect("small")];
    expect_on_call(
        on_call(&daily, &tz, "2026-03-29T12:00:00Z"),
        expected,
        "2026-03-29T07:00:00Z",
        "2026-03-30T07:00:00Z",
    );

    let hourly = schedule(
        "UTC",
        vec![layer(
            &["a", "b", "c", "d", "e", "f", "g"],
            Rotation::Hours(1),
            "1990-01-01T00:00",
        )],
        vec![],
    );
    let t = at("2026-06-15T10:30:00Z");
    let turns = (t.as_micros() - at("1990-01-01T00:00:00Z").as_micros()) / HOUR;
    let expected = ["a", "b", "c", "d", "e", "f", "g"][usize::try_from(turns % 7).expect("small")];
    expect_on_call(
        who_is_on_call(&hourly, &TimeZone::UTC, t),
        expected,
        "2026-06-15T10:00:00Z",
        "2026-06-15T11:00:00Z",
    );
}

#[test]
fn a_single_person_rotation_never_hands_off() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["solo", "solo"], Rotation::Hours(1), "2026-01-01T00:00")],
        vec![],
    );
    let answer = on_call(&s, &tz, "2026-03-01T12:00:00Z").expect("on call");
    assert_eq!(answer.user.as_str(), "solo");
    assert_eq!(answer.since, Some(at("2025-12-31T23:00:00Z")));
    assert_eq!(answer.until, None, "no change within the horizon");

    // The same person on a business-hours layer above: still one endless shift.
    let mut office = layer(&["solo"], Rotation::Days(1), "2026-01-01T09:00");
    office.restrictions = vec![hours("09:00", "17:00")];
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["solo"], Rotation::Weeks(1), "2026-01-01T00:00"), office],
        vec![],
    );
    let answer = on_call(&s, &tz, "2026-03-02T12:00:00Z").expect("on call");
    assert_eq!((answer.since, answer.until), (Some(at("2025-12-31T23:00:00Z")), None));
}

// ---------------------------------------------------------------------------
// Layers, restrictions, overrides, gaps
// ---------------------------------------------------------------------------

#[test]
fn business_hours_layer_wins_over_the_24x7_layer_where_active() {
    let tz = zone("Europe/Berlin");
    let mut day = layer(&["alice", "bob"], Rotation::Weeks(1), "2026-03-02T09:00");
    day.restrictions = vec![hours("09:00", "17:00")];
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["ops"], Rotation::Weeks(1), "2026-03-02T00:00"), day],
        vec![],
    );
    let got = shifts(&s, &tz, at("2026-03-01T23:00:00Z"), at("2026-03-03T23:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("ops", "2026-03-01T23:00:00Z", "2026-03-02T08:00:00Z"),
            row("alice", "2026-03-02T08:00:00Z", "2026-03-02T16:00:00Z"),
            row("ops", "2026-03-02T16:00:00Z", "2026-03-03T08:00:00Z"),
            row("alice", "2026-03-03T08:00:00Z", "2026-03-03T16:00:00Z"),
            row("ops", "2026-03-03T16:00:00Z", "2026-03-03T23:00:00Z"),
        ]
    );
    assert_eq!(got[1].source, ShiftSource::Layer(1));
    assert_eq!(got[2].source, ShiftSource::Layer(0));
    // The weekend is all ops; the rotation ran on behind the restriction: week 2 is bob's.
    assert_eq!(
        table(&shifts(&s, &tz, at("2026-03-06T23:00:00Z"), at("2026-03-08T23:00:00Z"))),
        vec![row("ops", "2026-03-06T23:00:00Z", "2026-03-08T23:00:00Z")]
    );
    expect_on_call(
        on_call(&s, &tz, "2026-03-07T12:00:00Z"),
        "ops",
        "2026-03-06T16:00:00Z",
        "2026-03-09T08:00:00Z",
    );
    let monday = on_call(&s, &tz, "2026-03-09T12:00:00Z").expect("on call");
    assert_eq!(monday.source, ShiftSource::Layer(1));
    expect_on_call(Some(monday), "bob", "2026-03-09T08:00:00Z", "2026-03-09T16:00:00Z");
}

#[test]
fn overnight_and_whole_day_restrictions() {
    let tz = zone("Europe/Berlin");
    let mut nights = layer(&["owl"], Rotation::Days(1), "2026-03-02T00:00");
    nights.restrictions = vec![
        Restriction {
            days: vec![Day::Friday],
            from: "22:00".parse().expect("valid"),
            to: "06:00".parse().expect("valid"),
        },
        Restriction {
            days: vec![Day::Sunday],
            from: "00:00".parse().expect("valid"),
            to: TimeOfDay::END_OF_DAY,
        },
    ];
    let s = schedule("Europe/Berlin", vec![nights], vec![]);
    assert_eq!(
        table(&shifts(&s, &tz, at("2026-03-02T00:00:00Z"), at("2026-03-10T00:00:00Z"))),
        vec![
            row("owl", "2026-03-06T21:00:00Z", "2026-03-07T05:00:00Z"),
            row("owl", "2026-03-07T23:00:00Z", "2026-03-08T23:00:00Z"),
        ]
    );
}

#[test]
fn a_holiday_override_splits_the_shift_around_it() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob"], Rotation::Days(1), "2026-05-04T09:00")],
        vec![cover("carol", "2026-05-04T10:00:00Z", "2026-05-04T13:00:00Z")],
    );
    let got = shifts(&s, &tz, at("2026-05-04T07:00:00Z"), at("2026-05-06T07:00:00Z"));
    assert_eq!(
        table(&got),
        vec![
            row("alice", "2026-05-04T07:00:00Z", "2026-05-04T10:00:00Z"),
            row("carol", "2026-05-04T10:00:00Z", "2026-05-04T13:00:00Z"),
            row("alice", "2026-05-04T13:00:00Z", "2026-05-05T07:00:00Z"),
            row("bob", "2026-05-05T07:00:00Z", "2026-05-06T07:00:00Z"),
        ]
    );
    assert_eq!(
        got.iter().map(|s| s.source).collect::<Vec<_>>(),
        [
            ShiftSource::Layer(0),
            ShiftSource::Override(0),
            ShiftSource::Layer(0),
            ShiftSource::Layer(0)
        ]
    );
    let carol = on_call(&s, &tz, "2026-05-04T11:00:00Z").expect("on call");
    assert_eq!(carol.source, ShiftSource::Override(0));
    expect_on_call(Some(carol), "carol", "2026-05-04T10:00:00Z", "2026-05-04T13:00:00Z");
    expect_on_call(
        on_call(&s, &tz, "2026-05-04T14:00:00Z"),
        "alice",
        "2026-05-04T13:00:00Z",
        "2026-05-05T07:00:00Z",
    );
    assert_eq!(
        table(&shifts_for_user(
            &s,
            &tz,
            &UserId::new("alice"),
            at("2026-05-04T07:00:00Z"),
            at("2026-05-06T07:00:00Z")
        )),
        vec![
            row("alice", "2026-05-04T07:00:00Z", "2026-05-04T10:00:00Z"),
            row("alice", "2026-05-04T13:00:00Z", "2026-05-05T07:00:00Z"),
        ]
    );
}

#[test]
fn a_swap_is_two_overrides() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob"], Rotation::Weeks(1), "2026-06-01T09:00")],
        vec![
            cover("bob", "2026-06-03T07:00:00Z", "2026-06-04T07:00:00Z"),
            cover("alice", "2026-06-10T07:00:00Z", "2026-06-11T07:00:00Z"),
        ],
    );
    assert_eq!(
        table(&shifts(&s, &tz, at("2026-06-01T07:00:00Z"), at("2026-06-15T07:00:00Z"))),
        vec![
            row("alice", "2026-06-01T07:00:00Z", "2026-06-03T07:00:00Z"),
            row("bob", "2026-06-03T07:00:00Z", "2026-06-04T07:00:00Z"),
            row("alice", "2026-06-04T07:00:00Z", "2026-06-08T07:00:00Z"),
            row("bob", "2026-06-08T07:00:00Z", "2026-06-10T07:00:00Z"),
            row("alice", "2026-06-10T07:00:00Z", "2026-06-11T07:00:00Z"),
            row("bob", "2026-06-11T07:00:00Z", "2026-06-15T07:00:00Z"),
        ]
    );
}

#[test]
fn overlapping_overrides_the_later_wins_and_same_user_continues_as_one_shift() {
    let tz = zone("Europe/Berlin");
    let s = schedule(
        "Europe/Berlin",
        vec![layer(&["alice", "bob"], Rotation::Weeks(1), "2026-06-01T09:00")],
        vec![
            cover("carol", "2026-06-01T10:00:00Z", "2026-06-01T14:00:00Z"),
            cover("dave", "2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z"),
            cover("alice", "2026-06-02T00:00:00Z", "2026-06-02T06:00:00Z"),
        ],
    );
    assert_eq!(
        table(&shifts(&s, &tz, at("2026-06-01T07:00:00Z"), at("2026-06-08T07:00:00Z"))),
        vec![
            row("alice", "2026-06-01T07:00:00Z", "2026-06-01T10:00:00Z"),
            row("carol", "2026-06-01T10:00:00Z", "2026-06-01T12:00:00Z"),
            row("dave", "2026-06-01T12:00:00Z", "2026-06-01T13:00:00Z"),
            row("carol", "2026-06-01T13:00:00Z", "2026-06-01T14:00:00Z"),
            row("alice", "2026-06-01T14:00:00Z", "2026-06-08T07:00:00Z"),
        ]
    );
}

#[test]
fn a_layer_that_ends_hands_over_to_the_next() {
    let tz = zone("Europe/Berlin");
    let mut old = layer(&["alice", "bob"], Rotation::Days(1), "2026-03-01T09:00");
    old.end = Some(local("2026-03-04T09:00"));
    let new = layer(&["carol", "dave"], Rotation::Days(1), "2026-03-04T09:00");
    let s = schedule("Europe/Berlin", vec![old.clone(), new], vec![]);
    assert_eq!(
        table(&shifts(&s, &tz, at("2026-03-01T00:00:00Z"), at("2026-03-06T08:00:00Z"))),
        vec![
            row("alice", "2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z"),
            row("bob", "2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z"),
            row("alice", "2026-03-03T08:00:00Z", "2026-03-04T08:00:00Z"),
            row("carol", "2026-03-04T08:00:00Z", "2026-03-05T08:00:00Z"),
            row("dave", "2026-03-05T08:00:00Z", "2026-03-06T08:00:00Z"),
        ]
    );
    let alone = schedule("Europe/Berlin", vec![old], vec![]);
    expect_on_call(
        on_call(&alone, &tz, "2026-03-03T12:00:00Z"),
        "alice",
        "2026-03-03T08:00:00Z",
        "2026-03-04T08:00:00Z",
    );
    assert_eq!(on_call(&alone, &tz, "2026-03-04T08:00:00Z"), None);
    assert_eq!(on_call(&alone, &tz, "2026-03-01T07:59:59Z"), None, "before the start");
}

#[test]
fn nobody_is_on_call_in_a_gap() {
    let tz = zone("Europe/Berlin");
    let mut office = layer(&["alice", "bob"], Rotation::Days(1), "2026-03-02T09:00");
    office.restrictions = vec![hours("09:00", "17:00")];
    let s = schedule("Europe/Berlin", vec![office], vec![]);
    assert_eq!(
        table(&shifts(&s, &tz, at("2026-03-06T00:00:00Z"), at("2026-03-10T00:00:00Z"))),
        vec![
            row("alice", "2026-03-06T08:00:00Z", "2026-03-06T16:00:00Z"),
            row("bob", "2026-03-09T08:00:00Z", "2026-03-09T16:00:00Z"),
        ]
    );
    assert_eq!(on_call(&s, &tz, "2026-03-07T12:00:00Z"), None);
    assert_eq!(on_call(&s, &tz, "2026-03-06T16:00:00Z"), None, "the end is exclusive");
    expect_on_call(
        on_call(&s, &tz, "2026-03-06T15:59:59Z"),
        "alice",
        "2026-03-06T08:00:00Z",
        "2026-03-06T16:00:00Z",
    );
    let empty = schedule("Europe/Berlin", vec![], vec![]);
    assert!(shifts(&empty, &tz, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z")).is_empty());
    assert!(shifts(&s, &tz, at("2026-03-06T12:00:00Z"), at("2026-03-06T12:00:00Z")).is_empty());
}

// ---------------------------------------------------------------------------
// Validation and the JSON shape
// ---------------------------------------------------------------------------

#[test]
fn validation_refuses_broken_schedules_with_clear_messages() {
    let base = || Schedule {
        time_zone: "Europe/Berlin".into(),
        layers: vec![layer(&["alice"], Rotation::Days(1), "2026-03-02T09:00")],
        overrides: vec![],
    };
    let refuse = |s: Schedule, needle: &str| match s.validate() {
        Err(DomainError::Invalid(message)) => assert!(message.contains(needle), "{message:?} lacks {needle:?}"),
        other => panic!("expected a refusal containing {needle:?}, got {other:?}"),
    };
    assert_eq!(base().validate(), Ok(()));

    let mut s = base();
    s.time_zone = " ".into();
    refuse(s, "time_zone: a schedule needs a time zone");

    let mut s = base();
    s.layers[0].users.clear();
    refuse(s, "layers[0].users: a layer needs at least one user");

    let mut s = base();
    s.layers[0].users.push(UserId::new(""));
    refuse(s, "layers[0].users[1]: a user id must not be empty");

    for rotation in [Rotation::Hours(0), Rotation::Days(0), Rotation::Weeks(0)] {
        let mut s = base();
        s.layers[0].rotation = rotation;
        refuse(s, "layers[0].rotation: the rotation length must be greater than zero");
    }
    let mut s = base();
    s.layers[0].rotation = Rotation::Days(400);
    refuse(s, "at most 366 days");

    let mut s = base();
    s.layers[0].end = Some(local("2026-03-02T09:00"));
    refuse(s, "layers[0].end: a layer must end after it starts");

    let mut s = base();
    s.layers[0].restrictions = vec![Restriction {
        days: vec![],
        ..hours("09:00", "17:00")
    }];
    refuse(
        s,
        "layers[0].restrictions[0].days: a restriction needs at least one day",
    );

    let mut s = base();
    s.layers[0].restrictions = vec![hours("09:00", "09:00")];
    refuse(s, "restriction window must not be empty");

    let mut s = base();
    s.layers[0].restrictions = vec![hours("24:00", "09:00")];
    refuse(s, "restrictions[0].from: a restriction starts before 24:00");

    let mut s = base();
    s.overrides = vec![cover("bob", "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z")];
    refuse(s, "overrides[0].end: an override must end after it starts");
}

#[test]
fn schedules_have_a_plain_json_shape() {
    let text = r#"{
        "time_zone": "Europe/Berlin",
        "layers": [
            {"users": ["alice", "bob"], "rotation": "1w", "start": "2026-03-02T09:00"},
            {"users": ["carol"], "rotation": 1, "start": "2026-03-02T09:00:00", "end": "2026-12-31T09:00",
             "restrictions": [{"days": ["monday", "tue"], "from": "09:00", "to": "17:30"},
                              {"from": "22:00", "to": "24:00"}]}
        ],
        "overrides": [{"user": "dave", "start": "2026-03-05T10:00:00Z", "end": "2026-03-05T12:00:00+00:00"}]
    }"#;
    let s: Schedule = serde_json::from_str(text).expect("a schedule");
    assert_eq!(s.validate(), Ok(()));
    assert_eq!(s.layers[0].rotation, Rotation::Weeks(1));
    assert_eq!(s.layers[1].rotation, Rotation::Days(1));
    assert_eq!(s.layers[1].restrictions[0].days, [Day::Monday, Day::Tuesday]);
    assert_eq!(s.layers[1].restrictions[1].days.len(), 7);
    assert_eq!(s.layers[1].restrictions[1].to, TimeOfDay::END_OF_DAY);

    let json = serde_json::to_value(&s).expect("serialises");
    let expected = serde_json::json!({
        "time_zone": "Europe/Berlin",
        "layers": [
            {"users": ["alice", "bob"], "rotation": "1w", "start": "2026-03-02T09:00:00"},
            {"users": ["carol"], "rotation": "1d", "start": "2026-03-02T09:00:00", "end": "2026-12-31T09:00:00",
             "restrictions": [
                {"days": ["monday", "tuesday"], "from": "09:00", "to": "17:30"},
                {"days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
                 "from": "22:00", "to": "24:00"}]}
        ],
        "overrides": [{"user": "dave", "start": "2026-03-05T10:00:00Z", "end": "2026-03-05T12:00:00Z"}]
    });
    assert_eq!(json, expected);
    let again: Schedule = serde_json::from_value(json).expect("round trip");
    assert_eq!(again, s);

    let message = |text: &str| serde_json::from_str::<Schedule>(text).expect_err("refused").to_string();
    assert!(
        message(r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": "1y", "start": "2026-03-02T09:00"}]}"#)
            .contains(r#"not a rotation length (like "12h", "1d", "2w" or a number of days): "1y""#)
    );
    assert!(
        message(
            r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": 1, "start": "2026-03-02T09:00+01:00"}]}"#
        )
        .contains("not a local date-time without offset or zone")
    );
    for bad in [
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": "1d", "start": "2026-03-02T09:00Z"}]}"#,
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": "1y", "start": "2026-03-02T09:00"}]}"#,
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": -1, "start": "2026-03-02T09:00"}]}"#,
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": 1.5, "start": "2026-03-02T09:00"}]}"#,
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": "1d", "start": "2026-03-02T09:00", "restriction": []}]}"#,
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": "1d", "start": "2026-03-02T09:00",
            "restrictions": [{"days": ["someday"], "from": "09:00", "to": "17:00"}]}]}"#,
        r#"{"time_zone": "UTC", "layers": [{"users": ["a"], "rotation": "1d", "start": "2026-03-02T09:00",
            "restrictions": [{"from": "9am", "to": "17:00"}]}]}"#,
    ] {
        assert!(serde_json::from_str::<Schedule>(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------
// iCalendar
// ---------------------------------------------------------------------------

#[test]
fn ical_feed_golden() {
    let shifts = [
        Shift {
            user: UserId::new("alice"),
            start: at("2026-03-27T08:00:00Z"),
            end: at("2026-03-28T08:00:00Z"),
            source: ShiftSource::Layer(0),
        },
        Shift {
            user: UserId::new("alice"),
            start: at("2026-03-29T07:00:00Z"),
            end: at("2026-03-30T07:00:00.5Z"),
            source: ShiftSource::Override(1),
        },
    ];
    let feed = ical_feed(
        "Payments; checkout, refunds \\ ledger – primary rotation",
        "Alice Example\nSRE",
        &shifts,
        at("2026-03-20T12:34:56.789Z"),
    );
    let expected = concat!(
        "BEGIN:VCALENDAR\r\n",
        "VERSION:2.0\r\n",
        "PRODID:-//keel//on-call schedule//EN\r\n",
        "CALSCALE:GREGORIAN\r\n",
        "METHOD:PUBLISH\r\n",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n",
        "X-PUBLISHED-TTL:PT1H\r\n",
        "X-WR-CALNAME:On call: Payments\\; checkout\\, refunds \\\\ ledger – primary r\r\n",
        " otation (Alice Example\\nSRE)\r\n",
        "BEGIN:VEVENT\r\n",
        "UID:UID1@keel\r\n",
        "DTSTAMP:20260320T123456Z\r\n",
        "DTSTART:20260327T080000Z\r\n",
        "DTEND:20260328T080000Z\r\n",
        "SUMMARY:On call: Payments\\; checkout\\, refunds \\\\ ledger – primary rotati\r\n",
        " on\r\n",
        "DESCRIPTION:Alice Example\\nSRE is on call for Payments\\; checkout\\, refunds\r\n",
        "  \\\\ ledger – primary rotation.\r\n",
        "TRANSP:TRANSPARENT\r\n",
        "END:VEVENT\r\n",
        "BEGIN:VEVENT\r\n",
        "UID:UID2@keel\r\n",
        "DTSTAMP:20260320T123456Z\r\n",
        "DTSTART:20260329T070000Z\r\n",
        "DTEND:20260330T070001Z\r\n",
        "SUMMARY:On call: Payments\\; checkout\\, refunds \\\\ ledger – primary rotati\r\n",
        " on\r\n",
        "DESCRIPTION:Alice Example\\nSRE is on call for Payments\\; checkout\\, refunds\r\n",
        "  \\\\ ledger – primary rotation.\r\n",
        "TRANSP:TRANSPARENT\r\n",
        "END:VEVENT\r\n",
        "END:VCALENDAR\r\n",
    );
    let uids: Vec<&str> = feed
        .lines()
        .filter_map(|l| l.strip_prefix("UID:"))
        .map(|l| l.trim_end_matches("@keel"))
        .collect();
    assert_eq!(uids.len(), 2);
    assert!(
        uids.iter()
            .all(|u| u.len() == 32 && u.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    assert_ne!(uids[0], uids[1]);
    let normalised = feed.replacen(uids[0], "UID1", 1).replacen(uids[1], "UID2", 1);
    assert_eq!(normalised, expected);

    for physical in feed.split("\r\n") {
        assert!(physical.len() <= 75, "{physical:?} is longer than 75 octets");
    }
    assert!(!feed.replace("\r\n", "").contains('\n'), "bare LF");
    // Stable: the same shifts give the same UIDs; another start gives another.
    let again = ical_feed(
        "Payments; checkout, refunds \\ ledger – primary rotation",
        "someone else",
        &shifts[..1],
        at("2027-01-01T00:00:00Z"),
    );
    assert!(again.contains(&format!("UID:{}@keel", uids[0])));
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

const ZONES: [&str; 5] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "UTC",
    "Asia/Kolkata",
];
const POOL: [&str; 4] = ["ann", "ben", "cat", "dan"];
/// 2025-06-01T00:00:00Z: the random schedules and ranges live in the two years after it.
const EPOCH: i64 = 1_748_736_000_000_000;

fn base_local() -> DateTime {
    local("2025-06-01T00:00")
}

fn arb_rotation() -> impl Strategy<Value = Rotation> {
    prop_oneof![
        (1..=36_u32).prop_map(Rotation::Hours),
        (1..=3_u32).prop_map(Rotation::Days),
        (1..=2_u32).prop_map(Rotation::Weeks),
    ]
}

fn arb_restriction() -> impl Strategy<Value = Restriction> {
    (prop::collection::vec(0..7_usize, 1..=7), 0..96_u32, 0..=96_u32)
        .prop_filter("non-empty window", |(_, from, to)| from != to)
        .prop_map(|(days, from, to)| Restriction {
            days: days.into_iter().map(|d| Day::ALL[d]).collect(),
            from: TimeOfDay::from_seconds(from * 900).expect("in a day"),
            to: TimeOfDay::from_seconds(to * 900).expect("in a day"),
        })
}

/// A layer starting at a random quarter-hour between 2025-06-01 and `before` (local).
fn arb_layer(before: Timestamp) -> impl Strategy<Value = Layer> {
    let quarters = (before.as_micros() - EPOCH) / 900_000_000 + 1;
    (
        prop::collection::vec(0..POOL.len(), 1..=4),
        arb_rotation(),
        0..quarters,
        prop::option::weighted(0.3, 1..(400 * 24_i64)),
        prop::collection::vec(arb_restriction(), 0..=2),
    )
        .prop_map(|(users, rotation, start_q, end_h, restrictions)| {
            let start = base_local()
                .checked_add(Span::new().minutes(start_q * 15))
                .expect("in range");
            Layer {
                users: users.into_iter().map(|u| UserId::new(POOL[u])).collect(),
                rotation,
                start,
                end: end_h.map(|h| start.checked_add(Span::new().hours(h)).expect("in range")),
                restrictions,
            }
        })
}

/// An override of up to 5 days overlapping (or just missing) `[from, to)`.
fn arb_override(from: Timestamp, to: Timestamp) -> impl Strategy<Value = Override> {
    let earliest = from.as_micros() - 5 * 86_400_000_000;
    let seconds = (to.as_micros() - earliest) / 1_000_000 + 1;
    (0..POOL.len(), 0..seconds, 1..(5 * 86_400_i64)).prop_map(move |(user, start_s, len_s)| Override {
        user: UserId::new(POOL[user]),
        start: Timestamp::from_micros(earliest + start_s * 1_000_000),
        end: Timestamp::from_micros(earliest + (start_s + len_s) * 1_000_000),
    })
}

/// A range and a schedule whose layers started before its end and whose overrides are around it.
fn arb_case() -> impl Strategy<Value = (Schedule, Timestamp, Timestamp)> {
    arb_range().prop_flat_map(|(from, to)| {
        (
            0..ZONES.len(),
            prop::collection::vec(arb_layer(to), 1..=3),
            prop::collection::vec(arb_override(from, to), 0..=3),
        )
            .prop_map(move |(zone, layers, overrides)| {
                let schedule = Schedule {
                    time_zone: ZONES[zone].into(),
                    layers,
                    overrides,
                };
                (schedule, from, to)
            })
    })
}

/// A range `[from, to)` of up to 40 days in 2026 or early 2027, at whole seconds or arbitrary microseconds.
fn arb_range() -> impl Strategy<Value = (Timestamp, Timestamp)> {
    (250 * 86_400..(620 * 86_400_i64), 0..(40 * 86_400_i64), 0..1_000_000_i64).prop_map(|(from_s, len_s, us)| {
        let from = EPOCH + from_s * 1_000_000 + us;
        (
            Timestamp::from_micros(from),
            Timestamp::from_micros(from + len_s * 1_000_000),
        )
    })
}

fn resolve(tz: &TimeZone, dt: DateTime) -> i64 {
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .expect("in range")
        .as_microsecond()
}

fn time_of(t: TimeOfDay) -> jiff::civil::Time {
    let s = i8::try_from(t.as_seconds() % 60).expect("small");
    let m = i8::try_from(t.as_seconds() / 60 % 60).expect("small");
    let h = i8::try_from(t.as_seconds() / 3600).expect("small");
    jiff::civil::Time::new(h, m, s, 0).expect("valid")
}

/// Is `t` inside a window of `r`, checked naively around the local date of `t`.
fn reference_window(r: &Restriction, tz: &TimeZone, t: i64) -> bool {
    let today = tz
        .to_datetime(jiff::Timestamp::from_microsecond(t).expect("in range"))
        .date();
    (-2..=0).any(|offset| {
        let day = today.checked_add(Span::new().days(offset)).expect("in range");
        let starts_today = r.days.iter().any(|d| {
            let wd = match d {
                Day::Monday => jiff::civil::Weekday::Monday,
                Day::Tuesday => jiff::civil::Weekday::Tuesday,
                Day::Wednesday => jiff::civil::Weekday::Wednesday,
                Day::Thursday => jiff::civil::Weekday::Thursday,
                Day::Friday => jiff::civil::Weekday::Friday,
                Day::Saturday => jiff::civil::Weekday::Saturday,
                Day::Sunday => jiff::civil::Weekday::Sunday,
            };
            wd == day.weekday()
        });
        if !starts_today {
            return false;
        }
        let start = resolve(tz, day.to_datetime(time_of(r.from)));
        let next = day.tomorrow().expect("in range");
        let end = if r.to == TimeOfDay::END_OF_DAY {
            resolve(tz, next.to_datetime(jiff::civil::Time::midnight()))
        } else if r.to <= r.from {
            resolve(tz, next.to_datetime(time_of(r.to)))
        } else {
            resolve(tz, day.to_datetime(time_of(r.to)))
        };
        start <= t && t < end
    })
}

/// Who a layer puts on call at `t`, walking every hand-off from the start.
fn reference_layer(layer: &Layer, tz: &TimeZone, t: i64) -> Option<String> {
    let start = resolve(tz, layer.start);
    if t < start || layer.end.is_some_and(|end| t >= resolve(tz, end)) {
        return None;
    }
    let mut turn = 0_usize;
    match layer.rotation {
        Rotation::Hours(n) => {
            let period = i64::from(n) * HOUR;
            let mut handoff = start;
            while handoff + period <= t {
                handoff += period;
                turn += 1;
            }
        }
        Rotation::Days(_) | Rotation::Weeks(_) => {
            let step = i64::from(layer.rotation.count())
                * if matches!(layer.rotation, Rotation::Weeks(_)) {
                    7
                } else {
                    1
                };
            loop {
                let next_turn = i64::try_from(turn + 1).expect("small") * step;
                let next = layer.start.checked_add(Span::new().days(next_turn)).expect("in range");
                if resolve(tz, next) <= t {
                    turn += 1;
                } else {
                    break;
                }
            }
        }
    }
    let active = layer.restrictions.is_empty() || layer.restrictions.iter().any(|r| reference_window(r, tz, t));
    active.then(|| layer.users[turn % layer.users.len()].to_string())
}

fn reference(schedule: &Schedule, tz: &TimeZone, t: i64) -> Option<String> {
    if let Some(o) = schedule
        .overrides
        .iter()
        .rev()
        .find(|o| o.start.as_micros() <= t && t < o.end.as_micros())
    {
        return Some(o.user.to_string());
    }
    schedule
        .layers
        .iter()
        .rev()
        .find_map(|layer| reference_layer(layer, tz, t))
}

fn check_shape(got: &[Shift], from: Timestamp, to: Timestamp) -> Result<(), TestCaseError> {
    for shift in got {
        prop_assert!(
            from <= shift.start && shift.start < shift.end && shift.end <= to,
            "{shift:?}"
        );
    }
    for pair in got.windows(2) {
        prop_assert!(pair[0].end <= pair[1].start, "overlap or unsorted: {pair:?}");
        prop_assert!(
            pair[0].end < pair[1].start || pair[0].user != pair[1].user,
            "unmerged: {pair:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Shifts are sorted, inside the range, non-overlapping, and the same user never continues into a new shift.
    #[test]
    fn shifts_are_sorted_disjoint_and_merged((s, from, to) in arb_case()) {
        let tz = zone(&s.time_zone);
        check_shape(&shifts(&s, &tz, from, to), from, to)?;
    }

    /// Flattening two adjacent ranges and gluing them gives the flattening of the whole range.
    #[test]
    fn shifts_compose_over_adjacent_ranges((s, from, to) in arb_case(), cut in 0.0..1.0_f64) {
        let tz = zone(&s.time_zone);
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let mid = Timestamp::from_micros(from.as_micros() + ((to.as_micros() - from.as_micros()) as f64 * cut) as i64);
        let whole = shifts(&s, &tz, from, to);
        let mut glued = shifts(&s, &tz, from, mid);
        for next in shifts(&s, &tz, mid, to) {
            match glued.last_mut() {
                Some(last) if last.end == next.start && last.user == next.user => last.end = next.end,
                _ => glued.push(next),
            }
        }
        prop_assert_eq!(glued, whole);
    }

    /// who_is_on_call agrees with the shift containing the instant, and with the naive reference model.
    #[test]
    fn who_is_on_call_agrees_with_shifts_and_the_reference(
        (s, from, to) in arb_case(),
        probes in prop::collection::vec(0.0..1.0_f64, 1..6),
    ) {
        let tz = zone(&s.time_zone);
        let got = shifts(&s, &tz, from, to);
        for p in probes {
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let t = from.as_micros() + ((to.as_micros() - from.as_micros()) as f64 * p) as i64;
            if t >= to.as_micros() {
                continue;
            }
            let answer = who_is_on_call(&s, &tz, Timestamp::from_micros(t));
            let containing = got.iter().find(|sh| sh.start.as_micros() <= t && t < sh.end.as_micros());
            prop_assert_eq!(answer.as_ref().map(|a| a.user.to_string()), reference(&s, &tz, t), "t = {}", t);
            match (answer, containing) {
                (None, None) => {}
                (Some(a), Some(sh)) => {
                    prop_assert_eq!(&a.user, &sh.user);
                    if sh.start > from {
                        prop_assert_eq!(a.since, Some(sh.start));
                    } else {
                        prop_assert!(a.since.is_none_or(|since| since <= sh.start));
                    }
                    if sh.end < to {
                        prop_assert_eq!(a.until, Some(sh.end));
                    } else {
                        prop_assert!(a.until.is_none_or(|until| until >= sh.end));
                    }
                }
                (a, sh) => prop_assert!(false, "who_is_on_call {:?} but shift {:?}", a, sh),
            }
        }
    }

    /// An unrestricted layer of distinct users cycles through them in order, without gaps.
    #[test]
    fn the_rotation_cycles_users_in_order(
        zone_index in 0..ZONES.len(),
        n in 2..=4_usize,
        rotation in arb_rotation(),
        start_q in 0..(200 * 96_i64),
        (from, to) in arb_range(),
    ) {
        let tz = zone(ZONES[zone_index]);
        let start = base_local().checked_add(Span::new().minutes(start_q * 15)).expect("in range");
        let s = Schedule {
            time_zone: ZONES[zone_index].into(),
            layers: vec![Layer {
                users: POOL[..n].iter().map(|u| UserId::new(*u)).collect(),
                rotation,
                start,
                end: None,
                restrictions: vec![],
            }],
            overrides: vec![],
        };
        let got = shifts(&s, &tz, from, to);
        let begin = from.max(Timestamp::from_micros(resolve(&tz, start)));
        if begin < to {
            prop_assert_eq!(got.first().map(|sh| sh.start), Some(begin));
            prop_assert_eq!(got.last().map(|sh| sh.end), Some(to));
        } else {
            prop_assert!(got.is_empty());
        }
        let index = |sh: &Shift| POOL.iter().position(|u| *u == sh.user.as_str()).expect("from the pool");
        for pair in got.windows(2) {
            prop_assert_eq!(pair[0].end, pair[1].start, "no gaps");
            prop_assert_eq!((index(&pair[0]) + 1) % n, index(&pair[1]));
            if let Rotation::Hours(h) = rotation {
                prop_assert_eq!(pair[1].start.as_micros() - pair[0].start.as_micros() <= i64::from(h) * HOUR, true);
            }
        }
        // Every whole shift of a fixed rotation is exactly its length.
        if let Rotation::Hours(h) = rotation {
            for sh in got.iter().skip(1).take(got.len().saturating_sub(2)) {
                prop_assert_eq!(sh.end.as_micros() - sh.start.as_micros(), i64::from(h) * HOUR);
            }
        }
    }
}
