//! The CLI client for the catalogue, through the real binary: a team with a
//! lead and a WIP limit, a service it owns, CIs that depend on each other, a
//! classification rule, an SLA policy from `--target`, an on-call schedule
//! from a layers file; then an incident those classify, the team's backlog
//! with its SLA, who is on call, the incident's impact, and how refusals
//! (a bad target, deleting a CI another depends on) are shown.

use std::process::Output;

use serde_json::{Value, json};

use crate::binary::{Server, cli, cli_json, micros, stdout};

/// A refusal: exit 1, and what stderr says.
fn refused(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "refused with exit 1; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_the_catalogue_rules_on_call_and_slas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let secret = "keel_cli_catalogue_bootstrap_token_01";
    let server = Server::start(&["--data-dir", data], &[("KEEL_BOOTSTRAP_TOKEN", secret)]).await;
    let base = server.base.clone();
    let run = |args: &[&str]| cli(&base, secret, args);
    let json = |args: &[&str]| cli_json(&base, secret, args);

    let user = |name: &str, email: &str| {
        id(&json(&[
            "user", "create", "--name", name, "--email", email, "--role", "agent",
        ]))
    };
    let alice = user("Alice Lead", "alice@example.org");
    let bob = user("Bob Oncall", "bob@example.org");

    // A team with a lead, a member and a WIP limit on new work; its name has a space.
    let team = json(&[
        "team",
        "create",
        "--name",
        "Site Reliability",
        "--lead",
        &alice,
        "--member",
        &bob,
        "--wip",
        "new=1",
        "--wip",
        "accepted=5",
    ]);
    assert_eq!(team["lead"], json!(alice));
    assert_eq!(team["members"], json!([alice, bob]));
    assert_eq!(team["wip_limits"], json!({"new": 1, "accepted": 5}));
    let shown = stdout(&run(&["team", "show", "Site Reliability"]));
    assert!(
        shown.contains("Alice Lead") && shown.contains("Bob Oncall") && shown.contains("new=1"),
        "the table names the people: {shown}"
    );

    // A service the team owns, and two CIs: web-01 needs db-01.
    let service = json(&[
        "service",
        "create",
        "--name",
        "checkout",
        "--team",
        "Site Reliability",
        "--criticality",
        "critical",
    ]);
    assert_eq!(service["team"], json!(id(&team)));
    let services = stdout(&run(&["service", "list"]));
    assert!(
        services.contains("checkout") && services.contains("Site Reliability") && services.contains("critical"),
        "{services}"
    );
    let db = json(&[
        "ci",
        "create",
        "--name",
        "db-01",
        "--kind",
        "database",
        "--service",
        "checkout",
    ]);
    let web = json(&[
        "ci",
        "create",
        "--name",
        "web-01",
        "--kind",
        "server",
        "--service",
        "checkout",
        "--depends-on",
        "db-01",
    ]);
    assert_eq!(web["depends_on"], json!([id(&db)]));
    let cis = stdout(&run(&["ci", "list"]));
    let web_row = cis.lines().find(|l| l.contains("web-01")).expect("web-01 is listed");
    assert!(web_row.contains("db-01"), "dependencies show by name: {cis}");

    // A rule that files checkout incidents under the service and its database.
    let rule = json(&[
        "rule",
        "create",
        "--name",
        "checkout problems",
        "--when",
        "title=*checkout*",
        "--then",
        "service=checkout",
        "--then",
        "ci=db-01",
        "--then",
        "category=payments",
    ]);
    assert_eq!(rule["when"], json!({"title": "*checkout*"}));
    assert_eq!(rule["enabled"], true);
    assert_eq!(json(&["rule", "disable", "checkout problems"])["enabled"], false);
    assert_eq!(json(&["rule", "enable", "checkout problems"])["enabled"], true);

    // A bad target: the server's reason, exit 1, nothing created; a malformed one is refused locally.
    let stderr = refused(&run(&[
        "sla-policy",
        "create",
        "--name",
        "Checkout",
        "--service",
        "checkout",
        "--target",
        "P1:15x:4h",
    ]));
    assert!(
        stderr.contains("422") && stderr.contains("\"15x\" is not a duration"),
        "the server's message is shown: {stderr}"
    );
    let stderr = refused(&run(&[
        "sla-policy",
        "create",
        "--name",
        "Checkout",
        "--target",
        "P1-15m",
    ]));
    assert!(stderr.contains("expected PRIORITY:RESPONSE:RESOLUTION"), "{stderr}");
    assert_eq!(json(&["sla-policy", "list"])["items"], json!([]), "nothing was created");

    let policy = json(&[
        "sla-policy",
        "create",
        "--name",
        "Checkout",
        "--service",
        "checkout",
        "--target",
        "P1:15m:4h",
        "--target",
        "P3:1h:1d",
        "--pause-on",
        "awaiting_user",
    ]);
    assert_eq!(
        policy["targets"],
        json!([
            {"priority": "P1", "response": "15m", "resolution": "4h"},
            {"priority": "P3", "response": "1h", "resolution": "24h"},
        ])
    );
    assert_eq!(policy["pause_on"], json!(["awaiting_user"]));

    // A daily rotation Alice → Bob from Monday 5 January 2026, 09:00 UTC, and an override for Bob.
    let layers = dir.path().join("layers.json");
    std::fs::write(
        &layers,
        json!({
            "layers": [{"users": [alice, bob], "rotation": "1d", "start": "2026-01-05T09:00"}],
            "overrides": [{"user": bob, "start": "2026-01-05T12:00:00Z", "end": "2026-01-05T14:00:00Z"}],
        })
        .to_string(),
    )
    .expect("write layers");
    let schedule = json(&[
        "schedule",
        "create",
        "--name",
        "SRE primary",
        "--team",
        "Site Reliability",
        "--time-zone",
        "UTC",
        "--file",
        layers.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(schedule["team"], json!(id(&team)));
    let on_call = |at: &str| json(&["team", "oncall", "Site Reliability", "--at", at]);
    let morning = on_call("2026-01-05T10:00:00Z");
    assert_eq!(morning["user"], json!(alice), "{morning}");
    assert_eq!(morning["source"], "SRE primary");
    let lunch = on_call("2026-01-05T13:00:00Z");
    assert_eq!(lunch["user"], json!(bob), "the override: {lunch}");
    assert_eq!(lunch["until"], "2026-01-05T14:00:00Z");
    let next_day = on_call("2026-01-06T10:00:00Z");
    assert_eq!(next_day["user"], json!(bob), "the rotation: {next_day}");
    assert_eq!(next_day["until"], "2026-01-07T09:00:00Z");
    let before = on_call("2026-01-01T10:00:00Z");
    assert_eq!(before["user"], json!(alice), "before the rotation: the lead");
    assert_eq!(before["source"], "lead");
    let table = stdout(&run(&[
        "team",
        "oncall",
        "Site Reliability",
        "--at",
        "2026-01-06T10:00:00Z",
    ]));
    assert!(table.contains("Bob Oncall"), "{table}");
    let shifts = stdout(&run(&[
        "schedule",
        "shifts",
        "SRE primary",
        "--from",
        "2026-01-05T00:00:00Z",
        "--to",
        "2026-01-06T00:00:00Z",
    ]));
    assert!(
        shifts.contains("override 0") && shifts.contains("2026-01-05T12:00:00Z"),
        "{shifts}"
    );

    // An incident for the team: the rule classifies it, so the checkout SLA applies.
    let incident = json(&[
        "incident",
        "create",
        "--title",
        "checkout fails for card payments",
        "--impact",
        "1",
        "--urgency",
        "1",
        "--team",
        "Site Reliability",
    ]);
    assert_eq!(incident["service"], "checkout", "{incident}");
    assert_eq!(incident["ci"], "db-01");
    assert_eq!(incident["priority"], "P1");
    let key = incident["key"].as_str().expect("a key").to_string();
    json(&[
        "incident",
        "create",
        "--title",
        "slow search",
        "--impact",
        "3",
        "--urgency",
        "3",
        "--team",
        "Site Reliability",
    ]);

    let backlog = json(&["team", "backlog", "Site Reliability"]);
    assert_eq!(backlog["team"], "Site Reliability");
    let first = &backlog["items"][0];
    assert_eq!(first["key"], json!(key), "the P1 comes first: {backlog}");
    let sla = &first["sla"];
    assert_eq!(sla["state"], "within", "{sla}");
    assert_eq!(sla["response"]["target"], "15m");
    assert_eq!(
        micros(&sla["response_due"]) - micros(&first["created_at"]),
        15 * 60 * 1_000_000,
        "due 15 minutes after registration: {sla}"
    );
    assert_eq!(
        backlog["columns"][0],
        json!({"state": "new", "count": 2, "wip_limit": 1, "over_limit": true})
    );
    let board = stdout(&run(&["team", "backlog", "Site Reliability"]));
    let new_row = board
        .lines()
        .find(|l| l.trim_start_matches('│').trim_start().starts_with("new "))
        .expect("the new column");
    assert!(new_row.contains("OVER"), "{board}");
    let row = board
        .lines()
        .find(|l| l.contains(&key))
        .expect("the incident is listed");
    assert!(
        row.contains("P1") && row.contains("within") && row.contains("checkout fails"),
        "{board}"
    );

    // Its impact through the dependency graph.
    let impact = json(&["incident", "impact", &key]);
    assert_eq!(impact["impacted_services"], json!(["checkout"]));
    assert_eq!(impact["dependants"], json!(["web-01"]));

    // db-01 cannot go while web-01 needs it; it can once web-01 no longer does.
    let stderr = refused(&run(&["ci", "delete", "db-01"]));
    assert!(
        stderr.contains("409") && stderr.contains("still referred to by CI web-01"),
        "{stderr}"
    );
    assert_eq!(json(&["ci", "show", "db-01"])["name"], "db-01", "it is still there");
    json(&["ci", "update", "web-01", "--clear-depends-on"]);
    let deleted = stdout(&run(&["ci", "delete", "db-01"]));
    assert!(deleted.contains("deleted CI db-01"), "{deleted}");
    assert!(refused(&run(&["ci", "show", "db-01"])).contains("404"));

    // An escalation ladder for the team: the lead after 30 minutes.
    let ladder = json(&[
        "escalation",
        "create",
        "--name",
        "ladder",
        "--team",
        "Site Reliability",
        "--level",
        "30m:lead",
    ]);
    assert_eq!(ladder["levels"][0]["after"], "30m");
    assert_eq!(ladder["levels"][0]["targets"], json!(["lead"]));
    let stderr = refused(&run(&[
        "escalation",
        "create",
        "--name",
        "bad",
        "--team",
        "Site Reliability",
        "--level",
        "5m",
    ]));
    assert!(stderr.contains("DELAY:TARGET"), "{stderr}");
}
