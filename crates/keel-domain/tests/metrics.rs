//! Practice metrics on timelines built through the real domain (register,
//! decide, seal, apply), with times chosen so every answer is known by
//! construction.

use keel_domain::detection::Severity;
use keel_domain::metrics::{GroupKey, IncidentFacts, Period, UNSET, compare, facts, group_by, report};
use keel_domain::sla::Calendar;
use keel_domain::timeline::{GENESIS_HASH, seal};
use keel_domain::{
    Actor, Change, Channel, Claimed, ClosureInput, Command, Entry, HoldReason, Incident, PriorityMatrix,
    RegistrationInput, Role, Source, State, Timestamp, UserId, Visibility, apply, decide, register,
};

/// 2026-01-01T00:00:00Z, in seconds.
const BASE: i64 = 1_767_225_600;
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_micros((BASE + secs) * 1_000_000)
}

fn actor(id: &str) -> Actor {
    Actor {
        user: UserId::new(id),
        role: Role::Agent,
    }
}

fn system() -> Actor {
    Actor {
        user: UserId::new("keel"),
        role: Role::Admin,
    }
}

/// An in-memory timeline: what the store does, without the store.
struct Journal {
    entries: Vec<Entry>,
    incident: Option<Incident>,
}

impl Journal {
    /// Registers at `recorded` (server time) with optional claims.
    fn open(by: &Actor, input: RegistrationInput, recorded: i64, claimed: Claimed) -> Self {
        let change = register(input, 1, by, &PriorityMatrix::default()).expect("valid registration");
        let mut journal = Journal {
            entries: Vec::new(),
            incident: None,
        };
        journal.append(by, &change, recorded, claimed);
        journal
    }

    fn append(&mut self, by: &Actor, change: &Change, recorded: i64, claimed: Claimed) {
        let seq = self.entries.len() as u64 + 1;
        let prev = self.entries.last().map_or(GENESIS_HASH.to_string(), |e| e.hash.clone());
        let entry = seal("inc-1", seq, &prev, &by.user, t(recorded), claimed, change);
        self.incident = apply(self.incident.take(), "inc-1", seq, &by.user, t(recorded), change);
        self.entries.push(entry);
    }

    /// Runs `command` recorded at `recorded`, with claims.
    fn run_claimed(&mut self, by: &Actor, recorded: i64, claimed: Claimed, command: Command) -> &mut Self {
        claimed.check(t(recorded)).expect("claims in the past");
        let incident = self.incident.clone().expect("registered");
        let changes = decide(&incident, command, by, &PriorityMatrix::default()).expect("allowed");
        for change in changes {
            self.append(by, &change, recorded, claimed);
        }
        self
    }

    /// Runs `command` recorded (and so happening) at `at`.
    fn run(&mut self, by: &Actor, at: i64, command: Command) -> &mut Self {
        self.run_claimed(by, at, Claimed::default(), command)
    }

    fn sla(&mut self, at: i64, response_due: Option<i64>, resolution_due: Option<i64>) -> &mut Self {
        let priority = self.incident.as_ref().expect("registered").priority;
        self.run(
            &system(),
            at,
            Command::SetSlaTargets {
                priority,
                response_due: response_due.map(t),
                resolution_due: resolution_due.map(t),
            },
        )
    }

    fn facts_at(&self, now: i64) -> IncidentFacts {
        facts(&self.entries, &system().user, t(now)).expect("a registered timeline")
    }

    fn facts(&self) -> IncidentFacts {
        self.facts_at(30 * DAY)
    }
}

fn titled(title: &str) -> RegistrationInput {
    RegistrationInput {
        title: title.into(),
        ..RegistrationInput::default()
    }
}

fn user_report(title: &str, at: i64) -> Journal {
    Journal::open(&actor("ann"), titled(title), at, Claimed::default())
}

fn resolve() -> Command {
    resolve_with(None, false, false)
}

fn resolve_with(workaround: Option<&str>, known_solution: bool, automated: bool) -> Command {
    Command::Resolve {
        code: "fixed".into(),
        notes: "restarted the service".into(),
        workaround: workaround.map(str::to_string),
        known_solution,
        automated,
    }
}

fn hold(reason: HoldReason) -> Command {
    Command::Hold { reason, note: None }
}

fn resume() -> Command {
    Command::Resume { note: None }
}

fn diagnose() -> Command {
    Command::Diagnose {
        cause: Some("full disk".into()),
        note: None,
    }
}

