//! Monitoring events in: an event opens a classified, owned incident; repeats
//! only count; the sender's acknowledge accepts; recovery resolves without a
//! person; retries racing each other never make a second alert or incident.

use std::collections::HashSet;

use keel_http::HttpConfig;
use serde_json::{Value, json};

use crate::harness::{App, Caller, Engine, Node};
use crate::on_both_engines;

on_both_engines!(
    an_event_opens_an_incident_that_recovery_resolves,
    bad_events_are_refused_and_store_nothing,
    racing_retries_make_one_alert_and_one_incident,
);

async fn integration(app: &App) -> (String, String) {
    let created = app
        .admin
        .post(
            "/api/v1/integrations",
            json!({"name": "Prometheus", "kind": "generic", "service": "web-shop", "team": "web"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    (
        created.body["id"].as_str().expect("id").to_string(),
        created.body["key"].as_str().expect("key").to_string(),
    )
}

async fn send(caller: &Caller, key: &str, event: Value) -> crate::harness::Answer {
    caller
        .send(
            caller
                .http
                .post(format!("{}/api/v1/integrations/{key}/events", caller.base)),
            Some(event),
        )
        .await
}

async fn an_event_opens_an_incident_that_recovery_resolves(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration(&app).await;
    let a = &app.agent;
    let fired = send(
        a,
        &key,
        json!({"summary": "Checkout 5xx above 5%", "severity": "critical", "dedup_key": "checkout-5xx",
        "source": "prom-1", "timestamp": "2026-11-01T10:00:00Z", "labels": {"env": "prod"}}),
    )
    .await;
    assert_eq!(fired.status, 202, "{}", fired.body);
    assert_eq!(fired.body["outcome"], "opened");
    let incident_id = fired.body["alert"]["incident"].as_str().expect("incident").to_string();
    let incident = a.get(&format!("/api/v1/incidents/{incident_id}")).await;
    let incident = incident.ok().clone();
    assert_eq!(incident["source"], "monitoring");
    assert_eq!(incident["channel"], "event_integration");
    assert_eq!(incident["priority"], "P1", "critical maps to impact 1 x urgency 1");
    assert_eq!(incident["service"], "web-shop");
    assert_eq!(incident["team"], "web");
    assert_eq!(
        incident["owner"],
        json!(app.admin.id),
        "an owner from the start: the integration's creator for now"
    );
    assert!(
        incident["title"]
            .as_str()
            .is_some_and(|t| t.contains("Checkout 5xx") && t.contains("env=prod"))
    );
    assert_eq!(incident["observed_at"], "2026-11-01T10:00:00Z");

    for _ in 0..3 {
        let repeat = send(
            a,
            &key,
            json!({"summary": "Checkout 5xx above 5%", "severity": "critical", "dedup_key": "checkout-5xx"}),
        )
        .await;
        assert_eq!(repeat.body["outcome"], "repeat", "{}", repeat.body);
    }
    let alerts = a.get("/api/v1/alerts?dedup_key=checkout-5xx").await;
    let alerts = alerts.ok()["items"].as_array().expect("items").clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["count"], 4);
    assert_eq!(alerts[0]["status"], "triggered");
    let listed = a.get("/api/v1/incidents").await;
    assert_eq!(
        listed.ok()["items"].as_array().map(Vec::len),
        Some(1),
        "repeats open nothing"
    );

    let acked = send(a, &key, json!({"dedup_key": "checkout-5xx", "status": "acknowledged"})).await;
    assert_eq!(acked.body["outcome"], "acknowledged");
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["state"],
        "accepted"
    );
    let recovered = send(a, &key, json!({"dedup_key": "checkout-5xx", "status": "resolved"})).await;
    assert_eq!(recovered.body["outcome"], "recovered");
    let resolved = a.get(&format!("/api/v1/incidents/{incident_id}")).await;
    let resolved = resolved.ok().clone();
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolution"]["code"], "recovered (monitoring)");
    assert_eq!(resolved["resolution"]["automated"], true);
    let timeline = a.get(&format!("/api/v1/incidents/{incident_id}/timeline")).await;
    let kinds: Vec<String> = timeline.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "alert_attached",
            "accepted",
            "alert_recovered",
            "resolved"
        ]
    );
    assert_eq!(
        timeline.body["items"][0]["occurred_at"], "2026-11-01T10:00:00Z",
        "the event's start is the claimed time"
    );

    let ignored = send(a, &key, json!({"dedup_key": "never-seen", "status": "resolved"})).await;
    assert_eq!(ignored.status, 202);
    assert_eq!(ignored.body["outcome"], "ignored");
    let again = send(
        a,
        &key,
        json!({"summary": "Checkout 5xx again", "dedup_key": "checkout-5xx"}),
    )
    .await;
    assert_eq!(
        again.body["outcome"], "reopened",
        "a trigger soon after recovery reopens the incident (standard reopen window: an hour)"
    );
    assert_eq!(again.body["alert"]["incident"], json!(incident_id));
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["reopens"],
        1
    );
    let generated = send(a, &key, json!({"summary": "No key given"})).await;
    assert!(
        generated.body["dedup_key"].as_str().is_some_and(|k| !k.is_empty()),
        "a dedup key is generated and returned"
    );
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}/verify")).await.ok()["ok"],
        true
    );
    app.user.get("/api/v1/alerts").await.problem(403);
}

