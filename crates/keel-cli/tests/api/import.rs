//! `POST /api/v1/import`: history in the keel-import/1 format keeps its
//! numbers and claimed times, is hash-chained, is idempotent, and counts in
//! the metrics of its own period.

use serde_json::{Value, json};

use crate::harness::{App, Caller, Engine};
use crate::on_both_engines;

on_both_engines!(
    imported_history_keeps_numbers_and_times_and_importing_again_changes_nothing,
    import_reports_refused_lines_and_keeps_what_came_before,
    keel_import_sends_a_file_in_batches_and_summarises,
    a_sample_of_the_servicenow_log_imports_with_exact_states_and_reopens,
    a_csv_event_log_imports_through_a_mapping_file,
    a_replay_applies_todays_rules_and_sla_policies_over_the_original_times,
);

fn record(number: i64, events: Value) -> String {
    json!({
        "format": "keel-import/1", "source": "servicenow", "key": format!("INC{number:07}"), "number": number,
        "title": format!("Imported {number}"), "impact": 2, "urgency": 2, "category": "Category 55",
        "channel": "phone", "reported_by": "Caller 2403", "events": events,
    })
    .to_string()
}

async fn import(caller: &Caller, body: String) -> crate::harness::Answer {
    caller
        .send(
            caller
                .http
                .post(format!("{}/api/v1/import", caller.base))
                .bearer_auth(&caller.token)
                .header("content-type", "application/x-ndjson")
                .body(body),
            None,
        )
        .await
}

async fn imported_history_keeps_numbers_and_times_and_importing_again_changes_nothing(engine: Engine) {
    let app = App::start(engine).await;
    let lines = [
        record(
            45,
            json!([
                {"at": "2016-02-29T01:16:00Z", "kind": "registered", "actor": "Opened by 8"},
                {"at": "2016-02-29T01:23:00Z", "kind": "assigned", "actor": "Updated by 21", "team": "Group 56"},
                {"at": "2016-02-29T08:53:00Z", "kind": "accepted", "actor": "Updated by 642"},
                {"at": "2016-02-29T11:29:00Z", "kind": "resolved", "actor": "Resolved by 149", "code": "code 5"},
                {"at": "2016-03-01T09:00:00Z", "kind": "reopened", "actor": "Caller 2403", "reason": "still broken"},
                {"at": "2016-03-01T10:00:00Z", "kind": "assigned", "actor": "Updated by 21", "team": "Group 70"},
                {"at": "2016-03-02T11:00:00Z", "kind": "resolved", "actor": "Resolved by 149", "code": "code 5"},
                {"at": "2016-03-05T12:00:00Z", "kind": "closed", "actor": "Updated by 908"}
            ]),
        ),
        record(
            47,
            json!([
                {"at": "2016-02-29T04:40:00Z", "kind": "registered", "actor": "Opened by 24"},
                {"at": "2016-02-29T04:50:00Z", "kind": "accepted"},
                {"at": "2016-02-29T05:00:00Z", "kind": "put_on_hold", "reason": "awaiting_user"}
            ]),
        ),
    ];
    let answer = import(&app.admin, lines.join("\n")).await;
    let summary = answer.ok();
    assert_eq!(summary["imported"], 2, "{summary}");
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["entries"], 11, "8 + 3 entries");
    let first = app.agent.get("/api/v1/incidents/45").await;
    let first = first.ok().clone();
    assert_eq!(first["key"], "INC-45", "the source's number is kept");
    assert_eq!(first["state"], "closed");
    assert_eq!(first["reopens"], 1);
    assert_eq!(
        first["reassignments"], 1,
        "Group 56 → Group 70: one move to another team"
    );
    assert_eq!(first["team"], "Group 70");
    let timeline = app.agent.get("/api/v1/incidents/45/timeline").await;
    let entries = timeline.ok()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        entries[0]["occurred_at"], "2016-02-29T01:16:00Z",
        "original times are claimed times"
    );
    assert_eq!(entries[0]["actor"], "servicenow:Caller 2403");
    assert_eq!(entries.last().map(|e| e["kind"].clone()), Some(json!("closed")));
    let verified = app.agent.get("/api/v1/incidents/45/verify").await;
    assert_eq!(verified.ok()["ok"], true, "imported entries are hash-chained");
    assert_eq!(
        app.agent.get("/api/v1/incidents/47").await.ok()["state"],
        "on_hold",
        "new → on hold: accepted first"
    );

    // Again: nothing changes.
    let again = import(&app.admin, lines.join("\n")).await;
    assert_eq!(again.ok()["skipped"], 2);
    assert_eq!(again.ok()["imported"], 0);
    let versions = app.agent.get("/api/v1/incidents/45").await;
    assert_eq!(versions.ok()["version"], first["version"]);
    // New incidents are numbered after the imported ones.
    let native = app.agent.incident(json!({"title": "Today"})).await;
    assert_eq!(native["number"], 48);
    // Metrics count it in its own period, by claimed times.
    let march = app
        .agent
        .get("/api/v1/metrics?from=2016-02-01T00:00:00Z&to=2016-04-01T00:00:00Z")
        .await;
    let m = &march.ok()["groups"][0]["metrics"];
    assert_eq!(m["reopen_rate"]["count"], 1);
    assert_eq!(m["reopen_rate"]["value"], 1.0);
    assert_eq!(m["time_to_acceptance"]["count"], 2);
    assert_eq!(
        m["time_to_acceptance"]["median_secs"],
        json!(600.0),
        "INC-47: 04:40 → 04:50"
    );
    assert_eq!(
        m["time_to_acceptance"]["p90_secs"],
        json!(27420.0),
        "INC-45: 01:16 → 08:53"
    );
    // Only admins import.
    import(
        &app.agent,
        record(50, json!([{"at": "2016-02-29T01:16:00Z", "kind": "registered"}])),
    )
    .await
    .problem(403);
}

