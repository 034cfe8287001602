//! What the SLA sweep does to one incident: pick its policy (by service,
//! else the default), evaluate its clocks as of now, and decide which
//! timeline commands to issue — announce the targets when they are first
//! known or the priority changed them, warn at risk, record a breach — and
//! when to look again. Each warning and breach is recorded once per target:
//! the commands are refused as no-ops once the timeline holds them, so any
//! number of sweepers on any number of nodes act exactly once.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::sla::{SlaClock, SlaEvent, SlaPolicy, SlaReport, SlaState};
use crate::{Command, Incident, Priority, Timestamp};

/// The SLA policies in force: by service (name or id), and a default.
#[derive(Clone, Debug, Default)]
pub struct SlaPolicies {
    pub by_service: BTreeMap<String, Arc<SlaPolicy>>,
    pub default: Option<Arc<SlaPolicy>>,
}

impl SlaPolicies {
    /// The policy for an incident: its service's, else the default.
    #[must_use]
    pub fn for_incident(&self, incident: &Incident) -> Option<&SlaPolicy> {
        self.for_service(incident.service.as_deref())
    }

    /// The policy for incidents of a service (name or id): its own, else the default.
    #[must_use]
    pub fn for_service(&self, service: Option<&str>) -> Option<&SlaPolicy> {
        service
            .and_then(|s| self.by_service.get(s))
            .or(self.default.as_ref())
            .map(AsRef::as_ref)
    }

    /// Whether any policy exists.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_service.is_empty() && self.default.is_none()
    }
}

/// The sweep's verdict on one incident.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Commands to run on the incident, in order (none may be needed).
    pub commands: Vec<Command>,
    /// The worst state of its open clocks (for the list filter), if any.
    pub state: Option<SlaState>,
    /// The earliest due time of its open clocks (for ordering the backlog).
    pub due_at: Option<Timestamp>,
    /// When to look again: the next at-risk or due instant (`None`: only
    /// after the incident changes).
    pub next_at: Option<Timestamp>,
    /// The evaluation, for views.
    pub report: Option<SlaReport>,
}

fn rank(state: SlaState) -> u8 {
    match state {
        SlaState::Breached => 3,
        SlaState::AtRisk => 2,
        SlaState::Within => 1,
        SlaState::Met | SlaState::Missed | SlaState::Cancelled => 0,
    }
}

/// Judges one incident as of `now`.
#[must_use]
pub fn judge(incident: &Incident, policies: &SlaPolicies, now: Timestamp) -> Verdict {
    let Some(policy) = policies.for_incident(incident) else {
        return Verdict::default();
    };
    let Some(report) = policy.evaluate(&incident.sla_events, now) else {
        return Verdict::default();
    };
    let clocks: [(&str, Option<SlaClock>); 2] = [("response", report.response), ("resolution", report.resolution)];
    let mut commands = Vec::new();
    if incident.sla.priority != Some(report.priority) && incident.state.is_open() {
        commands.push(Command::SetSlaTargets {
            priority: report.priority,
            response_due: report.response.and_then(|c| c.due_at),
            resolution_due: report.resolution.and_then(|c| c.due_at),
        });
    }
    let mut worst: Option<SlaState> = None;
    let mut due_at: Option<Timestamp> = None;
    for (target, clock) in clocks {
        let Some(clock) = clock else { continue };
        match clock.state {
            SlaState::AtRisk if !incident.sla.warned.iter().any(|t| t == target) => {
                commands.push(Command::SlaAtRisk {
                    target: target.to_string(),
                    due_at: clock.due_at,
                });
            }
            SlaState::Breached if !incident.sla.breached.iter().any(|t| t == target) => {
                commands.push(Command::SlaBreached {
                    target: target.to_string(),
                    due_at: clock.due_at,
                });
            }
            _ => {}
        }
        if clock.state.is_open() {
            if worst.is_none_or(|w| rank(clock.state) > rank(w)) {
                worst = Some(clock.state);
            }
            if let Some(due) = clock.due_at {
                due_at = Some(due_at.map_or(due, |d: Timestamp| d.min(due)));
            }
        }
    }
    Verdict {
        commands,
        state: worst,
        due_at,
        next_at: report.next_change(),
        report: Some(report),
    }
}