async fn bad_events_are_refused_and_store_nothing(engine: Engine) {
    let app = App::start(engine).await;
    let (id, key) = integration(&app).await;
    let a = &app.agent;
    send(a, "not-a-key", json!({"summary": "x"})).await.problem(404);
    for (event, needle) in [
        (json!({"summary": "x", "severity": "apocalyptic"}), "severity"),
        (json!({"severity": "critical"}), "summary"),
        (json!({"summary": "x", "colour": "red"}), "unknown field"),
        (json!({"summary": "x", "status": "exploded"}), "status"),
        (json!({"summary": "x", "timestamp": "noon"}), "timestamp"),
        (json!({"summary": "x", "dedup_key": ""}), "dedup_key"),
    ] {
        let answer = send(a, &key, event.clone()).await;
        assert!(answer.problem(422).contains(needle), "{event}: {}", answer.body);
    }
    let malformed = a
        .send(
            a.http
                .post(format!("{}/api/v1/integrations/{key}/events", a.base))
                .header("content-type", "application/json")
                .body("{\"summary\":"),
            None,
        )
        .await;
    malformed.problem(400);
    app.admin
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/integrations/{id}"),
            Some(json!({"disabled": true})),
        )
        .await
        .ok();
    send(a, &key, json!({"summary": "x"})).await.problem(403);
    assert_eq!(a.get("/api/v1/alerts").await.ok()["items"], json!([]));
    assert_eq!(a.get("/api/v1/incidents").await.ok()["items"], json!([]));
}

async fn racing_retries_make_one_alert_and_one_incident(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration(&app).await;
    let mut nodes = Vec::new();
    if engine == Engine::Postgres {
        nodes.push(Node::start(&app.db, HttpConfig::default()).await);
    }
    let mut callers = vec![app.agent.clone()];
    callers.extend(nodes.iter().map(|n| app.agent.on(n)));
    let mut tasks = Vec::new();
    for n in 0..24 {
        let caller = callers[n % callers.len()].clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let answer = send(
                &caller,
                &key,
                json!({"summary": "Disk full on db-1", "dedup_key": "disk-db-1"}),
            )
            .await;
            assert_eq!(answer.status, 202, "{}", answer.body);
            answer.body["alert"]["incident"].as_str().map(str::to_string)
        }));
    }
    let mut incidents = HashSet::new();
    for task in tasks {
        incidents.extend(task.await.expect("sender"));
    }
    assert_eq!(
        incidents.len(),
        1,
        "one incident for one alert, however the retries race"
    );
    let alerts = app.agent.get("/api/v1/alerts?dedup_key=disk-db-1").await;
    let alerts = alerts.ok()["items"].as_array().expect("items").clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["count"], 24, "every retry counted");
}

on_both_engines!(
    pagerduty_events_v2_work_unchanged,
    odd_fields_found_by_fuzzing_are_refused_or_cleaned
);