fn close(satisfaction: Option<u8>) -> Command {
    Command::Close {
        note: None,
        closure: ClosureInput {
            satisfaction,
            ..ClosureInput::default()
        },
    }
}

fn reopen() -> Command {
    Command::Reopen {
        reason: "back again".into(),
    }
}

fn assign_team(team: &str) -> Command {
    Command::Assign {
        team: Some(team.into()),
        owner: None,
        add_collaborators: Vec::new(),
    }
}

fn assign_owner(owner: &str) -> Command {
    Command::Assign {
        team: None,
        owner: Some(UserId::new(owner)),
        add_collaborators: Vec::new(),
    }
}

fn comment() -> Command {
    Command::Comment {
        body: "looking".into(),
        visibility: Visibility::Internal,
    }
}

/// January 2026 (31 days).
fn january() -> Period {
    Period {
        from: t(0),
        to: t(31 * DAY),
    }
}

fn claim(at: i64) -> Claimed {
    Claimed {
        occurred_at: Some(t(at)),
        ..Claimed::default()
    }
}

// ---------------------------------------------------------------------------
// Facts of one incident
// ---------------------------------------------------------------------------

#[test]
fn an_empty_timeline_has_no_facts() {
    assert_eq!(facts(&[], &system().user, t(0)), None);
}

#[test]
fn a_full_life_gives_every_instant_and_duration() {
    let a = actor("a");
    let input = RegistrationInput {
        observed_at: Some(t(DAY - 10 * MIN)),
        team: Some("ops".into()),
        ..titled("Mail down")
    };
    let mut j = Journal::open(&a, input, DAY, Claimed::default());
    j.run(&a, DAY + 5 * MIN, Command::Accept)
        .run(&a, DAY + 20 * MIN, diagnose())
        .run(&a, DAY + 30 * MIN, hold(HoldReason::AwaitingUser))
        .run(&a, DAY + 50 * MIN, resume())
        .run(&a, DAY + 60 * MIN, hold(HoldReason::AwaitingSupplier))
        .run(&a, DAY + 70 * MIN, resume())
        .run(&a, DAY + 100 * MIN, resolve())
        .run(&a, DAY + 200 * MIN, close(Some(4)));
    let f = j.facts();
    assert_eq!(f.occurred_at, Some(t(DAY - 10 * MIN)));
    assert_eq!(f.detected_at, t(DAY));
    assert_eq!(f.registered_at, t(DAY));
    assert_eq!(f.accepted_at, Some(t(DAY + 5 * MIN)));
    assert_eq!(f.diagnosed_at, Some(t(DAY + 20 * MIN)));
    assert_eq!(f.resolved_at, Some(t(DAY + 100 * MIN)));
    assert_eq!(f.closed_at, Some(t(DAY + 200 * MIN)));
    assert_eq!(f.state, State::Closed);
    assert_eq!(f.hold_micros, 30 * MIN * 1_000_000);
    assert_eq!(
        f.hold_micros_by_reason.get("awaiting_user"),
        Some(&(20 * MIN * 1_000_000))
    );
    assert_eq!(
        f.hold_micros_by_reason.get("awaiting_supplier"),
        Some(&(10 * MIN * 1_000_000))
    );
    assert_eq!(f.satisfaction, Some(4));
    assert!(f.first_time_resolution);
    assert!(!f.detected_by_monitoring);
    assert!(!f.cancelled);

    let r = report([&f], january(), None);
    assert_eq!(r.incidents, 1);
    assert_eq!(r.detection_lag.median_secs, Some(600.0));
    assert_eq!(r.time_to_acceptance.median_secs, Some(300.0));
    assert_eq!(r.time_of_diagnosis.median_secs, Some(900.0));
    assert_eq!(r.time_to_resolve.median_secs, Some(6000.0));
    assert_eq!(r.time_to_resolve.p90_secs, Some(6000.0));
    // 30 of 100 minutes on hold.
    assert_eq!(r.waiting_share.overall.value, Some(0.3));
    assert_eq!(r.waiting_share.by_reason["awaiting_user"].value, Some(0.2));
    assert_eq!(r.waiting_share.by_reason["awaiting_supplier"].value, Some(0.1));
    assert_eq!(r.waiting_share.by_reason["awaiting_change"].value, Some(0.0));
    assert_eq!(r.first_time_resolution.value, Some(1.0));
    assert_eq!(r.user_satisfaction.mean.value, Some(4.0));
    assert_eq!(r.reopen_rate.value, Some(0.0));
    assert_eq!(r.detected_by_monitoring.value, Some(0.0));
}

