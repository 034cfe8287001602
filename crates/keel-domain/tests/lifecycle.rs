//! Lifecycle rules and their invariants, checked through the public API:
//! table cases for each transition, and property tests over random sequences
//! of commands (one owner, a legal state, a chain that verifies, a state that
//! is the fold of the timeline).

use keel_domain::timeline::{GENESIS_HASH, seal, verify};
use keel_domain::{
    Actor, Change, Claimed, ClassificationPatch, ClosureInput, Command, DomainError, Entry, HoldReason, Impact,
    Incident, PriorityMatrix, RegistrationInput, Role, State, Timestamp, Urgency, UserId, Visibility, apply, decide,
    fold, register,
};
use proptest::prelude::*;

fn agent(id: &str) -> Actor {
    Actor {
        user: UserId::new(id),
        role: Role::Agent,
    }
}

/// A tiny in-memory timeline: what a store does, without the store.
struct Journal {
    id: String,
    entries: Vec<Entry>,
    incident: Option<Incident>,
}

impl Journal {
    fn open(actor: &Actor, input: RegistrationInput) -> Self {
        let change = register(input, 1, actor, &PriorityMatrix::default()).expect("valid registration");
        let mut journal = Journal {
            id: "inc-1".into(),
            entries: Vec::new(),
            incident: None,
        };
        journal.append(actor, &change);
        journal
    }

    fn append(&mut self, actor: &Actor, change: &Change) {
        let seq = self.entries.len() as u64 + 1;
        let prev = self.entries.last().map_or(GENESIS_HASH.to_string(), |e| e.hash.clone());
        let at = Timestamp::from_micros(seq as i64 * 1_000_000);
        let entry = seal(&self.id, seq, &prev, &actor.user, at, Claimed::default(), change);
        self.incident = apply(self.incident.take(), &self.id, seq, &actor.user, at, change);
        self.entries.push(entry);
    }

    fn run(&mut self, actor: &Actor, command: Command) -> Result<(), DomainError> {
        let incident = self.incident.clone().expect("registered");
        for change in decide(&incident, command, actor, &PriorityMatrix::default())? {
            self.append(actor, &change);
        }
        Ok(())
    }

    fn state(&self) -> State {
        self.incident.as_ref().expect("registered").state
    }
}

fn titled(title: &str) -> RegistrationInput {
    RegistrationInput {
        title: title.into(),
        ..RegistrationInput::default()
    }
}

fn resolve() -> Command {
    Command::Resolve {
        code: "fixed".into(),
        notes: "restarted".into(),
        workaround: None,
        known_solution: false,
        automated: false,
    }
}

#[test]
fn registration_derives_priority_from_impact_and_urgency() {
    let input = RegistrationInput {
        impact: Some(Impact::try_from(1).expect("1..4")),
        urgency: Some(Urgency::try_from(2).expect("1..4")),
        ..titled("Mail down")
    };
    let journal = Journal::open(&agent("a"), input);
    let incident = journal.incident.expect("registered");
    assert_eq!(incident.priority.as_str(), "P2");
    assert_eq!(incident.state, State::New);
    assert_eq!(
        incident.owner,
        UserId::new("a"),
        "the registering user owns it by default"
    );
}

#[test]
fn the_happy_path_walks_every_state() {
    let a = agent("a");
    let mut j = Journal::open(&a, titled("VPN drops"));
    j.run(&a, Command::Accept).expect("accept");
    j.run(
        &a,
        Command::Hold {
            reason: HoldReason::AwaitingUser,
            note: None,
        },
    )
    .expect("hold");
    assert_eq!(j.state(), State::OnHold);
    j.run(&a, Command::Resume { note: None }).expect("resume");
    j.run(
        &a,
        Command::Diagnose {
            cause: Some("expired cert".into()),
            note: None,
        },
    )
    .expect("diagnose");
    j.run(&a, resolve()).expect("resolve");
    j.run(
        &a,
        Command::Reopen {
            reason: "still drops".into(),
        },
    )
    .expect("reopen");
    assert_eq!(j.incident.as_ref().map(|i| i.reopens), Some(1));
    j.run(&a, resolve()).expect("resolve again");
    j.run(
        &a,
        Command::Close {
            note: None,
            closure: ClosureInput::default(),
        },
    )
    .expect("close");
    assert_eq!(j.state(), State::Closed);
}