async fn import_reports_refused_lines_and_keeps_what_came_before(engine: Engine) {
    let app = App::start(engine).await;
    let body = [
        "not json".to_string(),
        record(10, json!([{"at": "2016-01-01T00:00:00Z", "kind": "accepted"}])),
        record(
            11,
            json!([
                {"at": "2016-01-01T00:00:00Z", "kind": "registered"},
                {"at": "2016-01-01T01:00:00Z", "kind": "accepted"},
                {"at": "2016-01-01T02:00:00Z", "kind": "closed"}
            ]),
        ),
        record(12, json!([{"at": "yesterday", "kind": "registered"}])),
        record(13, json!([{"at": "2016-01-01T00:00:00Z", "kind": "registered"}])),
    ]
    .join("\n");
    let answer = import(&app.admin, body).await;
    let summary = answer.ok();
    assert_eq!(summary["imported"], 2, "11 (up to its refused close) and 13: {summary}");
    let failed: Vec<(u64, String)> = summary["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["line"].as_u64().unwrap_or(0),
                f["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        failed.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "{failed:?}"
    );
    assert!(failed[1].1.contains("first event must be registered"));
    assert!(failed[2].1.contains("event 3 (closed)"), "{}", failed[2].1);
    assert_eq!(
        app.agent.get("/api/v1/incidents/11").await.ok()["state"],
        "accepted",
        "what came before stays"
    );
    app.agent.get("/api/v1/incidents/12").await.problem(404);
}

async fn keel_import_sends_a_file_in_batches_and_summarises(engine: Engine) {
    let app = App::start(engine).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("history.jsonl");
    let lines: Vec<String> = (100..130)
        .map(|n| {
            record(
                n,
                json!([
                    {"at": "2016-05-01T08:00:00Z", "kind": "registered"},
                    {"at": "2016-05-01T08:30:00Z", "kind": "accepted"},
                    {"at": "2016-05-01T10:00:00Z", "kind": "resolved", "code": "fixed"}
                ]),
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the file");
    let file = path.display().to_string();
    let a = &app.admin;
    let first = crate::binary::cli(&a.base, &a.token, &["import", &file, "--batch", "7"]);
    let text = crate::binary::stdout(&first);
    assert!(
        text.contains("Imported 30 incidents (90 timeline entries), skipped 0"),
        "{text}"
    );
    let again = crate::binary::cli_json(&a.base, &a.token, &["import", &file]);
    assert_eq!(again["skipped"], 30);
    assert_eq!(again["imported"], 0);
    assert_eq!(app.agent.get("/api/v1/incidents/129").await.ok()["state"], "resolved");
    // A refused line makes the command fail and names it.
    std::fs::write(&path, "{\"format\": \"other\"}\n").expect("write the file");
    let refused = crate::binary::cli(&a.base, &a.token, &["import", &file]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("line 1"));
}

/// The real ServiceNow audit log (never copied into the repository).
fn servicenow_log() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/servicenow-incident-event-log/incident_event_log.csv.gz")
}

async fn a_sample_of_the_servicenow_log_imports_with_exact_states_and_reopens(engine: Engine) {
    let app = App::start(engine).await;
    let log = servicenow_log();
    assert!(log.exists(), "the ServiceNow log is expected at {}", log.display());
    let file = log.display().to_string();
    let a = &app.admin;
    let report = crate::binary::cli_json(
        &a.base,
        &a.token,
        &["import", "--from", "servicenow", "--limit", "400", "--check", &file],
    );
    assert_eq!(report["imported"], 400, "{report}");
    assert!(report["failed"].as_array().is_some_and(Vec::is_empty), "{report}");
    let f = &report["fidelity"];
    assert_eq!(f["incidents"], 400);
    assert_eq!(f["final_state_match"], 1.0, "{f}");
    assert_eq!(f["reopens_match"], 1.0, "{f}");
    assert_eq!(f["log_reopen_rate"], f["keel_reopen_rate"]);
    // keel's stored reassignment counts (GET /api/v1/incidents/{number}) against the log's counter:
    // with the empty group as the team "(no group)", only the log's own gaps remain (updates missing
    // from the log, groups changed while resolved; README, "Imports").
    eprintln!("{f:#}");
    assert!(f["reassignments_match"].as_f64().unwrap_or(0.0) >= 0.99, "{f}");
    let (log_mean, keel_mean) = (
        f["log_mean_reassignments"].as_f64().unwrap_or(0.0),
        f["keel_mean_reassignments"].as_f64().unwrap_or(0.0),
    );
    assert!((keel_mean - log_mean).abs() <= 0.01 * log_mean, "{f}");
    // The log's SLA flag comes in as the source's resolution verdict: keel's metric gives the log's share.
    assert_eq!(f["log_made_sla_count"], 400, "{f}");
    assert_eq!(f["keel_resolution_target_met_count"], 400, "{f}");
    assert_eq!(f["keel_resolution_target_met"], f["log_made_sla"], "{f}");
    let causes = f["reassignment_mismatches"].as_object().cloned().unwrap_or_default();
    assert!(
        causes.keys().all(|k| !k.contains("another count")),
        "keel stored what the converter counted: {f}"
    );
    let first = app.agent.get("/api/v1/incidents/45").await;
    assert_eq!(first.ok()["key"], "INC-45", "INC0000045 keeps its number");
    // An empty group is the team "(no group)", listed and filtered like any other.
    let without = app.agent.get("/api/v1/incidents?team=%28no%20group%29&limit=100").await;
    let without = without.ok()["items"].as_array().cloned().unwrap_or_default();
    assert!(!without.is_empty(), "some of the sample end without a group");
    assert!(without.iter().all(|i| i["team"] == "(no group)"));
}

async fn a_csv_event_log_imports_through_a_mapping_file(engine: Engine) {
    let app = App::start(engine).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mapping = root.join("docs/examples/helpdesk-mapping.toml").display().to_string();
    let log = root.join("../shared/data/helpdesk-4tu-italian-software-company/helpdesk.csv");
    assert!(log.exists(), "the helpdesk log is expected at {}", log.display());
    let file = log.display().to_string();
    let a = &app.admin;
    let args = [
        "import",
        "--from",
        "csv",
        "--mapping",
        &mapping,
        "--limit",
        "300",
        &file,
    ];
    let report = crate::binary::cli_json(&a.base, &a.token, &args);
    assert_eq!(report["imported"], 300, "{report}");
    assert!(
        report["failed"].as_array().is_some_and(Vec::is_empty),
        "every event is accepted: {report}"
    );
    let closed = a.get("/api/v1/incidents?state=closed&limit=500").await;
    let closed = closed.ok()["items"].as_array().map_or(0, Vec::len);
    assert!(closed >= 290, "nearly every case of the log ends closed: {closed}");
    let again = crate::binary::cli_json(&a.base, &a.token, &args);
    assert_eq!(again["skipped"], 300, "importing again changes nothing");
}

/// Kinds and claimed times of an incident's timeline.
async fn timeline_of(caller: &Caller, number: i64) -> Vec<(String, String)> {
    caller.get(&format!("/api/v1/incidents/{number}/timeline")).await.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["occurred_at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn a_replay_applies_todays_rules_and_sla_policies_over_the_original_times(engine: Engine) {
    let app = App::start(engine).await;
    // Today's practice: P3 resolved within 4 h (impact 2 × urgency 2 is P3),
    // and VPN incidents go to the Net team.
    let policy = json!({"name": "Standard", "at_risk_percent": 75,
        "targets": [{"priority": "P3", "response": "30m", "resolution": "4h"}]});
    assert_eq!(app.admin.post("/api/v1/sla-policies", policy).await.status, 201);
    app.admin.post("/api/v1/teams", json!({"name": "Net"})).await.ok();
    let rule = json!({"name": "vpn", "position": 10, "when": {"title": "*vpn*"}, "then": {"team": "Net"}});
    assert_eq!(app.admin.post("/api/v1/rules", rule).await.status, 201);
    let history = |number: i64, title: &str, resolved: &str| {
        let mut line: Value = serde_json::from_str(&record(
            number,
            json!([
                {"at": "2016-03-01T09:00:00Z", "kind": "registered", "actor": "Caller 1"},
                {"at": "2016-03-01T09:10:00Z", "kind": "accepted", "actor": "Agent 7"},
                {"at": resolved, "kind": "resolved", "actor": "Agent 7", "code": "fixed"},
                {"at": "2016-03-03T09:00:00Z", "kind": "closed", "actor": "Agent 7"},
            ]),
        ))
        .expect("record");
        line["title"] = json!(title);
        line.to_string()
    };
    // Listed late first: a replay registers in time order all the same.
    let body = [
        history(9002, "Mail slow", "2016-03-01T15:00:00Z"),
        history(9001, "VPN refuses logins", "2016-03-01T11:00:00Z"),
    ]
    .join("\n");
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("replay.jsonl");
    std::fs::write(&path, body).expect("write the file");
    let file = path.display().to_string();
    let output = crate::binary::cli(
        &app.admin.base,
        &app.admin.token,
        &["import", &file, "--replay", "--json"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert_eq!(summary["imported"], 2, "{summary}");
    assert_eq!(summary["replayed"], true);
    // 9001: targets only. 9002: targets, resolution at risk at 12:00 (75 % of 4 h), breached at 13:00.
    assert_eq!(summary["sla_entries"], 4, "{summary}");
    let late = timeline_of(&app.agent, 9002).await;
    let claimed = |kind: &str| late.iter().find(|(k, _)| k == kind).map(|(_, at)| at.clone());
    assert_eq!(
        claimed("sla_targets_set").as_deref(),
        Some("2016-03-01T09:00:00Z"),
        "{late:?}"
    );
    assert_eq!(
        claimed("sla_at_risk").as_deref(),
        Some("2016-03-01T12:00:00Z"),
        "{late:?}"
    );
    assert_eq!(
        claimed("sla_breached").as_deref(),
        Some("2016-03-01T13:00:00Z"),
        "{late:?}"
    );
    let order: Vec<&str> = late.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        order,
        [
            "registered",
            "sla_targets_set",
            "accepted",
            "sla_at_risk",
            "sla_breached",
            "resolved",
            "closed"
        ]
    );
    let on_time = timeline_of(&app.agent, 9001).await;
    assert!(!on_time.iter().any(|(k, _)| k == "sla_breached"), "{on_time:?}");
    // The rule routed the VPN incident as it would today.
    let vpn = app.agent.get("/api/v1/incidents/9001").await.ok().clone();
    assert_eq!(vpn["team"], "Net", "{vpn}");
    // The metrics judge the replayed targets in the history's own time: one met, one missed.
    let march = app
        .agent
        .get("/api/v1/metrics?from=2016-03-01T00:00:00Z&to=2016-04-01T00:00:00Z")
        .await
        .ok()
        .clone();
    let met = &march["groups"][0]["metrics"]["resolution_target_met"];
    assert_eq!(
        (met["count"].as_u64(), met["hits"].as_u64()),
        (Some(2), Some(1)),
        "{march}"
    );
    let response = &march["groups"][0]["metrics"]["acceptance_target_met"];
    assert_eq!(response["value"], 1.0, "{march}");
    // The same history imported without --replay gets neither.
    let plain = history(9003, "VPN down again", "2016-03-01T15:00:00Z");
    let answer = import(&app.admin, plain).await;
    assert_eq!(answer.ok()["sla_entries"], 0);
    assert!(
        !timeline_of(&app.agent, 9003)
            .await
            .iter()
            .any(|(k, _)| k.starts_with("sla_"))
    );
    let again = app.agent.get("/api/v1/incidents/9003").await.ok().clone();
    assert_ne!(again["team"], "Net", "{again}");
}
