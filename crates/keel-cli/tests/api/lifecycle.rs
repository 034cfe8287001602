//! Registering incidents and moving them through the lifecycle.

use serde_json::json;

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(
    registering_derives_priority_and_makes_the_registrar_owner,
    every_action_moves_the_incident_as_the_lifecycle_says,
    illegal_transitions_answer_409_and_change_nothing,
    stale_if_match_answers_412_and_current_one_succeeds,
    assignment_moves_ownership_and_counts_reassignments,
    reclassification_recomputes_priority,
    collaborators_join_and_leave_the_swarm_and_see_it_in_their_work,
);

async fn registering_derives_priority_and_makes_the_registrar_owner(engine: Engine) {
    let app = App::start(engine).await;
    let inc = app
        .agent
        .incident(json!({"title": "Payroll batch fails", "impact": 1, "urgency": 2, "service": "payroll", "observed_at": "2026-11-27T08:00:00+01:00"}))
        .await;
    assert_eq!(inc["state"], "new");
    assert_eq!(inc["priority"], "P2");
    assert_eq!(inc["owner"], json!(app.agent.id));
    assert_eq!(inc["reported_by"], json!(app.agent.id));
    assert_eq!(inc["observed_at"], "2026-11-27T07:00:00Z");
    assert_eq!(inc["version"], 1);
    let number = inc["number"].as_i64().expect("number");
    let by_number = app.agent.get(&format!("/api/v1/incidents/INC-{number}")).await;
    assert_eq!(by_number.ok()["id"], inc["id"]);
    let defaults = app.agent.incident(json!({"title": "Something small"})).await;
    assert_eq!(
        defaults["priority"], "P5",
        "impact 3 x urgency 3 is P5 in the default matrix"
    );
    assert_eq!(defaults["number"].as_i64(), Some(number + 1), "numbers increase");
}

async fn every_action_moves_the_incident_as_the_lifecycle_says(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let inc = a.incident(json!({"title": "VPN drops every hour"})).await;
    let steps = [
        ("accept", json!({}), "accepted"),
        (
            "hold",
            json!({"reason": "awaiting_supplier", "note": "ticket 123 at the ISP"}),
            "on_hold",
        ),
        ("resume", json!({}), "accepted"),
        ("diagnose", json!({"cause": "expired certificate"}), "accepted"),
        (
            "resolve",
            json!({"code": "fixed", "notes": "renewed the certificate"}),
            "resolved",
        ),
        ("reopen", json!({"reason": "drops again"}), "accepted"),
        (
            "resolve",
            json!({"code": "fixed", "notes": "renewed the intermediate too", "known_solution": true}),
            "resolved",
        ),
        (
            "close",
            json!({"time_spent_minutes": 95, "review_needed": true}),
            "closed",
        ),
    ];
    for (action, body, state) in steps {
        let answer = a.act(&inc, action, body).await;
        assert_eq!(answer.ok()["state"], state, "after {action}");
    }
    let shown = a
        .get(&format!("/api/v1/incidents/{}", inc["id"].as_str().expect("id")))
        .await;
    let shown = shown.ok();
    assert_eq!(shown["reopens"], 1);
    assert_eq!(shown["cause"], "expired certificate");
    assert_eq!(shown["resolution"]["known_solution"], true);
    assert!(shown["closed_at"].is_string());
    assert_eq!(shown["closure"]["time_spent_minutes"], 95);
    assert_eq!(shown["closure"]["review_needed"], true);
    assert_eq!(
        shown["closure"]["confirmed_by_reporter"], true,
        "the agent reported and closed it"
    );
    let timeline = a
        .get(&format!(
            "/api/v1/incidents/{}/timeline",
            inc["id"].as_str().expect("id")
        ))
        .await;
    let kinds: Vec<&str> = timeline.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "accepted",
            "put_on_hold",
            "resumed",
            "diagnosed",
            "resolved",
            "reopened",
            "resolved",
            "closed"
        ]
    );
    let cancelled = a.incident(json!({"title": "Duplicate of the VPN one"})).await;
    assert_eq!(
        a.act(&cancelled, "cancel", json!({"reason": "duplicate"})).await.ok()["state"],
        "cancelled"
    );
}

async fn illegal_transitions_answer_409_and_change_nothing(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let inc = a.incident(json!({"title": "Printer offline"})).await;
    for (action, body) in [
        ("close", json!({})),
        ("resume", json!({})),
        ("reopen", json!({"reason": "x"})),
        ("hold", json!({"reason": "other"})),
        ("diagnose", json!({"cause": "toner"})),
    ] {
        let answer = a.act(&inc, action, body).await;
        let detail = answer.problem(409);
        assert!(detail.contains("new"), "the detail names the state: {detail}");
    }
    let id = inc["id"].as_str().expect("id");
    let after = a.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(after.ok()["version"], 1);
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{id}/timeline")).await.ok()["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    a.act(&inc, "cancel", json!({"reason": "not an incident"})).await.ok();
    a.act(&inc, "accept", json!({})).await.problem(409);
    a.act(&inc, "cancel", json!({"reason": "again"})).await.problem(409);
}

