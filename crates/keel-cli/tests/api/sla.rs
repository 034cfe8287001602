//! SLAs end to end: a policy's targets give every incident due times; the
//! sweep (driven here with a clock moved forward, no sleeping) announces
//! targets, warns at risk and records a breach exactly once per target —
//! also when two sweeps race — queues notifications to the owner and the
//! team lead, and the delivery POSTs them to a real local webhook. A
//! priority change re-computes due times, recorded in the timeline.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{App, Engine, Node};
use crate::on_both_engines;

on_both_engines!(sla_clocks_warn_and_breach_once_and_notify_the_owner_and_lead);

const MINUTE: i64 = 60_000_000;

/// A webhook receiver on a loopback port: it keeps what it is sent and
/// answers with the status in `answer`.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>, Arc<Mutex<StatusCode>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let answer = Arc::new(Mutex::new(StatusCode::OK));
    let (kept, status) = (Arc::clone(&received), Arc::clone(&answer));
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = Arc::clone(&kept);
            let status = Arc::clone(&status);
            async move {
                let code = *status.lock().expect("lock");
                if code.is_success() {
                    kept.lock().expect("lock").push(body);
                }
                code
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, received, answer)
}

async fn kinds(app: &App, id: &str) -> Vec<String> {
    app.agent.get(&format!("/api/v1/incidents/{id}/timeline")).await.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect()
}

async fn sla_clocks_warn_and_breach_once_and_notify_the_owner_and_lead(engine: Engine) {
    let app = App::start(engine).await;
    let state = &app.node.state;
    let (url, received, answer) = webhook().await;
    let client = reqwest::Client::new();
    app.admin
        .post("/api/v1/teams", json!({"name": "Web", "lead": app.manager.id}))
        .await;
    let policy = json!({"name": "Standard", "at_risk_percent": 80, "pause_on": ["awaiting_user"],
        "targets": [{"priority": "P5", "response": "10m", "resolution": "100m"},
                    {"priority": "P1", "response": "5m", "resolution": "1h"}]});
    let created = app.admin.post("/api/v1/sla-policies", policy.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    app.admin
        .post("/api/v1/sla-policies", json!({"name": "Second default", "targets": []}))
        .await
        .problem(422);
    app.admin
        .post(
            "/api/v1/sla-policies",
            json!({"name": "Mars", "service": "", "calendar": {"time_zone": "Mars/Base", "hours": {"mon": [["09:00", "17:00"]]}},
                   "targets": []}),
        )
        .await
        .problem(422);
    app.admin
        .post(
            "/api/v1/sla-policies",
            json!({"name": "P9", "targets": [{"priority": "P9", "response": "1m"}]}),
        )
        .await
        .problem(422);

    let incident = app
        .agent
        .incident(json!({"title": "Checkout slow", "team": "Web"}))
        .await;
    let id = incident["id"].as_str().expect("id").to_string();
    assert_eq!(incident["priority"], "P5");
    assert_eq!(incident["sla"]["state"], "within");
    assert!(incident["sla"]["response_due"].is_string(), "{}", incident["sla"]);

    keel_http::workers::sweep_once(state).await.expect("sweep");
    assert_eq!(kinds(&app, &id).await, ["registered", "sla_targets_set"]);

    app.node.clock.advance(9 * MINUTE);
    let swept = keel_http::workers::sweep_once(state).await.expect("sweep");
    assert_eq!((swept.entries, swept.notifications), (1, 1), "{swept:?}");
    assert_eq!(kinds(&app, &id).await.last().map(String::as_str), Some("sla_at_risk"));
    let at_risk = app.agent.get("/api/v1/incidents?sla=at_risk").await;
    assert!(
        at_risk.ok()["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["id"] == json!(id))),
        "the list filters by SLA state"
    );
    let delivered = keel_http::workers::deliver_once(state, &client, &url)
        .await
        .expect("deliver");
    assert_eq!(delivered, 1);
    {
        let got = received.lock().expect("lock");
        assert_eq!(got[0]["kind"], "sla_at_risk");
        assert_eq!(
            got[0]["recipients"],
            json!([app.agent.id, app.manager.id]),
            "owner and team lead"
        );
        assert_eq!(got[0]["data"]["target"], "response");
    }

    app.node.clock.advance(2 * MINUTE);
    let (first, second) = tokio::join!(
        keel_http::workers::sweep_once(state),
        keel_http::workers::sweep_once(state)
    );
    let entries = first.expect("sweep").entries + second.expect("sweep").entries;
    assert_eq!(entries, 1, "two racing sweeps record the breach once");
    let timeline = kinds(&app, &id).await;
    assert_eq!(timeline.iter().filter(|k| *k == "sla_breached").count(), 1);
    let shown = app.agent.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(shown.ok()["sla"]["state"], "breached");
    assert_eq!(shown.body["sla"]["response"]["state"], "breached");

    // The webhook fails: the notification stays queued and is retried later.
    *answer.lock().expect("lock") = StatusCode::SERVICE_UNAVAILABLE;
    assert_eq!(
        keel_http::workers::deliver_once(state, &client, &url)
            .await
            .expect("deliver"),
        0
    );
    *answer.lock().expect("lock") = StatusCode::OK;
    assert_eq!(
        keel_http::workers::deliver_once(state, &client, &url)
            .await
            .expect("deliver"),
        0,
        "not before its retry time"
    );
    app.node.clock.advance(2 * MINUTE);
    assert_eq!(
        keel_http::workers::deliver_once(state, &client, &url)
            .await
            .expect("deliver"),
        1
    );
    assert_eq!(received.lock().expect("lock").len(), 2);

    // Accepting stops the response clock; raising the priority re-computes the resolution target.
    app.agent.act(&incident, "accept", json!({})).await.ok();
    let raised = app
        .agent
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/incidents/{id}"),
            Some(json!({"impact": 1, "urgency": 1})),
        )
        .await;
    assert_eq!(raised.ok()["priority"], "P1");
    keel_http::workers::sweep_once(state).await.expect("sweep");
    let timeline = app.agent.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    let targets: Vec<&Value> = timeline.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["kind"] == "sla_targets_set")
        .collect();
    assert_eq!(
        targets.len(),
        2,
        "the priority change is recorded with its new due times"
    );
    assert_eq!(targets[1]["data"]["priority"], "P1");
    let shown = app.agent.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(shown.ok()["sla"]["response"]["state"], "missed");
    assert_eq!(shown.body["sla"]["resolution"]["target"], "1h");
}