/// Inputs the fuzzing review turned up: NUL in PagerDuty's context fields,
/// over-long fingerprints, NUL in labels, an empty alert name.
async fn odd_fields_found_by_fuzzing_are_refused_or_cleaned(engine: Engine) {
    let app = App::start(engine).await;
    let (_, pd_key) = {
        let created = app
            .admin
            .post("/api/v1/integrations", json!({"name": "PD", "kind": "pagerduty"}))
            .await;
        (
            created.body["id"].clone(),
            created.body["key"].as_str().expect("key").to_string(),
        )
    };
    let nul = enqueue(
        &app.admin,
        json!({"routing_key": pd_key, "event_action": "trigger",
               "payload": {"summary": "s", "source": "h", "severity": "info", "component": "a\0b",
                           "custom_details": {"note": "x\0y"}}}),
    )
    .await;
    assert_eq!(nul.status, 400, "{}", nul.body);
    assert_eq!(nul.body["status"], "invalid event");
    let cleaned = enqueue(
        &app.admin,
        json!({"routing_key": pd_key, "event_action": "trigger", "client_url": "http://x/\0",
               "payload": {"summary": "s", "source": "h", "severity": "info", "custom_details": {"note": "x\0y"}}}),
    )
    .await;
    assert_eq!(
        cleaned.status, 202,
        "NUL in details and links is dropped, not stored: {}",
        cleaned.body
    );

    let am = app
        .admin
        .post("/api/v1/integrations", json!({"name": "AM", "kind": "alertmanager"}))
        .await;
    let am_key = am.body["key"].as_str().expect("key").to_string();
    let post = |body: Value| {
        let admin = app.admin.clone();
        let url = format!("{}/api/v1/integrations/{am_key}/alertmanager", admin.base);
        async move { admin.send(admin.http.post(url), Some(body)).await }
    };
    let long = "f".repeat(300);
    post(notification("4", "firing", "g", &[(long.as_str(), "firing")]))
        .await
        .problem(400);
    let mut with_nul = notification("4", "firing", "g", &[("fp1", "firing")]);
    with_nul["alerts"][0]["labels"]["team"] = json!("a\0b");
    post(with_nul).await.problem(400);
    let mut nameless = notification("4", "firing", "g2", &[("fp2", "firing")]);
    nameless["alerts"][0]["labels"]["alertname"] = json!("");
    nameless["alerts"][0]["annotations"] = json!({});
    let accepted = post(nameless).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let alert = app.agent.get("/api/v1/alerts?dedup_key=fp2").await;
    assert_eq!(
        alert.ok()["items"][0]["summary"],
        "alert",
        "an empty alert name still gives a summary"
    );
}

async fn enqueue(caller: &Caller, event: Value) -> crate::harness::Answer {
    caller
        .send(caller.http.post(format!("{}/v2/enqueue", caller.base)), Some(event))
        .await
}

async fn pagerduty_events_v2_work_unchanged(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration(&app).await;
    let a = &app.agent;
    let trigger = json!({
        "routing_key": key, "event_action": "trigger", "dedup_key": "srv01/mysql",
        "payload": {"summary": "DISK at 99% on prod-datapipe03", "source": "prod-datapipe03.example.com",
                    "severity": "warning", "timestamp": "2015-07-17T08:42:58.315+0000", "component": "mysql",
                    "group": "prod-datapipe", "class": "disk", "custom_details": {"free space": "1%", "load avg": 0.75}},
        "client": "Sample Monitoring Service", "client_url": "https://monitoring.example.com",
        "links": [{"href": "https://example.com/runbook", "text": "runbook"}], "images": [{"src": "https://example.com/g.png"}]
    });
    let accepted = enqueue(a, trigger.clone()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    assert_eq!(
        accepted.body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "srv01/mysql"})
    );
    enqueue(a, trigger).await;
    let alerts = a.get("/api/v1/alerts?dedup_key=srv01/mysql").await;
    let alert = alerts.ok()["items"][0].clone();
    assert_eq!(alert["count"], 2, "the retry is a repeat");
    let incident_id = alert["incident"].as_str().expect("incident").to_string();
    let incident = a.get(&format!("/api/v1/incidents/{incident_id}")).await;
    assert_eq!(incident.ok()["priority"], "P5", "warning maps to impact 3 x urgency 3");
    assert!(
        incident.body["title"]
            .as_str()
            .is_some_and(|t| t.contains("component=mysql"))
    );
    assert_eq!(incident.body["observed_at"], "2015-07-17T08:42:58.315Z");
    let description = incident.body["description"].as_str().unwrap_or_default();
    for shown in [
        "runbook: https://example.com/runbook",
        "Sample Monitoring Service: https://monitoring.example.com",
        "https://example.com/g.png",
        "free space=1%",
    ] {
        assert!(
            description.contains(shown),
            "links, images and custom details are on the incident: {description}"
        );
    }

    let ack = enqueue(
        a,
        json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": "srv01/mysql"}),
    )
    .await;
    assert_eq!(ack.status, 202);
    let resolve = enqueue(
        a,
        json!({"routing_key": key, "event_action": "resolve", "dedup_key": "srv01/mysql",
        "payload": {"summary": "DISK at 99% on prod-datapipe03", "source": "x", "severity": "warning"}}),
    )
    .await;
    assert_eq!(resolve.status, 202, "Alertmanager sends the payload on resolve too");
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["state"],
        "resolved"
    );
    let unknown = enqueue(
        a,
        json!({"routing_key": key, "event_action": "resolve", "dedup_key": "never"}),
    )
    .await;
    assert_eq!(
        unknown.status, 202,
        "an unknown resolve is dropped, and still answered 202"
    );
    let generated = enqueue(
        a,
        json!({"routing_key": key, "event_action": "trigger",
        "payload": {"summary": "no key", "source": "s", "severity": "info"}}),
    )
    .await;
    assert!(generated.body["dedup_key"].as_str().is_some_and(|k| !k.is_empty()));

    for (event, needle) in [
        (
            json!({"routing_key": "short", "event_action": "trigger", "payload": {"summary": "s", "source": "s", "severity": "info"}}),
            "routing_key",
        ),
        (json!({"routing_key": key, "event_action": "explode"}), "event_action"),
        (
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "s"}}),
            "payload.severity",
        ),
        (json!({"routing_key": key, "event_action": "trigger"}), "payload"),
        (json!({"routing_key": key, "event_action": "resolve"}), "dedup_key"),
        (
            json!({"routing_key": key, "event_action": "trigger", "surprise": 1}),
            "unknown field",
        ),
        (
            json!({"routing_key": "A".repeat(32), "event_action": "trigger", "payload": {"summary": "s", "source": "s", "severity": "info"}}),
            "not an integration key",
        ),
    ] {
        let answer = enqueue(a, event.clone()).await;
        assert_eq!(answer.status, 400, "{event}");
        assert_eq!(answer.body["status"], "invalid event");
        let errors = answer.body["errors"].to_string();
        assert!(errors.contains(needle), "{event}: {errors}");
    }
    let broken = a
        .send(
            a.http
                .post(format!("{}/v2/enqueue", a.base))
                .header("content-type", "application/json")
                .body("{\"routing_key\":"),
            None,
        )
        .await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.body["status"], "invalid event");
}

