//! Detection policy end to end: severity mapping and rules classify event
//! incidents; alerts of one service correlate within a window; a trigger
//! soon after recovery reopens, later ones open anew; annotate-only recovery;
//! flapping is annotated instead of resolving and reopening; maintenance
//! windows store alerts without incidents; signed Grafana webhooks; batches.

use hmac::Mac;
use keel_domain::Timestamp;
use serde_json::{Value, json};

use crate::harness::{Answer, App, Caller, Engine};
use crate::on_both_engines;

on_both_engines!(
    rules_and_severity_map_classify_event_incidents,
    alerts_of_one_service_correlate_within_the_window,
    reopen_window_decides_between_reopening_and_a_new_incident,
    annotate_only_recovery_leaves_the_incident_to_people,
    a_flapping_alert_is_annotated_instead_of_resolving_again_and_again,
    maintenance_windows_store_alerts_but_open_no_incident,
    grafana_webhooks_must_carry_a_valid_signature_when_a_secret_is_set,
    a_batch_is_stored_whole_or_not_at_all,
);

async fn integration_with(app: &App, body: Value) -> (String, String) {
    let created = app.admin.post("/api/v1/integrations", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    (
        created.body["id"].as_str().expect("id").to_string(),
        created.body["key"].as_str().expect("key").to_string(),
    )
}

async fn send(caller: &Caller, key: &str, event: Value) -> Answer {
    caller
        .send(
            caller
                .http
                .post(format!("{}/api/v1/integrations/{key}/events", caller.base)),
            Some(event),
        )
        .await
}

fn fire(key: &str, summary: &str) -> Value {
    json!({"dedup_key": key, "summary": summary})
}

fn resolve(key: &str) -> Value {
    json!({"dedup_key": key, "status": "resolved"})
}

async fn incident_of(app: &App, answer: &Answer) -> Value {
    let id = answer.body["alert"]["incident"]
        .as_str()
        .expect("the alert has an incident");
    app.agent.get(&format!("/api/v1/incidents/{id}")).await.ok().clone()
}

async fn timeline_kinds(app: &App, id: &str) -> Vec<String> {
    app.agent.get(&format!("/api/v1/incidents/{id}/timeline")).await.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect()
}

async fn incident_count(app: &App) -> usize {
    app.agent.get("/api/v1/incidents?limit=500").await.ok()["items"]
        .as_array()
        .map_or(0, Vec::len)
}

fn now_micros() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(elapsed.as_micros()).expect("fits")
}

fn at_offset(seconds: i64) -> String {
    Timestamp::from_micros(now_micros() + seconds * 1_000_000).to_string()
}

