//! The service catalogue and configuration model: teams with members and a
//! lead, services owned by teams, CIs with their services and dependencies;
//! references checked, cycles and dangling deletes refused; an incident on
//! a CI shows the services it impacts and the similar systems at risk.

use serde_json::{Value, json};

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(
    the_catalogue_keeps_teams_services_and_cis_consistent,
    an_incident_on_a_ci_shows_impacted_services_and_similar_systems,
    event_incidents_of_a_team_are_owned_by_its_lead,
    classification_rules_apply_to_reports_and_events,
    a_team_backlog_orders_by_priority_then_sla_due_and_flags_wip_limits,
);

async fn created(app: &App, path: &str, body: Value) -> Value {
    let answer = app.admin.post(path, body).await;
    assert_eq!(answer.status, 201, "{path}: {}", answer.body);
    answer.body
}

async fn the_catalogue_keeps_teams_services_and_cis_consistent(engine: Engine) {
    let app = App::start(engine).await;
    let team = created(
        &app,
        "/api/v1/teams",
        json!({"name": "Web", "lead": app.agent.id, "members": [app.manager.id], "wip_limits": {"accepted": 3}}),
    )
    .await;
    assert_eq!(
        team["members"],
        json!([app.agent.id, app.manager.id]),
        "the lead is a member"
    );
    app.admin
        .post("/api/v1/teams", json!({"name": "Ghosts", "members": ["no-such-user"]}))
        .await
        .problem(422);
    app.admin
        .post("/api/v1/teams", json!({"name": "Web"}))
        .await
        .problem(422);
    app.admin
        .post("/api/v1/teams", json!({"name": "X", "wip_limits": {"closed": 1}}))
        .await
        .problem(422);

    let shop = created(
        &app,
        "/api/v1/services",
        json!({"name": "Web shop", "team": "Web", "criticality": "critical"}),
    )
    .await;
    assert_eq!(shop["team"], team["id"], "a team named is stored by id");
    app.admin
        .post("/api/v1/services", json!({"name": "Orphan", "team": "Nobody"}))
        .await
        .problem(422);
    app.admin
        .post("/api/v1/services", json!({"name": "Odd", "criticality": "meh"}))
        .await
        .problem(422);

    let db = created(&app, "/api/v1/cis", json!({"name": "db-1", "kind": "database"})).await;
    let app_ci = created(
        &app,
        "/api/v1/cis",
        json!({"name": "app-1", "kind": "server", "services": ["Web shop"], "depends_on": ["db-1"]}),
    )
    .await;
    assert_eq!(app_ci["depends_on"], json!([db["id"]]));
    let cycle = app
        .admin
        .call(
            reqwest::Method::PATCH,
            "/api/v1/cis/db-1",
            Some(json!({"depends_on": ["app-1"]})),
        )
        .await;
    assert!(cycle.problem(422).contains("depend on itself"), "{}", cycle.body);

    let in_use = app.admin.call(reqwest::Method::DELETE, "/api/v1/cis/db-1", None).await;
    assert!(in_use.problem(409).contains("app-1"));
    app.admin
        .call(reqwest::Method::DELETE, "/api/v1/teams/Web", None)
        .await
        .problem(409);

    let by_name = app.agent.get("/api/v1/services/Web%20shop").await;
    assert_eq!(by_name.ok()["id"], shop["id"]);
    app.agent.get("/api/v1/cis/nope").await.problem(404);
    let patched = app
        .admin
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/teams/{}", team["id"].as_str().expect("id")),
            Some(json!({"description": "Runs the shop"})),
        )
        .await;
    assert_eq!(patched.ok()["description"], "Runs the shop");
    assert_eq!(
        patched.body["wip_limits"]["accepted"], 3,
        "PATCH keeps what it does not name"
    );

    let deleted = app.admin.call(reqwest::Method::DELETE, "/api/v1/cis/app-1", None).await;
    assert_eq!(deleted.status, 204);
    let deleted = app.admin.call(reqwest::Method::DELETE, "/api/v1/cis/db-1", None).await;
    assert_eq!(deleted.status, 204, "nothing depends on it any more");
    let listed = app.agent.get("/api/v1/cis").await;
    assert_eq!(listed.ok()["items"].as_array().map(Vec::len), Some(0));
}