#[test]
fn claimed_times_count_instead_of_recorded_times() {
    let a = actor("a");
    // Documented two hours late: the call came in at 09:00, accepted at 09:10.
    let mut j = Journal::open(&a, titled("Phone outage"), 11 * HOUR, claim(9 * HOUR));
    j.run_claimed(&a, 11 * HOUR, claim(9 * HOUR + 10 * MIN), Command::Accept);
    let f = j.facts();
    assert_eq!(f.registered_at, t(9 * HOUR));
    assert_eq!(f.detected_at, t(9 * HOUR));
    assert_eq!(f.accepted_at, Some(t(9 * HOUR + 10 * MIN)));
    let r = report([&f], january(), None);
    assert_eq!(r.time_to_acceptance.median_secs, Some(600.0));
}

#[test]
fn a_monitoring_registration_is_detected_when_received_not_when_the_signal_started() {
    let mon = actor("integration-owner");
    let start = 10 * HOUR;
    let input = RegistrationInput {
        source: Some(Source::Monitoring),
        channel: Some(Channel::EventIntegration),
        observed_at: Some(t(start)),
        ..titled("disk full on db-1")
    };
    // What ingest writes: the signal's start as observed_at and as the claim.
    let j = Journal::open(&mon, input, start + 2 * MIN, claim(start));
    let f = j.facts();
    assert_eq!(f.occurred_at, Some(t(start)));
    assert_eq!(f.detected_at, t(start + 2 * MIN));
    assert!(f.detected_by_monitoring);
    assert_eq!(report([&f], january(), None).detection_lag.median_secs, Some(120.0));
}

#[test]
fn an_alert_before_the_registration_is_the_first_signal() {
    let a = actor("a");
    let mut j = Journal::open(&a, titled("Slow checkout"), HOUR, Claimed::default());
    // The alert that fired first is attached later, with its true times claimed.
    j.run_claimed(
        &actor("mon"),
        2 * HOUR,
        Claimed {
            occurred_at: Some(t(30 * MIN)),
            started_at: Some(t(20 * MIN)),
            completed_at: None,
        },
        Command::AttachAlert {
            dedup_key: "checkout-latency".into(),
            summary: "p99 above 2 s".into(),
            severity: Severity::Warning,
        },
    );
    let f = j.facts();
    assert_eq!(f.detected_at, t(30 * MIN));
    assert_eq!(f.occurred_at, Some(t(20 * MIN)));
    assert!(f.detected_by_monitoring);
}

#[test]
fn a_user_report_without_observed_time_has_no_detection_lag() {
    let f = user_report("Printer", HOUR).facts();
    assert_eq!(f.occurred_at, None);
    let r = report([&f], january(), None);
    assert_eq!(r.detection_lag.count, 0);
    assert_eq!(r.detection_lag.median_secs, None);
    assert_eq!(r.detected_by_monitoring.count, 1);
}

#[test]
fn an_incident_never_accepted_has_no_acceptance_time_but_its_resolution_answers_the_response_target() {
    let a = actor("a");
    let mut j = user_report("Password reset", 0);
    j.sla(1, Some(HOUR), Some(4 * HOUR)).run(&a, 30 * MIN, resolve());
    let f = j.facts();
    assert_eq!(f.accepted_at, None);
    assert_eq!(f.responded_at, Some(t(30 * MIN)));
    assert_eq!(f.acceptance_target_met, Some(true));
    let r = report([&f], january(), None);
    assert_eq!(r.time_to_acceptance.count, 0);
    assert_eq!(r.time_to_acceptance.median_secs, None);
    assert_eq!(r.time_of_diagnosis.count, 0);
    assert_eq!(r.acceptance_target_met.value, Some(1.0));
    assert_eq!(r.time_to_resolve.median_secs, Some(1800.0));
}

#[test]
fn reopened_twice_counts_the_last_resolution_and_two_reopens() {
    let a = actor("a");
    let mut j = user_report("VPN drops", 0);
    j.run(&a, MIN, Command::Accept)
        .run(&a, HOUR, resolve())
        .run(&a, 2 * HOUR, reopen())
        .run(&a, 3 * HOUR, resolve())
        .run(&a, 4 * HOUR, reopen())
        .run(&a, 5 * HOUR, resolve());
    let f = j.facts();
    assert_eq!(f.reopens, 2);
    assert!(f.reopened_at_least_once);
    assert_eq!(f.first_resolved_at, Some(t(HOUR)));
    assert_eq!(f.resolved_at, Some(t(5 * HOUR)));
    assert!(!f.first_time_resolution);
    let r = report([&f], january(), None);
    assert_eq!(r.time_to_resolve.median_secs, Some(5.0 * 3600.0));
    assert_eq!(r.reopen_rate.value, Some(1.0));
    assert_eq!(r.first_time_resolution.value, Some(0.0));
}

