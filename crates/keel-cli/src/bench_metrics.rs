//! `keel bench --metrics-incidents N`: how long `GET /api/v1/metrics` and
//! `/dashboard` (signed in through the real `/login`) take over N incidents. The incidents are written straight
//! into the store, each as one write of a whole history (registered,
//! accepted, resolved, mostly closed; one in twenty reopened once, one in
//! fifty left open) with claimed times spread over the last 365 days, over
//! eight teams and twenty services, under an office-hours SLA policy (so
//! time to resolve in business hours is computed too). Then:
//! * `rebuild_s`: what `keel rebuild-metrics` does — fold every timeline and
//!   keep its facts;
//! * `load_s`: a node's first catch-up (what a node does at start): read
//!   every kept fact into memory;
//! * `first_report_s`: the running server's first report (its own load);
//! * once the catch-up margin has passed, each report is fetched 20 times
//!   one after another over HTTP, beside `/healthz` fetched the same way as
//!   the baseline.

use std::sync::Arc;
use std::time::Instant;

use keel_domain::{Actor, Claimed, Command, Impact, RegistrationInput, Role, Timestamp, Urgency, UserId};
use keel_http::new_id;
use keel_store::{Clock, ExecuteRequest, IncidentRef, RegisterRequest, Store, SystemClock};
use serde_json::{Value, json};

const TEAMS: usize = 8;
const SERVICES: usize = 20;
const REQUESTS: usize = 20;
const DAY: i64 = 24 * 3600 * 1_000_000;
const MINUTE: i64 = 60 * 1_000_000;

/// Seeds `n` incidents, rebuilds and loads their facts, and times the reports.
pub async fn measure(
    store: Arc<dyn Store>,
    matrix: Arc<keel_domain::PriorityMatrix>,
    base: &str,
    token: &str,
    person: &crate::bench_pages::Person<'_>,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let user_id = person.id;
    let seeded = Instant::now();
    seed(&store, matrix, user_id, n, concurrency).await?;
    let seed_s = seeded.elapsed().as_secs_f64();
    let now = SystemClock.now();
    let rebuilt = Instant::now();
    let (_, rebuild) = keel_http::facts::rebuild(&*store, now).await?;
    let rebuild_s = rebuilt.elapsed().as_secs_f64();
    let loaded = Instant::now();
    let load = keel_http::facts::FactsCache::default().warm(&*store, now).await?;
    let load_s = loaded.elapsed().as_secs_f64();
    anyhow::ensure!(load.known >= n, "loaded {} facts of {n} incidents", load.known);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = crate::bench_pages::sign_in(&http, base, person.email, person.password).await?;
    let to = Timestamp::from_micros(now.as_micros());
    let quarter = Timestamp::from_micros(now.as_micros() - 91 * DAY);
    let year = Timestamp::from_micros(now.as_micros() - 182 * DAY);
    let paths = [
        "/healthz".to_string(),
        format!("/api/v1/metrics?from={quarter}&to={to}"),
        format!("/api/v1/metrics?from={year}&to={to}"),
        format!("/api/v1/metrics?from={year}&to={to}&group_by=team"),
        format!("/api/v1/metrics?from={year}&to={to}&group_by=service&priority=P2"),
        format!("/api/v1/metrics?from={quarter}&to={to}&format=csv"),
        "/dashboard".to_string(),
        "/dashboard?by=month".to_string(),
    ];
    // The server's own copy is loaded by its first report (not timed here:
    // `load_s` is that cost).
    let first = Instant::now();
    get(&http, base, token, &cookie, &paths[1]).await?;
    let first_report_s = first.elapsed().as_secs_f64();
    // Each catch-up rereads (ids and versions only) what was written within
    // the margin before the last one; let the bulk load leave that window,
    // as it does seconds after any burst of writes.
    tokio::time::sleep(std::time::Duration::from_micros(
        u64::try_from(keel_http::facts::MARGIN_MICROS).unwrap_or(0) + 1_000_000,
    ))
    .await;
    let mut results = serde_json::Map::new();
    let mut baseline = None;
    for path in &paths {
        let mut samples = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let started = Instant::now();
            get(&http, base, token, &cookie, path).await?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        samples.sort_by(f64::total_cmp);
        let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let p50 = pick(0.5);
        let base_p50 = *baseline.get_or_insert(p50);
        results.insert(
            path.clone(),
            json!({"p50_ms": p50, "p99_ms": pick(0.99), "max_ms": pick(1.0), "p50_vs_healthz": p50 / base_p50}),
        );
    }
    Ok(json!({
        "incidents": n,
        "seed_s": seed_s,
        "rebuild_s": rebuild_s,
        "rebuild_folded": rebuild.folded,
        "load_s": load_s,
        "first_report_s": first_report_s,
        "requests_per_report": REQUESTS,
        "reports": results,
    }))
}

