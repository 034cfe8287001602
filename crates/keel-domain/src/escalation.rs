//! Escalation policies: when a team's new incident is not accepted in time,
//! ownership moves up a ladder of levels — a person, whoever is on call in a
//! schedule, or the team's lead — each engaged a set time after
//! registration. The sweep asks `step` what to do; each level is recorded
//! once (`escalated` in the timeline) and the new owner is notified.

use serde::{Deserialize, Serialize};

use crate::sla::Duration;
use crate::{Command, DomainError, Incident, MAX_SHORT, State, Timestamp, UserId};

/// Who a level engages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A person (user id).
    User(UserId),
    /// Whoever is on call in a schedule (its id) at the time.
    Schedule(String),
    /// The team's lead.
    Lead,
}

/// One rung: engaged `after` this much real time since registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub after: Duration,
    /// Tried in order; the first that resolves to a person takes ownership.
    pub targets: Vec<Target>,
}

/// A team's escalation policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    pub id: String,
    pub name: String,
    /// The team's id.
    pub team: String,
    /// Ordered by `after`.
    pub levels: Vec<Level>,
}

impl EscalationPolicy {
    /// Checks the policy and orders its levels.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the problem.
    pub fn checked(mut self) -> Result<Self, DomainError> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > MAX_SHORT || self.name.contains('\0') {
            return Err(DomainError::Invalid(format!(
                "an escalation policy needs a name of 1 to {MAX_SHORT} characters"
            )));
        }
        if self.levels.is_empty() || self.levels.len() > 20 {
            return Err(DomainError::Invalid("an escalation policy has 1 to 20 levels".into()));
        }
        for (i, level) in self.levels.iter().enumerate() {
            if level.after.is_negative() {
                return Err(DomainError::Invalid(format!("level {i}: after must not be negative")));
            }
            if level.targets.is_empty() {
                return Err(DomainError::Invalid(format!("level {i} has no targets")));
            }
        }
        self.levels.sort_by_key(|l| l.after.as_micros());
        Ok(self)
    }
}

/// A policy with its targets resolved to people as of now (on-call looked
/// up by the adapter): per level, its delay and its person, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub levels: Vec<(Duration, Option<UserId>)>,
}

/// What the sweep should do about escalation for `incident`: a command to
/// escalate to the latest level now due (if it was not yet recorded), and
/// when to look again. Only incidents still `new` (nobody accepted) escalate.
#[must_use]
pub fn step(incident: &Incident, policy: &Resolved, now: Timestamp) -> (Option<Command>, Option<Timestamp>) {
    if incident.state != State::New {
        return (None, None);
    }
    let elapsed = now.as_micros() - incident.created_at.as_micros();
    let reached = incident.escalation_level.map_or(0, |l| l as usize + 1);
    let due: Vec<usize> = (reached..policy.levels.len())
        .filter(|&i| policy.levels[i].0.as_micros() <= elapsed)
        .collect();
    let command = due.last().and_then(|&level| {
        // The latest level due that has a person; skipping is recorded by its number.
        (reached..=level).rev().find_map(|i| {
            let (_, user) = &policy.levels[i];
            user.clone().map(|to| Command::Escalate {
                level: u32::try_from(i).unwrap_or(u32::MAX),
                to,
            })
        })
    });
    let next_index = due.last().map_or(reached, |&l| l + 1);
    let next = policy
        .levels
        .get(next_index)
        .map(|(after, _)| Timestamp::from_micros(incident.created_at.as_micros() + after.as_micros()));
    (command, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, PriorityMatrix, RegistrationInput, Role, apply, decide, register};

    const MIN: i64 = 60_000_000;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_micros(1_800_000_000_000_000 + minutes * MIN)
    }

    fn incident() -> Incident {
        let actor = Actor {
            user: UserId::new("first"),
            role: Role::Agent,
        };
        let input = RegistrationInput {
            title: "Pager".into(),
            ..RegistrationInput::default()
        };
        let change = register(input, 1, &actor, &PriorityMatrix::default()).expect("register");
        apply(None, "i", 1, &actor.user, at(0), &change).expect("registered")
    }

    fn run(incident: Incident, command: Command, now: Timestamp) -> Incident {
        let actor = Actor {
            user: UserId::new("keel"),
            role: Role::Admin,
        };
        let changes = decide(&incident, command, &actor, &PriorityMatrix::default()).expect("decide");
        changes.iter().fold(incident, |inc, change| {
            let seq = inc.version + 1;
            apply(Some(inc), "i", seq, &actor.user, now, change).expect("apply")
        })
    }

    fn ladder() -> Resolved {
        Resolved {
            levels: vec![
                (Duration::from_mins(5), Some(UserId::new("second"))),
                (Duration::from_mins(15), None),
                (Duration::from_mins(30), Some(UserId::new("boss"))),
            ],
        }
    }

    #[test]
    fn an_unaccepted_incident_climbs_the_ladder_once_per_level() {
        let policy = ladder();
        let incident = incident();
        assert_eq!(step(&incident, &policy, at(1)), (None, Some(at(5))));
        let (command, next) = step(&incident, &policy, at(6));
        assert_eq!(next, Some(at(15)));
        let incident = run(incident, command.expect("escalate"), at(6));
        assert_eq!(incident.owner, UserId::new("second"));
        assert_eq!(incident.escalation_level, Some(0));
        assert_eq!(step(&incident, &policy, at(7)), (None, Some(at(15))), "recorded once");
        // Level 1 has nobody: nothing to do, look again at level 2's time.
        assert_eq!(step(&incident, &policy, at(16)).0, None);
        let (command, next) = step(&incident, &policy, at(31));
        let incident = run(incident, command.expect("escalate"), at(31));
        assert_eq!(incident.owner, UserId::new("boss"));
        assert_eq!(next, None, "the top of the ladder");
    }

    #[test]
    fn accepted_incidents_do_not_escalate() {
        let actor = Actor {
            user: UserId::new("first"),
            role: Role::Agent,
        };
        let incident = incident();
        let changes = decide(&incident, Command::Accept, &actor, &PriorityMatrix::default()).expect("accept");
        let accepted = apply(Some(incident), "i", 2, &actor.user, at(1), &changes[0]).expect("apply");
        assert_eq!(step(&accepted, &ladder(), at(40)), (None, None));
    }

    #[test]
    fn policies_need_levels_with_targets() {
        let policy = EscalationPolicy {
            id: "p".into(),
            name: "Ops".into(),
            team: "t".into(),
            levels: vec![
                Level {
                    after: Duration::from_mins(30),
                    targets: vec![Target::Lead],
                },
                Level {
                    after: Duration::from_mins(5),
                    targets: vec![Target::Schedule("s".into())],
                },
            ],
        };
        let checked = policy.clone().checked().expect("valid");
        assert_eq!(checked.levels[0].after, Duration::from_mins(5), "ordered by delay");
        let empty = EscalationPolicy {
            levels: vec![Level {
                after: Duration::from_mins(1),
                targets: Vec::new(),
            }],
            ..policy
        };
        assert!(empty.checked().is_err());
    }
}