#[test]
fn a_reopened_incident_still_open_counts_in_the_reopen_rate_of_its_first_resolution_only() {
    let a = actor("a");
    let mut reopened = user_report("Flaky login", 0);
    reopened
        .run(&a, MIN, Command::Accept)
        .run(&a, HOUR, resolve())
        .run(&a, 2 * HOUR, reopen());
    let mut clean = user_report("Broken link", 0);
    clean.run(&a, MIN, Command::Accept).run(&a, HOUR, resolve());
    let all = [reopened.facts(), clean.facts()];
    assert_eq!(all[0].resolved_at, None, "the reopen undid the resolution");
    let r = report(&all, january(), None);
    assert_eq!(r.reopen_rate.count, 2);
    assert_eq!(r.reopen_rate.hits, 1);
    assert_eq!(r.reopen_rate.value, Some(0.5));
    assert_eq!(r.time_to_resolve.count, 1, "only standing resolutions count");
}

#[test]
fn a_hold_across_the_period_boundary_counts_whole_in_the_period_of_resolution() {
    let a = actor("a");
    let end_of_january = 31 * DAY;
    let mut j = user_report("Awaiting vendor", end_of_january - 2 * HOUR);
    j.run(&a, end_of_january - 2 * HOUR, Command::Accept)
        .run(&a, end_of_january - HOUR, hold(HoldReason::AwaitingSupplier))
        .run(&a, end_of_january + HOUR, resume())
        .run(&a, end_of_january + 2 * HOUR, resolve());
    let f = j.facts();
    let january_report = report([&f], january(), None);
    assert_eq!(january_report.waiting_share.overall.count, 0);
    assert_eq!(january_report.waiting_share.overall.value, None);
    assert_eq!(january_report.time_to_acceptance.count, 1, "accepted in January");

    let february = Period {
        from: t(end_of_january),
        to: t(end_of_january + 28 * DAY),
    };
    assert_eq!(
        february.previous(),
        Period {
            from: t(3 * DAY),
            to: t(end_of_january)
        },
        "the previous period has the same length"
    );
    let february_report = report([&f], february, None);
    // Two of four hours on hold.
    assert_eq!(february_report.waiting_share.overall.value, Some(0.5));
    assert_eq!(
        february_report.waiting_share.by_reason["awaiting_supplier"].value,
        Some(0.5)
    );
}

#[test]
fn a_hold_still_open_counts_up_to_now_and_stays_out_of_the_waiting_share() {
    let a = actor("a");
    let mut j = user_report("Awaiting change", 0);
    j.run(&a, MIN, Command::Accept)
        .run(&a, HOUR, hold(HoldReason::AwaitingChange));
    let f = j.facts_at(3 * HOUR);
    assert_eq!(f.state, State::OnHold);
    assert_eq!(f.hold_micros, 2 * HOUR * 1_000_000);
    assert_eq!(
        f.hold_micros_by_reason.get("awaiting_change"),
        Some(&(2 * HOUR * 1_000_000))
    );
    let r = report([&f], january(), None);
    assert_eq!(r.waiting_share.overall.count, 0);
}

#[test]
fn cancelled_incidents_count_for_no_metric() {
    let a = actor("a");
    let mut j = user_report("Duplicate of INC-4", 0);
    j.run(&a, MIN, Command::Accept).run(
        &a,
        HOUR,
        Command::Cancel {
            reason: "duplicate".into(),
        },
    );
    let f = j.facts();
    assert!(f.cancelled);
    assert_eq!(f.state, State::Cancelled);
    assert_eq!(f.resolved_at, None);
    let r = report([&f], january(), None);
    assert_eq!(r.cancelled, 1);
    assert_eq!(r.incidents, 0);
    assert_eq!(r.time_to_acceptance.count, 0);
    assert_eq!(r.detected_by_monitoring.count, 0);
    assert_eq!(r.time_to_resolve.count, 0);
}

#[test]
fn without_sla_targets_there_is_no_verdict() {
    let a = actor("a");
    let mut j = user_report("No SLA", 0);
    j.run(&a, MIN, Command::Accept).run(&a, HOUR, resolve());
    let f = j.facts();
    assert_eq!(f.acceptance_target_met, None);
    assert_eq!(f.resolution_target_met, None);
    let r = report([&f], january(), None);
    assert_eq!(r.resolution_target_met.count, 0);
    assert_eq!(r.resolution_target_met.value, None);
    assert_eq!(r.acceptance_target_met.value, None);
    assert_eq!(r.time_to_resolve.count, 1);
}

