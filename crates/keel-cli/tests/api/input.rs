//! Bad input gets a clear problem+json 4xx, never a 500, and writes nothing.

use keel_http::HttpConfig;
use reqwest::Method;
use serde_json::json;

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(
    bad_bodies_get_clear_problems_and_write_nothing,
    oversized_bodies_get_413,
    unknown_ids_and_actions_get_404
);

async fn bad_bodies_get_clear_problems_and_write_nothing(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let url = format!("{}/api/v1/incidents", a.base);
    let cases: Vec<(&str, u16, &str)> = vec![
        (r#"{"title": 5}"#, 422, "invalid type"),
        (r#"{"title": "x", "impact": 9}"#, 422, "impact must be between 1 and 4"),
        (r#"{"title": "x", "impact": -1}"#, 422, "invalid value"),
        (r#"{"title": "x", "urgency": "high"}"#, 422, "invalid type"),
        (r#"{"title": "x", "colour": "red"}"#, 422, "unknown field `colour`"),
        (r#"{"title": "   "}"#, 422, "title must not be empty"),
        (r#"{"description": "no title"}"#, 422, "missing field `title`"),
        (r#"{"title": "x", "observed_at": "yesterday"}"#, 422, "observed_at"),
        (r#"{"title": "x", "source": "gossip"}"#, 422, "source must be one of"),
        (
            r#"{"title": "x", "occurred_at": "2999-01-01T00:00:00Z"}"#,
            422,
            "future",
        ),
        (r#"{"title": "x\u0000y"}"#, 422, "NUL"),
        (r#"{"title": "x",,}"#, 400, "not valid JSON"),
        (r#"[1, 2"#, 400, "not valid JSON"),
        (r#"{"title": "x", "owner": "nobody"}"#, 422, "no user"),
    ];
    for (body, status, needle) in cases {
        let answer = a
            .send(
                a.http
                    .post(&url)
                    .bearer_auth(&a.token)
                    .header("content-type", "application/json")
                    .body(body.to_string()),
                None,
            )
            .await;
        let detail = answer.problem(status);
        assert!(detail.contains(needle), "{body}: expected {needle:?} in {detail:?}");
    }
    let nested = format!("{{\"title\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    a.send(
        a.http
            .post(&url)
            .bearer_auth(&a.token)
            .header("content-type", "application/json")
            .body(nested),
        None,
    )
    .await
    .problem(400);
    let text = a
        .send(
            a.http
                .post(&url)
                .bearer_auth(&a.token)
                .header("content-type", "text/plain")
                .body("title=x"),
            None,
        )
        .await;
    text.problem(415);
    let long = a.post("/api/v1/incidents", json!({"title": "x".repeat(301)})).await;
    assert!(long.problem(422).contains("longer than"));
    let list = a.get("/api/v1/incidents").await;
    assert_eq!(list.ok()["items"], json!([]), "no refused request stored anything");
    let inc = a.incident(json!({"title": "real one"})).await;
    let id = inc["id"].as_str().expect("id");
    a.post(
        &format!("/api/v1/incidents/{id}/actions/hold"),
        json!({"reason": "bored"}),
    )
    .await
    .problem(422);
    a.post(
        &format!("/api/v1/incidents/{id}/actions/resolve"),
        json!({"code": "fixed"}),
    )
    .await
    .problem(422);
    a.post(
        &format!("/api/v1/incidents/{id}/actions/accept"),
        json!({"reasn": "typo"}),
    )
    .await
    .problem(422);
    a.post(&format!("/api/v1/incidents/{id}/comments"), json!({"body": ""}))
        .await
        .problem(422);
    a.post(
        &format!("/api/v1/incidents/{id}/comments"),
        json!({"body": "x", "visibility": "everyone"}),
    )
    .await
    .problem(422);
    a.send(
        a.http
            .patch(format!("{}/api/v1/incidents/{id}", a.base))
            .bearer_auth(&a.token)
            .header("If-Match", "abc"),
        Some(json!({"urgency": 1})),
    )
    .await
    .problem(400);
    for query in [
        "limit=0",
        "limit=501",
        "state=open",
        "priority=P9",
        "cursor=zzz",
        "colour=red",
        "major=perhaps",
    ] {
        let answer = a.get(&format!("/api/v1/incidents?{query}")).await;
        assert!(
            matches!(answer.status.as_u16(), 400 | 422),
            "{query}: {} {}",
            answer.status,
            answer.body
        );
    }
    let timeline = a.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    assert_eq!(
        timeline.ok()["items"].as_array().map(Vec::len),
        Some(1),
        "refused actions wrote nothing"
    );
}

async fn oversized_bodies_get_413(engine: Engine) {
    let app = App::start_with(
        engine,
        HttpConfig {
            max_body_bytes: 4096,
            ..HttpConfig::default()
        },
    )
    .await;
    let a = &app.agent;
    let answer = a
        .post(
            "/api/v1/incidents",
            json!({"title": "big", "description": "x".repeat(10_000)}),
        )
        .await;
    answer.problem(413);
    assert_eq!(a.get("/api/v1/incidents").await.ok()["items"], json!([]));
}

async fn unknown_ids_and_actions_get_404(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    a.get("/api/v1/incidents/01900000-0000-7000-8000-000000000000")
        .await
        .problem(404);
    a.get("/api/v1/incidents/4242").await.problem(404);
    a.get("/api/v1/incidents/4242/timeline").await.problem(404);
    a.post("/api/v1/incidents/4242/actions/accept", json!({}))
        .await
        .problem(404);
    let inc = a.incident(json!({"title": "x"})).await;
    let detail = a.act(&inc, "explode", json!({})).await.problem(404).to_string();
    assert!(detail.contains("accept"), "lists the actions: {detail}");
    a.get("/api/v1/nothing-here").await.problem(404);
    a.call(Method::DELETE, "/api/v1/incidents", None).await.problem(405);
}