on_both_engines!(an_alertmanager_group_is_one_incident_until_all_its_alerts_recover);

fn notification(version: &str, status: &str, group: &str, alerts: &[(&str, &str)]) -> Value {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(fingerprint, alert_status)| {
            json!({"status": alert_status, "labels": {"alertname": "ProbeFailure", "instance": format!("web-{fingerprint}"), "severity": "critical"},
                   "annotations": {"summary": "Probe failed"}, "startsAt": "2026-11-20T13:08:45.828Z",
                   "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint})
        })
        .collect();
    json!({"version": version, "groupKey": group, "truncatedAlerts": 0, "status": status, "receiver": "keel",
           "groupLabels": {"alertname": "ProbeFailure"}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://alertmanager:9093", "alerts": alerts})
}

async fn an_alertmanager_group_is_one_incident_until_all_its_alerts_recover(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration(&app).await;
    let a = &app.agent;
    let url = format!("{}/api/v1/integrations/{key}/alertmanager", a.base);
    let group = "{}/{severity=\"critical\"}:{alertname=\"ProbeFailure\"}";
    let fired = a
        .send(
            a.http.post(&url),
            Some(notification(
                "4",
                "firing",
                group,
                &[("aaa1", "firing"), ("bbb2", "firing")],
            )),
        )
        .await;
    assert_eq!(fired.status, 200, "{}", fired.body);
    assert_eq!(fired.body["opened"], 1, "two alerts of one group open one incident");
    let alerts = a.get("/api/v1/alerts").await;
    let items = alerts.ok()["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["incident"], items[1]["incident"]);
    let incident_id = items[0]["incident"].as_str().expect("incident").to_string();
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["priority"],
        "P1"
    );

    let half = a
        .send(
            a.http.post(&url),
            Some(notification(
                "4",
                "firing",
                group,
                &[("aaa1", "resolved"), ("bbb2", "firing")],
            )),
        )
        .await;
    assert_eq!(half.status, 200);
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["state"],
        "new",
        "one alert still fires"
    );
    let all = a
        .send(
            a.http.post(&url),
            Some(notification("4", "resolved", group, &[("bbb2", "resolved")])),
        )
        .await;
    assert_eq!(all.status, 200);
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["state"],
        "resolved"
    );

    let grafana = format!("{}/api/v1/integrations/{key}/grafana", a.base);
    let mut from_grafana = notification("1", "firing", "grafana-group", &[("ccc3", "firing")]);
    from_grafana["orgId"] = json!(1);
    from_grafana["title"] = json!("[FIRING:1] ProbeFailure");
    from_grafana["alerts"][0]["values"] = json!({"B": 44.2});
    from_grafana["alerts"][0]["dashboardURL"] = json!("http://grafana/d/1");
    let put = a.send(a.http.put(&grafana), Some(from_grafana)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["opened"], 1);

    a.send(
        a.http.post(&url),
        Some(notification("1", "firing", group, &[("x", "firing")])),
    )
    .await
    .problem(400);
    a.send(
        a.http.post(&url),
        Some(notification("4", "firing", group, &[("x", "exploded")])),
    )
    .await
    .problem(400);
    let mut unknown = notification("4", "firing", group, &[("x", "firing")]);
    unknown["surprise"] = json!(1);
    a.send(a.http.post(&url), Some(unknown)).await.problem(422);
    a.send(
        a.http.post(format!("{}/api/v1/integrations/nope/alertmanager", a.base)),
        Some(notification("4", "firing", group, &[])),
    )
    .await
    .problem(404);
}

on_both_engines!(prometheus_can_push_alerts_straight_to_keel);

async fn prometheus_can_push_alerts_straight_to_keel(engine: Engine) {
    let app = App::start(engine).await;
    let (_, key) = integration(&app).await;
    let a = &app.agent;
    let url = format!("{}/api/v2/alerts", a.base);
    let alert = |instance: &str, ends_at: &str| {
        json!({"labels": {"alertname": "HighLatency", "instance": instance, "severity": "warning"},
               "annotations": {"summary": "p99 above 2s"}, "startsAt": "2026-11-27T05:00:00Z", "endsAt": ends_at,
               "generatorURL": "http://prometheus/graph"})
    };
    let pushed = a
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&json!([
            alert("web-1", "2999-01-01T00:00:00Z"),
            alert("web-2", "2999-01-01T00:00:00Z")
        ]))
        .send()
        .await
        .expect("answer");
    assert_eq!(pushed.status(), 200);
    // Prometheus re-sends active alerts; they are repeats.
    let again = a
        .http
        .post(&url)
        .basic_auth("prometheus", Some(&key))
        .json(&json!([alert("web-1", "2999-01-01T00:00:00Z")]))
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status(), 200, "basic-auth password works too");
    let alerts = a.get("/api/v1/alerts").await;
    let items = alerts.ok()["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 2, "labels identify an alert");
    assert_eq!(
        items[0]["incident"], items[1]["incident"],
        "one alertname, one open incident"
    );
    let incident_id = items[0]["incident"].as_str().expect("incident").to_string();
    let ended = a
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&json!([
            alert("web-1", "2026-11-27T05:10:00Z"),
            alert("web-2", "2026-11-27T05:10:00Z")
        ]))
        .send()
        .await
        .expect("answer");
    assert_eq!(ended.status(), 200);
    assert_eq!(
        a.get(&format!("/api/v1/incidents/{incident_id}")).await.ok()["state"],
        "resolved",
        "an endsAt in the past resolves"
    );

    let missing = a
        .http
        .post(&url)
        .bearer_auth(&key)
        .json(&json!([{"labels": {"instance": "x"}}]))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.expect("text").contains("alertname"));
    assert_eq!(
        a.http
            .post(&url)
            .json(&json!([]))
            .send()
            .await
            .expect("answer")
            .status(),
        401
    );
    assert_eq!(
        a.http
            .post(&url)
            .bearer_auth("nope")
            .json(&json!([]))
            .send()
            .await
            .expect("answer")
            .status(),
        404
    );
}