#[test]
fn sla_targets_are_met_on_time_and_missed_late() {
    let a = actor("a");
    let mut on_time = user_report("On time", 0);
    on_time
        .sla(1, Some(HOUR), Some(8 * HOUR))
        .run(&a, HOUR, Command::Accept)
        .run(&a, 8 * HOUR, resolve());
    let mut late = user_report("Late", 0);
    late.sla(1, Some(HOUR), Some(8 * HOUR))
        .run(&a, HOUR + 1, Command::Accept)
        .run(&a, 9 * HOUR, resolve());
    let (on_time, late) = (on_time.facts(), late.facts());
    assert_eq!(on_time.acceptance_target_met, Some(true), "due time itself is in time");
    assert_eq!(on_time.resolution_target_met, Some(true));
    assert_eq!(late.acceptance_target_met, Some(false));
    assert_eq!(late.resolution_target_met, Some(false));
    let r = report([&on_time, &late], january(), None);
    assert_eq!(r.acceptance_target_met.value, Some(0.5));
    assert_eq!(r.resolution_target_met.value, Some(0.5));
}

#[test]
fn sla_verdicts_use_server_time_not_claims() {
    let a = actor("a");
    let mut j = user_report("Claimed early", 0);
    j.sla(1, Some(HOUR), Some(2 * HOUR))
        .run(&a, MIN, Command::Accept)
        .run_claimed(&a, 3 * HOUR, claim(HOUR), resolve());
    let f = j.facts();
    assert_eq!(f.resolved_at, Some(t(HOUR)), "metrics use the claim");
    assert_eq!(
        f.resolution_target_met,
        Some(false),
        "the SLA clock ran on until it was recorded"
    );
}

#[test]
fn a_recorded_breach_is_missed_even_when_a_hold_moved_the_due_time() {
    let a = actor("a");
    let mut paused = user_report("Paused, no breach", 0);
    paused
        .sla(1, Some(HOUR), Some(4 * HOUR))
        .run(&a, MIN, Command::Accept)
        .run(&a, HOUR, hold(HoldReason::AwaitingUser))
        .run(&a, 3 * HOUR, resume())
        .run(&a, 5 * HOUR, resolve());
    let mut breached = user_report("Paused, breached", 0);
    breached
        .sla(1, Some(HOUR), Some(4 * HOUR))
        .run(&a, MIN, Command::Accept)
        .run(&a, HOUR, hold(HoldReason::AwaitingUser))
        .run(&a, 3 * HOUR, resume())
        .run(
            &system(),
            4 * HOUR + 30 * MIN,
            Command::SlaBreached {
                target: "resolution".into(),
                due_at: Some(t(4 * HOUR + 20 * MIN)),
            },
        )
        .run(&a, 5 * HOUR, resolve());
    assert_eq!(paused.facts().resolution_target_met, Some(true));
    assert_eq!(breached.facts().resolution_target_met, Some(false));
}

#[test]
fn team_changes_after_the_first_assignment_and_owner_changes_are_counted_apart() {
    let a = actor("a");
    let mut j = user_report("Routed around", 0);
    j.run(&a, MIN, assign_team("service-desk"))
        .run(&a, 2 * MIN, assign_team("network"))
        .run(&a, 3 * MIN, assign_owner("bob"))
        .run(&a, 4 * MIN, assign_team("database"))
        .run(
            &system(),
            5 * MIN,
            Command::Escalate {
                level: 1,
                to: UserId::new("lead"),
            },
        )
        .run(&a, 10 * MIN, Command::Accept)
        .run(&a, HOUR, resolve());
    let f = j.facts();
    assert_eq!(f.first_team.as_deref(), Some("service-desk"));
    assert_eq!(f.team.as_deref(), Some("database"));
    assert_eq!(f.team_changes, 2);
    assert_eq!(f.owner_changes, 2, "one assignment, one escalation");
    assert!(!f.first_time_resolution);

    let mut direct = Journal::open(
        &a,
        RegistrationInput {
            team: Some("network".into()),
            ..titled("Routed right")
        },
        0,
        Claimed::default(),
    );
    direct.run(&a, MIN, Command::Accept).run(&a, HOUR, resolve());
    let direct = direct.facts();
    assert_eq!(direct.team_changes, 0);
    assert!(direct.first_time_resolution);

    let r = report([&f, &direct], january(), None);
    assert_eq!(r.reassignments.team_changes.value, Some(1.0));
    assert_eq!(r.reassignments.owner_changes.value, Some(1.0));
    assert_eq!(r.reassignments.team_changes.count, 2);
    assert_eq!(r.first_time_resolution.value, Some(0.5));
}

