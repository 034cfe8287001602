//! `keel serve --demo`: fills an empty database with a small, plausible
//! organisation — agents, an incident manager, end users — and three weeks
//! of incidents in every state, so a newcomer sees a living system. What
//! happened in the past is written with claimed times (`occurred_at`), as
//! late documentation always is: `recorded_at` stays the server's clock.

use std::sync::Arc;

use keel_domain::{
    Actor, Claimed, ClosureInput, Command, HoldReason, Impact, PriorityMatrix, RegistrationInput, Role, Source,
    Timestamp, Urgency, UserId, Visibility,
};
use keel_store::{Clock, ExecuteRequest, IncidentFilter, IncidentRef, NewUser, Page, RegisterRequest, Store};

/// (title, service, category, team, impact, urgency)
const TEMPLATES: &[(&str, &str, &str, &str, u8, u8)] = &[
    (
        "Checkout returns 502 for a share of customers",
        "web-shop",
        "availability",
        "web",
        1,
        1,
    ),
    (
        "VPN disconnects every few minutes",
        "remote-access",
        "network",
        "network",
        2,
        2,
    ),
    (
        "Payroll export stuck in queue",
        "payroll",
        "batch",
        "finance-apps",
        2,
        1,
    ),
    (
        "Outlook cannot connect after password change",
        "email",
        "access",
        "service-desk",
        4,
        2,
    ),
    (
        "Printer on floor 3 prints blank pages",
        "printing",
        "hardware",
        "service-desk",
        4,
        3,
    ),
    (
        "Database replica lag above 10 minutes",
        "orders-db",
        "performance",
        "dba",
        3,
        2,
    ),
    (
        "Search results empty for some catalogue pages",
        "web-shop",
        "functional",
        "web",
        2,
        3,
    ),
    (
        "Badge readers offline in building B",
        "facilities",
        "hardware",
        "facilities",
        3,
        2,
    ),
    (
        "Disk 92% full on file server",
        "file-shares",
        "capacity",
        "infrastructure",
        3,
        3,
    ),
    (
        "SSO login loop in the HR portal",
        "hr-portal",
        "access",
        "identity",
        2,
        2,
    ),
    (
        "Slow response in the CRM for the sales team",
        "crm",
        "performance",
        "business-apps",
        3,
        2,
    ),
    (
        "Nightly backup job failed twice",
        "backup",
        "batch",
        "infrastructure",
        3,
        3,
    ),
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

const HOUR: i64 = 3_600_000_000;

/// The password of every demo person (e.g. sam.okafor@demo.keel, an agent;
/// eve.martin@demo.keel, an end user). Demo data only.
pub const DEMO_PASSWORD: &str = "keel-demo-password";

/// Adds the demo organisation when the database holds no incident yet.
/// Returns how many incidents it registered (0 when it left the data alone).
pub async fn fill(store: &dyn Store, clock: &dyn Clock, matrix: Arc<PriorityMatrix>) -> anyhow::Result<usize> {
    let existing = store
        .list_incidents(
            &IncidentFilter::default(),
            Page {
                limit: 1,
                after_number: None,
            },
        )
        .await?;
    if !existing.is_empty() {
        tracing::info!("--demo: the database already has incidents; leaving it as it is");
        return Ok(0);
    }
    let mut people = Vec::new();
    // One hash for every demo person: they all sign in with DEMO_PASSWORD.
    let demo_hash = keel_http::auth::hash_password(DEMO_PASSWORD).map_err(|e| anyhow::anyhow!(e.detail))?;
    for (name, role) in [
        ("Sam Okafor", Role::Agent),
        ("Lena Novak", Role::Agent),
        ("Ravi Iyer", Role::Agent),
        ("Maya Brandt", Role::IncidentManager),
        ("Eve Martin", Role::EndUser),
        ("Tom Weber", Role::EndUser),
        ("Aiko Sato", Role::EndUser),
    ] {
        let id = keel_http::new_id();
        let email = format!("{}@demo.keel", name.to_lowercase().replace(' ', "."));
        store
            .create_user(NewUser {
                id: id.clone(),
                name: name.into(),
                email,
                role,
                time_zone: None,
                password_hash: Some(demo_hash.clone()),
                contact_methods: Vec::new(),
            })
            .await?;
        people.push(Actor {
            user: UserId::new(id),
            role,
        });
    }
    let staff: Vec<&Actor> = people.iter().filter(|a| a.role.is_staff()).collect();
    let users: Vec<&Actor> = people.iter().filter(|a| !a.role.is_staff()).collect();
    catalogue(store, &staff).await?;
    let now = clock.now().as_micros();
    let mut rng = Lcg(0x6b65_656c);
    let n_incidents = 48;
    for i in 0..n_incidents {
        let (title, service, category, team, impact, urgency) = TEMPLATES[i % TEMPLATES.len()];
        let age_hours = (n_incidents - i) as i64 * 10 + rng.next(8) as i64;
        let opened = now - age_hours * HOUR;
        let at = |hours: i64| Claimed {
            occurred_at: Some(Timestamp::from_micros((opened + hours * HOUR).min(now))),
            ..Claimed::default()
        };
        let from_user = rng.next(2) == 0;
        let reporter = if from_user {
            users[i % users.len()]
        } else {
            staff[i % staff.len()]
        };
        let owner = staff[rng.next(staff.len() as u64) as usize];
        let input = RegistrationInput {
            title: title.into(),
            description: Some(format!("Reported {} hours ago. Demo data.", age_hours)),
            impact: Impact::try_from(impact).ok(),
            urgency: Urgency::try_from(urgency).ok(),
            service: Some(service.into()),
            category: Some(category.into()),
            source: Some(if from_user { Source::User } else { Source::Specialist }),
            ..RegistrationInput::default()
        };
        let incident = store
            .register(RegisterRequest {
                id: keel_http::new_id(),
                input,
                actor: reporter.clone(),
                claimed: at(0),
                matrix: Arc::clone(&matrix),
                rules: Arc::default(),
                labels: std::collections::BTreeMap::new(),
                number: None,
            })
            .await?;
        let target = IncidentRef::Id(incident.id.clone());
        let run = |command: Command, actor: &Actor, hours: i64| ExecuteRequest {
            incident: target.clone(),
            command,
            actor: actor.clone(),
            claimed: at(hours),
            expected_version: None,
            matrix: Arc::clone(&matrix),
        };
        let mut steps = vec![(
            Command::Assign {
                team: Some(team.into()),
                owner: Some(owner.user.clone()),
                add_collaborators: vec![],
            },
            staff[0],
            0,
        )];
        // Older incidents are further along their lifecycle.
        let stage = if age_hours > 200 {
            4
        } else if age_hours > 100 {
            3
        } else {
            (rng.next(3)) as usize
        };
        if stage >= 1 {
            steps.push((Command::Accept, owner, 1));
        }
        if stage == 2 && rng.next(2) == 0 {
            steps.push((
                Command::Hold {
                    reason: HoldReason::AwaitingUser,
                    note: Some("asked the user for a screenshot".into()),
                },
                owner,
                2,
            ));
        }
        if stage >= 3 {
            steps.push((
                Command::Diagnose {
                    cause: Some(format!("{category} fault in {service}")),
                    note: None,
                },
                owner,
                3,
            ));
            steps.push((
                Command::Resolve {
                    code: if rng.next(3) == 0 {
                        "workaround".into()
                    } else {
                        "fixed".into()
                    },
                    notes: "Restored service; see diagnosis.".into(),
                    workaround: None,
                    known_solution: rng.next(2) == 0,
                    automated: false,
                },
                owner,
                5,
            ));
            steps.push((
                Command::Comment {
                    body: "Service is back for you, please confirm.".into(),
                    visibility: Visibility::Public,
                },
                owner,
                5,
            ));
        }
        if stage >= 4 {
            steps.push((
                Command::Close {
                    note: Some("confirmed by the user".into()),
                    closure: ClosureInput::default(),
                },
                owner,
                30,
            ));
        }
        for (command, actor, hours) in steps {
            store.execute(run(command, actor, hours)).await?;
        }
    }
    // One major incident going on now, with a public update: the status
    // page shows an outage and the portal offers it as a known issue.
    let major = store
        .register(RegisterRequest {
            id: keel_http::new_id(),
            input: RegistrationInput {
                title: "Checkout fails for many customers".into(),
                description: Some("Payments time out at the last step. Demo data.".into()),
                impact: Impact::try_from(1).ok(),
                urgency: Urgency::try_from(1).ok(),
                service: Some("web-shop".into()),
                category: Some("availability".into()),
                team: Some("web".into()),
                owner: Some(staff[0].user.clone()),
                major: true,
                source: Some(Source::Monitoring),
                ..RegistrationInput::default()
            },
            actor: staff[0].clone(),
            claimed: Claimed::default(),
            matrix: Arc::clone(&matrix),
            rules: Arc::default(),
            labels: std::collections::BTreeMap::new(),
            number: None,
        })
        .await?;
    for command in [
        Command::Accept,
        Command::Comment {
            body: "We know checkout is failing for many customers and are working on it.".into(),
            visibility: Visibility::Public,
        },
    ] {
        store
            .execute(ExecuteRequest {
                incident: IncidentRef::Id(major.id.clone()),
                command,
                actor: staff[0].clone(),
                claimed: Claimed::default(),
                expected_version: None,
                matrix: Arc::clone(&matrix),
            })
            .await?;
    }
    Ok(n_incidents + 1)
}

/// The teams and services the demo incidents name, and a standard SLA.
async fn catalogue(store: &dyn Store, staff: &[&Actor]) -> anyhow::Result<()> {
    use keel_domain::catalogue::{Change, Criticality, Service, SlaPolicyDoc, Team};
    let mut teams = std::collections::BTreeMap::new();
    for (_, _, _, team, _, _) in TEMPLATES {
        if teams.contains_key(*team) {
            continue;
        }
        let id = keel_http::new_id();
        store
            .change_catalogue(Change::PutTeam(Team {
                id: id.clone(),
                name: (*team).into(),
                description: None,
                lead: staff.first().map(|a| a.user.clone()),
                members: staff.iter().map(|a| a.user.clone()).collect(),
                wip_limits: [("accepted".to_string(), 5)].into_iter().collect(),
            }))
            .await?;
        teams.insert(*team, id);
    }
    let mut services = std::collections::BTreeSet::new();
    for (_, service, _, team, impact, _) in TEMPLATES {
        if !services.insert(*service) {
            continue;
        }
        store
            .change_catalogue(Change::PutService(Service {
                id: keel_http::new_id(),
                name: (*service).into(),
                team: teams.get(team).cloned(),
                criticality: if *impact <= 2 {
                    Criticality::High
                } else {
                    Criticality::Medium
                },
                description: None,
            }))
            .await?;
    }
    let spec = serde_json::from_value(serde_json::json!({
        "targets": {"P1": {"response": "15m", "resolution": "4h"}, "P2": {"response": "30m", "resolution": "8h"},
                    "P3": {"response": "2h", "resolution": "24h"}, "P4": {"response": "8h", "resolution": "72h"},
                    "P5": {"response": "24h", "resolution": "120h"}}
    }))?;
    store
        .change_catalogue(Change::PutSlaPolicy(SlaPolicyDoc {
            id: keel_http::new_id(),
            name: "Standard".into(),
            service: None,
            spec,
        }))
        .await?;
    Ok(())
}