#[test]
fn illegal_transitions_are_refused_and_change_nothing() {
    let a = agent("a");
    let mut j = Journal::open(&a, titled("Printer jam"));
    let before = j.entries.len();
    for command in [
        Command::Close {
            note: None,
            closure: ClosureInput::default(),
        },
        Command::Resume { note: None },
        Command::Reopen { reason: "x".into() },
    ] {
        let err = j.run(&a, command).expect_err("illegal in new");
        assert!(
            matches!(err, DomainError::IllegalTransition { state: State::New, .. }),
            "{err:?}"
        );
    }
    j.run(
        &a,
        Command::Cancel {
            reason: "duplicate".into(),
        },
    )
    .expect("cancel");
    assert!(j.run(&a, Command::Accept).is_err(), "cancelled is final");
    assert_eq!(j.entries.len(), before + 1);
}

#[test]
fn hold_and_resolve_demand_their_reasons() {
    let a = agent("a");
    let mut j = Journal::open(&a, titled("Slow DB"));
    j.run(&a, Command::Accept).expect("accept");
    let err = j
        .run(
            &a,
            Command::Resolve {
                code: " ".into(),
                notes: "n".into(),
                workaround: None,
                known_solution: false,
                automated: false,
            },
        )
        .expect_err("empty code");
    assert!(matches!(err, DomainError::Invalid(_)));
    assert!(j.run(&a, Command::Cancel { reason: String::new() }).is_err());
}

#[test]
fn end_users_only_comment_publicly_confirm_or_reopen_their_own() {
    let user = Actor {
        user: UserId::new("u"),
        role: Role::EndUser,
    };
    let other = Actor {
        user: UserId::new("v"),
        role: Role::EndUser,
    };
    let a = agent("a");
    let mut j = Journal::open(&user, titled("Cannot log in"));
    assert!(matches!(j.run(&user, Command::Accept), Err(DomainError::Forbidden(_))));
    assert!(matches!(
        j.run(
            &user,
            Command::Comment {
                body: "x".into(),
                visibility: Visibility::Internal
            }
        ),
        Err(DomainError::Forbidden(_))
    ));
    j.run(
        &user,
        Command::Comment {
            body: "any news?".into(),
            visibility: Visibility::Public,
        },
    )
    .expect("own public comment");
    assert!(matches!(
        j.run(
            &other,
            Command::Comment {
                body: "x".into(),
                visibility: Visibility::Public
            }
        ),
        Err(DomainError::Forbidden(_))
    ));
    j.run(&a, resolve()).expect("agent resolves");
    j.run(
        &user,
        Command::Close {
            note: Some("works".into()),
            closure: ClosureInput::default(),
        },
    )
    .expect("user confirms");
}

#[test]
fn reassignments_count_moves_to_another_team_not_the_first_assignment_or_owner_changes() {
    let a = agent("a");
    let mut j = Journal::open(&a, titled("Disk full"));
    j.run(
        &a,
        Command::Assign {
            team: Some("dba".into()),
            owner: Some(UserId::new("b")),
            add_collaborators: vec![UserId::new("c")],
        },
    )
    .expect("assign");
    let inc = j.incident.clone().expect("registered");
    assert_eq!(inc.owner, UserId::new("b"));
    assert_eq!(inc.team.as_deref(), Some("dba"));
    assert_eq!(
        inc.reassignments, 0,
        "the first team is an assignment, not a reassignment"
    );
    assert_eq!(inc.collaborators, vec![UserId::new("c")]);
    let n = j.entries.len();
    j.run(
        &a,
        Command::Assign {
            team: Some("dba".into()),
            owner: None,
            add_collaborators: vec![],
        },
    )
    .expect("same team");
    assert_eq!(j.entries.len(), n, "assigning what already holds writes nothing");
    j.run(
        &a,
        Command::Assign {
            team: None,
            owner: Some(UserId::new("d")),
            add_collaborators: vec![],
        },
    )
    .expect("new owner in the team");
    assert_eq!(
        j.incident.as_ref().map(|i| i.reassignments),
        Some(0),
        "an owner change within the team is not one"
    );
    j.run(
        &a,
        Command::Assign {
            team: Some("network".into()),
            owner: None,
            add_collaborators: vec![],
        },
    )
    .expect("move");
    assert_eq!(
        j.incident.as_ref().map(|i| i.reassignments),
        Some(1),
        "moving to another team is"
    );
}

