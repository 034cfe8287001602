//! `keel bench`: starts keel in-process on a loopback port (a fresh SQLite
//! database by default, or the PostgreSQL database given), then drives it
//! over real HTTP with concurrent clients. Three phases, each for a fixed
//! time: `GET /healthz` (the baseline: the HTTP stack alone), incident
//! creation, and timeline appends (comments spread over 1,000 incidents).
//! Figures are reported as operations/s and as ratios to the baseline of
//! the same run, because absolute numbers on shared machines are noisy.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use keel_domain::Role;
use keel_http::{hash_token, new_id, new_token_secret};
use keel_store::{ApiToken, Clock, NewUser, SystemClock};
use serde_json::{json, Value};

use crate::config::{resolve, StoreArgs};
use crate::serve::{app, open_store};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Database to measure; default: a fresh SQLite file in a temporary directory.
    /// A PostgreSQL URL should name an empty, disposable database.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

struct Phase {
    name: &'static str,
    ops: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

type Work = Arc<dyn Fn(reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

async fn drive(name: &'static str, client: &reqwest::Client, concurrency: usize, duration: Duration, work: Work) -> Phase {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        let work = Arc::clone(&work);
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                match work(client.clone(), n).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((mut l, e)) = task.await {
            latencies.append(&mut l);
            errors += e;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    Phase { name, ops: latencies.len(), errors, seconds, p50_ms: pick(0.5), p99_ms: pick(0.99) }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let store_args = StoreArgs {
        data_dir: Some(scratch.path().to_path_buf()),
        database_url: args.database_url.clone(),
        config: None,
    };
    let settings = resolve(&store_args, Some("127.0.0.1:0".into()), None)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&settings, Arc::clone(&clock)).await?;
    let user_id = new_id();
    store
        .create_user(NewUser {
            id: user_id.clone(),
            name: "Bench agent".into(),
            email: format!("bench-{user_id}@localhost"),
            role: Role::Agent,
            time_zone: None,
            password_hash: None,
        })
        .await?;
    let secret = new_token_secret();
    store
        .create_token(ApiToken { id: new_id(), user_id, name: "bench".into(), token_hash: hash_token(&secret), created_at: clock.now() })
        .await?;
    let engine = store.engine();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = app(&settings, store, clock);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let duration = Duration::from_secs(args.seconds.max(1));
    let auth = format!("Bearer {secret}");

    let health_url = format!("{base}/healthz");
    let baseline = drive("healthz (baseline)", &client, args.concurrency, duration, Arc::new(move |c, _| c.get(&health_url))).await;

    let create_url = format!("{base}/api/v1/incidents");
    let create_auth = auth.clone();
    let create = drive(
        "create incident",
        &client,
        args.concurrency,
        duration,
        Arc::new(move |c, n| {
            c.post(&create_url)
                .header("Authorization", &create_auth)
                .json(&json!({"title": format!("bench incident {n}"), "impact": 2, "urgency": 2, "service": "bench"}))
        }),
    )
    .await;

    let page: Value = client
        .get(format!("{base}/api/v1/incidents?limit=500"))
        .header("Authorization", &auth)
        .send()
        .await?
        .json()
        .await?;
    let ids: Arc<Vec<String>> = Arc::new(
        page.get("items").and_then(Value::as_array).into_iter().flatten().filter_map(|i| i.get("id")?.as_str().map(str::to_string)).collect(),
    );
    anyhow::ensure!(!ids.is_empty(), "the create phase stored no incident; is the server healthy?");
    let append_base = base.clone();
    let append_auth = auth.clone();
    let append = drive(
        "append timeline entry",
        &client,
        args.concurrency,
        duration,
        Arc::new(move |c, n| {
            let id = &ids[n % ids.len()];
            c.post(format!("{append_base}/api/v1/incidents/{id}/comments"))
                .header("Authorization", &append_auth)
                .json(&json!({"body": format!("bench note {n}")}))
        }),
    )
    .await;
    server.abort();

    let phases = [baseline, create, append];
    let base_rate = phases[0].rate();
    if args.json {
        let items: Vec<Value> = phases
            .iter()
            .map(|p| {
                json!({"phase": p.name, "ops": p.ops, "errors": p.errors, "ops_per_sec": p.rate(),
                       "ratio_to_baseline": p.rate() / base_rate, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms})
            })
            .collect();
        println!("{}", json!({"engine": engine, "concurrency": args.concurrency, "seconds_per_phase": args.seconds, "phases": items}));
    } else {
        println!("keel bench: engine {engine}, {} clients, {} s per phase (server and clients share this machine)", args.concurrency, args.seconds);
        println!("{:<24} {:>10} {:>8} {:>12} {:>10} {:>9} {:>9}", "phase", "ops", "errors", "ops/s", "x baseline", "p50 ms", "p99 ms");
        for p in &phases {
            println!(
                "{:<24} {:>10} {:>8} {:>12.0} {:>10.3} {:>9.2} {:>9.2}",
                p.name,
                p.ops,
                p.errors,
                p.rate(),
                p.rate() / base_rate,
                p.p50_ms,
                p.p99_ms
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
