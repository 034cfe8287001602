//! On-call through the API: schedules with rotations and overrides, who is
//! on call for a team at a time (and until when), the final shifts, a
//! person's iCalendar feed, and event incidents owned by whoever is on call.

use serde_json::{Value, json};

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(
    schedules_answer_who_is_on_call_and_own_event_incidents,
    unaccepted_incidents_escalate_level_by_level_exactly_once,
);

async fn schedules_answer_who_is_on_call_and_own_event_incidents(engine: Engine) {
    let app = App::start(engine).await;
    let team = app
        .admin
        .post("/api/v1/teams", json!({"name": "Ops", "lead": app.admin.id}))
        .await;
    assert_eq!(team.status, 201);
    let schedule = json!({
        "name": "Ops primary", "team": "Ops", "time_zone": "Europe/Berlin",
        "layers": [{"users": [app.agent.id, app.manager.id], "rotation": "1d", "handoff": "2026-10-24T09:00"}],
        "overrides": [{"user": app.admin.id, "start": "2026-10-27T12:00:00Z", "end": "2026-10-27T14:00:00Z"}]
    });
    app.admin
        .post(
            "/api/v1/schedules",
            json!({"name": "x", "team": "Ops", "time_zone": "Mars/Olympus", "layers": []}),
        )
        .await
        .problem(422);
    app.admin
        .post(
            "/api/v1/schedules",
            json!({"name": "x", "team": "Ops", "time_zone": "UTC",
                   "layers": [{"users": ["ghost"], "rotation": "1d", "start": "2026-10-24T09:00"}]}),
        )
        .await
        .problem(422);
    let created = app.admin.post("/api/v1/schedules", schedule).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();

    let at = |when: &str| format!("/api/v1/teams/Ops/oncall?at={when}");
    let first = app.agent.get(&at("2026-10-24T10:00:00Z")).await;
    assert_eq!(first.ok()["user"], json!(app.agent.id));
    assert_eq!(
        first.body["until"], "2026-10-25T08:00:00Z",
        "09:00 Berlin is 08:00Z after DST ends"
    );
    let second = app.agent.get(&at("2026-10-25T12:00:00Z")).await;
    assert_eq!(second.ok()["user"], json!(app.manager.id));
    assert_eq!(second.body["since"], "2026-10-25T08:00:00Z");
    let swapped = app.agent.get(&at("2026-10-27T13:00:00Z")).await;
    assert_eq!(
        swapped.ok()["user"],
        json!(app.admin.id),
        "an override beats the rotation"
    );
    let before = app.agent.get(&at("2026-10-01T00:00:00Z")).await;
    assert_eq!(
        before.ok()["user"],
        json!(app.admin.id),
        "before the rotation starts: the lead"
    );
    assert_eq!(before.body["source"], "lead");

    let shifts = app
        .agent
        .get(&format!(
            "/api/v1/schedules/{id}/shifts?from=2026-10-24T08:00:00Z&to=2026-10-26T08:00:00Z"
        ))
        .await;
    let starts: Vec<(String, String)> = shifts.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap_or_default().to_string(),
                s["start"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        starts,
        [
            (app.agent.id.clone(), "2026-10-24T08:00:00Z".to_string()),
            (app.manager.id.clone(), "2026-10-25T08:00:00Z".to_string()),
        ]
    );
    app.agent
        .get(&format!(
            "/api/v1/schedules/{id}/shifts?from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z"
        ))
        .await
        .problem(422);

    let feed = app
        .agent
        .http
        .get(format!(
            "{}/api/v1/users/{}/oncall.ics?token={}",
            app.agent.base, app.agent.id, app.agent.token
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(feed.status(), 200);
    assert!(
        feed.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/calendar"))
    );
    let text = feed.text().await.expect("body");
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
    assert!(text.contains("BEGIN:VEVENT"), "the agent has shifts in the feed window");
    let stranger = app
        .user
        .http
        .get(format!("{}/api/v1/users/{}/oncall.ics", app.user.base, app.agent.id))
        .bearer_auth(&app.user.token)
        .send()
        .await
        .expect("answer");
    assert_eq!(stranger.status(), 403, "end users read only their own feed");

    // Today's on-call person owns new event incidents of the team.
    let now_on_call = app.agent.get("/api/v1/teams/Ops/oncall").await.ok()["user"].clone();
    assert_ne!(now_on_call, Value::Null);
    let integration = app
        .admin
        .post(
            "/api/v1/integrations",
            json!({"name": "Prom", "kind": "generic", "team": "Ops"}),
        )
        .await;
    let key = integration.body["key"].as_str().expect("key");
    let sent = app
        .admin
        .send(
            app.admin
                .http
                .post(format!("{}/api/v1/integrations/{key}/events", app.admin.base)),
            Some(json!({"summary": "Disk full"})),
        )
        .await;
    let incident_id = sent.body["alert"]["incident"].as_str().expect("incident");
    let incident = app.agent.get(&format!("/api/v1/incidents/{incident_id}")).await;
    assert_eq!(incident.ok()["owner"], now_on_call);

    app.admin
        .call(reqwest::Method::DELETE, "/api/v1/teams/Ops", None)
        .await
        .problem(409);
}

const MINUTE: i64 = 60_000_000;

async fn unaccepted_incidents_escalate_level_by_level_exactly_once(engine: Engine) {
    let app = App::start(engine).await;
    let state = &app.node.state;
    app.admin
        .post("/api/v1/teams", json!({"name": "Ops", "lead": app.admin.id}))
        .await;
    app.admin
        .post(
            "/api/v1/escalation-policies",
            json!({"name": "x", "team": "Ops", "levels": [{"after": "5m", "targets": ["nobody-at-all"]}]}),
        )
        .await
        .problem(422);
    let policy = app
        .admin
        .post(
            "/api/v1/escalation-policies",
            json!({"name": "Ops ladder", "team": "Ops", "levels": [
                {"after": "15m", "targets": ["lead"]},
                {"after": "5m", "targets": [app.manager.id]}
            ]}),
        )
        .await;
    assert_eq!(policy.status, 201, "{}", policy.body);
    assert_eq!(
        policy.body["levels"][0]["after"], "5m",
        "levels are kept in order of delay"
    );

    let waiting = app
        .agent
        .incident(json!({"title": "Nobody looks", "team": "Ops"}))
        .await;
    let taken = app
        .agent
        .incident(json!({"title": "Someone looks", "team": "Ops"}))
        .await;
    app.agent.act(&taken, "accept", json!({})).await.ok();
    let owner = |id: Value| {
        let agent = app.agent.clone();
        async move {
            agent
                .get(&format!("/api/v1/incidents/{}", id.as_str().expect("id")))
                .await
                .ok()["owner"]
                .clone()
        }
    };

    keel_http::workers::sweep_once(state).await.expect("sweep");
    assert_eq!(owner(waiting["id"].clone()).await, json!(app.agent.id), "not yet");
    app.node.clock.advance(6 * MINUTE);
    let (a, b) = tokio::join!(
        keel_http::workers::sweep_once(state),
        keel_http::workers::sweep_once(state)
    );
    assert_eq!(
        a.expect("sweep").entries + b.expect("sweep").entries,
        1,
        "escalated once"
    );
    assert_eq!(owner(waiting["id"].clone()).await, json!(app.manager.id));
    app.node.clock.advance(10 * MINUTE);
    keel_http::workers::sweep_once(state).await.expect("sweep");
    assert_eq!(owner(waiting["id"].clone()).await, json!(app.admin.id), "then the lead");
    assert_eq!(
        owner(taken["id"].clone()).await,
        json!(app.agent.id),
        "accepted work stays put"
    );
    let timeline = app
        .agent
        .get(&format!(
            "/api/v1/incidents/{}/timeline",
            waiting["id"].as_str().expect("id")
        ))
        .await;
    let escalations: Vec<&Value> = timeline.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .collect();
    assert_eq!(escalations.len(), 2);
    assert_eq!(escalations[0]["data"]["previous"], json!(app.agent.id));
    assert_eq!(escalations[1]["data"]["level"], 1);
    let queued = app.node.store.claim_notifications(10, 60).await.expect("claim");
    assert_eq!(
        queued.iter().filter(|n| n.kind == "escalated").count(),
        2,
        "each new owner is notified"
    );
}