fn monitoring_incident() -> Journal {
    let mon = actor("integration-owner");
    let input = RegistrationInput {
        source: Some(Source::Monitoring),
        channel: Some(Channel::EventIntegration),
        ..titled("api 5xx")
    };
    let mut j = Journal::open(&mon, input, 0, Claimed::default());
    j.run(
        &mon,
        0,
        Command::AttachAlert {
            dedup_key: "api-5xx".into(),
            summary: "5xx rate above 1%".into(),
            severity: Severity::Error,
        },
    )
    .sla(1, Some(HOUR), Some(4 * HOUR));
    j
}

fn recover(j: &mut Journal, at: i64) {
    j.run(
        &actor("integration-owner"),
        at,
        Command::RecoverAlert {
            dedup_key: "api-5xx".into(),
            auto_resolve: true,
        },
    );
}

#[test]
fn an_incident_resolved_by_monitoring_without_people_is_resolved_automatically() {
    let mut j = monitoring_incident();
    j.run(&system(), 2 * MIN, comment());
    recover(&mut j, 10 * MIN);
    let f = j.facts();
    assert_eq!(f.state, State::Resolved);
    assert!(f.resolved_automatically, "the system actor's entries are not human");
    let r = report([&f], january(), None);
    assert_eq!(r.resolved_automatically.value, Some(1.0));
}

#[test]
fn a_human_action_before_an_automated_resolution_makes_it_not_automatic() {
    let mut j = monitoring_incident();
    j.run(&actor("a"), 2 * MIN, comment());
    recover(&mut j, 10 * MIN);
    let f = j.facts();
    assert_eq!(f.state, State::Resolved);
    assert!(!f.resolved_automatically);

    let mut by_hand = user_report("Manual", 0);
    by_hand.run(&actor("a"), HOUR, resolve());
    assert!(!by_hand.facts().resolved_automatically, "not marked automated");
}

#[test]
fn known_solutions_and_workarounds_count_as_reuse() {
    let a = actor("a");
    let mut known = user_report("Known", 0);
    known.run(&a, HOUR, resolve_with(None, true, false));
    let mut workaround = user_report("Workaround", 0);
    workaround.run(&a, HOUR, resolve_with(Some("use the backup link"), false, false));
    let mut fresh = user_report("Fresh", 0);
    fresh.run(&a, HOUR, resolve());
    let all = [known.facts(), workaround.facts(), fresh.facts()];
    assert!(all[0].known_solution && all[1].known_solution && !all[2].known_solution);
    let r = report(&all, january(), None);
    assert_eq!(r.known_solution_reuse.hits, 2);
    assert_eq!(r.known_solution_reuse.count, 3);
}

#[test]
fn satisfaction_is_the_mean_of_answers_and_the_share_of_closures_answered() {
    let a = actor("a");
    let closed_with = |score: Option<u8>| {
        let mut j = user_report("Survey", 0);
        j.run(&a, HOUR, resolve()).run(&a, 2 * HOUR, close(score));
        j.facts()
    };
    let all = [closed_with(Some(4)), closed_with(Some(5)), closed_with(None)];
    let mut open = user_report("Still open", 0);
    open.run(&a, HOUR, resolve());
    let r = report(all.iter().chain([&open.facts()]), january(), None);
    assert_eq!(r.user_satisfaction.mean.value, Some(4.5));
    assert_eq!(r.user_satisfaction.mean.count, 2);
    assert_eq!(r.user_satisfaction.response_rate.count, 3);
    assert_eq!(r.user_satisfaction.response_rate.hits, 2);
}

#[test]
fn durations_use_nearest_rank_percentiles() {
    let a = actor("a");
    let resolved_after = |minutes: i64| {
        let mut j = user_report("Timed", 0);
        j.run(&a, minutes * MIN, resolve());
        j.facts()
    };
    let ten: Vec<IncidentFacts> = (1..=10).rev().map(&resolved_after).collect();
    let r = report(&ten, january(), None);
    assert_eq!(r.time_to_resolve.count, 10);
    assert_eq!(r.time_to_resolve.median_secs, Some(300.0), "rank 5 of 10");
    assert_eq!(r.time_to_resolve.p90_secs, Some(540.0), "rank 9 of 10");

    let two = [resolved_after(1), resolved_after(3)];
    let r = report(&two, january(), None);
    assert_eq!(r.time_to_resolve.median_secs, Some(60.0), "the lower middle");
    assert_eq!(r.time_to_resolve.p90_secs, Some(180.0));
}

