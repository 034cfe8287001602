//! End-to-end browser tests of the web UI: the real `keel serve` binary on a
//! fresh database of each engine, driven by Chromium through Playwright
//! (`e2e/ui.mjs`, run with Node). The flows, the accessibility checks (axe)
//! and the screenshots live in `e2e/`; this file starts the server, hands the
//! script its address and credentials, and fails when the script fails.
//!
//! Needs `/usr/bin/chromium`, Node ≥ 20 and `e2e/node_modules`
//! (`./scripts/test` installs what is missing). PostgreSQL comes from
//! `KEEL_TEST_POSTGRES_URL` like the API suite; the tests fail, never skip,
//! when anything is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole UI script must finish in this time.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

// The API suite's fresh-database helper (SQLite file or a new PostgreSQL
// database, removed when dropped); the rest of that harness is unused here.
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "api/harness.rs"]
mod harness;

use harness::{Database, Engine};

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

/// The repository's root: two levels above this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate lives in <repo>/crates/keel-cli")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `keel serve`; killed when dropped, also when the test panics.
struct Server {
    child: Child,
    base: String,
    logs: tempfile::NamedTempFile,
}

impl Server {
    async fn start(db: &Database, data_dir: &Path, token: &str, password: &str) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let logs = tempfile::NamedTempFile::new().expect("log file");
        let mut command = Command::new(KEEL);
        command
            .arg("serve")
            .arg("--listen")
            .arg(&listen)
            .arg("--database-url")
            .arg(&db.url)
            // Only the printed secrets would go here; keep them private.
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("KEEL_DATABASE_URL")
            .env_remove("KEEL_DATA_DIR")
            .env_remove("KEEL_CONFIG")
            .env_remove("KEEL_LISTEN")
            .env("KEEL_BOOTSTRAP_TOKEN", token)
            .env("KEEL_BOOTSTRAP_PASSWORD", password)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(logs.reopen().expect("log file handle"))
            .stderr(logs.reopen().expect("log file handle"));
        let child = command.spawn().expect("keel serve starts");
        let mut server = Server {
            child,
            base: format!("http://{listen}"),
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", server.base)).await
                && r.status() == 200
            {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "keel serve exited with {status} before it was ready:\n{}",
                    server.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "keel serve did not become ready in 60 s:\n{}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// What the server logged so far.
    fn logs(&self) -> String {
        std::fs::read_to_string(self.logs.path()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped (the Node script on timeout or panic).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `node e2e/ui.mjs` did.
struct ScriptRun {
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

/// Runs the UI script against `server` and waits for it (at most `SCRIPT_TIMEOUT`).
fn run_ui_script(engine: Engine, server: &Server, token: &str, password: &str) -> ScriptRun {
    let root = repo_root();
    let screenshots = root.join("target").join("screenshots").join(engine_name(engine));
    let stdout = tempfile::NamedTempFile::new().expect("stdout file");
    let stderr = tempfile::NamedTempFile::new().expect("stderr file");
    let child = Command::new("node")
        .arg("e2e/ui.mjs")
        .current_dir(&root)
        .env("KEEL_URL", &server.base)
        .env("KEEL_TOKEN", token)
        .env("KEEL_ADMIN_EMAIL", "admin@localhost")
        .env("KEEL_ADMIN_PASSWORD", password)
        .env("KEEL_SCREENSHOTS", &screenshots)
        .env("KEEL_ENGINE", engine_name(engine))
        .env("KEEL_CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(stdout.reopen().expect("stdout handle"))
        .stderr(stderr.reopen().expect("stderr handle"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (Node.js ≥ 20 is needed for the browser tests): {e}"));
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for node") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(child);
    let read = |f: &tempfile::NamedTempFile| std::fs::read_to_string(f.path()).unwrap_or_default();
    ScriptRun {
        success: status.is_some_and(|s| s.success()),
        status: status.map_or_else(
            || format!("killed after {} s", SCRIPT_TIMEOUT.as_secs()),
            |s| s.to_string(),
        ),
        stdout: read(&stdout),
        stderr: read(&stderr),
    }
}

/// Fails early, with the fix, when the browser or the Node packages are missing.
fn check_prerequisites() {
    let root = repo_root();
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run ./scripts/test, or apt-get install chromium chromium-driver"
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            root.join("e2e/node_modules").join(package).exists(),
            "e2e/node_modules/{package} is missing: run ./scripts/test, or npm ci --prefix e2e"
        );
    }
}

async fn web_ui_flows_work_in_chromium(engine: Engine) {
    check_prerequisites();
    use rand::distr::{Alphanumeric, SampleString};
    let token = keel_http::new_token_secret();
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let db = Database::fresh(engine).await;
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let server = Server::start(&db, data_dir.path(), &token, &password).await;
    let run = {
        let server = &server;
        let (token, password) = (token.as_str(), password.as_str());
        tokio::task::block_in_place(|| run_ui_script(engine, server, token, password))
    };
    assert!(
        run.success,
        "e2e/ui.mjs failed on {} ({}).\n--- node stdout ---\n{}\n--- node stderr ---\n{}\n--- keel serve log (last 200 lines) ---\n{}",
        engine_name(engine),
        run.status,
        run.stdout,
        run.stderr,
        tail(&server.logs(), 200),
    );
    println!("{}", run.stdout);
    drop(server);
    drop(db);
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_flows_work_in_chromium_on_sqlite() {
    web_ui_flows_work_in_chromium(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_flows_work_in_chromium_on_postgres() {
    web_ui_flows_work_in_chromium(Engine::Postgres).await;
}
