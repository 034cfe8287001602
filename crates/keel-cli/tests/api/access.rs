//! Tokens and roles: every route checks who calls; end users see only what
//! they reported and never internal notes; secrets are stored hashed.

use serde_json::json;

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(
    calls_without_a_valid_token_get_401,
    roles_limit_what_each_caller_may_do,
    end_users_see_only_their_own_incidents_and_public_notes,
    tokens_are_stored_only_as_hashes,
);

async fn calls_without_a_valid_token_get_401(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let none = a.send(a.http.get(format!("{}/api/v1/incidents", a.base)), None).await;
    none.problem(401);
    assert_eq!(
        none.headers.get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let wrong = a
        .send(
            a.http
                .get(format!("{}/api/v1/incidents", a.base))
                .bearer_auth("keel_not-a-token"),
            None,
        )
        .await;
    wrong.problem(401);
    let basic = a
        .send(
            a.http
                .get(format!("{}/api/v1/incidents", a.base))
                .basic_auth("a", Some("b")),
            None,
        )
        .await;
    basic.problem(401);
    for path in ["/api/v1/users", "/api/v1/me", "/api/v1/incidents/1/timeline"] {
        a.send(a.http.get(format!("{}{path}", a.base)), None).await.problem(401);
    }
}

async fn roles_limit_what_each_caller_may_do(engine: Engine) {
    let app = App::start(engine).await;
    let new_user = json!({"name": "Nia", "email": "nia@example.test", "role": "agent"});
    app.agent.post("/api/v1/users", new_user.clone()).await.problem(403);
    app.manager.post("/api/v1/users", new_user.clone()).await.problem(403);
    app.user.post("/api/v1/users", new_user.clone()).await.problem(403);
    let created = app.admin.post("/api/v1/users", new_user.clone()).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["role"], "agent");
    app.admin.post("/api/v1/users", new_user).await.problem(409);
    app.admin
        .post(
            "/api/v1/users",
            json!({"name": "X", "email": "x@example.test", "role": "king"}),
        )
        .await
        .problem(422);
    app.user.get("/api/v1/users").await.problem(403);
    assert!(
        app.agent.get("/api/v1/users").await.ok()["items"]
            .as_array()
            .is_some_and(|u| u.len() >= 6)
    );
    let me = app.user.get("/api/v1/me").await;
    assert_eq!(me.ok()["role"], "end_user");
    // Tokens: for oneself, or by an admin.
    let own = app
        .user
        .post(
            &format!("/api/v1/users/{}/tokens", app.user.id),
            json!({"name": "laptop"}),
        )
        .await;
    assert!(own.ok()["token"].as_str().is_some_and(|t| t.starts_with("keel_")));
    app.user
        .post(
            &format!("/api/v1/users/{}/tokens", app.agent.id),
            json!({"name": "steal"}),
        )
        .await
        .problem(403);
    let minted = app
        .admin
        .post(&format!("/api/v1/users/{}/tokens", app.agent.id), json!({"name": "ci"}))
        .await;
    let secret = minted.ok()["token"].as_str().expect("token").to_string();
    let as_agent = crate::harness::Caller {
        token: secret,
        ..app.agent.clone()
    };
    assert_eq!(as_agent.get("/api/v1/me").await.ok()["id"], json!(app.agent.id));
    // End users cannot run the agent's actions, even on their own incident.
    let own_incident = app.user.incident(json!({"title": "My laptop will not boot"})).await;
    assert_eq!(own_incident["owner"], json!(app.user.id));
    app.user.act(&own_incident, "accept", json!({})).await.problem(403);
    app.user
        .post("/api/v1/incidents", json!({"title": "x", "team": "dba"}))
        .await
        .problem(403);
    let id = own_incident["id"].as_str().expect("id");
    app.user
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"urgency": 1})),
        )
        .await
        .problem(403);
    app.user
        .get(&format!("/api/v1/incidents/{id}/verify"))
        .await
        .problem(403);
}