#[test]
fn reclassifying_impact_recomputes_priority_and_keeps_only_real_changes() {
    let a = agent("a");
    let mut j = Journal::open(&a, titled("Checkout errors"));
    let patch = ClassificationPatch {
        impact: Some(Impact::try_from(1).expect("1..4")),
        title: Some("Checkout errors".into()),
        ..Default::default()
    };
    j.run(&a, Command::Reclassify(Box::new(patch))).expect("reclassify");
    let last = j.entries.last().expect("entry");
    assert_eq!(last.kind, "reclassified");
    assert!(
        last.data.get("title").is_none(),
        "an unchanged title is not recorded: {}",
        last.data
    );
    assert_eq!(j.incident.as_ref().map(|i| i.priority.as_str()), Some("P3"));
}

#[derive(Debug, Clone)]
enum Step {
    Act(u8, Command),
}

fn command() -> impl Strategy<Value = Command> {
    let reason = prop_oneof![
        Just(HoldReason::AwaitingUser),
        Just(HoldReason::AwaitingSupplier),
        Just(HoldReason::AwaitingChange),
        Just(HoldReason::Other)
    ];
    let user = (0u8..4).prop_map(|n| UserId::new(format!("user-{n}")));
    prop_oneof![
        Just(Command::Accept),
        reason.prop_map(|reason| Command::Hold { reason, note: None }),
        Just(Command::Resume { note: None }),
        Just(Command::Diagnose {
            cause: Some("cause".into()),
            note: None
        }),
        Just(resolve()),
        Just(Command::Close {
            note: None,
            closure: ClosureInput::default()
        }),
        Just(Command::Reopen { reason: "again".into() }),
        Just(Command::Cancel { reason: "dup".into() }),
        (proptest::option::of("[a-c]"), proptest::option::of(user.clone())).prop_map(|(team, owner)| Command::Assign {
            team,
            owner,
            add_collaborators: vec![]
        }),
        (1u8..=4, 1u8..=4).prop_map(|(i, u)| Command::Reclassify(Box::new(ClassificationPatch {
            impact: Impact::try_from(i).ok(),
            urgency: Urgency::try_from(u).ok(),
            ..Default::default()
        }))),
        "[a-z ]{0,12}".prop_map(|body| Command::Comment {
            body,
            visibility: Visibility::Public
        }),
    ]
}

proptest! {
    #[test]
    fn any_sequence_of_commands_keeps_the_invariants(steps in proptest::collection::vec((0u8..5, command()).prop_map(|(who, c)| Step::Act(who, c)), 0..40)) {
        let registrar = agent("user-0");
        let mut j = Journal::open(&registrar, titled("Random walk"));
        for Step::Act(who, command) in steps {
            let role = if who == 4 { Role::EndUser } else { Role::Agent };
            let actor = Actor { user: UserId::new(format!("user-{who}")), role };
            let before = j.entries.len();
            let before_state = j.state();
            if j.run(&actor, command).is_err() {
                prop_assert_eq!(j.entries.len(), before, "a refused command writes nothing");
                prop_assert_eq!(j.state(), before_state);
            }
            let inc = j.incident.clone().expect("registered");
            // Exactly one owner, who is a real id.
            prop_assert!(!inc.owner.as_str().is_empty());
            prop_assert!(!inc.collaborators.contains(&inc.owner));
            // Held incidents have a reason; others have none.
            prop_assert_eq!(inc.state == State::OnHold, inc.hold_reason.is_some());
            prop_assert_eq!(inc.state == State::Resolved || inc.state == State::Closed, inc.resolution.is_some() || inc.state == State::Closed);
            prop_assert_eq!(inc.version as usize, j.entries.len());
        }
        let head = j.entries.last().map(|e| (e.seq, e.hash.as_str()));
        prop_assert!(verify(&j.id, &j.entries, head).ok);
        // State is derived from the timeline alone.
        let changes: Vec<Change> = j.entries.iter().map(|e| Change::from_parts(&e.kind, &e.data).expect("stored change reads back")).collect();
        let refolded = fold(&j.id, j.entries.iter().zip(changes.iter()).map(|(e, c)| (e.seq, &e.actor, e.recorded_at, c)));
        prop_assert_eq!(refolded, j.incident.clone());
    }
}
