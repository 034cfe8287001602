//! Monitoring integrations: admins create them with a key shown once and
//! stored hashed, rebind, disable and rotate them; nobody else may.

use reqwest::Method;
use serde_json::json;

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(integrations_have_a_key_shown_once_that_rotates_and_disables);

async fn integrations_have_a_key_shown_once_that_rotates_and_disables(engine: Engine) {
    let app = App::start(engine).await;
    let body = json!({"name": "Prometheus prod", "kind": "alertmanager", "service": "web-shop", "team": "web"});
    app.agent.post("/api/v1/integrations", body.clone()).await.problem(403);
    app.manager.get("/api/v1/integrations").await.problem(403);
    app.admin
        .post("/api/v1/integrations", json!({"name": "x", "kind": "nagios"}))
        .await
        .problem(422);
    app.admin
        .post("/api/v1/integrations", json!({"name": " ", "kind": "generic"}))
        .await
        .problem(422);
    let created = app.admin.post("/api/v1/integrations", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body["key"].as_str().expect("the key, once").to_string();
    assert_eq!(key.len(), 32, "PagerDuty-shaped routing key");
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(created.body["kind"], "alertmanager");
    assert_eq!(created.body["service"], "web-shop");

    let shown = app.admin.get(&format!("/api/v1/integrations/{id}")).await;
    assert!(shown.ok().get("key").is_none(), "the key is never shown again");
    assert_eq!(shown.body["key_hint"], json!(format!("{}…", &key[..4])));
    let listed = app.admin.get("/api/v1/integrations").await;
    assert_eq!(listed.ok()["items"].as_array().map(Vec::len), Some(1));
    assert!(listed.body["items"][0].get("key").is_none());

    let stored = app
        .db
        .scalar(&format!("SELECT key_hash FROM integrations WHERE id = '{id}'"))
        .await;
    assert_eq!(stored, Some(keel_http::hash_token(&key)), "only the hash is stored");
    let by_key = app
        .node
        .store
        .find_integration_by_key(&keel_http::hash_token(&key))
        .await
        .expect("lookup");
    assert_eq!(by_key.map(|i| i.id), Some(id.clone()));

    let patched = app
        .admin
        .call(
            Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(json!({"team": "", "disabled": true})),
        )
        .await;
    assert_eq!(patched.ok()["disabled"], true);
    assert!(patched.body["team"].is_null(), "an empty string clears the team");
    app.admin
        .call(
            Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(json!({"colour": "red"})),
        )
        .await
        .problem(422);

    let rotated = app
        .admin
        .post(&format!("/api/v1/integrations/{id}/rotate"), json!({}))
        .await;
    let new_key = rotated.ok()["key"].as_str().expect("new key").to_string();
    assert_ne!(new_key, key);
    assert!(rotated.body["rotated_at"].is_string());
    let old = app
        .node
        .store
        .find_integration_by_key(&keel_http::hash_token(&key))
        .await
        .expect("lookup");
    assert!(old.is_none(), "the old key stops working at once");
    let new = app
        .node
        .store
        .find_integration_by_key(&keel_http::hash_token(&new_key))
        .await
        .expect("lookup");
    assert_eq!(new.map(|i| i.disabled), Some(true), "rotation keeps the other settings");

    app.admin
        .post("/api/v1/integrations/nope/rotate", json!({}))
        .await
        .problem(404);
    app.admin.get("/api/v1/integrations/nope").await.problem(404);
}
