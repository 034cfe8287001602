//! The timeline: append-only, hash-chained, with claimed times beside the
//! server's own; the database refuses edits; verification finds tampering.

use serde_json::json;

use crate::harness::{App, Engine};
use crate::on_both_engines;

on_both_engines!(
    entries_chain_and_keep_claimed_times_apart_from_recorded_ones,
    the_database_refuses_updates_and_deletes_of_entries,
    verify_names_the_first_tampered_entry,
    long_timelines_come_in_pages_that_end_user_filters_do_not_cut_short,
);

async fn entries_chain_and_keep_claimed_times_apart_from_recorded_ones(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let inc = a
        .incident(json!({"title": "Storage array degraded", "occurred_at": "2026-11-01T10:00:00Z"}))
        .await;
    let id = inc["id"].as_str().expect("id");
    a.act(
        &inc,
        "accept",
        json!({"started_at": "2026-11-01T10:05:00Z", "completed_at": "2026-11-01T10:06:00Z"}),
    )
    .await
    .ok();
    a.act(&inc, "accept", json!({})).await.problem(409);
    a.post(
        &format!("/api/v1/incidents/{id}/comments"),
        json!({"body": "swapped disk 3", "occurred_at": "2026-11-01T11:00:00Z"}),
    )
    .await
    .ok();
    a.act(
        &inc,
        "hold",
        json!({"reason": "other", "started_at": "2026-11-01T12:00:00Z", "completed_at": "2026-11-01T11:00:00Z"}),
    )
    .await
    .problem(422);
    let timeline = a.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    let items = timeline.ok()["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["prev_hash"], "0".repeat(64));
    for pair in items.windows(2) {
        assert_eq!(
            pair[1]["prev_hash"], pair[0]["hash"],
            "each entry points at its predecessor"
        );
        assert!(pair[1]["recorded_at"].as_str() >= pair[0]["recorded_at"].as_str());
    }
    assert_eq!(items[0]["occurred_at"], "2026-11-01T10:00:00Z");
    assert_eq!(items[1]["started_at"], "2026-11-01T10:05:00Z");
    assert_eq!(items[2]["occurred_at"], "2026-11-01T11:00:00Z");
    assert!(
        items[2]["recorded_at"].as_str().is_some_and(|t| t > "2026-11-27"),
        "recorded_at is the server's clock"
    );
    assert_eq!(items[1]["actor"], json!(app.agent.id));
    let verify = a.get(&format!("/api/v1/incidents/{id}/verify")).await;
    assert_eq!(
        verify.ok().clone(),
        json!({"ok": true, "entries": 3, "first_bad_seq": null})
    );
}

async fn the_database_refuses_updates_and_deletes_of_entries(engine: Engine) {
    let app = App::start(engine).await;
    let inc = app.agent.incident(json!({"title": "Tamper target"})).await;
    let id = inc["id"].as_str().expect("id");
    let update = app
        .db
        .raw(&format!(
            "UPDATE timeline_entries SET actor = 'mallory' WHERE incident_id = '{id}'"
        ))
        .await;
    assert!(update.is_err_and(|e| e.contains("append-only")), "UPDATE is refused");
    let delete = app
        .db
        .raw(&format!("DELETE FROM timeline_entries WHERE incident_id = '{id}'"))
        .await;
    assert!(delete.is_err_and(|e| e.contains("append-only")), "DELETE is refused");
    if engine == Engine::Postgres {
        assert!(
            app.db.raw("TRUNCATE timeline_entries CASCADE").await.is_err(),
            "TRUNCATE is refused"
        );
    }
    let verify = app.agent.get(&format!("/api/v1/incidents/{id}/verify")).await;
    assert_eq!(verify.ok()["ok"], true);
}

/// SQL that lifts the append-only guard, as an attacker with database access could.
pub fn drop_guards(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "DROP TRIGGER timeline_entries_no_update; DROP TRIGGER timeline_entries_no_delete;",
        Engine::Postgres => "DROP TRIGGER timeline_entries_no_update ON timeline_entries;",
    }
}

