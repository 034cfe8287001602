//! `GET /api/v1/metrics`: practice metrics computed from the timelines for a
//! period, with counts, grouping, filters, the previous period and CSV.

use serde_json::{Value, json};

use crate::harness::{App, Caller, Engine, Node};
use crate::on_both_engines;

on_both_engines!(
    a_node_reports_what_another_node_wrote_even_with_a_lagging_clock,
    business_hours_time_to_resolve_follows_the_incidents_sla_calendar,
    the_capability_assessment_shows_evidence_records_verdicts_and_derives_the_level,
    kept_facts_follow_the_timeline_when_a_finished_incident_changes,
    rebuild_metrics_refolds_every_timeline_and_repairs_a_wrong_kept_fact,
    metrics_come_from_claimed_timeline_times_with_counts_groups_and_csv,
    metrics_refuse_bad_periods_groupings_and_end_users,
);

async fn at(caller: &Caller, incident: &Value, action: &str, when: &str, body: Value) {
    let mut body = body;
    body["occurred_at"] = json!(when);
    caller.act(incident, action, body).await.ok();
}

async fn metrics_come_from_claimed_timeline_times_with_counts_groups_and_csv(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    // A: accepted after 30 min, resolved after 2 h.
    let first = a
        .incident(json!({"title": "Router down", "team": "Net", "occurred_at": "2026-01-10T10:00:00Z"}))
        .await;
    at(a, &first, "accept", "2026-01-10T10:30:00Z", json!({})).await;
    at(
        a,
        &first,
        "resolve",
        "2026-01-10T12:00:00Z",
        json!({"code": "fixed", "notes": "swapped"}),
    )
    .await;
    // B: accepted after 10 min, resolved, reopened, resolved again 4 h after registration.
    let second = a
        .incident(json!({"title": "Wifi drops", "team": "Net", "occurred_at": "2026-01-11T09:00:00Z"}))
        .await;
    at(a, &second, "accept", "2026-01-11T09:10:00Z", json!({})).await;
    at(
        a,
        &second,
        "resolve",
        "2026-01-11T10:00:00Z",
        json!({"code": "fixed", "notes": "ap reset"}),
    )
    .await;
    at(
        a,
        &second,
        "reopen",
        "2026-01-11T11:00:00Z",
        json!({"reason": "dropped again"}),
    )
    .await;
    at(
        a,
        &second,
        "resolve",
        "2026-01-11T13:00:00Z",
        json!({"code": "fixed", "notes": "firmware"}),
    )
    .await;
    // C: never accepted, cancelled.
    let third = a
        .incident(json!({"title": "Duplicate", "team": "Desk", "occurred_at": "2026-01-12T08:00:00Z"}))
        .await;
    at(
        a,
        &third,
        "cancel",
        "2026-01-12T08:05:00Z",
        json!({"reason": "duplicate"}),
    )
    .await;

    let report = a
        .get("/api/v1/metrics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z")
        .await;
    let body = report.ok();
    assert_eq!(
        body["previous"]["from"], "2025-12-01T00:00:00Z",
        "the previous period has the same length"
    );
    let all = &body["groups"][0];
    assert_eq!(all["group"], "all");
    let m = &all["metrics"];
    assert_eq!(m["cancelled"], 1, "{m}");
    assert_eq!(m["time_to_acceptance"]["count"], 2);
    assert_eq!(
        m["time_to_acceptance"]["median_secs"], 600.0,
        "nearest-rank median of 10 and 30 min"
    );
    assert_eq!(m["time_to_acceptance"]["p90_secs"], 1800.0);
    assert_eq!(m["time_to_resolve"]["count"], 2);
    assert_eq!(
        m["time_to_resolve"]["p90_secs"], 14400.0,
        "B's last resolution, 4 h after registration"
    );
    assert_eq!(m["reopen_rate"]["count"], 2);
    assert_eq!(m["reopen_rate"]["value"], 0.5);
    assert!(m["incident_model_use"]["value"].is_null(), "undefined metrics say so");
    assert!(
        all["trend"]["reopen_rate"]["previous"].is_null(),
        "nothing happened in December"
    );
    assert_eq!(all["trend"]["reopen_rate"]["current"], 0.5);
    assert_eq!(all["trend"]["reopen_rate"]["count"], 2, "the count behind the value");

    let grouped = a
        .get("/api/v1/metrics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&group_by=team")
        .await;
    let groups = grouped.ok()["groups"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = groups.iter().filter_map(|g| g["group"].as_str()).collect();
    assert_eq!(names, ["Desk", "Net"]);
    assert_eq!(groups[1]["metrics"]["time_to_acceptance"]["count"], 2);
    assert_eq!(groups[0]["metrics"]["cancelled"], 1);

    let filtered = a
        .get("/api/v1/metrics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&team=Desk")
        .await;
    let desk = &filtered.ok()["groups"][0]["metrics"];
    assert_eq!(desk["time_to_acceptance"]["count"], 0);
    assert!(desk["time_to_acceptance"]["median_secs"].is_null());

    let csv = a
        .get("/api/v1/metrics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&format=csv")
        .await;
    assert_eq!(
        csv.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let text = csv.body.as_str().unwrap_or_default();
    assert!(
        text.starts_with("group,metric,current,count,previous,change\n"),
        "{text}"
    );
    assert!(text.contains("all,reopen_rate,0.5,2,,\n"), "{text}");
    // The command line shows the same report.
    let period = [
        "metrics",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-02-01T00:00:00Z",
    ];
    let json = crate::binary::cli_json(&a.base, &a.token, &period);
    assert_eq!(json["groups"][0]["metrics"]["reopen_rate"]["value"], 0.5);
    let mut with_csv = period.to_vec();
    with_csv.push("--csv");
    let printed = crate::binary::stdout(&crate::binary::cli(&a.base, &a.token, &with_csv));
    assert!(printed.contains("all,reopen_rate,0.5,2,,"), "{printed}");
    let mut grouped = period.to_vec();
    grouped.extend(["--group-by", "team"]);
    let table = crate::binary::stdout(&crate::binary::cli(&a.base, &a.token, &grouped));
    assert!(table.contains("Net (") && table.contains("Desk ("), "{table}");
    assert!(table.contains("reopen_rate") && table.contains("50.0 %"), "{table}");
    // A later period does not see January's work.
    let later = a
        .get("/api/v1/metrics?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z")
        .await;
    assert_eq!(later.ok()["groups"][0]["metrics"]["time_to_resolve"]["count"], 0);
}

async fn metrics_refuse_bad_periods_groupings_and_end_users(engine: Engine) {
    let app = App::start(engine).await;
    app.agent.get("/api/v1/metrics?group_by=colour").await.problem(422);
    app.agent
        .get("/api/v1/metrics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")
        .await
        .problem(422);
    app.agent.get("/api/v1/metrics?from=yesterday").await.problem(422);
    app.agent.get("/api/v1/metrics?format=xml").await.problem(422);
    app.agent.get("/api/v1/metrics?colour=blue").await.problem(400);
    app.user.get("/api/v1/metrics").await.problem(403);
    assert_eq!(
        app.agent.get("/api/v1/metrics").await.status,
        200,
        "the last 30 days by default"
    );
}

async fn kept_facts_follow_the_timeline_when_a_finished_incident_changes(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let done = a
        .incident(json!({"title": "Printer", "occurred_at": "2026-01-05T09:00:00Z"}))
        .await;
    at(a, &done, "accept", "2026-01-05T09:30:00Z", json!({})).await;
    at(
        a,
        &done,
        "resolve",
        "2026-01-05T10:00:00Z",
        json!({"code": "fixed", "notes": "toner"}),
    )
    .await;
    at(a, &done, "close", "2026-01-06T10:00:00Z", json!({})).await;
    let url = "/api/v1/metrics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z";
    let first = a.get(url).await.ok()["groups"][0]["metrics"].clone();
    assert_eq!(first["reopen_rate"]["value"], 0.0);
    let kept = app.db.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM incident_facts").await;
    assert_eq!(kept.as_deref(), Some("1"), "a closed incident's facts are kept");
    let again = a.get(url).await.ok()["groups"][0]["metrics"].clone();
    assert_eq!(first, again, "kept facts give the same report");
    // A later entry (a comment: closed incidents take no other change) makes the kept
    // facts stale; they are folded again and kept for the new version.
    a.post(
        &format!(
            "/api/v1/incidents/{}/comments",
            done["key"].as_str().unwrap_or_default()
        ),
        json!({"body": "note"}),
    )
    .await
    .ok();
    let version = a
        .get(&format!(
            "/api/v1/incidents/{}",
            done["key"].as_str().unwrap_or_default()
        ))
        .await
        .ok()["version"]
        .clone();
    let after = a.get(url).await.ok()["groups"][0]["metrics"].clone();
    assert_eq!(after, first);
    let kept_version = app.db.scalar("SELECT CAST(version AS TEXT) FROM incident_facts").await;
    assert_eq!(kept_version, Some(version.to_string()), "kept for the current version");
}

/// Registers, accepts and resolves an incident with claimed times on 2026-01-`day`.
async fn resolved_on(caller: &Caller, title: &str, day: u32) -> Value {
    let inc = caller
        .incident(json!({"title": title, "occurred_at": format!("2026-01-{day:02}T09:00:00Z")}))
        .await;
    at(
        caller,
        &inc,
        "accept",
        &format!("2026-01-{day:02}T09:30:00Z"),
        json!({}),
    )
    .await;
    at(
        caller,
        &inc,
        "resolve",
        &format!("2026-01-{day:02}T11:00:00Z"),
        json!({"code": "fixed", "notes": "done"}),
    )
    .await;
    inc
}

const JANUARY: &str = "/api/v1/metrics?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z";

fn resolved_count(report: &Value) -> u64 {
    report["groups"][0]["metrics"]["time_to_resolve"]["count"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

async fn a_node_reports_what_another_node_wrote_even_with_a_lagging_clock(engine: Engine) {
    let app = App::start(engine).await;
    let other = Node::start(&app.db, keel_http::HttpConfig::default()).await;
    let here = &app.agent;
    let there = app.agent.on(&other);
    resolved_on(here, "Disk full", 3).await;
    // The first report loads this node's facts.
    assert_eq!(resolved_count(&here.get(JANUARY).await.ok().clone()), 1);
    // Another node writes; this node's next report catches up with it.
    resolved_on(&there, "Mail queue stuck", 4).await;
    assert_eq!(resolved_count(&here.get(JANUARY).await.ok().clone()), 2);
    // A node whose clock lags 10 s stamps its writes earlier than the last
    // write this node has seen; they are found all the same.
    resolved_on(here, "VPN flaps", 5).await;
    assert_eq!(resolved_count(&here.get(JANUARY).await.ok().clone()), 3);
    other.clock.advance(-10_000_000);
    resolved_on(&there, "Printer jam", 6).await;
    let report = here.get(JANUARY).await.ok().clone();
    assert_eq!(resolved_count(&report), 4, "{report}");
    // Both nodes agree.
    let theirs = there.get(JANUARY).await.ok().clone();
    assert_eq!(report["groups"], theirs["groups"]);
}

async fn rebuild_metrics_refolds_every_timeline_and_repairs_a_wrong_kept_fact(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    for day in 3..6 {
        resolved_on(a, &format!("Incident of day {day}"), day).await;
    }
    let before = a.get(JANUARY).await.ok().clone();
    assert_eq!(resolved_count(&before), 3);
    // A kept fact that no longer matches its timeline (as after a change of a
    // metric's definition): the rebuild puts the timeline's answer back.
    app.db
        .raw("UPDATE incident_facts SET facts = REPLACE(facts, '\"reopened_at_least_once\":false', '\"reopened_at_least_once\":true')")
        .await
        .expect("tamper");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["rebuild-metrics", "--database-url", &app.db.url, "--json"])
        .env_remove("KEEL_CONFIG")
        .env_remove("KEEL_DATA_DIR")
        .env_remove("KEEL_DATABASE_URL")
        .output()
        .expect("runs keel rebuild-metrics");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let outcome: Value = serde_json::from_slice(&output.stdout).expect("JSON outcome");
    assert_eq!(outcome["cleared"], 3, "{outcome}");
    assert_eq!(outcome["folded"], 3, "{outcome}");
    let kept = app.db.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM incident_facts").await;
    assert_eq!(kept.as_deref(), Some("3"));
    let tampered = app
        .db
        .scalar(
            "SELECT CAST(COUNT(*) AS TEXT) FROM incident_facts WHERE facts LIKE '%\"reopened_at_least_once\":true%'",
        )
        .await;
    assert_eq!(tampered.as_deref(), Some("0"), "the rebuild folded the timelines again");
    // A node started after the rebuild reports what the first one did.
    let fresh = Node::start(&app.db, keel_http::HttpConfig::default()).await;
    let after = a.on(&fresh).get(JANUARY).await.ok().clone();
    assert_eq!(after["groups"], before["groups"]);
}

/// An RFC 3339 time `minutes` before now.
fn minutes_ago(minutes: i64) -> String {
    use keel_store::Clock;
    keel_domain::Timestamp::from_micros(keel_store::SystemClock.now().as_micros() - minutes * 60_000_000).to_string()
}

fn criterion<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["criteria"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["criterion"]["id"] == id))
        .unwrap_or(&Value::Null)
}

async fn the_capability_assessment_shows_evidence_records_verdicts_and_derives_the_level(engine: Engine) {
    let app = App::start(engine).await;
    let policy = json!({"name": "Standard", "targets": [{"priority": "P3", "response": "1h", "resolution": "8h"}]});
    assert_eq!(app.admin.post("/api/v1/sla-policies", policy).await.status, 201);
    // Two incidents noticed 5 minutes after they began, under SLA targets,
    // accepted and resolved within them (recorded now, well before the due times).
    for title in ["Disk full", "Queue stuck"] {
        let inc = app
            .agent
            .incident(json!({"title": title, "impact": 2, "urgency": 2, "observed_at": minutes_ago(5)}))
            .await;
        keel_http::workers::sweep_once(&app.node.state).await.expect("sweep");
        app.agent.act(&inc, "accept", json!({})).await.ok();
        app.agent
            .act(&inc, "resolve", json!({"code": "fixed", "notes": "done"}))
            .await
            .ok();
    }
    let first = app.agent.get("/api/v1/capability").await.ok().clone();
    assert_eq!(first["days"], 90);
    let target = criterion(&first, "resolve-in-target");
    assert_eq!(target["value"], 1.0, "{target}");
    assert_eq!(target["count"], 2);
    assert_eq!(target["threshold"], 0.9);
    assert_eq!(target["met"], true);
    // Users reported both: detection by monitoring is 0 %, under the default 20 %;
    // and nobody attested that people know how to report: level 1.
    assert_eq!(criterion(&first, "detect-automated")["met"], false);
    assert_eq!(criterion(&first, "detect-reporting")["met"], Value::Null);
    assert_eq!(first["level"], 1);

    // Only incident managers record, and only what fits the criterion.
    let put = |caller: &Caller, id: &str, body: Value| {
        let caller = caller.clone();
        let path = format!("/api/v1/capability/{id}");
        async move {
            caller
                .send(
                    caller
                        .http
                        .put(format!("{}{path}", caller.base))
                        .bearer_auth(&caller.token),
                    Some(body),
                )
                .await
        }
    };
    put(&app.agent, "detect-reporting", json!({"met": true}))
        .await
        .problem(403);
    put(&app.manager, "no-such-thing", json!({"met": true}))
        .await
        .problem(404);
    put(&app.manager, "detect-reporting", json!({"threshold": 0.5}))
        .await
        .problem(422);
    put(&app.manager, "detect-automated", json!({"met": true}))
        .await
        .problem(422);
    put(&app.manager, "detect-automated", json!({"threshold": 1.5}))
        .await
        .problem(422);
    put(&app.manager, "detect-one-system", json!({"met": true}))
        .await
        .problem(422);
    put(&app.manager, "detect-automated", json!({"colour": 1}))
        .await
        .problem(422);

    // This organisation expects no monitoring yet, and attests the reporting.
    put(&app.manager, "detect-automated", json!({"threshold": 0.0}))
        .await
        .ok();
    let after = put(
        &app.manager,
        "detect-reporting",
        json!({"met": true, "note": "  Intranet page and phone line, checked in the March survey  "}),
    )
    .await
    .ok()
    .clone();
    assert_eq!(after["level"], 2, "{after}");
    let reporting = criterion(&after, "detect-reporting");
    assert_eq!(
        reporting["setting"]["note"],
        "Intranet page and phone line, checked in the March survey"
    );
    assert_eq!(reporting["setting"]["recorded_by"], app.manager.id.as_str());
    assert_eq!(criterion(&after, "detect-automated")["threshold"], 0.0);
    // Level 3 needs every level-3 criterion: still 2. A verdict of "not met" at level 2 drops to 1.
    assert_eq!(app.agent.get("/api/v1/capability?days=30").await.ok()["level"], 2);
    let dropped = put(&app.manager, "detect-reporting", json!({"met": false}))
        .await
        .ok()
        .clone();
    assert_eq!(dropped["level"], 1);
    app.agent.get("/api/v1/capability?days=0").await.problem(422);
    app.user.get("/api/v1/capability").await.problem(403);
    // The same from the command line.
    let m = &app.manager;
    let set = crate::binary::cli(
        &m.base,
        &m.token,
        &[
            "capability",
            "set",
            "detect-reporting",
            "--met",
            "yes",
            "--note",
            "Survey of March",
        ],
    );
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let table = crate::binary::stdout(&set);
    assert!(table.contains("Level reached: 2 of 5"), "{table}");
    assert!(table.contains("Survey of March"), "{table}");
    let shown = crate::binary::cli_json(&app.agent.base, &app.agent.token, &["capability", "--days", "30"]);
    assert_eq!(shown["days"], 30);
    assert_eq!(shown["level"], 2);
    let refused = crate::binary::cli(
        &m.base,
        &m.token,
        &["capability", "set", "detect-automated", "--met", "yes"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("send a threshold"));
}

async fn business_hours_time_to_resolve_follows_the_incidents_sla_calendar(engine: Engine) {
    let app = App::start(engine).await;
    let office = json!({"time_zone": "UTC", "hours": {
        "mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]],
        "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]}});
    let policy = json!({"name": "Office hours", "calendar": office,
        "targets": [{"priority": "P3", "resolution": "8h"}]});
    assert_eq!(app.admin.post("/api/v1/sla-policies", policy).await.status, 201);
    // Friday 16:00 to Monday 10:00: 66 hours, of which 2 in office hours.
    let a = &app.agent;
    let weekend = a
        .incident(json!({"title": "Printer over the weekend", "occurred_at": "2026-01-09T16:00:00Z"}))
        .await;
    at(
        a,
        &weekend,
        "resolve",
        "2026-01-12T10:00:00Z",
        json!({"code": "fixed", "notes": "paper"}),
    )
    .await;
    let report = a.get(JANUARY).await.ok().clone();
    let m = &report["groups"][0]["metrics"];
    assert_eq!(m["time_to_resolve"]["median_secs"], 66.0 * 3600.0, "{m}");
    assert_eq!(m["time_to_resolve_business_hours"]["median_secs"], 2.0 * 3600.0, "{m}");
    assert_eq!(m["time_to_resolve_business_hours"]["count"], 1);
}