/// Three nodes on one PostgreSQL database sweep the same due timers at the
/// same moment: every warning and breach is recorded once, every
/// notification queued once — and a node started afterwards (a restart)
/// finds nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_sweeping_one_postgres_act_once_per_target() {
    let app = App::start(Engine::Postgres).await;
    let created = app
        .admin
        .post(
            "/api/v1/sla-policies",
            json!({"name": "Tight", "targets": [{"priority": "P5", "response": "10m", "resolution": "20m"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mut ids = Vec::new();
    for n in 0..30 {
        let incident = app.agent.incident(json!({"title": format!("Incident {n}")})).await;
        ids.push(incident["id"].as_str().expect("id").to_string());
    }
    let nodes = vec![
        Node::start(&app.db, keel_http::HttpConfig::default()).await,
        Node::start(&app.db, keel_http::HttpConfig::default()).await,
        Node::start(&app.db, keel_http::HttpConfig::default()).await,
    ];
    for node in &nodes {
        node.clock.advance(25 * MINUTE);
    }
    let (a, b, c) = tokio::join!(
        keel_http::workers::sweep_once(&nodes[0].state),
        keel_http::workers::sweep_once(&nodes[1].state),
        keel_http::workers::sweep_once(&nodes[2].state)
    );
    let outcomes = [a.expect("sweep"), b.expect("sweep"), c.expect("sweep")];
    let notifications: usize = outcomes.iter().map(|o| o.notifications).sum();
    assert_eq!(
        notifications,
        30 * 2,
        "one breach notice per incident and target: {outcomes:?}"
    );
    for id in &ids {
        let kinds = kinds(&app, id).await;
        for kind in ["sla_targets_set", "sla_breached"] {
            let expected = if kind == "sla_breached" { 2 } else { 1 };
            assert_eq!(kinds.iter().filter(|k| *k == kind).count(), expected, "{id}: {kinds:?}");
        }
    }
    drop(nodes);
    let restarted = Node::start(&app.db, keel_http::HttpConfig::default()).await;
    restarted.clock.advance(30 * MINUTE);
    let again = keel_http::workers::sweep_once(&restarted.state).await.expect("sweep");
    assert_eq!((again.entries, again.notifications), (0, 0), "{again:?}");
}