/// SQL that rewrites one entry's data.
pub fn rewrite_entry(engine: Engine, id: &str, seq: i64) -> String {
    match engine {
        Engine::Sqlite => format!(
            "UPDATE timeline_entries SET data = '{{\"body\":\"nothing happened\",\"visibility\":\"internal\"}}' WHERE incident_id = '{id}' AND seq = {seq}"
        ),
        Engine::Postgres => format!(
            "UPDATE timeline_entries SET data = '{{\"body\":\"nothing happened\",\"visibility\":\"internal\"}}'::jsonb WHERE incident_id = '{id}' AND seq = {seq}"
        ),
    }
}

async fn verify_names_the_first_tampered_entry(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let edited = a.incident(json!({"title": "Edited later"})).await;
    let deleted = a.incident(json!({"title": "Tail deleted"})).await;
    let reordered = a.incident(json!({"title": "Reordered"})).await;
    for inc in [&edited, &deleted, &reordered] {
        let id = inc["id"].as_str().expect("id");
        for n in 0..3 {
            a.post(
                &format!("/api/v1/incidents/{id}/comments"),
                json!({"body": format!("note {n}")}),
            )
            .await
            .ok();
        }
    }
    app.db.raw(drop_guards(engine)).await.expect("drop guards");
    let edited_id = edited["id"].as_str().expect("id");
    app.db.raw(&rewrite_entry(engine, edited_id, 3)).await.expect("edit");
    let deleted_id = deleted["id"].as_str().expect("id");
    app.db
        .raw(&format!(
            "DELETE FROM timeline_entries WHERE incident_id = '{deleted_id}' AND seq = 4"
        ))
        .await
        .expect("delete");
    let reordered_id = reordered["id"].as_str().expect("id");
    app.db
        .raw(&format!(
            "UPDATE timeline_entries SET seq = 99 WHERE incident_id = '{reordered_id}' AND seq = 2;
             UPDATE timeline_entries SET seq = 2 WHERE incident_id = '{reordered_id}' AND seq = 3;
             UPDATE timeline_entries SET seq = 3 WHERE incident_id = '{reordered_id}' AND seq = 99;"
        ))
        .await
        .expect("reorder");
    let report = a.get(&format!("/api/v1/incidents/{edited_id}/verify")).await;
    assert_eq!(report.ok()["ok"], false);
    assert_eq!(report.body["first_bad_seq"], 3);
    let report = a.get(&format!("/api/v1/incidents/{deleted_id}/verify")).await;
    assert_eq!(
        report.ok()["ok"],
        false,
        "a deleted tail is caught against the incident's head"
    );
    let report = a.get(&format!("/api/v1/incidents/{reordered_id}/verify")).await;
    assert_eq!(report.ok()["ok"], false);
    assert_eq!(report.body["first_bad_seq"], 2);
}

async fn long_timelines_come_in_pages_that_end_user_filters_do_not_cut_short(engine: Engine) {
    let app = App::start(engine).await;
    let inc = app.user.incident(json!({"title": "Chatty incident"})).await;
    let id = inc["id"].as_str().expect("id");
    for n in 0..60 {
        let visibility = if n % 2 == 0 { "internal" } else { "public" };
        app.agent
            .post(
                &format!("/api/v1/incidents/{id}/comments"),
                json!({"body": format!("note {n}"), "visibility": visibility}),
            )
            .await
            .ok();
    }
    let mut staff_seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map_or_else(String::new, |c| format!("?cursor={c}"));
        let page = app.agent.get(&format!("/api/v1/incidents/{id}/timeline{query}")).await;
        let page = page.ok().clone();
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 50, "default page size is 50");
        staff_seqs.extend(items.iter().filter_map(|e| e["seq"].as_i64()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(staff_seqs, (1..=61).collect::<Vec<_>>(), "every entry once, in order");
    let mut public_bodies = 0;
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor
            .as_ref()
            .map_or_else(|| "?limit=7".to_string(), |c| format!("?limit=7&cursor={c}"));
        let page = app.user.get(&format!("/api/v1/incidents/{id}/timeline{query}")).await;
        let page = page.ok().clone();
        public_bodies += page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["kind"] == "commented")
            .count();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(
        public_bodies, 30,
        "the reporter pages through all public notes and no internal one"
    );
    app.agent
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=0"))
        .await
        .problem(422);
    app.agent
        .get(&format!("/api/v1/incidents/{id}/timeline?cursor=nope"))
        .await
        .problem(400);
}