#[test]
fn business_hours_time_to_resolve_follows_the_calendar_given() {
    let a = actor("a");
    let mut j = user_report("Calendar", 0);
    j.run(&a, 90 * MIN, resolve());
    let f = j.facts();
    let without = report([&f], january(), None);
    assert_eq!(without.time_to_resolve_business_hours.median_secs, None);
    assert!(without.time_to_resolve_business_hours.note.is_some());
    let always = report([&f], january(), Some(&Calendar::always()));
    assert_eq!(always.time_to_resolve_business_hours.median_secs, Some(5400.0));
}

#[test]
fn business_hours_count_only_the_incidents_under_a_calendar() {
    let a = actor("a");
    let mut under = user_report("Under a policy", 0);
    under.run(&a, 90 * MIN, resolve());
    let mut outside = user_report("No policy", 0);
    outside.run(&a, 30 * MIN, resolve());
    let (under, outside) = (under.facts(), outside.facts());
    let always = Calendar::always();
    let r = keel_domain::metrics::report_with([&under, &outside], january(), |f| {
        (f.registered_at == under.registered_at && f.resolved_at == under.resolved_at).then_some(&always)
    });
    assert_eq!(r.time_to_resolve.count, 2);
    assert_eq!(r.time_to_resolve_business_hours.count, 1);
    assert_eq!(r.time_to_resolve_business_hours.median_secs, Some(5400.0));
}

#[test]
fn every_metric_is_undefined_over_no_incidents() {
    let r = report(std::iter::empty(), january(), None);
    assert_eq!(r.incidents, 0);
    for (name, value) in r.values() {
        assert_eq!(value, None, "{name} has no data");
    }
    assert!(r.resolved_before_users_reported.note.is_some());
    assert!(r.incident_model_use.note.is_some());
    assert_eq!(r.reopen_rate.count, 0);
    assert_eq!(r.user_satisfaction.response_rate.count, 0);
}

#[test]
fn metrics_that_the_timeline_cannot_give_stay_undefined_with_data() {
    let mut j = monitoring_incident();
    recover(&mut j, 10 * MIN);
    let r = report([&j.facts()], january(), None);
    assert_eq!(r.resolved_before_users_reported.value, None);
    assert_eq!(r.incident_model_use.value, None);
    assert_eq!(r.resolved_automatically.value, Some(1.0));
}

#[test]
fn incidents_outside_the_period_do_not_count() {
    let a = actor("a");
    let mut december = user_report("Last year", -10 * DAY);
    december.run(&a, -10 * DAY + HOUR, resolve());
    let r = report([&december.facts()], january(), None);
    assert_eq!(r.incidents, 1);
    assert_eq!(r.detected_by_monitoring.count, 0);
    assert_eq!(r.time_to_resolve.count, 0);
    let r = report([&december.facts()], january().previous(), None);
    assert_eq!(r.time_to_resolve.count, 1);
}

#[test]
fn incidents_group_by_context_with_a_group_for_unset_values() {
    let a = actor("a");
    let mut mail = Journal::open(
        &a,
        RegistrationInput {
            service: Some("mail".into()),
            team: Some("messaging".into()),
            category: Some("software".into()),
            ..titled("Mail")
        },
        0,
        Claimed::default(),
    );
    mail.run(&a, MIN, assign_team("infra"));
    let all = [
        mail.facts(),
        user_report("Nothing set", 0).facts(),
        monitoring_incident().facts(),
    ];
    let by_service = group_by(&all, GroupKey::Service);
    assert_eq!(by_service["mail"].len(), 1);
    assert_eq!(by_service[UNSET].len(), 2);
    let by_team = group_by(&all, GroupKey::Team);
    assert_eq!(by_team["infra"].len(), 1, "the final team");
    assert!(!by_team.contains_key("messaging"));
    assert_eq!(group_by(&all, GroupKey::Category)["software"].len(), 1);
    assert_eq!(group_by(&all, GroupKey::Ci)[UNSET].len(), 3);
    assert_eq!(group_by(&all, GroupKey::Priority)["P5"].len(), 3);
    let by_source = group_by(&all, GroupKey::Source);
    assert_eq!(by_source["user"].len(), 2);
    assert_eq!(by_source["monitoring"].len(), 1);
    let r = report(by_source["user"].iter().copied(), january(), None);
    assert_eq!(r.incidents, 2);
}

