//! `keel bench --page-incidents N`: how long the web pages take to render
//! with N incidents in the database. Incidents are registered straight into
//! the store and mostly taken through to closure as real history is (one in
//! twenty stays open, one in a thousand is major), with
//! ten services and three teams; a person signs in through the real
//! `/login`, then each page is fetched one request at a time and its
//! latency recorded (loopback HTTP included, so it bounds the server-side
//! render time from above). `/healthz` fetched the same way is the baseline.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use keel_domain::catalogue::{Change, Service, Team};
use keel_domain::{Actor, Claimed, Command, Impact, RegistrationInput, Role, Urgency, UserId};
use keel_http::new_id;
use keel_store::{ExecuteRequest, IncidentRef, RegisterRequest, Store};
use serde_json::{Value, json};

const TEAMS: [&str; 3] = ["alpha", "beta", "gamma"];
const REQUESTS_PER_PAGE: usize = 60;

/// Who the benchmark signs in as.
pub struct Person<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

/// Seeds `n` incidents, signs in as `person`, and times every main page.
pub async fn measure(
    store: Arc<dyn Store>,
    matrix: Arc<keel_domain::PriorityMatrix>,
    base: &str,
    person: &Person<'_>,
    n: usize,
    concurrency: usize,
    database_url: Option<&str>,
) -> anyhow::Result<Value> {
    let seeded = Instant::now();
    seed(&store, matrix, person.id, n, concurrency).await?;
    let seed_s = seeded.elapsed().as_secs_f64();
    // PostgreSQL plans from statistics that autovacuum gathers after a bulk
    // change; do now what it would (some servers, like CI's, run without it).
    if let Some(url) = database_url.filter(|u| u.starts_with("postgres")) {
        let pool = sqlx::PgPool::connect(url)
            .await
            .context("connecting for VACUUM ANALYZE")?;
        sqlx::query("VACUUM ANALYZE incidents").execute(&pool).await?;
        pool.close().await;
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = sign_in(&http, base, person.email, person.password).await?;
    let middle = n / 2 + 1;
    let pages = [
        "/healthz".to_string(),
        "/".to_string(),
        "/?state=open&priority=P1".to_string(),
        "/?state=&team=beta".to_string(),
        "/?state=open&q=incident%2012345".to_string(),
        "/?state=&q=incident%2012345".to_string(),
        "/?state=&q=svc-3".to_string(),
        format!("/incidents/INC-{middle}"),
        "/incidents/new".to_string(),
        "/teams/alpha/board".to_string(),
        "/portal".to_string(),
        "/portal/new".to_string(),
        "/status".to_string(),
        "/admin/users".to_string(),
    ];
    let mut results = serde_json::Map::new();
    let mut baseline = None;
    for page in &pages {
        let mut samples = Vec::with_capacity(REQUESTS_PER_PAGE);
        for _ in 0..REQUESTS_PER_PAGE {
            let started = Instant::now();
            let response = http
                .get(format!("{base}{page}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(
                status.is_success(),
                "{page} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        samples.sort_by(f64::total_cmp);
        let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let p50 = pick(0.5);
        let base_p50 = *baseline.get_or_insert(p50);
        results.insert(
            page.clone(),
            json!({"p50_ms": p50, "p99_ms": pick(0.99), "max_ms": pick(1.0), "p50_vs_healthz": p50 / base_p50}),
        );
    }
    Ok(json!({"incidents": n, "seed_s": seed_s, "requests_per_page": REQUESTS_PER_PAGE, "pages": results}))
}

async fn seed(
    store: &Arc<dyn Store>,
    matrix: Arc<keel_domain::PriorityMatrix>,
    user_id: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let teams: Vec<String> = TEAMS.iter().map(ToString::to_string).collect();
    let services: Vec<String> = (0..10).map(|i| format!("svc-{i}")).collect();
    catalogue(store, user_id, &teams, &services, 50).await?;
    let actor = Actor {
        user: UserId::new(user_id),
        role: Role::Agent,
    };
    let store = Arc::clone(store);
    for_each(n, concurrency, move |i| {
        let (store, matrix, actor) = (Arc::clone(&store), Arc::clone(&matrix), actor.clone());
        async move {
            let level = |k: usize| u8::try_from(k % 4 + 1).unwrap_or(3);
            let incident = store
                .register(RegisterRequest {
                    id: new_id(),
                    input: RegistrationInput {
                        title: format!("bench incident {i} on svc-{}", i % 10),
                        description: Some(format!("Generated for the page benchmark, number {i}.")),
                        impact: Impact::try_from(level(i)).ok(),
                        urgency: Urgency::try_from(level(i / 4)).ok(),
                        service: Some(format!("svc-{}", i % 10)),
                        team: Some(TEAMS[i % 3].to_string()),
                        major: i % 1000 == 7,
                        ..RegistrationInput::default()
                    },
                    actor: actor.clone(),
                    claimed: Claimed::default(),
                    matrix: Arc::clone(&matrix),
                    rules: Arc::default(),
                    labels: std::collections::BTreeMap::new(),
                    number: None,
                })
                .await?;
            // Most of an organisation's history is done: 1 in 20 stays
            // open (a third of those accepted), the rest is resolved and
            // mostly closed.
            let steps: &[Command] = match i % 20 {
                0 => &[],
                1 => &[Command::Accept],
                19 => &[Command::Accept, resolve()],
                _ => &[Command::Accept, resolve(), close()],
            };
            for command in steps {
                store
                    .execute(ExecuteRequest {
                        incident: IncidentRef::Id(incident.id.clone()),
                        command: command.clone(),
                        actor: actor.clone(),
                        claimed: Claimed::default(),
                        expected_version: None,
                        matrix: Arc::clone(&matrix),
                    })
                    .await?;
            }
            Ok(())
        }
    })
    .await
}

pub(crate) fn resolve() -> Command {
    Command::Resolve {
        code: "fixed".into(),
        notes: "Fixed for the page benchmark.".into(),
        workaround: None,
        known_solution: false,
        automated: false,
    }
}

pub(crate) fn close() -> Command {
    Command::Close {
        note: None,
        closure: keel_domain::ClosureInput::default(),
    }
}

/// Creates `teams` (with `user_id` as member and, when not 0, a WIP limit on
/// accepted work) and `services` for a benchmark's history.
pub(crate) async fn catalogue(
    store: &Arc<dyn Store>,
    user_id: &str,
    teams: &[String],
    services: &[String],
    accepted_limit: u32,
) -> anyhow::Result<()> {
    for name in teams {
        store
            .change_catalogue(Change::PutTeam(Team {
                id: new_id(),
                name: name.clone(),
                description: None,
                lead: None,
                members: vec![UserId::new(user_id)],
                wip_limits: (accepted_limit > 0)
                    .then(|| ("accepted".to_string(), accepted_limit))
                    .into_iter()
                    .collect(),
            }))
            .await?;
    }
    for name in services {
        store
            .change_catalogue(Change::PutService(Service {
                id: new_id(),
                name: name.clone(),
                team: None,
                criticality: keel_domain::catalogue::Criticality::default(),
                description: None,
            }))
            .await?;
    }
    Ok(())
}

/// Runs `one(i)` for every `i` in `0..n`, `concurrency` tasks at a time
/// (each task takes the next index when it is done with one).
pub(crate) async fn for_each<F, Fut>(n: usize, concurrency: usize, one: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), keel_store::StoreError>> + Send + 'static,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (one, next) = (Arc::clone(&one), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), keel_store::StoreError>(());
                }
                one(i).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Signs in through the login form; returns the session cookie.
pub(crate) async fn sign_in(http: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let form = http.get(format!("{base}/login")).send().await?;
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("keel_login="))
        .and_then(|v| v.split(';').next())
        .context("the login page set no cookie")?
        .to_string();
    let body = form.text().await?;
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker).context("the login page has no CSRF field")? + marker.len();
    let token: String = body[start..].chars().take_while(|c| *c != '"').collect();
    let answer = http
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .form(&[("email", email), ("password", password), ("_csrf", token.as_str())])
        .send()
        .await?;
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("keel_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .with_context(|| format!("signing in failed: {}", answer.status()))
}