async fn an_incident_on_a_ci_shows_impacted_services_and_similar_systems(engine: Engine) {
    let app = App::start(engine).await;
    for service in ["Shop", "Search", "Reports"] {
        created(&app, "/api/v1/services", json!({"name": service})).await;
    }
    created(&app, "/api/v1/cis", json!({"name": "san", "kind": "storage"})).await;
    created(
        &app,
        "/api/v1/cis",
        json!({"name": "db-1", "kind": "database", "depends_on": ["san"]}),
    )
    .await;
    created(
        &app,
        "/api/v1/cis",
        json!({"name": "db-2", "kind": "database", "services": ["Reports"], "depends_on": ["san"]}),
    )
    .await;
    for (name, service) in [("app-1", "Shop"), ("app-2", "Search")] {
        created(
            &app,
            "/api/v1/cis",
            json!({"name": name, "kind": "server", "services": [service], "depends_on": ["db-1"]}),
        )
        .await;
    }
    let incident = app.agent.incident(json!({"title": "db-1 is slow", "ci": "db-1"})).await;
    let impact = app
        .agent
        .get(&format!(
            "/api/v1/incidents/{}/impact",
            incident["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(impact.ok()["impacted_services"], json!(["Search", "Shop"]));
    assert_eq!(impact.body["dependants"], json!(["app-1", "app-2"]));
    assert_eq!(impact.body["similar_systems"], json!(["db-2"]));
    let unknown = app
        .agent
        .incident(json!({"title": "?", "ci": "not-in-catalogue"}))
        .await;
    let impact = app
        .agent
        .get(&format!(
            "/api/v1/incidents/{}/impact",
            unknown["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(impact.ok()["impacted_services"], json!([]));
}

async fn event_incidents_of_a_team_are_owned_by_its_lead(engine: Engine) {
    let app = App::start(engine).await;
    created(&app, "/api/v1/teams", json!({"name": "Web", "lead": app.manager.id})).await;
    let integration = created(
        &app,
        "/api/v1/integrations",
        json!({"name": "Prometheus", "kind": "generic", "team": "Web"}),
    )
    .await;
    let key = integration["key"].as_str().expect("key");
    let sent = app
        .admin
        .send(
            app.admin
                .http
                .post(format!("{}/api/v1/integrations/{key}/events", app.admin.base)),
            Some(json!({"summary": "Checkout down"})),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["alert"]["incident"].as_str().expect("incident");
    let incident = app.agent.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident.ok()["owner"], json!(app.manager.id), "the team's lead owns it");
    assert_eq!(incident.body["team"], "Web");
}

async fn classification_rules_apply_to_reports_and_events(engine: Engine) {
    let app = App::start(engine).await;
    let vpn = created(
        &app,
        "/api/v1/rules",
        json!({"name": "vpn", "position": 10, "when": {"title": "*vpn*"},
               "then": {"category": "network", "team": "Net", "impact": 2}}),
    )
    .await;
    created(
        &app,
        "/api/v1/rules",
        json!({"name": "prod events", "position": 20, "when": {"labels.env": "prod", "source": "monitoring"},
               "then": {"major": true, "category": "production"}}),
    )
    .await;
    app.admin
        .post(
            "/api/v1/rules",
            json!({"name": "bad", "when": {"colour": "red"}, "then": {"category": "x"}}),
        )
        .await
        .problem(422);
    app.agent
        .post("/api/v1/rules", json!({"name": "x", "then": {"category": "x"}}))
        .await
        .problem(403);
    let listed = app.agent.get("/api/v1/rules").await;
    let names: Vec<&str> = listed.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["vpn", "prod events"], "in the order they are tried");

    let report = app.user.incident(json!({"title": "My VPN keeps dropping"})).await;
    assert_eq!(report["team"], "Net", "a rule may route an end user's report");
    assert_eq!(report["category"], "network");
    assert_eq!(report["impact"], 2);
    let timeline = app
        .agent
        .get(&format!(
            "/api/v1/incidents/{}/timeline",
            report["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(timeline.ok()["items"][0]["data"]["classified_by"], "vpn");
    let own = app
        .agent
        .incident(json!({"title": "vpn for the CEO", "category": "vip"}))
        .await;
    assert_eq!(own["category"], "vip", "what the reporter chose stays");

    let integration = created(&app, "/api/v1/integrations", json!({"name": "Prom", "kind": "generic"})).await;
    let key = integration["key"].as_str().expect("key");
    let sent = app
        .admin
        .send(
            app.admin
                .http
                .post(format!("{}/api/v1/integrations/{key}/events", app.admin.base)),
            Some(json!({"summary": "Checkout latency", "labels": {"env": "prod"}})),
        )
        .await;
    let id = sent.body["alert"]["incident"].as_str().expect("incident");
    let incident = app.agent.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident.ok()["major"], true);
    assert_eq!(incident.body["category"], "production");

    let disabled = app
        .admin
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/rules/{}", vpn["id"].as_str().expect("id")),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(disabled.ok()["enabled"], false);
    let later = app.user.incident(json!({"title": "VPN again"})).await;
    assert_eq!(later["team"], Value::Null, "a disabled rule no longer applies");
}

async fn a_team_backlog_orders_by_priority_then_sla_due_and_flags_wip_limits(engine: Engine) {
    let app = App::start(engine).await;
    created(&app, "/api/v1/teams", json!({"name": "Web", "wip_limits": {"new": 2}})).await;
    created(&app, "/api/v1/services", json!({"name": "Reports"})).await;
    created(
        &app,
        "/api/v1/sla-policies",
        json!({"name": "Default", "targets": [{"priority": "P3", "response": "10m"}]}),
    )
    .await;
    created(
        &app,
        "/api/v1/sla-policies",
        json!({"name": "Reports", "service": "Reports", "targets": [{"priority": "P3", "response": "60m"}]}),
    )
    .await;
    let p3 = json!({"impact": 1, "urgency": 3, "team": "Web"});
    let mut slow = p3.clone();
    slow["title"] = json!("Report late");
    slow["service"] = json!("Reports");
    let slow = app.agent.incident(slow).await;
    let mut fast = p3.clone();
    fast["title"] = json!("Shop slow");
    let fast = app.agent.incident(fast).await;
    let low = app
        .agent
        .incident(json!({"title": "Typo on page", "impact": 4, "urgency": 4, "team": "Web"}))
        .await;
    let urgent = app
        .agent
        .incident(json!({"title": "Shop down", "impact": 1, "urgency": 1, "team": "Web"}))
        .await;
    app.agent.incident(json!({"title": "Other team", "team": "DBA"})).await;
    keel_http::workers::sweep_once(&app.node.state).await.expect("sweep");

    let backlog = app.agent.get("/api/v1/teams/Web/backlog").await;
    let order: Vec<&Value> = backlog.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(
        order,
        [&urgent["id"], &fast["id"], &slow["id"], &low["id"]],
        "priority first, then the earlier SLA due time"
    );
    let new_column = &backlog.body["columns"][0];
    assert_eq!(new_column["state"], "new");
    assert_eq!(new_column["count"], 4);
    assert_eq!(new_column["wip_limit"], 2);
    assert_eq!(new_column["over_limit"], true);
    assert_eq!(backlog.body["columns"][1]["over_limit"], false);
    app.agent.get("/api/v1/teams/Nobody/backlog").await.problem(404);
}
