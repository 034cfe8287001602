//! Listing: filters combine, text search finds, cursors page through
//! everything exactly once.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::harness::{App, Caller, Engine};
use crate::on_both_engines;

on_both_engines!(filters_narrow_the_list, cursor_pagination_visits_every_incident_once);

async fn titles(caller: &Caller, query: &str) -> Vec<String> {
    let answer = caller.get(&format!("/api/v1/incidents?{query}")).await;
    answer.ok()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["title"].as_str().map(str::to_string))
        .collect()
}

async fn filters_narrow_the_list(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let mail = a
        .incident(
            json!({"title": "Mail queue stuck", "service": "mail", "impact": 1, "urgency": 1, "team": "messaging"}),
        )
        .await;
    a.incident(json!({"title": "Mail spam filter 100% CPU", "service": "mail", "impact": 3, "urgency": 3}))
        .await;
    a.incident(json!({"title": "Payroll export_v2 fails", "service": "payroll", "impact": 2, "urgency": 2, "owner": app.manager.id})).await;
    a.act(&mail, "accept", json!({})).await.ok();
    assert_eq!(
        titles(a, "service=mail").await,
        ["Mail spam filter 100% CPU", "Mail queue stuck"]
    );
    assert_eq!(titles(a, "state=accepted").await, ["Mail queue stuck"]);
    assert_eq!(
        titles(a, "state=new,accepted&service=mail&priority=P1").await,
        ["Mail queue stuck"]
    );
    assert_eq!(titles(a, "team=messaging").await, ["Mail queue stuck"]);
    assert_eq!(
        titles(a, &format!("owner={}", app.manager.id)).await,
        ["Payroll export_v2 fails"]
    );
    assert_eq!(titles(a, "owner=me").await.len(), 2);
    assert_eq!(titles(a, "q=PAYROLL").await, ["Payroll export_v2 fails"]);
    assert_eq!(
        titles(a, "q=100%25").await,
        ["Mail spam filter 100% CPU"],
        "% is matched literally"
    );
    assert_eq!(
        titles(a, "q=export_v").await,
        ["Payroll export_v2 fails"],
        "_ is matched literally"
    );
    assert!(titles(a, "q=exportXv").await.is_empty());
    let number = mail["number"].as_i64().expect("number");
    assert_eq!(titles(a, &format!("q=inc-{number}")).await, ["Mail queue stuck"]);
    assert_eq!(titles(a, "major=true").await.len(), 0);
    assert_eq!(titles(a, "major=false").await.len(), 3);
}

async fn cursor_pagination_visits_every_incident_once(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    for n in 0..23 {
        a.incident(json!({"title": format!("incident {n}")})).await;
    }
    let mut seen = HashSet::new();
    let mut numbers = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = cursor
            .as_ref()
            .map_or_else(|| "limit=5".to_string(), |c| format!("limit=5&cursor={c}"));
        let page = a.get(&format!("/api/v1/incidents?{query}")).await;
        let page = page.ok().clone();
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            assert!(
                seen.insert(item["id"].as_str().expect("id").to_string()),
                "no incident twice"
            );
            numbers.push(item["number"].as_i64().expect("number"));
        }
        match page["next_cursor"] {
            Value::String(ref c) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 23);
    assert_eq!(pages, 5);
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "newest first");
}