async fn stale_if_match_answers_412_and_current_one_succeeds(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let inc = a.incident(json!({"title": "Slow checkout"})).await;
    let id = inc["id"].as_str().expect("id");
    let shown = a.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(shown.headers.get("etag").and_then(|v| v.to_str().ok()), Some("\"1\""));
    a.act(&inc, "accept", json!({})).await.ok();
    let stale = a
        .send(
            a.http
                .patch(format!("{}/api/v1/incidents/{id}", a.base))
                .bearer_auth(&a.token)
                .header("If-Match", "\"1\""),
            Some(json!({"urgency": 1})),
        )
        .await;
    stale.problem(412);
    let fresh = a
        .send(
            a.http
                .patch(format!("{}/api/v1/incidents/{id}", a.base))
                .bearer_auth(&a.token)
                .header("If-Match", "\"2\""),
            Some(json!({"urgency": 1})),
        )
        .await;
    assert_eq!(fresh.ok()["urgency"], 1);
    let stale_action = a
        .send(
            a.http
                .post(format!("{}/api/v1/incidents/{id}/actions/hold", a.base))
                .bearer_auth(&a.token)
                .header("If-Match", "2"),
            Some(json!({"reason": "other"})),
        )
        .await;
    stale_action.problem(412);
}

async fn assignment_moves_ownership_and_counts_reassignments(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let inc = a
        .incident(json!({"title": "Database failover stuck", "team": "service-desk"}))
        .await;
    let moved = a
        .act(
            &inc,
            "assign",
            json!({"team": "dba", "owner": app.manager.id, "collaborators": [app.agent.id]}),
        )
        .await;
    let moved = moved.ok();
    assert_eq!(moved["owner"], json!(app.manager.id));
    assert_eq!(moved["team"], "dba");
    assert_eq!(moved["reassignments"], 1);
    assert_eq!(moved["collaborators"], json!([app.agent.id]));
    let unknown = a.act(&inc, "assign", json!({"owner": "no-such-user"})).await;
    assert!(unknown.problem(422).contains("no user"));
    let nothing = a.act(&inc, "assign", json!({})).await;
    nothing.problem(422);
    let timeline = a
        .get(&format!(
            "/api/v1/incidents/{}/timeline",
            inc["id"].as_str().expect("id")
        ))
        .await;
    let last = timeline.ok()["items"]
        .as_array()
        .and_then(|items| items.last().cloned())
        .expect("entry");
    assert_eq!(last["kind"], "assigned");
    assert_eq!(last["data"]["previous_team"], "service-desk");
    assert_eq!(last["data"]["previous_owner"], json!(app.agent.id));
}

async fn reclassification_recomputes_priority(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let inc = a
        .incident(json!({"title": "Website slow", "impact": 3, "urgency": 3, "category": "web"}))
        .await;
    let id = inc["id"].as_str().expect("id");
    let patched = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"impact": 1, "urgency": 1, "category": ""})),
        )
        .await;
    let patched = patched.ok();
    assert_eq!(patched["priority"], "P1");
    assert!(patched["category"].is_null(), "an empty string clears a field");
    let same = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"impact": 1})),
        )
        .await;
    assert_eq!(
        same.ok()["version"],
        patched["version"],
        "a patch that changes nothing writes nothing"
    );
    let team = a
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"team": "web"})),
        )
        .await;
    assert!(team.problem(422).contains("assign"));
}

async fn collaborators_join_and_leave_the_swarm_and_see_it_in_their_work(engine: Engine) {
    let app = App::start(engine).await;
    let incident = app.agent.incident(json!({"title": "Payments failing"})).await;
    let joined = app.agent.act(&incident, "join", json!({"user": app.manager.id})).await;
    assert_eq!(joined.ok()["collaborators"], json!([app.manager.id]));
    let again = app.manager.act(&incident, "join", json!({})).await;
    assert_eq!(
        again.ok()["version"],
        joined.body["version"],
        "joining twice records nothing"
    );
    let mine = app.manager.get("/api/v1/incidents?involved=me").await;
    assert!(
        mine.ok()["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["id"] == incident["id"])),
        "a collaborator sees the incident in their work"
    );
    let owned = app.manager.get("/api/v1/incidents?owner=me").await;
    assert!(owned.ok()["items"].as_array().is_some_and(Vec::is_empty));
    app.agent
        .act(&incident, "join", json!({"user": "nobody"}))
        .await
        .problem(422);
    let left = app.manager.act(&incident, "leave", json!({})).await;
    assert_eq!(left.ok()["collaborators"], json!([]));
    let after = app.manager.get("/api/v1/incidents?involved=me").await;
    assert!(after.ok()["items"].as_array().is_some_and(Vec::is_empty));
    let timeline = app
        .agent
        .get(&format!(
            "/api/v1/incidents/{}/timeline",
            incident["id"].as_str().expect("id")
        ))
        .await;
    let kinds: Vec<&str> = timeline.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["registered", "collaborator_joined", "collaborator_left"]);
    app.user.act(&incident, "join", json!({})).await.problem(404);
}