async fn end_users_see_only_their_own_incidents_and_public_notes(engine: Engine) {
    let app = App::start(engine).await;
    let mine = app.user.incident(json!({"title": "Cannot print payslips"})).await;
    let theirs = app.other_user.incident(json!({"title": "Other user's issue"})).await;
    let staff = app.agent.incident(json!({"title": "Core switch flapping"})).await;
    let listed = app.user.get("/api/v1/incidents").await;
    let titles: Vec<&str> = listed.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert_eq!(titles, ["Cannot print payslips"]);
    for other in [&theirs, &staff] {
        let id = other["id"].as_str().expect("id");
        app.user.get(&format!("/api/v1/incidents/{id}")).await.problem(404);
        app.user
            .get(&format!("/api/v1/incidents/{id}/timeline"))
            .await
            .problem(404);
        app.user
            .post(
                &format!("/api/v1/incidents/{id}/comments"),
                json!({"body": "hello?", "visibility": "public"}),
            )
            .await
            .problem(404);
    }
    let id = mine["id"].as_str().expect("id");
    app.agent
        .post(
            &format!("/api/v1/incidents/{id}/comments"),
            json!({"body": "user seems confused", "visibility": "internal"}),
        )
        .await
        .ok();
    app.agent
        .post(
            &format!("/api/v1/incidents/{id}/comments"),
            json!({"body": "We are on it", "visibility": "public"}),
        )
        .await
        .ok();
    let reply = app
        .user
        .post(&format!("/api/v1/incidents/{id}/comments"), json!({"body": "thanks"}))
        .await;
    assert_eq!(
        reply.ok()["data"]["visibility"],
        "public",
        "end users' comments are public"
    );
    app.user
        .post(
            &format!("/api/v1/incidents/{id}/comments"),
            json!({"body": "psst", "visibility": "internal"}),
        )
        .await
        .problem(403);
    let seen = app.user.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    let bodies: Vec<&str> = seen.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["data"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["We are on it", "thanks"]);
    let staff_view = app.agent.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    assert_eq!(staff_view.ok()["items"].as_array().map(Vec::len), Some(4));
    // The reporter confirms the resolution by closing.
    app.agent
        .act(
            &mine,
            "resolve",
            json!({"code": "fixed", "notes": "driver reinstalled"}),
        )
        .await
        .ok();
    assert_eq!(
        app.user.act(&mine, "close", json!({"note": "works now"})).await.ok()["state"],
        "closed"
    );
}

async fn tokens_are_stored_only_as_hashes(engine: Engine) {
    let app = App::start(engine).await;
    let secret = app.agent.token.clone();
    let stored = app
        .db
        .scalar(&format!(
            "SELECT COUNT(*) || '' FROM api_tokens WHERE token_hash = '{secret}'"
        ))
        .await;
    assert_eq!(
        stored.as_deref(),
        Some("0"),
        "the secret itself is nowhere in the table"
    );
    let hash = keel_http::hash_token(&secret);
    let found = app
        .db
        .scalar(&format!("SELECT user_id FROM api_tokens WHERE token_hash = '{hash}'"))
        .await;
    assert_eq!(found, Some(app.agent.id.clone()));
}

on_both_engines!(
    every_route_checks_the_callers_role,
    people_keep_their_time_zone_and_contact_methods
);