async fn rules_and_severity_map_classify_event_incidents(engine: Engine) {
    let app = App::start(engine).await;
    let (id, key) = integration_with(
        &app,
        json!({
            "name": "Prometheus", "kind": "generic", "service": "web-shop", "team": "web",
            "policy": {
                "severity_map": {"warning": {"impact": 2, "urgency": 2}},
                "rules": [
                    {"name": "prod disks", "when": {"summary": "*disk*", "labels.env": "prod"},
                     "set": {"category": "storage", "team": "platform", "ci": "db-01", "impact": 1, "urgency": 1, "major": true}},
                    {"name": "catch-all prod", "when": {"labels.env": "prod"}, "set": {"category": "other"}}
                ]
            }
        }),
    )
    .await;
    let shown = app.admin.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(shown.ok()["policy"]["rules"][0]["name"], "prod disks");

    let disk = send(
        &app.admin,
        &key,
        json!({"summary": "Disk almost full", "severity": "warning", "labels": {"env": "prod"}}),
    )
    .await;
    assert_eq!(disk.status, 202, "{}", disk.body);
    let incident = incident_of(&app, &disk).await;
    assert_eq!(incident["category"], "storage");
    assert_eq!(incident["team"], "platform");
    assert_eq!(incident["ci"], "db-01");
    assert_eq!(
        incident["service"], "web-shop",
        "what the rule leaves alone comes from the integration"
    );
    assert_eq!(
        (incident["impact"].clone(), incident["urgency"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(incident["major"], true);
    assert_eq!(incident["source"], "monitoring");
    let timeline = app
        .agent
        .get(&format!(
            "/api/v1/incidents/{}/timeline",
            incident["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        timeline.ok()["items"][0]["data"]["classified_by"],
        "prod disks",
        "the timeline says which rule classified it"
    );

    let cpu = send(
        &app.admin,
        &key,
        json!({"summary": "CPU hot", "severity": "warning", "labels": {"env": "staging"}}),
    )
    .await;
    let incident = incident_of(&app, &cpu).await;
    assert_eq!(
        (incident["impact"].clone(), incident["urgency"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(incident["category"], Value::Null, "no rule matched");
    assert_eq!(incident["team"], "web");

    let prod_cpu = send(
        &app.admin,
        &key,
        json!({"summary": "CPU hot", "labels": {"env": "prod"}}),
    )
    .await;
    assert_eq!(
        incident_of(&app, &prod_cpu).await["category"],
        "other",
        "the first matching rule wins"
    );

    let bad = app
        .admin
        .post(
            "/api/v1/integrations",
            json!({"name": "Bad", "kind": "generic",
                   "policy": {"rules": [{"name": "x", "when": {"colour": "red"}, "set": {}}]}}),
        )
        .await;
    bad.problem(422);
    let bad = app
        .admin
        .post(
            "/api/v1/integrations",
            json!({"name": "Bad", "kind": "generic", "policy": {"reopen_window": 5}}),
        )
        .await;
    bad.problem(422);
}

async fn alerts_of_one_service_correlate_within_the_window(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration_with(
        &app,
        json!({"name": "Prometheus", "kind": "generic", "service": "web-shop",
               "policy": {"correlation_window_secs": 300}}),
    )
    .await;
    let (_, plain_key) =
        integration_with(&app, json!({"name": "Other", "kind": "generic", "service": "web-shop"})).await;

    let first = send(&app.admin, &key, fire("latency", "Checkout slow")).await;
    assert_eq!(first.body["outcome"], "opened");
    let second = send(&app.admin, &key, fire("errors", "Checkout 5xx")).await;
    assert_eq!(second.body["outcome"], "joined", "same service within the window");
    assert_eq!(second.body["alert"]["incident"], first.body["alert"]["incident"]);
    let other_service = send(
        &app.admin,
        &key,
        json!({"dedup_key": "db", "summary": "DB down", "service": "database"}),
    )
    .await;
    assert_eq!(other_service.body["outcome"], "opened");
    let uncorrelated = send(&app.admin, &plain_key, fire("errors-2", "Checkout 5xx")).await;
    assert_eq!(
        uncorrelated.body["outcome"], "opened",
        "correlation is off unless the integration's policy turns it on"
    );
    let id = first.body["alert"]["incident"].as_str().expect("incident");
    let kinds = timeline_kinds(&app, id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "alert_attached").count(),
        2,
        "the timeline shows every alert that joined: {kinds:?}"
    );
    // Both alerts must recover before the incident resolves.
    send(&app.admin, &key, resolve("latency")).await;
    assert_ne!(
        app.agent.get(&format!("/api/v1/incidents/{id}")).await.ok()["state"],
        "resolved"
    );
    send(&app.admin, &key, resolve("errors")).await;
    assert_eq!(
        app.agent.get(&format!("/api/v1/incidents/{id}")).await.ok()["state"],
        "resolved"
    );
}

async fn reopen_window_decides_between_reopening_and_a_new_incident(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration_with(&app, json!({"name": "Standard", "kind": "generic"})).await;
    let (_, no_reopen) = integration_with(
        &app,
        json!({"name": "No reopen", "kind": "generic", "policy": {"reopen_window_secs": 0}}),
    )
    .await;
    for (key, expected) in [(&key, "reopened"), (&no_reopen, "opened")] {
        let first = send(&app.admin, key, fire("disk", "Disk full")).await;
        assert_eq!(first.body["outcome"], "opened");
        let recovered = send(&app.admin, key, resolve("disk")).await;
        assert_eq!(recovered.body["outcome"], "recovered");
        let again = send(&app.admin, key, fire("disk", "Disk full again")).await;
        assert_eq!(again.body["outcome"], expected, "{}", again.body);
        let same = again.body["alert"]["incident"] == first.body["alert"]["incident"];
        assert_eq!(same, expected == "reopened");
        if expected == "reopened" {
            let incident = incident_of(&app, &again).await;
            assert_eq!(incident["reopens"], 1);
            assert_eq!(incident["state"], "accepted");
        }
    }
    // A closed incident is never reopened by monitoring.
    let (_, key) = integration_with(&app, json!({"name": "Closing", "kind": "generic"})).await;
    let first = send(&app.admin, &key, fire("mem", "Memory")).await;
    send(&app.admin, &key, resolve("mem")).await;
    let id = json!({"id": first.body["alert"]["incident"]});
    app.agent.act(&id, "close", json!({})).await.ok();
    let again = send(&app.admin, &key, fire("mem", "Memory again")).await;
    assert_eq!(again.body["outcome"], "opened");
}

async fn annotate_only_recovery_leaves_the_incident_to_people(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration_with(
        &app,
        json!({"name": "Careful", "kind": "generic", "policy": {"on_recovery": "annotate"}}),
    )
    .await;
    let first = send(&app.admin, &key, fire("q", "Queue backlog")).await;
    let recovered = send(&app.admin, &key, resolve("q")).await;
    assert_eq!(recovered.body["outcome"], "recovered");
    let incident = incident_of(&app, &first).await;
    assert_eq!(incident["state"], "new", "recovery only annotates");
    let kinds = timeline_kinds(&app, incident["id"].as_str().expect("id")).await;
    assert_eq!(kinds, ["registered", "alert_attached", "alert_recovered"]);
}

async fn a_flapping_alert_is_annotated_instead_of_resolving_again_and_again(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration_with(
        &app,
        json!({"name": "Flappy", "kind": "generic", "policy": {"flapping": {"changes": 4, "within_secs": 3600}}}),
    )
    .await;
    let first = send(&app.admin, &key, fire("ping", "Ping loss")).await;
    let id = first.body["alert"]["incident"].as_str().expect("incident").to_string();
    let state = |app: &App| {
        let path = format!("/api/v1/incidents/{id}");
        let agent = app.agent.clone();
        async move {
            agent.get(&path).await.ok()["state"]
                .as_str()
                .expect("state")
                .to_string()
        }
    };
    send(&app.admin, &key, resolve("ping")).await; // change 1
    assert_eq!(state(&app).await, "resolved");
    assert_eq!(
        send(&app.admin, &key, fire("ping", "Ping loss")).await.body["outcome"],
        "reopened"
    ); // 2
    send(&app.admin, &key, resolve("ping")).await; // 3
    assert_eq!(state(&app).await, "resolved");
    let flapping = send(&app.admin, &key, fire("ping", "Ping loss")).await; // 4: flapping
    assert_eq!(flapping.body["outcome"], "reopened");
    assert_eq!(flapping.body["alert"]["flapping"], true);
    send(&app.admin, &key, resolve("ping")).await;
    assert_ne!(
        state(&app).await,
        "resolved",
        "a flapping alert's recovery does not resolve"
    );
    let joined = send(&app.admin, &key, fire("ping", "Ping loss")).await;
    assert_eq!(joined.body["outcome"], "joined");
    assert_eq!(joined.body["alert"]["incident"], json!(id), "still one incident");
    let kinds = timeline_kinds(&app, &id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "alert_flapping").count(),
        1,
        "flapping is annotated once: {kinds:?}"
    );
    assert_eq!(incident_count(&app).await, 1);
}

async fn maintenance_windows_store_alerts_but_open_no_incident(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration_with(
        &app,
        json!({"name": "Prometheus", "kind": "generic", "service": "web-shop"}),
    )
    .await;
    let window = json!({"service": "web-shop", "starts_at": at_offset(-3600), "ends_at": at_offset(3600),
                        "reason": "database upgrade"});
    app.agent
        .post("/api/v1/maintenance-windows", window.clone())
        .await
        .problem(403);
    let created = app.manager.post("/api/v1/maintenance-windows", window).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["active"], true);
    let window_id = created.body["id"].as_str().expect("id").to_string();
    let past = app
        .manager
        .post(
            "/api/v1/maintenance-windows",
            json!({"ci": "db-01", "starts_at": at_offset(-7200), "ends_at": at_offset(-3600), "reason": "old"}),
        )
        .await;
    assert_eq!(past.status, 201);
    app.manager
        .post(
            "/api/v1/maintenance-windows",
            json!({"service": "x", "starts_at": at_offset(10), "ends_at": at_offset(5), "reason": "backwards"}),
        )
        .await
        .problem(422);
    let listed = app.agent.get("/api/v1/maintenance-windows").await;
    assert_eq!(
        listed.ok()["items"].as_array().map(Vec::len),
        Some(1),
        "ended windows are hidden"
    );

    let suppressed = send(&app.admin, &key, fire("cpu", "CPU hot")).await;
    assert_eq!(suppressed.status, 202);
    assert_eq!(suppressed.body["outcome"], "suppressed");
    assert_eq!(suppressed.body["alert"]["incident"], Value::Null);
    assert_eq!(suppressed.body["alert"]["suppressed_by"], json!(window_id));
    let ci_alert = send(
        &app.admin,
        &key,
        json!({"dedup_key": "db", "summary": "DB slow", "service": "other", "ci": "db-01"}),
    )
    .await;
    assert_eq!(ci_alert.body["outcome"], "opened", "the CI's window has ended");
    assert_eq!(incident_count(&app).await, 1);
    let alerts = app.agent.get("/api/v1/alerts?dedup_key=cpu").await;
    assert_eq!(alerts.ok()["items"][0]["count"], 1, "the event is stored as an alert");

    let deleted = app
        .manager
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/maintenance-windows/{window_id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let after = send(&app.admin, &key, fire("cpu", "CPU hot")).await;
    assert_eq!(
        after.body["outcome"], "opened",
        "still firing after the window: now it opens an incident"
    );
    assert_eq!(after.body["alert"]["count"], 2);
    assert_eq!(incident_count(&app).await, 2);
}

fn grafana_body() -> Value {
    json!({"version": "1", "groupKey": "{}:{alertname=\"HighLoad\"}", "status": "firing", "receiver": "keel",
           "alerts": [{"status": "firing", "labels": {"alertname": "HighLoad", "instance": "web-1"},
                       "annotations": {"summary": "Load is high"}, "startsAt": "2026-11-01T10:00:00Z",
                       "fingerprint": "abc123"}]})
}

async fn grafana_webhooks_must_carry_a_valid_signature_when_a_secret_is_set(engine: Engine) {
    let app = App::start(engine).await;
    let secret = "a-long-shared-grafana-secret";
    let (id, key) = integration_with(
        &app,
        json!({"name": "Grafana", "kind": "grafana", "signing_secret": secret}),
    )
    .await;
    let shown = app.admin.get(&format!("/api/v1/integrations/{id}")).await;
    assert_eq!(shown.ok()["signing_secret_set"], true);
    assert!(!shown.body.to_string().contains(secret), "the secret is never shown");
    let body = serde_json::to_vec(&grafana_body()).expect("json");
    let url = format!("{}/api/v1/integrations/{key}/grafana", app.admin.base);
    let post = |signature: Option<String>, timestamp: Option<&str>| {
        let mut request = app
            .admin
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Grafana-Alerting-Signature", signature);
        }
        if let Some(timestamp) = timestamp {
            request = request.header("X-Grafana-Alerting-Timestamp", timestamp);
        }
        request.send()
    };
    let sign = |prefix: &[u8], key: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
        mac.update(prefix);
        mac.update(&body);
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(post(None, None).await.expect("answer").status(), 401);
    assert_eq!(
        post(Some(sign(b"", "the-wrong-secret-entirely")), None)
            .await
            .expect("answer")
            .status(),
        401
    );
    assert_eq!(incident_count(&app).await, 0, "unsigned webhooks store nothing");
    assert_eq!(post(Some(sign(b"", secret)), None).await.expect("answer").status(), 200);
    assert_eq!(
        post(Some(sign(b"1764237600:", secret)), Some("1764237600"))
            .await
            .expect("answer")
            .status(),
        200,
        "with a timestamp header the signature covers TIMESTAMP:BODY"
    );
    assert_eq!(incident_count(&app).await, 1);
    // Removing the secret lets unsigned webhooks in again.
    let patched = app
        .admin
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(json!({"signing_secret": ""})),
        )
        .await;
    assert_eq!(patched.ok()["signing_secret_set"], false);
    assert_eq!(post(None, None).await.expect("answer").status(), 200);
}

async fn a_batch_is_stored_whole_or_not_at_all(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration_with(&app, json!({"name": "Batch", "kind": "generic"})).await;
    let batch = send(
        &app.admin,
        &key,
        json!([
            fire("b1", "One"),
            fire("b2", "Two"),
            fire("b1", "One again"),
            resolve("b2")
        ]),
    )
    .await;
    assert_eq!(batch.status, 202, "{}", batch.body);
    let outcomes: Vec<&str> = batch.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["opened", "opened", "repeat", "recovered"]);
    let bad = send(
        &app.admin,
        &key,
        json!([fire("c1", "Fine"), {"dedup_key": "c2", "summary": "x", "severity": "apocalyptic"}]),
    )
    .await;
    assert!(bad.problem(422).contains("event 1"), "{}", bad.body);
    let stored = app.agent.get("/api/v1/alerts?dedup_key=c1").await;
    assert_eq!(
        stored.ok()["items"].as_array().map(Vec::len),
        Some(0),
        "nothing of a refused batch is stored"
    );
    send(&app.admin, &key, json!([])).await.problem(422);
    let too_many: Vec<Value> = (0..1001).map(|n| fire(&format!("k{n}"), "many")).collect();
    send(&app.admin, &key, Value::Array(too_many)).await.problem(422);
    send(&app.admin, &key, json!([{"summary": "x", "bogus": 1}]))
        .await
        .problem(422);
}
