//! `keel bench`: starts keel in-process on a loopback port (a fresh SQLite
//! database by default, or the PostgreSQL database given), then drives it
//! over real HTTP with concurrent clients. Three phases, each for a fixed
//! time: `GET /healthz` (the baseline: the HTTP stack alone), incident
//! creation, timeline appends (comments spread over the newest 500
//! incidents), and monitoring ingest (generic events with distinct dedup
//! keys, each opening an incident, then over 100 repeating keys).
//! Figures are reported as operations/s and as ratios to the baseline of
//! the same run, because absolute numbers on shared machines are noisy.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use keel_domain::Role;
use keel_http::{hash_token, new_id, new_token_secret};
use keel_store::{ApiToken, Clock, Integration, IntegrationKind, NewUser, SystemClock};
use serde_json::{Value, json};
use std::net::SocketAddr;

use crate::config::{StoreArgs, resolve};
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
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Events per request in the batched ingest phases.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Events per second offered in the paced ingest phase (latency at a
    /// steady rate rather than at saturation).
    #[arg(long, default_value_t = 5000)]
    pub paced_rate: u64,
    /// Run only these phases after the baseline (comma-separated): create,
    /// append, distinct, repeating, distinct-batch, repeating-batch, paced.
    /// Default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Also measure the SLA sweep over this many open incidents (e.g. 100000):
    /// they are registered straight into the store, then swept once (every
    /// timer due) and once more (none due).
    #[arg(long, default_value_t = 0)]
    pub sla_incidents: usize,
    /// Also time every web page with this many incidents in the database
    /// (e.g. 100000), one request at a time.
    #[arg(long, default_value_t = 0)]
    pub page_incidents: usize,
    /// Also time the metrics reports and the dashboard over this many
    /// incidents (e.g. 1000000), after rebuilding and loading their facts.
    #[arg(long, default_value_t = 0)]
    pub metrics_incidents: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

struct Phase {
    name: String,
    /// Requests answered 2xx.
    ops: usize,
    /// Events (or operations) each request carries.
    per_op: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Phase {
    /// Operations (events, for ingest) per second.
    fn rate(&self) -> f64 {
        (self.ops * self.per_op) as f64 / self.seconds
    }
}

/// The process's peak resident memory (VmHWM), in MiB, if the OS tells.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Builds the n-th request of a phase.
type Work = Arc<dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync>;

/// One keep-alive HTTP/1.1 connection per client, driven by hyper directly:
/// a lighter load generator than a full client leaves more of the shared
/// cores to the server under test.
async fn drive(
    name: &str,
    address: SocketAddr,
    concurrency: usize,
    duration: Duration,
    work: Work,
) -> anyhow::Result<Phase> {
    drive_at(name, address, concurrency, duration, None, 1, work).await
}

/// Like [`drive`]; with `rate`, requests are sent on a fixed schedule
/// (`rate` a second over all clients) and latency counts from the moment a
/// request was due, so a slow answer also delays the ones queued behind it.
async fn drive_at(
    name: &str,
    address: SocketAddr,
    concurrency: usize,
    duration: Duration,
    rate: Option<f64>,
    per_op: usize,
    work: Work,
) -> anyhow::Result<Phase> {
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for client in 0..concurrency {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .context("connecting to the server under test")?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let work = Arc::clone(&work);
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            // A histogram (1 µs to 60 s, 3 significant digits) instead of
            // every sample: memory stays flat however long the phase runs.
            let mut latencies = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
            let mut errors = 0usize;
            let mut k = 0usize;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let sent = match rate {
                    Some(rate) => {
                        let due = started + Duration::from_secs_f64((k * concurrency + client) as f64 / rate);
                        k += 1;
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let Ok(response) = sender.send_request(work(n)).await else {
                    errors += 1;
                    break;
                };
                let ok = response.status().is_success();
                let body = response.into_body().collect().await;
                if ok && body.is_ok() {
                    if let Some(histogram) = latencies.as_mut() {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        histogram.saturating_record(micros.max(1));
                    }
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            if let Some(l) = l {
                latencies.add(&l)?;
            }
            errors += e;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let pick = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    Ok(Phase {
        name: name.to_string(),
        ops: usize::try_from(latencies.len()).unwrap_or(usize::MAX),
        per_op,
        errors,
        seconds,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
    })
}

fn request(method: Method, path: &str, auth: Option<&str>, body: Option<&Value>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "bench");
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    let bytes = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(bytes))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let store_args = StoreArgs {
        data_dir: Some(scratch.path().to_path_buf()),
        database_url: args.database_url.clone(),
        config: None,
    };
    let mut settings = resolve(&store_args, Some("127.0.0.1:0".into()), None)?;
    // The bench measures keel, not its rate limit; the SLA sweep is measured on its own.
    settings.ingest_rate_per_key = None;
    settings.workers = false;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&settings, Arc::clone(&clock)).await?;
    let user_id = new_id();
    let email = format!("bench-{user_id}@localhost");
    let password = new_token_secret();
    store
        .create_user(NewUser {
            id: user_id.clone(),
            name: "Bench agent".into(),
            email: email.clone(),
            role: Role::Admin,
            time_zone: None,
            password_hash: Some(keel_http::auth::hash_password(&password).map_err(|e| anyhow::anyhow!(e.detail))?),
            contact_methods: Vec::new(),
        })
        .await?;
    let secret = new_token_secret();
    store
        .create_token(ApiToken {
            id: new_id(),
            user_id: user_id.clone(),
            name: "bench".into(),
            token_hash: hash_token(&secret),
            created_at: clock.now(),
        })
        .await?;
    let engine = store.engine();
    let integration_key = new_token_secret().chars().skip(5).take(32).collect::<String>();
    store
        .create_integration(Integration {
            id: new_id(),
            name: "bench".into(),
            kind: IntegrationKind::Generic,
            service: Some("bench".into()),
            team: None,
            key_hash: hash_token(&integration_key),
            key_hint: integration_key.chars().take(4).collect(),
            disabled: false,
            created_by: user_id.clone(),
            created_at: clock.now(),
            rotated_at: None,
            policy: keel_domain::detection::IngestPolicy::standard(),
            signing_secret: None,
        })
        .await?;
    let sla_figures = if args.sla_incidents > 0 {
        Some(
            sla_sweep(
                Arc::clone(&store),
                Arc::clone(&clock),
                &settings,
                args.sla_incidents,
                args.concurrency,
            )
            .await?,
        )
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let page_store = Arc::clone(&store);
    let metrics_store = Arc::clone(&store);
    let router = app(&settings, store, clock);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let page_figures = if args.page_incidents > 0 {
        Some(
            crate::bench_pages::measure(
                page_store,
                Arc::new(settings.matrix.clone()),
                &format!("http://{address}"),
                &crate::bench_pages::Person {
                    id: &user_id,
                    email: &email,
                    password: &password,
                },
                args.page_incidents,
                args.concurrency,
                args.database_url.as_deref(),
            )
            .await?,
        )
    } else {
        None
    };
    let metrics_figures = if args.metrics_incidents > 0 {
        Some(
            crate::bench_metrics::measure(
                Arc::clone(&metrics_store),
                Arc::new(settings.matrix.clone()),
                &format!("http://{address}"),
                &secret,
                &crate::bench_pages::Person {
                    id: &user_id,
                    email: &email,
                    password: &password,
                },
                args.metrics_incidents,
                args.concurrency,
            )
            .await?,
        )
    } else {
        None
    };
    let duration = Duration::from_secs(args.seconds.max(1));
    let auth: Arc<str> = Arc::from(format!("Bearer {secret}"));
    let c = args.concurrency.max(1);

    let baseline = drive(
        "healthz (baseline)",
        address,
        c,
        duration,
        Arc::new(|_| request(Method::GET, "/healthz", None, None)),
    )
    .await?;

    let mut phases = vec![baseline];
    let wanted = |phase: &str| args.only.is_empty() || args.only.iter().any(|o| o == phase);
    if wanted("create") || wanted("append") {
        phases.extend(record_phases(address, c, duration, &auth).await?);
    }
    // Monitoring ingest: generic events, each with its own dedup key (every
    // one opens an incident) or over 100 keys (repeats only count); one
    // event per request, then batches, then a steady paced rate.
    let path: Arc<str> = Arc::from(format!("/api/v1/integrations/{integration_key}/events"));
    let batch = args.batch.clamp(1, 1000);
    let event = |n: usize, repeating: bool| {
        if repeating {
            json!({"summary": "bench repeating alert", "severity": "warning", "dedup_key": format!("repeat-{}", n % 100)})
        } else {
            json!({"summary": format!("bench alert {n}"), "severity": "warning", "dedup_key": format!("bench-{n}")})
        }
    };
    for (key, repeating, per_request) in [
        ("distinct", false, 1),
        ("repeating", true, 1),
        ("distinct-batch", false, batch),
        ("repeating-batch", true, batch),
    ] {
        if !wanted(key) {
            continue;
        }
        let path = Arc::clone(&path);
        let name = format!(
            "ingest, {}, {}",
            if repeating {
                "100 repeating keys"
            } else {
                "distinct keys"
            },
            if per_request == 1 {
                "1/request".to_string()
            } else {
                format!("{per_request}/request")
            }
        );
        let work: Work = Arc::new(move |n| {
            let body = if per_request == 1 {
                event(n, repeating)
            } else {
                Value::Array(
                    (0..per_request)
                        .map(|i| event(n * per_request + i, repeating))
                        .collect(),
                )
            };
            request(Method::POST, &path, None, Some(&body))
        });
        phases.push(drive_at(&name, address, c, duration, None, per_request, work).await?);
    }
    let paced_path = Arc::clone(&path);
    let paced_rate = args.paced_rate.max(1) as f64;
    if wanted("paced") {
        phases.push(
            drive_at(
                &format!("ingest, distinct keys, paced at {paced_rate:.0}/s"),
                address,
                c,
                duration,
                Some(paced_rate),
                1,
                Arc::new(move |n| request(Method::POST, &paced_path, None, Some(&event(n + 10_000_000, false)))),
            )
            .await?,
        );
    }
    server.abort();
    let peak_rss_mb = peak_rss_mb();

    let base_rate = phases[0].rate();
    if args.json {
        let items: Vec<Value> = phases
            .iter()
            .map(|p| {
                json!({"phase": p.name, "requests": p.ops, "per_request": p.per_op, "errors": p.errors, "ops_per_sec": p.rate(),
                       "ratio_to_baseline": p.rate() / base_rate, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms})
            })
            .collect();
        println!(
            "{}",
            json!({"engine": engine, "concurrency": args.concurrency, "seconds_per_phase": args.seconds,
                   "peak_rss_mb": peak_rss_mb, "phases": items, "sla_sweep": sla_figures, "web_pages": page_figures,
                   "metrics": metrics_figures})
        );
    } else {
        println!(
            "keel bench: engine {engine}, {} clients, {} s per phase (server and clients share this machine)",
            args.concurrency, args.seconds
        );
        println!(
            "{:<48} {:>10} {:>8} {:>12} {:>10} {:>9} {:>9}",
            "phase", "requests", "errors", "ops/s", "x baseline", "p50 ms", "p99 ms"
        );
        for p in &phases {
            println!(
                "{:<48} {:>10} {:>8} {:>12.0} {:>10.3} {:>9.2} {:>9.2}",
                p.name,
                p.ops,
                p.errors,
                p.rate(),
                p.rate() / base_rate,
                p.p50_ms,
                p.p99_ms
            );
        }
        if let Some(rss) = peak_rss_mb {
            println!("peak RSS of the process (server and clients): {rss:.0} MiB");
        }
        if let Some(sla) = &sla_figures {
            let f = |key: &str| sla[key].as_f64().unwrap_or_default();
            println!(
                "SLA sweep over {} open incidents (registered at {:.0}/s): every timer due {:.2} s ({:.0} incidents/s), \
                 then nothing due {:.2} ms",
                sla["incidents"],
                f("registered_per_sec"),
                f("first_sweep_s"),
                f("first_sweep_per_sec"),
                f("idle_sweep_ms")
            );
        }
        if let Some(m) = &metrics_figures {
            let f = |key: &str| m[key].as_f64().unwrap_or_default();
            println!(
                "Metrics over {} incidents (seeded in {:.1} s): rebuild {:.1} s, a node's load {:.2} s, \
                 first report {:.2} s; {} requests each, one at a time:",
                m["incidents"],
                f("seed_s"),
                f("rebuild_s"),
                f("load_s"),
                f("first_report_s"),
                m["requests_per_report"]
            );
            println!("{:<80} {:>9} {:>9} {:>12}", "report", "p50 ms", "p99 ms", "p50/healthz");
            if let Some(map) = m["reports"].as_object() {
                for (path, r) in map {
                    let g = |k: &str| r[k].as_f64().unwrap_or_default();
                    println!(
                        "{path:<80} {:>9.1} {:>9.1} {:>12.1}",
                        g("p50_ms"),
                        g("p99_ms"),
                        g("p50_vs_healthz")
                    );
                }
            }
        }
        if let Some(pages) = &page_figures {
            println!(
                "Web pages with {} incidents (seeded in {:.1} s), {} requests each, one at a time:",
                pages["incidents"],
                pages["seed_s"].as_f64().unwrap_or_default(),
                pages["requests_per_page"]
            );
            println!(
                "{:<40} {:>9} {:>9} {:>9} {:>12}",
                "page", "p50 ms", "p99 ms", "max ms", "p50/healthz"
            );
            if let Some(map) = pages["pages"].as_object() {
                for (page, f) in map {
                    let g = |k: &str| f[k].as_f64().unwrap_or_default();
                    println!(
                        "{page:<40} {:>9.2} {:>9.2} {:>9.2} {:>12.1}",
                        g("p50_ms"),
                        g("p99_ms"),
                        g("max_ms"),
                        g("p50_vs_healthz")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The incident phases: creation, then comments over the newest 500.
async fn record_phases(
    address: SocketAddr,
    c: usize,
    duration: Duration,
    auth: &Arc<str>,
) -> anyhow::Result<Vec<Phase>> {
    let create_auth = Arc::clone(auth);
    let create = drive(
        "create incident",
        address,
        c,
        duration,
        Arc::new(move |n| {
            let body = json!({"title": format!("bench incident {n}"), "impact": 2, "urgency": 2, "service": "bench"});
            request(Method::POST, "/api/v1/incidents", Some(&create_auth), Some(&body))
        }),
    )
    .await?;

    let page: Value = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/incidents?limit=500"))
        .header("Authorization", auth.as_ref())
        .send()
        .await?
        .json()
        .await?;
    let ids: Arc<Vec<String>> = Arc::new(
        page.get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.get("id")?.as_str().map(str::to_string))
            .collect(),
    );
    anyhow::ensure!(
        !ids.is_empty(),
        "the create phase stored no incident; is the server healthy?"
    );
    let append_auth = Arc::clone(auth);
    let append = drive(
        "append timeline entry",
        address,
        c,
        duration,
        Arc::new(move |n| {
            let path = format!("/api/v1/incidents/{}/comments", ids[n % ids.len()]);
            request(
                Method::POST,
                &path,
                Some(&append_auth),
                Some(&json!({"body": format!("bench note {n}")})),
            )
        }),
    )
    .await?;

    Ok(vec![create, append])
}

/// Registers `n` open incidents under an SLA policy straight into the store,
/// then times the sweep with every timer due, and again with none due.
async fn sla_sweep(
    store: Arc<dyn keel_store::Store>,
    clock: Arc<dyn Clock>,
    settings: &crate::config::Settings,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Value> {
    use keel_domain::catalogue::{Change, SlaPolicyDoc};
    use keel_domain::sla::SlaPolicySpec;
    let spec: SlaPolicySpec = serde_json::from_value(json!({
        "targets": {"P1": {"response": "15m", "resolution": "4h"}, "P2": {"response": "30m", "resolution": "8h"},
                    "P3": {"response": "1h", "resolution": "24h"}, "P4": {"response": "4h", "resolution": "72h"},
                    "P5": {"response": "8h", "resolution": "120h"}}
    }))?;
    store
        .change_catalogue(Change::PutSlaPolicy(SlaPolicyDoc {
            id: new_id(),
            name: "bench".into(),
            service: None,
            spec,
        }))
        .await?;
    let matrix = Arc::new(settings.matrix.clone());
    let actor = keel_domain::Actor {
        user: keel_domain::UserId::new("bench"),
        role: Role::Agent,
    };
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (store, matrix, actor, next) = (
            Arc::clone(&store),
            Arc::clone(&matrix),
            actor.clone(),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), keel_store::StoreError>(());
                }
                let level = u8::try_from(i % 4 + 1).unwrap_or(3);
                store
                    .register(keel_store::RegisterRequest {
                        id: new_id(),
                        input: keel_domain::RegistrationInput {
                            title: format!("sla bench {i}"),
                            impact: keel_domain::Impact::try_from(level).ok(),
                            urgency: keel_domain::Urgency::try_from(level).ok(),
                            ..keel_domain::RegistrationInput::default()
                        },
                        actor: actor.clone(),
                        claimed: keel_domain::Claimed::default(),
                        matrix: Arc::clone(&matrix),
                        rules: Arc::default(),
                        labels: std::collections::BTreeMap::new(),
                        number: None,
                    })
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let registered_per_sec = n as f64 / started.elapsed().as_secs_f64();
    let state = keel_http::AppState::new(store, clock, settings.matrix.clone());
    let started = Instant::now();
    // One call sweeps a bounded number of batches; go on until nothing is due.
    let mut first = keel_store::SweepOutcome::default();
    loop {
        let outcome = keel_http::workers::sweep_once(&state).await?;
        first.examined += outcome.examined;
        first.entries += outcome.entries;
        if outcome.examined == 0 {
            break;
        }
    }
    let first_sweep_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let idle = keel_http::workers::sweep_once(&state).await?;
    let idle_sweep_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(json!({
        "incidents": n,
        "registered_per_sec": registered_per_sec,
        "first_sweep_examined": first.examined,
        "first_sweep_entries": first.entries,
        "first_sweep_s": first_sweep_s,
        "first_sweep_per_sec": first.examined as f64 / first_sweep_s,
        "idle_sweep_examined": idle.examined,
        "idle_sweep_ms": idle_sweep_ms,
    }))
}
