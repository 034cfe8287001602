//! The CLI client for monitoring ingest, through the real binary: an
//! integration with a policy file, the alerts its events make, maintenance
//! windows, key rotation and disabling, and how a refused policy is shown.

use serde_json::{Value, json};

use crate::binary::{Server, cli, cli_json, micros, stdout};

/// Sends one generic event and returns the status and the answer.
async fn send(base: &str, key: &str, event: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/integrations/{key}/events"))
        .json(&event)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_integrations_alerts_and_maintenance_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let secret = "keel_cli_ingest_bootstrap_token_01";
    let server = Server::start(&["--data-dir", data], &[("KEEL_BOOTSTRAP_TOKEN", secret)]).await;
    let base = server.base.clone();

    // A policy the server refuses: the exit is 1 and stderr carries its reason.
    let bad_policy = dir.path().join("bad-policy.json");
    std::fs::write(
        &bad_policy,
        json!({"rules": [{"name": "by colour", "when": {"colour": "red"}, "set": {"category": "paint"}}]}).to_string(),
    )
    .expect("write policy");
    let refused = cli(
        &base,
        secret,
        &[
            "integration",
            "create",
            "--name",
            "Refused",
            "--kind",
            "generic",
            "--policy-file",
            bad_policy.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("422") && stderr.contains("unknown field \"colour\""),
        "the server's message is shown: {stderr}"
    );
    let listed = cli_json(&base, secret, &["integration", "list"]);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0), "nothing was created");

    // A generic integration whose policy classifies disk alerts as storage.
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"rules": [{"name": "disks", "when": {"summary": "*disk*"}, "set": {"category": "storage"}}]})
            .to_string(),
    )
    .expect("write policy");
    let created = cli_json(
        &base,
        secret,
        &[
            "integration",
            "create",
            "--name",
            "Nagios",
            "--kind",
            "generic",
            "--service",
            "storage",
            "--policy-file",
            policy.to_str().expect("utf-8 path"),
        ],
    );
    let id = created["id"].as_str().expect("id").to_string();
    let key = created["key"].as_str().expect("the key, once").to_string();
    assert_eq!(created["policy"]["rules"][0]["set"]["category"], "storage");

    // The table form shows the key and where a sender of its kind posts.
    let paging = stdout(&cli(
        &base,
        secret,
        &["integration", "create", "--name", "Pager", "--kind", "pagerduty"],
    ));
    assert!(
        paging.contains("shown only this once") && paging.contains(&format!("{base}/v2/enqueue")),
        "{paging}"
    );
    let table = stdout(&cli(&base, secret, &["integration", "list"]));
    assert!(
        table.contains("Nagios") && table.contains("Pager") && table.contains(&id),
        "{table}"
    );
    assert!(!table.contains(&key), "the key is never shown again: {table}");

    // An event opens an incident the policy classified; the CLI lists its alert.
    let (status, accepted) = send(
        &base,
        &key,
        json!({"dedup_key": "db1-disk", "summary": "disk full on db1"}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let incident = accepted["alert"]["incident"].as_str().expect("an incident").to_string();
    let alerts = cli_json(&base, secret, &["alert", "list", "--dedup-key", "db1-disk"]);
    assert_eq!(alerts["items"].as_array().map(Vec::len), Some(1), "{alerts}");
    assert_eq!(alerts["items"][0]["incident"], json!(incident));
    assert_eq!(alerts["items"][0]["status"], "triggered");
    assert_eq!(alerts["items"][0]["service"], "storage");
    let shown = cli_json(&base, secret, &["incident", "show", &incident]);
    assert_eq!(shown["category"], "storage", "the policy's rule classified it");
    let number = format!("INC-{}", shown["number"]);
    let by_number = cli_json(&base, secret, &["alert", "list", "--incident", &number]);
    assert_eq!(by_number["items"][0]["dedup_key"], "db1-disk", "{by_number}");
    let table = stdout(&cli(&base, secret, &["alert", "list", "--status", "triggered"]));
    assert!(
        table.contains("DEDUP KEY") && table.contains("db1-disk") && table.contains(&incident),
        "{table}"
    );

    // A maintenance window for an hour, active now; alerts are kept without an incident.
    let window = cli_json(
        &base,
        secret,
        &[
            "maintenance",
            "create",
            "--service",
            "storage",
            "--for",
            "1h",
            "--reason",
            "disk swap",
        ],
    );
    assert_eq!(window["active"], true, "{window}");
    let length = micros(&window["ends_at"]) - micros(&window["starts_at"]);
    assert!(
        (3_590_000_000..=3_610_000_000).contains(&length),
        "--for 1h lasts an hour: {window}"
    );
    let window_id = window["id"].as_str().expect("id").to_string();
    let windows = cli_json(&base, secret, &["maintenance", "list"]);
    let listed = windows["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|w| w["id"] == json!(window_id))
        .expect("the window is listed");
    assert_eq!(listed["active"], true);
    assert_eq!(listed["reason"], "disk swap");
    let (status, suppressed) = send(&base, &key, json!({"dedup_key": "db2-cpu", "summary": "CPU hot"})).await;
    assert_eq!(status, 202);
    assert_eq!(suppressed["outcome"], "suppressed", "{suppressed}");
    let alerts = cli_json(&base, secret, &["alert", "list", "--dedup-key", "db2-cpu"]);
    assert_eq!(alerts["items"][0]["incident"], Value::Null);
    stdout(&cli(&base, secret, &["maintenance", "delete", &window_id]));
    let windows = cli_json(&base, secret, &["maintenance", "list", "--include-past"]);
    assert_eq!(windows["items"].as_array().map(Vec::len), Some(0), "{windows}");
    let gone = cli(&base, secret, &["maintenance", "delete", &window_id]);
    assert_eq!(gone.status.code(), Some(1), "deleting it again is a 404");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"));

    // Rotation: a new key; the old one is unknown at once.
    let rotated = cli_json(&base, secret, &["integration", "rotate", &id]);
    let new_key = rotated["key"].as_str().expect("the new key").to_string();
    assert_ne!(new_key, key);
    let event = json!({"dedup_key": "db3-disk", "summary": "disk slow on db3"});
    assert_eq!(send(&base, &key, event.clone()).await.0, 404, "the old key is gone");
    assert_eq!(send(&base, &new_key, event.clone()).await.0, 202);

    // Disabled: the key is refused until enabled again.
    let disabled = cli_json(&base, secret, &["integration", "disable", &id]);
    assert_eq!(disabled["disabled"], true);
    let (status, problem) = send(&base, &new_key, event.clone()).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(
        cli_json(&base, secret, &["integration", "enable", &id])["disabled"],
        false
    );
    assert_eq!(send(&base, &new_key, event).await.0, 202);

    // Update and set-policy are PATCHes; an empty string clears.
    let updated = cli_json(
        &base,
        secret,
        &[
            "integration",
            "update",
            &id,
            "--team",
            "storage-team",
            "--signing-secret",
            "a-shared-secret-of-some-length",
        ],
    );
    assert_eq!(updated["team"], "storage-team");
    assert_eq!(updated["signing_secret_set"], true);
    let cleared = cli_json(
        &base,
        secret,
        &["integration", "update", &id, "--team", "", "--clear-signing-secret"],
    );
    assert!(cleared["team"].is_null(), "{cleared}");
    assert_eq!(cleared["signing_secret_set"], false);
    let refused = cli(
        &base,
        secret,
        &[
            "integration",
            "set-policy",
            &id,
            "--file",
            bad_policy.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown field \"colour\""));
    let annotate = dir.path().join("annotate.json");
    std::fs::write(&annotate, json!({"on_recovery": "annotate"}).to_string()).expect("write policy");
    let replaced = cli_json(
        &base,
        secret,
        &[
            "integration",
            "set-policy",
            &id,
            "--file",
            annotate.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(replaced["policy"]["on_recovery"], "annotate");
    assert!(
        replaced["policy"].get("rules").is_none(),
        "the whole policy is replaced: {replaced}"
    );
    let shown = cli_json(&base, secret, &["integration", "show", &id]);
    assert_eq!(shown["policy"]["on_recovery"], "annotate");
    assert!(shown.get("key").is_none());
}