on_both_engines!(a_key_over_its_rate_gets_429_with_retry_after);

async fn a_key_over_its_rate_gets_429_with_retry_after(engine: Engine) {
    let app = App::start_with(
        engine,
        HttpConfig {
            ingest_rate_per_key: Some(2.0),
            ..HttpConfig::default()
        },
    )
    .await;
    let (_, key) = integration(&app).await;
    let a = &app.agent;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..6 {
        let answer = send(a, &key, json!({"summary": "storm", "dedup_key": format!("storm-{n}")})).await;
        if answer.status == 429 {
            retry_after = answer
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
        statuses.push(answer.status.as_u16());
    }
    assert_eq!(&statuses[..2], [202, 202], "the burst allowance passes");
    assert!(
        statuses.contains(&429),
        "then the sender is told to slow down: {statuses:?}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    let alerts = a.get("/api/v1/alerts?limit=500").await;
    assert_eq!(
        alerts.ok()["items"].as_array().map(Vec::len),
        Some(6 - throttled),
        "a 429 stores nothing"
    );
    let pd = a
        .send(
            a.http.post(format!("{}/v2/enqueue", a.base)),
            Some(json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "s", "severity": "info"}})),
        )
        .await;
    assert_eq!(pd.status, 429, "PagerDuty senders get the same");
    assert!(pd.headers.contains_key("retry-after"));
}