/// Fetches a report: the API with the token, pages with the session cookie.
async fn get(http: &reqwest::Client, base: &str, token: &str, cookie: &str, path: &str) -> anyhow::Result<()> {
    let request = http.get(format!("{base}{path}"));
    let request = if path.starts_with("/api/") {
        request.bearer_auth(token)
    } else {
        request.header("cookie", cookie)
    };
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "{path} answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

async fn seed(
    store: &Arc<dyn Store>,
    matrix: Arc<keel_domain::PriorityMatrix>,
    user_id: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let teams: Vec<String> = (0..TEAMS).map(|t| format!("team-{t}")).collect();
    let services: Vec<String> = (0..SERVICES).map(|s| format!("service-{s}")).collect();
    crate::bench_pages::catalogue(store, user_id, &teams, &services, 0).await?;
    // Office hours, as most organisations' SLAs: business-hours time to
    // resolve is computed for every resolved incident.
    let day = serde_json::json!([["08:00", "18:00"]]);
    let spec = serde_json::from_value(serde_json::json!({
        "calendar": {"time_zone": "Europe/Berlin",
                     "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}},
        "targets": {"P1": {"response": "15m", "resolution": "4h"}, "P2": {"response": "30m", "resolution": "8h"},
                    "P3": {"response": "2h", "resolution": "24h"}, "P4": {"response": "8h", "resolution": "72h"}}
    }))
    .map_err(|e| keel_store::StoreError::Other(e.to_string()))?;
    store
        .change_catalogue(keel_domain::catalogue::Change::PutSlaPolicy(
            keel_domain::catalogue::SlaPolicyDoc {
                id: new_id(),
                name: "Office hours".into(),
                service: None,
                spec,
            },
        ))
        .await?;
    let actor = Actor {
        user: UserId::new(user_id),
        role: Role::Agent,
    };
    let start = SystemClock.now().as_micros() - 365 * DAY;
    let store = Arc::clone(store);
    crate::bench_pages::for_each(n, concurrency, move |i| {
        let (store, matrix, actor) = (Arc::clone(&store), Arc::clone(&matrix), actor.clone());
        async move {
            // A deterministic spread: registration time across the year,
            // acceptance after 1–120 min, resolution after 0.5–48 h.
            let k = i64::try_from(i).unwrap_or(i64::MAX);
            let opened = start + (k.wrapping_mul(7_919) % (358 * DAY / MINUTE)) * MINUTE;
            let accepted = opened + (1 + k % 120) * MINUTE;
            let resolved = accepted + (30 + (k * 37) % (48 * 60)) * MINUTE;
            let claim = |t: i64| Claimed {
                occurred_at: Some(Timestamp::from_micros(t)),
                ..Claimed::default()
            };
            let level = |j: usize| u8::try_from(j % 4 + 1).unwrap_or(3);
            let mut steps = vec![(Command::Accept, accepted)];
            if i % 50 != 0 {
                steps.push((crate::bench_pages::resolve(), resolved));
                if i % 20 == 3 {
                    steps.push((
                        Command::Reopen {
                            reason: "it came back".into(),
                        },
                        resolved + 10 * MINUTE,
                    ));
                    steps.push((crate::bench_pages::resolve(), resolved + 70 * MINUTE));
                }
                if i % 10 != 1 {
                    steps.push((crate::bench_pages::close(), resolved + 2 * DAY));
                }
            }
            let commands = steps
                .into_iter()
                .map(|(command, at)| ExecuteRequest {
                    incident: IncidentRef::Number(0),
                    command,
                    actor: actor.clone(),
                    claimed: claim(at),
                    expected_version: None,
                    matrix: Arc::clone(&matrix),
                })
                .collect();
            store
                .open_with(
                    RegisterRequest {
                        id: new_id(),
                        input: RegistrationInput {
                            title: format!("metrics bench incident {i}"),
                            impact: Impact::try_from(level(i)).ok(),
                            urgency: Urgency::try_from(level(i / 4)).ok(),
                            service: Some(format!("service-{}", i % SERVICES)),
                            team: Some(format!("team-{}", i % TEAMS)),
                            ..RegistrationInput::default()
                        },
                        actor: actor.clone(),
                        claimed: claim(opened),
                        matrix: Arc::clone(&matrix),
                        rules: Arc::default(),
                        labels: std::collections::BTreeMap::new(),
                        number: None,
                    },
                    commands,
                )
                .await?;
            Ok(())
        }
    })
    .await
}
