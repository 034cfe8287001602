//! Many writers at once: on PostgreSQL through several nodes sharing one
//! database, on SQLite through one node. No entry is lost or forked, every
//! answer is a success or a clear refusal, and each chain stays linear.

use std::collections::HashSet;

use keel_http::HttpConfig;
use serde_json::json;

use crate::harness::{App, Engine, Node};
use crate::on_both_engines;

on_both_engines!(
    concurrent_writers_never_lose_or_fork_an_entry,
    concurrent_registrations_get_distinct_numbers
);

async fn nodes(app: &App) -> Vec<Node> {
    let n_extra = if app.db.engine == Engine::Postgres { 2 } else { 0 };
    let mut nodes = Vec::new();
    for _ in 0..n_extra {
        nodes.push(Node::start(&app.db, HttpConfig::default()).await);
    }
    nodes
}

async fn concurrent_writers_never_lose_or_fork_an_entry(engine: Engine) {
    let app = App::start(engine).await;
    let extra = nodes(&app).await;
    let mut callers = vec![app.agent.clone()];
    callers.extend(extra.iter().map(|node| app.agent.on(node)));
    let inc = app.agent.incident(json!({"title": "Hot incident"})).await;
    let id = inc["id"].as_str().expect("id").to_string();
    let writers = 12;
    let per_writer = 15;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let caller = callers[w % callers.len()].clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for n in 0..per_writer {
                let answer = caller
                    .post(
                        &format!("/api/v1/incidents/{id}/comments"),
                        json!({"body": format!("writer {w} note {n}")}),
                    )
                    .await;
                assert_eq!(answer.status, 201, "{}", answer.body);
                if n == 0 {
                    let accept = caller
                        .post(&format!("/api/v1/incidents/{id}/actions/accept"), json!({}))
                        .await;
                    assert!(matches!(accept.status.as_u16(), 200 | 409), "{}", accept.body);
                    if accept.status == 200 {
                        accepted += 1;
                    }
                }
            }
            accepted
        }));
    }
    let mut n_accepted = 0;
    for task in tasks {
        n_accepted += task.await.expect("writer task");
    }
    assert_eq!(n_accepted, 1, "exactly one of the racing accepts wins");
    let timeline = app
        .agent
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let items = timeline.ok()["items"].as_array().expect("items").clone();
    assert_eq!(
        items.len(),
        1 + writers * per_writer + 1,
        "every acknowledged write is there"
    );
    let seqs: Vec<i64> = items.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=items.len() as i64).collect::<Vec<_>>(),
        "sequence numbers have no gaps or repeats"
    );
    let bodies: HashSet<&str> = items.iter().filter_map(|e| e["data"]["body"].as_str()).collect();
    assert_eq!(bodies.len(), writers * per_writer);
    let verify = app.agent.get(&format!("/api/v1/incidents/{id}/verify")).await;
    assert_eq!(verify.ok()["ok"], true);
}

async fn concurrent_registrations_get_distinct_numbers(engine: Engine) {
    let app = App::start(engine).await;
    let extra = nodes(&app).await;
    let mut callers = vec![app.agent.clone()];
    callers.extend(extra.iter().map(|node| app.agent.on(node)));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let caller = callers[t % callers.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for n in 0..10 {
                numbers.push(
                    caller.incident(json!({"title": format!("burst {t}/{n}")})).await["number"]
                        .as_i64()
                        .expect("number"),
                );
            }
            numbers
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        for number in task.await.expect("task") {
            assert!(all.insert(number), "number {number} given twice");
        }
    }
    assert_eq!(all.len(), 80);
}