#[test]
fn compare_gives_the_change_of_every_metric_against_the_previous_period() {
    let a = actor("a");
    let mut slow = user_report("Slow", -10 * DAY);
    slow.run(&a, -10 * DAY + 2 * HOUR, resolve());
    let mut fast = user_report("Fast", 0);
    fast.run(&a, HOUR, resolve());
    let all = [slow.facts(), fast.facts()];
    let current = report(&all, january(), None);
    let previous = report(&all, january().previous(), None);
    let trends = compare(&current, &previous);
    let ttr = trends["time_to_resolve.median_secs"];
    assert_eq!(ttr.current, Some(3600.0));
    assert_eq!(ttr.previous, Some(7200.0));
    assert_eq!(ttr.change, Some(-3600.0));
    assert_eq!(trends["incident_model_use"].change, None);
    assert_eq!(trends["time_to_acceptance.median_secs"].change, None);
}

#[test]
fn the_report_serialises_with_snake_case_metric_names() {
    let r = report(std::iter::empty(), january(), None);
    let json = serde_json::to_value(&r).expect("serialisable");
    for key in [
        "detection_lag",
        "detected_by_monitoring",
        "time_to_acceptance",
        "time_of_diagnosis",
        "time_to_resolve",
        "reassignments",
        "waiting_share",
        "first_time_resolution",
        "resolution_target_met",
        "acceptance_target_met",
        "user_satisfaction",
        "resolved_automatically",
        "resolved_before_users_reported",
        "known_solution_reuse",
        "incident_model_use",
        "reopen_rate",
    ] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
    assert_eq!(json["from"], "2026-01-01T00:00:00Z");
    assert_eq!(json["time_to_resolve"]["median_secs"], serde_json::Value::Null);
}

#[test]
fn entries_of_unknown_kinds_are_skipped() {
    let a = actor("a");
    let mut j = user_report("Future", 0);
    j.run(&a, HOUR, resolve());
    let mut entries = j.entries.clone();
    let mut odd = entries[1].clone();
    odd.kind = "some_future_kind".into();
    entries.insert(1, odd);
    let f = facts(&entries, &system().user, t(DAY)).expect("registered");
    assert_eq!(f.resolved_at, Some(t(HOUR)));
}

fn outcome(target: &str, met: bool) -> Command {
    Command::RecordSlaOutcome {
        target: target.into(),
        met,
    }
}

#[test]
fn an_imported_sla_verdict_counts_where_keel_announced_no_target_and_only_once_resolved() {
    // Imported: resolved late by the source's measure, no keel targets.
    let mut imported = user_report("Imported", HOUR);
    imported
        .run(&actor("ann"), 2 * HOUR, Command::Accept)
        .run(&actor("ann"), 3 * HOUR, resolve())
        .run(&actor("ann"), 4 * HOUR, close(None))
        .run(&system(), 4 * HOUR, outcome("resolution", false))
        .run(&system(), 4 * HOUR, outcome("response", true));
    let f = imported.facts();
    assert_eq!(f.resolution_target_met, Some(false));
    assert_eq!(f.acceptance_target_met, Some(true));
    // The verdict entry is the system's: the incident still counts as resolved by people.
    assert!(!f.resolved_automatically);
    // Still open: a resolution verdict does not count before a resolution.
    let mut open = user_report("Open", HOUR);
    open.run(&system(), 2 * HOUR, outcome("resolution", true));
    assert_eq!(open.facts().resolution_target_met, None);
    // keel's own targets win over the source's verdict.
    let mut both = user_report("Both", HOUR);
    both.sla(HOUR, None, Some(5 * HOUR))
        .run(&actor("ann"), 2 * HOUR, resolve())
        .run(&system(), 2 * HOUR, outcome("resolution", false));
    assert_eq!(both.facts().resolution_target_met, Some(true));
    // Reported per period like any verdict.
    let r = report([&f], january(), None);
    assert_eq!((r.resolution_target_met.count, r.resolution_target_met.hits), (1, 0));
}

#[test]
fn an_sla_outcome_is_for_the_response_or_the_resolution_only() {
    let j = user_report("Odd", HOUR);
    let incident = j.incident.clone().expect("registered");
    let refused = decide(&incident, outcome("lunch", true), &system(), &PriorityMatrix::default());
    assert!(refused.is_err());
}