/// The SLA entries a live sweep would have written over a history told in
/// claimed time (`events`, in order; see `sla::events_from_timeline`): the
/// targets at registration and again when a priority change moves them,
/// and each warning and breach at the instant its clock crossed, up to
/// `now`. Each command comes with the instant it belongs at; the sweep's
/// once-per-target rule holds. This is how an imported history is measured
/// against today's SLA policies ("replay").
#[must_use]
pub fn replay(policy: &SlaPolicy, events: &[SlaEvent], now: Timestamp) -> Vec<(Timestamp, Command)> {
    let mut out = Vec::new();
    let mut announced: Option<Priority> = None;
    let mut warned: Vec<&'static str> = Vec::new();
    let mut breached: Vec<&'static str> = Vec::new();
    for (k, event) in events.iter().enumerate() {
        let upto = &events[..=k];
        if let Some(report) = policy.evaluate(upto, event.at)
            && announced != Some(report.priority)
            && [report.response, report.resolution]
                .iter()
                .flatten()
                .any(|c| c.state.is_open())
        {
            out.push((
                event.at,
                Command::SetSlaTargets {
                    priority: report.priority,
                    response_due: report.response.and_then(|c| c.due_at),
                    resolution_due: report.resolution.and_then(|c| c.due_at),
                },
            ));
            announced = Some(report.priority);
        }
        // What the clocks crossed before the next event (or now).
        let until = events.get(k + 1).map_or(now, |next| next.at);
        if until <= event.at {
            continue;
        }
        let probe = if k + 1 < events.len() {
            Timestamp::from_micros(until.as_micros() - 1)
        } else {
            until
        };
        let Some(report) = policy.evaluate(upto, probe) else {
            continue;
        };
        for (target, clock) in [("response", report.response), ("resolution", report.resolution)] {
            let Some(clock) = clock else { continue };
            let crossed_risk = matches!(clock.state, SlaState::AtRisk | SlaState::Breached);
            if crossed_risk && !warned.contains(&target) && !breached.contains(&target) {
                out.push((
                    clock.at_risk_at.unwrap_or(probe).max(event.at),
                    Command::SlaAtRisk {
                        target: target.to_string(),
                        due_at: clock.due_at,
                    },
                ));
                warned.push(target);
            }
            if clock.state == SlaState::Breached && !breached.contains(&target) {
                out.push((
                    clock.due_at.unwrap_or(probe).max(event.at),
                    Command::SlaBreached {
                        target: target.to_string(),
                        due_at: clock.due_at,
                    },
                ));
                breached.push(target);
            }
        }
    }
    // Warnings and breaches of both clocks between two events, in time order.
    out.sort_by_key(|(at, _)| *at);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sla::{Calendar, Duration, SlaTargets};
    use crate::{Actor, Priority, PriorityMatrix, RegistrationInput, Role, UserId, apply, decide, register};

    const MIN: i64 = 60_000_000;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + minutes * MIN)
    }

    fn policies() -> SlaPolicies {
        // Impact 3 × urgency 3 is P5 in the default matrix.
        let targets = BTreeMap::from([(
            Priority::P5,
            SlaTargets {
                response: Some(Duration::from_mins(10)),
                resolution: Some(Duration::from_mins(100)),
            },
        )]);
        let policy = SlaPolicy::new(Calendar::always(), targets, [], 80).expect("policy");
        SlaPolicies {
            by_service: BTreeMap::new(),
            default: Some(Arc::new(policy)),
        }
    }

    fn run(incident: Incident, commands: &[Command], now: Timestamp) -> Incident {
        let actor = Actor {
            user: UserId::new("keel"),
            role: Role::Admin,
        };
        let mut incident = incident;
        for command in commands {
            let changes = decide(&incident, command.clone(), &actor, &PriorityMatrix::default()).expect("decide");
            for change in changes {
                let seq = incident.version + 1;
                incident = apply(Some(incident), "i", seq, &actor.user, now, &change).expect("apply");
            }
        }
        incident
    }

    fn incident() -> Incident {
        let actor = Actor {
            user: UserId::new("ann"),
            role: Role::Agent,
        };
        let input = RegistrationInput {
            title: "Mail down".into(),
            ..RegistrationInput::default()
        };
        let change = register(input, 1, &actor, &PriorityMatrix::default()).expect("register");
        apply(None, "i", 1, &actor.user, at(0), &change).expect("registered")
    }

    #[test]
    fn targets_are_announced_once_then_risk_and_breach_are_recorded_once_each() {
        let policies = policies();
        let first = judge(&incident(), &policies, at(1));
        assert!(
            matches!(first.commands.as_slice(), [Command::SetSlaTargets { response_due: Some(d), .. }] if *d == at(10))
        );
        assert_eq!(first.next_at, Some(at(8)), "at risk at 80 % of 10 minutes");
        let incident = run(incident(), &first.commands, at(1));
        assert!(judge(&incident, &policies, at(2)).commands.is_empty(), "nothing new");
        let risk = judge(&incident, &policies, at(9));
        assert!(matches!(risk.commands.as_slice(), [Command::SlaAtRisk { target, .. }] if target == "response"));
        assert_eq!(risk.state, Some(SlaState::AtRisk));
        let incident = run(incident, &risk.commands, at(9));
        assert!(judge(&incident, &policies, at(9)).commands.is_empty(), "warned once");
        let breach = judge(&incident, &policies, at(11));
        assert!(matches!(breach.commands.as_slice(), [Command::SlaBreached { target, .. }] if target == "response"));
        let incident = run(incident, &breach.commands, at(11));
        let later = judge(&incident, &policies, at(12));
        assert!(later.commands.is_empty(), "breached once");
        assert_eq!(later.state, Some(SlaState::Breached));
        // Running the same commands twice (two sweepers) changes nothing the second time.
        let twice = run(incident.clone(), &breach.commands, at(12));
        assert_eq!(twice.version, incident.version);
    }

    #[test]
    fn no_policy_means_no_verdict() {
        let verdict = judge(&incident(), &SlaPolicies::default(), at(5));
        assert_eq!(verdict, Verdict::default());
    }

    fn history(steps: &[(i64, crate::sla::SlaEventKind)]) -> Vec<SlaEvent> {
        steps
            .iter()
            .map(|(minutes, kind)| SlaEvent {
                at: at(*minutes),
                kind: *kind,
            })
            .collect()
    }

    #[test]
    fn replay_writes_targets_at_registration_and_each_crossing_at_its_instant() {
        use crate::sla::SlaEventKind as K;
        let policies = policies();
        let policy = policies.default.as_deref().expect("policy");
        // Accepted after 5 min (response met), resolved after 150 min: the
        // 100 min resolution target was at risk at 80 min and breached at 100.
        let events = history(&[
            (0, K::Registered { priority: Priority::P5 }),
            (5, K::Accepted),
            (150, K::Resolved),
            (200, K::Closed),
        ]);
        let written = replay(policy, &events, at(10_000));
        assert_eq!(
            written,
            vec![
                (
                    at(0),
                    Command::SetSlaTargets {
                        priority: Priority::P5,
                        response_due: Some(at(10)),
                        resolution_due: Some(at(100)),
                    }
                ),
                (
                    at(80),
                    Command::SlaAtRisk {
                        target: "resolution".into(),
                        due_at: Some(at(100)),
                    }
                ),
                (
                    at(100),
                    Command::SlaBreached {
                        target: "resolution".into(),
                        due_at: Some(at(100)),
                    }
                ),
            ]
        );
    }

    #[test]
    fn replay_of_a_history_within_target_writes_only_the_targets_and_an_open_one_breaches_by_now() {
        use crate::sla::SlaEventKind as K;
        let policies = policies();
        let policy = policies.default.as_deref().expect("policy");
        let quick = history(&[
            (0, K::Registered { priority: Priority::P5 }),
            (2, K::Accepted),
            (30, K::Resolved),
        ]);
        let written = replay(policy, &quick, at(10_000));
        assert_eq!(written.len(), 1, "{written:?}");
        // Still open and never accepted: both clocks cross before now, each once.
        let open = history(&[(0, K::Registered { priority: Priority::P5 })]);
        let written = replay(policy, &open, at(500));
        let kinds: Vec<(Timestamp, &str)> = written
            .iter()
            .map(|(t, c)| {
                (
                    *t,
                    match c {
                        Command::SetSlaTargets { .. } => "targets",
                        Command::SlaAtRisk { target, .. } if target == "response" => "response at risk",
                        Command::SlaBreached { target, .. } if target == "response" => "response breached",
                        Command::SlaAtRisk { .. } => "resolution at risk",
                        Command::SlaBreached { .. } => "resolution breached",
                        _ => "other",
                    },
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (at(0), "targets"),
                (at(8), "response at risk"),
                (at(10), "response breached"),
                (at(80), "resolution at risk"),
                (at(100), "resolution breached"),
            ]
        );
        // Nothing is due before now: nothing crossed.
        assert_eq!(replay(policy, &open, at(3)).len(), 1);
    }
}