async fn people_keep_their_time_zone_and_contact_methods(engine: Engine) {
    let app = App::start(engine).await;
    let created = app
        .admin
        .post(
            "/api/v1/users",
            json!({"name": "Noor", "email": "noor@example.test", "role": "agent", "time_zone": "Asia/Tokyo",
                   "contact_methods": [{"kind": "email", "address": "noor@example.test"},
                                       {"kind": "sms", "address": "+81 90 1234 5678"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["time_zone"], "Asia/Tokyo");
    assert_eq!(created.body["contact_methods"][1]["kind"], "sms");
    for bad in [
        json!({"name": "X", "email": "x1@example.test", "role": "agent", "time_zone": "Mars/Olympus"}),
        json!({"name": "X", "email": "x2@example.test", "role": "agent",
               "contact_methods": [{"kind": "pigeon", "address": "roof"}]}),
        json!({"name": "X", "email": "x3@example.test", "role": "agent",
               "contact_methods": [{"kind": "webhook", "address": "ftp://nope"}]}),
    ] {
        app.admin.post("/api/v1/users", bad).await.problem(422);
    }
    let me = format!("/api/v1/users/{}", app.agent.id);
    let own = app
        .agent
        .call(
            reqwest::Method::PATCH,
            &me,
            Some(json!({"time_zone": "Europe/Berlin", "contact_methods": [{"kind": "phone", "address": "+49 30 123456"}]})),
        )
        .await;
    assert_eq!(own.ok()["time_zone"], "Europe/Berlin");
    assert_eq!(own.body["contact_methods"][0]["kind"], "phone");
    app.agent
        .call(reqwest::Method::PATCH, &me, Some(json!({"role": "admin"})))
        .await
        .problem(403);
    app.agent
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{}", app.manager.id),
            Some(json!({"name": "Mallory"})),
        )
        .await
        .problem(403);
    let disabled = app
        .admin
        .call(reqwest::Method::PATCH, &me, Some(json!({"disabled": true})))
        .await;
    assert_eq!(disabled.ok()["disabled"], true);
    app.agent.get("/api/v1/me").await.problem(401);
    let admin = format!("/api/v1/users/{}", app.admin.id);
    for lockout in [json!({"disabled": true}), json!({"role": "agent"})] {
        app.admin
            .call(reqwest::Method::PATCH, &admin, Some(lockout))
            .await
            .problem(409);
    }
    app.admin
        .post(
            "/api/v1/users",
            json!({"name": "Z", "email": "z@example.test", "role": "agent", "time_zone": "localtime"}),
        )
        .await
        .problem(422);
    app.admin
        .call(
            reqwest::Method::PATCH,
            &admin,
            Some(json!({"password": "x".repeat(2000)})),
        )
        .await
        .problem(422);
}

/// One row per route: which roles get through (2xx), the others must get 403
/// (or 404 where an end user may not learn that the incident exists).
async fn every_route_checks_the_callers_role(engine: Engine) {
    let app = App::start(engine).await;
    let staff_incident = app.agent.incident(json!({"title": "Role matrix"})).await;
    let id = staff_incident["id"].as_str().expect("id").to_string();
    let callers = [
        ("end_user", &app.user),
        ("agent", &app.agent),
        ("incident_manager", &app.manager),
        ("admin", &app.admin),
    ];
    let fresh_email = |role: &str| format!("matrix-{role}-{}@example.test", keel_http::new_id());
    for (role, caller) in callers {
        let staff = role != "end_user";
        let checks: Vec<(&str, reqwest::Method, String, Option<serde_json::Value>, bool)> = vec![
            (
                "list incidents",
                reqwest::Method::GET,
                "/api/v1/incidents".into(),
                None,
                true,
            ),
            (
                "create incident",
                reqwest::Method::POST,
                "/api/v1/incidents".into(),
                Some(json!({"title": "x"})),
                true,
            ),
            (
                "show incident",
                reqwest::Method::GET,
                format!("/api/v1/incidents/{id}"),
                None,
                staff,
            ),
            (
                "patch incident",
                reqwest::Method::PATCH,
                format!("/api/v1/incidents/{id}"),
                Some(json!({"location": role})),
                staff,
            ),
            (
                "comment",
                reqwest::Method::POST,
                format!("/api/v1/incidents/{id}/comments"),
                Some(json!({"body": "hi", "visibility": "public"})),
                staff,
            ),
            (
                "timeline",
                reqwest::Method::GET,
                format!("/api/v1/incidents/{id}/timeline"),
                None,
                staff,
            ),
            (
                "verify",
                reqwest::Method::GET,
                format!("/api/v1/incidents/{id}/verify"),
                None,
                staff,
            ),
            (
                "assign",
                reqwest::Method::POST,
                format!("/api/v1/incidents/{id}/actions/assign"),
                Some(json!({"team": role})),
                staff,
            ),
            ("list users", reqwest::Method::GET, "/api/v1/users".into(), None, staff),
            (
                "show user",
                reqwest::Method::GET,
                format!("/api/v1/users/{}", app.agent.id),
                None,
                staff || caller.id == app.agent.id,
            ),
            (
                "create user",
                reqwest::Method::POST,
                "/api/v1/users".into(),
                Some(json!({"name": "N", "email": fresh_email(role), "role": "agent"})),
                role == "admin",
            ),
            (
                "mint token for another",
                reqwest::Method::POST,
                format!("/api/v1/users/{}/tokens", app.other_user.id),
                Some(json!({"name": "t"})),
                role == "admin",
            ),
            ("me", reqwest::Method::GET, "/api/v1/me".into(), None, true),
            ("list teams", reqwest::Method::GET, "/api/v1/teams".into(), None, staff),
            (
                "create team",
                reqwest::Method::POST,
                "/api/v1/teams".into(),
                Some(json!({"name": format!("team of {role}")})),
                role == "admin",
            ),
            (
                "list services",
                reqwest::Method::GET,
                "/api/v1/services".into(),
                None,
                staff,
            ),
            (
                "create service",
                reqwest::Method::POST,
                "/api/v1/services".into(),
                Some(json!({"name": format!("service of {role}")})),
                role == "admin",
            ),
            ("list CIs", reqwest::Method::GET, "/api/v1/cis".into(), None, staff),
            (
                "create CI",
                reqwest::Method::POST,
                "/api/v1/cis".into(),
                Some(json!({"name": format!("ci of {role}"), "kind": "server"})),
                role == "admin",
            ),
            (
                "impact",
                reqwest::Method::GET,
                format!("/api/v1/incidents/{id}/impact"),
                None,
                staff,
            ),
            (
                "list alerts",
                reqwest::Method::GET,
                "/api/v1/alerts".into(),
                None,
                staff,
            ),
            (
                "list integrations",
                reqwest::Method::GET,
                "/api/v1/integrations".into(),
                None,
                role == "admin",
            ),
            (
                "list maintenance windows",
                reqwest::Method::GET,
                "/api/v1/maintenance-windows".into(),
                None,
                staff,
            ),
            (
                "plan maintenance",
                reqwest::Method::POST,
                "/api/v1/maintenance-windows".into(),
                Some(json!({"service": role, "ends_at": "2099-01-01T00:00:00Z", "reason": "r"})),
                role == "admin" || role == "incident_manager",
            ),
        ];
        for (what, method, path, body, allowed) in checks {
            let answer = caller.call(method, &path, body).await;
            if allowed {
                assert!(
                    answer.status.is_success(),
                    "{role} may {what}: {} {}",
                    answer.status,
                    answer.body
                );
            } else {
                assert!(
                    matches!(answer.status.as_u16(), 403 | 404),
                    "{role} may not {what}: got {} {}",
                    answer.status,
                    answer.body
                );
            }
        }
    }
}
