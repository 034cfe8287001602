//! The real `keel` binary: `serve` (bootstrap, restart, SIGTERM, several
//! nodes on one PostgreSQL), the CLI client, and the offline `verify`.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{App, Database, Engine};
use crate::on_both_engines;
use crate::timeline::{drop_guards, rewrite_entry};

pub(crate) const KEEL: &str = env!("CARGO_BIN_EXE_keel");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    logs: tempfile::NamedTempFile,
}

impl Server {
    pub(crate) async fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(KEEL);
        command
            .arg("serve")
            .arg("--listen")
            .arg(&listen)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let logs = tempfile::NamedTempFile::new().expect("log file");
        command.stderr(logs.reopen().expect("log file handle"));
        command
            .env_remove("KEEL_BOOTSTRAP_TOKEN")
            .env_remove("KEEL_DATABASE_URL")
            .env_remove("KEEL_DATA_DIR")
            .env_remove("KEEL_CONFIG");
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command.spawn().expect("keel serve starts");
        let base = format!("http://{listen}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "keel serve did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server { child, base, logs }
    }

    /// What the server logged so far.
    fn logs(&self) -> String {
        std::fs::read_to_string(self.logs.path()).unwrap_or_default()
    }

    /// Kills the process outright, as a crash would.
    pub(crate) fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and returns the exit status and everything printed on stdout.
    pub(crate) fn stop(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let output = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("placeholder"))
            .wait_with_output()
            .expect("wait");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `keel` client against `base` with `token`.
pub(crate) fn cli(base: &str, token: &str, args: &[&str]) -> Output {
    Command::new(KEEL)
        .args(args)
        .env("KEEL_SERVER", base)
        .env("KEEL_TOKEN", token)
        .output()
        .expect("keel runs")
}

/// Runs the client with `--json`; it must succeed and print JSON.
pub(crate) fn cli_json(base: &str, token: &str, args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let output = cli(base, token, &all);
    assert!(
        output.status.success(),
        "keel {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

/// What a successful client run printed.
pub(crate) fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// A timestamp the API printed, in microseconds.
pub(crate) fn micros(text: &Value) -> i64 {
    text.as_str()
        .expect("a timestamp")
        .parse::<keel_domain::Timestamp>()
        .expect("RFC 3339")
        .as_micros()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_bootstraps_an_admin_once_and_survives_restart_and_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("utf-8 path");
    let server = Server::start(&["--data-dir", data], &[]).await;
    let token_file = data_dir.join("admin-token");
    let token = std::fs::read_to_string(&token_file)
        .expect("admin-token written")
        .trim()
        .to_string();
    assert_eq!(
        std::fs::metadata(&token_file).expect("metadata").permissions().mode() & 0o777,
        0o600
    );
    let created = cli_json(
        &server.base,
        &token,
        &[
            "incident",
            "create",
            "--title",
            "Wi-Fi down on floor 3",
            "--impact",
            "2",
            "--urgency",
            "1",
        ],
    );
    assert_eq!(created["priority"], "P2");
    let (clean, stdout) = server.stop();
    assert!(clean, "SIGTERM exits 0");
    assert!(stdout.contains(&token), "the first start prints the token once");

    let again = Server::start(&["--data-dir", data], &[]).await;
    let listed = cli_json(&again.base, &token, &["incident", "list"]);
    assert_eq!(
        listed["items"][0]["title"], "Wi-Fi down on floor 3",
        "data survives a restart"
    );
    let (clean, stdout) = again.stop();
    assert!(clean);
    assert!(!stdout.contains("keel_"), "no second admin token on restart: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_an_incident_from_registration_to_closure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let secret = "keel_cli_test_bootstrap_token_0001";
    let server = Server::start(&["--data-dir", &data], &[("KEEL_BOOTSTRAP_TOKEN", secret)]).await;
    let base = server.base.clone();
    let created = cli_json(
        &base,
        secret,
        &[
            "incident",
            "create",
            "--title",
            "Badge readers offline",
            "--service",
            "facilities",
        ],
    );
    let number = format!("INC-{}", created["number"]);
    for (args, state) in [
        (vec!["incident", "accept", number.as_str()], "accepted"),
        (
            vec!["incident", "hold", number.as_str(), "--reason", "awaiting_supplier"],
            "on_hold",
        ),
        (vec!["incident", "resume", number.as_str()], "accepted"),
        (
            vec![
                "incident",
                "resolve",
                number.as_str(),
                "--code",
                "fixed",
                "--notes",
                "controller rebooted",
            ],
            "resolved",
        ),
        (vec!["incident", "close", number.as_str()], "closed"),
    ] {
        assert_eq!(cli_json(&base, secret, &args)["state"], state, "{args:?}");
    }
    let refused = cli(&base, secret, &["incident", "accept", &number]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("409"),
        "the error names the conflict"
    );
    let table = cli(&base, secret, &["incident", "list", "--state", "closed"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("NUMBER") && table.contains(&number) && table.contains("Badge readers offline"),
        "{table}"
    );
    let timeline = cli(&base, secret, &["incident", "timeline", &number]);
    let timeline = String::from_utf8_lossy(&timeline.stdout);
    assert!(
        timeline.contains("put_on_hold") && timeline.contains("awaiting_supplier"),
        "{timeline}"
    );
    let comment = cli_json(
        &base,
        secret,
        &["incident", "comment", &number, "all good now", "--public"],
    );
    assert_eq!(comment["data"]["visibility"], "public");
    let verified = cli(&base, secret, &["incident", "verify", &number]);
    assert!(verified.status.success());
    let no_token = Command::new(KEEL)
        .args(["incident", "list"])
        .env("KEEL_SERVER", &base)
        .env_remove("KEEL_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(no_token.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("KEEL_TOKEN"));

    // People and swarming from the command line.
    let helper = cli_json(
        &base,
        secret,
        &[
            "user",
            "create",
            "--name",
            "Hal",
            "--email",
            "hal@example.test",
            "--role",
            "agent",
            "--time-zone",
            "Europe/Paris",
            "--contact",
            "sms:+33 6 12 34 56 78",
        ],
    );
    assert_eq!(helper["contact_methods"][0]["kind"], "sms");
    let helper_id = helper["id"].as_str().expect("id");
    let moved = cli_json(
        &base,
        secret,
        &["user", "update", helper_id, "--time-zone", "Asia/Tokyo"],
    );
    assert_eq!(moved["time_zone"], "Asia/Tokyo");
    let open = cli_json(&base, secret, &["incident", "create", "--title", "Printer on fire"]);
    let open_number = format!("INC-{}", open["number"]);
    let joined = cli_json(&base, secret, &["incident", "join", &open_number, "--user", helper_id]);
    assert_eq!(joined["collaborators"], serde_json::json!([helper_id]));
    let mine = cli_json(&base, secret, &["incident", "list", "--involved", helper_id]);
    assert_eq!(
        mine["items"][0]["number"], open["number"],
        "a collaborator's work lists the swarm"
    );
    let bad = cli(&base, secret, &["user", "update", helper_id, "--contact", "nonsense"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_share_one_postgres_database() {
    let db = Database::fresh(Engine::Postgres).await;
    let secret = "keel_multi_node_bootstrap_token_01";
    let envs = [("KEEL_BOOTSTRAP_TOKEN", secret), ("KEEL_DATABASE_URL", db.url.as_str())];
    let (a, b) = tokio::join!(Server::start(&[], &envs), Server::start(&[], &envs));
    assert_eq!(
        db.scalar("SELECT COUNT(*)::text FROM users").await.as_deref(),
        Some("1"),
        "one admin, however many nodes start"
    );
    let created = cli_json(
        &a.base,
        secret,
        &["incident", "create", "--title", "Seen from both nodes"],
    );
    let shown = cli_json(
        &b.base,
        secret,
        &["incident", "show", created["id"].as_str().expect("id")],
    );
    assert_eq!(shown["title"], "Seen from both nodes");
    cli_json(&b.base, secret, &["incident", "accept", &created["number"].to_string()]);
    assert_eq!(
        cli_json(&a.base, secret, &["incident", "show", &created["number"].to_string()])["state"],
        "accepted"
    );
    assert!(a.stop().0 && b.stop().0);
}

on_both_engines!(offline_verify_names_the_broken_incident_and_entry);

async fn offline_verify_names_the_broken_incident_and_entry(engine: Engine) {
    let app = App::start(engine).await;
    let a = &app.agent;
    let good = a.incident(json!({"title": "Untouched"})).await;
    let bad = a.incident(json!({"title": "Rewritten"})).await;
    for inc in [&good, &bad] {
        let id = inc["id"].as_str().expect("id");
        a.post(&format!("/api/v1/incidents/{id}/comments"), json!({"body": "first"}))
            .await
            .ok();
        a.post(&format!("/api/v1/incidents/{id}/comments"), json!({"body": "second"}))
            .await
            .ok();
    }
    let verify = || {
        Command::new(KEEL)
            .args(["verify", "--database-url", &app.db.url])
            .env_remove("KEEL_CONFIG")
            .output()
            .expect("keel verify runs")
    };
    let clean = verify();
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("2 incidents"));
    app.db.raw(drop_guards(engine)).await.expect("drop guards");
    app.db
        .raw(&rewrite_entry(engine, bad["id"].as_str().expect("id"), 2))
        .await
        .expect("tamper");
    let broken = verify();
    assert_eq!(broken.status.code(), Some(1), "a broken chain exits non-zero");
    let report = String::from_utf8_lossy(&broken.stdout);
    assert!(report.contains(&format!("INC-{}", bad["number"])), "{report}");
    assert!(report.contains("first bad entry 2"), "{report}");
    assert!(!report.contains(&format!("INC-{} ", good["number"])), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let server = Server::start(&["--data-dir", &data, "--log-format", "json"], &[]).await;
    let logs = server.logs();
    let (clean, _) = server.stop();
    assert!(clean);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged something");
    for line in lines {
        let record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            record["timestamp"].is_string() && record["level"].is_string() && record["message"].is_string(),
            "{line}"
        );
    }
}

/// Even at debug level the logs name routes, not URIs: integration keys
/// (in paths) and feed tokens (in queries) stay out of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_keep_keys_and_tokens_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let secret = "keel_log_test_bootstrap_token_0001";
    let server = Server::start(
        &["--data-dir", &data, "--log-format", "json"],
        &[("KEEL_BOOTSTRAP_TOKEN", secret), ("RUST_LOG", "debug")],
    )
    .await;
    let http = reqwest::Client::new();
    let integration: Value = http
        .post(format!("{}/api/v1/integrations", server.base))
        .bearer_auth(secret)
        .json(&serde_json::json!({"name": "Prom", "kind": "generic"}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let key = integration["key"].as_str().expect("key").to_string();
    let sent = http
        .post(format!("{}/api/v1/integrations/{key}/events", server.base))
        .json(&serde_json::json!({"summary": "Disk full"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(sent.status(), 202);
    let me: Value = http
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(secret)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let feed = http
        .get(format!(
            "{}/api/v1/users/{}/oncall.ics?token={secret}",
            server.base,
            me["id"].as_str().expect("id")
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(feed.status(), 200);
    let logs = server.logs();
    let (clean, _) = server.stop();
    assert!(clean);
    assert!(
        logs.contains("/api/v1/integrations/{key}/events"),
        "routes are logged: {logs}"
    );
    assert!(!logs.contains(&key), "the integration key leaked into the logs");
    assert!(!logs.contains(secret), "the token leaked into the logs");
}

on_both_engines!(acknowledged_writes_survive_a_crash);

/// `kill -9` right after the last answer: every 2xx must be there after restart.
async fn acknowledged_writes_survive_a_crash(engine: Engine) {
    let db = Database::fresh(engine).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let secret = "keel_crash_test_bootstrap_token_01";
    let envs = [("KEEL_BOOTSTRAP_TOKEN", secret), ("KEEL_DATABASE_URL", db.url.as_str())];
    let server = Server::start(&["--data-dir", &data], &envs).await;
    let http = reqwest::Client::new();
    let mut writers = Vec::new();
    for w in 0..8 {
        let http = http.clone();
        let base = server.base.clone();
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0..25 {
                let created = http
                    .post(format!("{base}/api/v1/incidents"))
                    .bearer_auth(secret)
                    .json(&json!({"title": format!("crash test {w}/{n}")}))
                    .send()
                    .await
                    .expect("answer");
                assert_eq!(created.status(), 201);
                let id = created.json::<Value>().await.expect("json")["id"]
                    .as_str()
                    .expect("id")
                    .to_string();
                let commented = http
                    .post(format!("{base}/api/v1/incidents/{id}/comments"))
                    .bearer_auth(secret)
                    .json(&json!({"body": "acknowledged"}))
                    .send()
                    .await
                    .expect("answer");
                assert_eq!(commented.status(), 201);
                acknowledged.push(id);
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    server.crash();
    let again = Server::start(&["--data-dir", &data], &envs).await;
    for id in &acknowledged {
        let timeline: Value = http
            .get(format!("{}/api/v1/incidents/{id}/timeline", again.base))
            .bearer_auth(secret)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(
            timeline["items"].as_array().map(Vec::len),
            Some(2),
            "incident {id} and its comment survived"
        );
    }
    drop(again);
    let verify = Command::new(KEEL)
        .args(["verify", "--database-url", &db.url])
        .output()
        .expect("keel verify runs");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_database_is_gone() {
    let app = App::start(Engine::Postgres).await;
    let ready = |base: String| async move {
        reqwest::get(format!("{base}/readyz"))
            .await
            .expect("answer")
            .status()
            .as_u16()
    };
    assert_eq!(ready(app.node.base.clone()).await, 200);
    let admin = sqlx::PgPool::connect(&crate::harness::postgres_admin_url())
        .await
        .expect("admin connection");
    sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", app.db.name))
        .execute(&admin)
        .await
        .expect("drop");
    admin.close().await;
    assert_eq!(ready(app.node.base.clone()).await, 503);
    let write = app
        .agent
        .post("/api/v1/incidents", json!({"title": "while the database is gone"}))
        .await;
    assert!(
        matches!(write.status.as_u16(), 401 | 503),
        "an outage is a 5xx the client may retry, never a 2xx: {}",
        write.status
    );
    assert_eq!(
        app.agent.get("/healthz").await.status,
        200,
        "the process itself is alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_fills_an_empty_database_once_with_incidents_in_every_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let secret = "keel_demo_test_bootstrap_token_001";
    let server = Server::start(&["--data-dir", &data, "--demo"], &[("KEEL_BOOTSTRAP_TOKEN", secret)]).await;
    let page = cli_json(&server.base, secret, &["incident", "list", "--limit", "500"]);
    let items = page["items"].as_array().expect("items").clone();
    assert!(items.len() >= 40, "a few weeks of incidents: {}", items.len());
    for state in ["new", "accepted", "resolved", "closed"] {
        assert!(items.iter().any(|i| i["state"] == state), "some incident is {state}");
    }
    let oldest = items.last().expect("an incident");
    let timeline = cli_json(
        &server.base,
        secret,
        &["incident", "timeline", oldest["id"].as_str().expect("id")],
    );
    let first = &timeline["items"][0];
    assert!(
        first["occurred_at"].as_str() < first["recorded_at"].as_str(),
        "history is claimed, not faked: {first}"
    );
    assert!(server.stop().0);
    let again = Server::start(&["--data-dir", &data, "--demo"], &[("KEEL_BOOTSTRAP_TOKEN", secret)]).await;
    let page = cli_json(&again.base, secret, &["incident", "list", "--limit", "500"]);
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(items.len()),
        "a second --demo start adds nothing"
    );
    let verify = Command::new(KEEL)
        .args(["verify", "--data-dir", &data])
        .output()
        .expect("keel verify runs");
    assert!(verify.status.success());
}
