//! The test harness: a real keel (router from `keel_http`, store from
//! `keel_store`) on a loopback port, over a fresh database of either engine,
//! driven by a real HTTP client. PostgreSQL is required: when it cannot be
//! reached the tests fail, they never skip.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keel_domain::{PriorityMatrix, Role};
use keel_http::{AppState, HttpConfig, hash_token, new_id, new_token_secret};
use keel_store::{ApiToken, Clock, NewUser, SqliteOptions, Store, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("KEEL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn with_database(url: &str, name: &str) -> String {
    match url.rfind('/') {
        Some(idx) if url[..idx].contains('@') || url[..idx].ends_with(char::is_numeric) => {
            format!("{}/{name}", &url[..idx])
        }
        _ => format!("{url}/{name}"),
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database of one engine; removed when dropped.
pub struct Database {
    pub engine: Engine,
    pub url: String,
    pub name: String,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    pub async fn fresh(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("keel.db").display());
                Database {
                    engine,
                    url,
                    name: String::new(),
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => {
                let admin = postgres_admin_url();
                let name = format!(
                    "keel_test_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required by the test suite and is not reachable at {admin}: {e}. Start it or set KEEL_TEST_POSTGRES_URL.")
                });
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&pool)
                    .await
                    .expect("drop stale database");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                Database {
                    engine,
                    url: with_database(&admin, &name),
                    name,
                    _dir: None,
                }
            }
        }
    }

    /// Runs raw SQL as someone with direct access to the database would.
    pub async fn raw(&self, sql: &str) -> Result<(), String> {
        match self.engine {
            Engine::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://").to_string();
                let sql = sql.to_string();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
                    conn.busy_timeout(std::time::Duration::from_secs(10))
                        .map_err(|e| e.to_string())?;
                    conn.execute_batch(&sql).map_err(|e| e.to_string())
                })
                .await
                .expect("blocking task")
            }
            Engine::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await.map_err(|e| e.to_string())?;
                let result = sqlx::raw_sql(sql)
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                pool.close().await;
                result
            }
        }
    }

    /// Reads one text value with raw SQL.
    pub async fn scalar(&self, sql: &str) -> Option<String> {
        match self.engine {
            Engine::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://").to_string();
                let sql = sql.to_string();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).ok()?;
                    conn.query_row(&sql, [], |row| row.get::<_, Option<String>>(0))
                        .ok()
                        .flatten()
                })
                .await
                .expect("blocking task")
            }
            Engine::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await.ok()?;
                let value: Option<Option<String>> = sqlx::query_scalar(sql).fetch_optional(&pool).await.ok();
                pool.close().await;
                value.flatten()
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.engine != Engine::Postgres {
            return;
        }
        let admin = postgres_admin_url();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await
                    .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}

/// A running keel node.
pub struct Node {
    pub base: String,
    pub store: Arc<dyn Store>,
    /// The node's state, for driving its workers (`keel_http::workers`) from a test.
    pub state: AppState,
    /// The node's clock: the machine's, moved forward by `advance`.
    pub clock: Arc<keel_store::OffsetClock>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Node {
    pub async fn start(db: &Database, config: HttpConfig) -> Node {
        let offset = Arc::new(keel_store::OffsetClock::default());
        let clock: Arc<dyn Clock> = offset.clone();
        let store = keel_store::open(&db.url, Arc::clone(&clock), SqliteOptions::default())
            .await
            .expect("open store");
        let state = AppState::new(Arc::clone(&store), clock, PriorityMatrix::default());
        let router = keel_http::router(state.clone(), &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Node {
            base,
            store,
            state,
            clock: offset,
            server,
        }
    }
}

/// A caller with a token and a role.
#[derive(Clone)]
pub struct Caller {
    pub id: String,
    pub token: String,
    pub base: String,
    pub http: reqwest::Client,
}

/// The answer to a call.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts a problem+json error with this status.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &str {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.body
        );
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "errors are problem+json"
        );
        assert_eq!(self.body["status"], json!(status));
        self.body["detail"].as_str().unwrap_or_default()
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.body
        );
        &self.body
    }
}

impl Caller {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send(
            self.http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(&self.token),
            body,
        )
        .await
    }

    pub async fn send(&self, mut request: reqwest::RequestBuilder, body: Option<Value>) -> Answer {
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Registers an incident and returns its JSON.
    pub async fn incident(&self, body: Value) -> Value {
        let answer = self.post("/api/v1/incidents", body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }

    pub async fn act(&self, id: &Value, action: &str, body: Value) -> Answer {
        let key = id["id"].as_str().expect("incident id").to_string();
        self.post(&format!("/api/v1/incidents/{key}/actions/{action}"), body)
            .await
    }

    /// The same caller talking to another node.
    pub fn on(&self, node: &Node) -> Caller {
        Caller {
            base: node.base.clone(),
            ..self.clone()
        }
    }
}

/// A started app: database, one node, and callers of every role.
pub struct App {
    pub db: Database,
    pub node: Node,
    pub admin: Caller,
    pub agent: Caller,
    pub manager: Caller,
    pub user: Caller,
    pub other_user: Caller,
}

pub async fn make_caller(store: &dyn Store, base: &str, role: Role, name: &str) -> Caller {
    let id = new_id();
    store
        .create_user(NewUser {
            id: id.clone(),
            name: name.into(),
            email: format!("{id}@example.test"),
            role,
            time_zone: None,
            password_hash: None,
            contact_methods: Vec::new(),
        })
        .await
        .expect("create user");
    let secret = new_token_secret();
    store
        .create_token(ApiToken {
            id: new_id(),
            user_id: id.clone(),
            name: "test".into(),
            token_hash: hash_token(&secret),
            created_at: SystemClock.now(),
        })
        .await
        .expect("create token");
    Caller {
        id,
        token: secret,
        base: base.to_string(),
        http: reqwest::Client::new(),
    }
}

impl App {
    pub async fn start(engine: Engine) -> App {
        Self::start_with(engine, HttpConfig::default()).await
    }

    pub async fn start_with(engine: Engine, config: HttpConfig) -> App {
        // RUST_LOG=… shows the server's logs (and hidden 500 details) while debugging a test.
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .try_init();
        }
        let db = Database::fresh(engine).await;
        let node = Node::start(&db, config).await;
        let store = node.store.as_ref();
        App {
            admin: make_caller(store, &node.base, Role::Admin, "Ada Admin").await,
            agent: make_caller(store, &node.base, Role::Agent, "Sam Agent").await,
            manager: make_caller(store, &node.base, Role::IncidentManager, "Maya Manager").await,
            user: make_caller(store, &node.base, Role::EndUser, "Eve User").await,
            other_user: make_caller(store, &node.base, Role::EndUser, "Olly User").await,
            node,
            db,
        }
    }
}

/// Runs one async test body against both engines, as two tests.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::harness::Engine::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::harness::Engine::Postgres).await;
                }
            }
        )*
    };
}
