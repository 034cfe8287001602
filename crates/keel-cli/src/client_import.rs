//! `keel import FILE`: brings history into a running server. The file is
//! keel-import/1 JSON lines (docs/import-format.md), or with `--from
//! servicenow` the ServiceNow incident audit log (CSV, gzipped or plain),
//! converted on the fly. Lines go to `POST /api/v1/import` in batches, with
//! a progress line and a summary; importing again skips what exists.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::client::{Client, Connection};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportSource {
    /// keel-import/1 JSON lines.
    Jsonl,
    /// The ServiceNow incident audit log (one row per update).
    Servicenow,
    /// Any CSV, described by `--mapping` (docs/import-csv-mapping.md).
    Csv,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (`-` for standard input with JSON lines).
    pub file: PathBuf,
    /// What the file is.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub from: ImportSource,
    /// With `--from csv`: the mapping file (TOML) saying which column holds what.
    #[arg(long, value_name = "PATH")]
    pub mapping: Option<PathBuf>,
    /// Incidents per request (at most 2000; requests stay under 900 KB).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Convert only: print the keel-import/1 lines instead of sending them.
    #[arg(long)]
    pub dry_run: bool,
    /// Import only the first N incidents (by number).
    #[arg(long)]
    pub limit: Option<usize>,
    /// With --from servicenow: after importing, compare every incident keel
    /// holds with the log's own final values (state, reopens, reassignments).
    #[arg(long)]
    pub check: bool,
    /// With --from servicenow: the team that stands for an empty assignment
    /// group (incidents opened without one, and groups cleared), so that moves
    /// to and from it count as reassignments, as in ServiceNow.
    #[arg(long, value_name = "NAME", default_value = crate::import_servicenow::NO_GROUP_TEAM)]
    pub no_group_team: String,
    /// Replay: register the incidents in time order through today's
    /// classification rules and apply today's SLA policies over their
    /// original times, as if the history happened now (see the README).
    #[arg(long)]
    pub replay: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// When a keel-import/1 line's incident was registered (its first event).
fn opened_at(line: &str) -> Option<keel_domain::Timestamp> {
    let record: Value = serde_json::from_str(line).ok()?;
    record["events"][0]["at"].as_str()?.parse().ok()
}

/// Largest request body sent (the server takes 1 MiB).
const MAX_BYTES: usize = 900 * 1024;

/// The lines to import, in order.
fn lines(args: &ImportArgs) -> anyhow::Result<Vec<String>> {
    match args.from {
        ImportSource::Jsonl => {
            let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let file = crate::import_servicenow::open(&args.file)
                    .with_context(|| format!("opening {}", args.file.display()))?;
                Box::new(std::io::BufReader::new(file))
            };
            let mut out = Vec::new();
            for line in reader.lines() {
                let line = line.context("reading the file")?;
                if !line.trim().is_empty() {
                    out.push(line);
                }
            }
            Ok(out)
        }
        ImportSource::Servicenow => Ok(servicenow(args)?.0),
        ImportSource::Csv => {
            let mapping = args.mapping.as_deref().context("--from csv needs --mapping MAP.toml")?;
            let mapping = crate::import_csv::Mapping::load(mapping)?;
            let file = crate::import_servicenow::open(&args.file)
                .with_context(|| format!("opening {}", args.file.display()))?;
            let conversion = crate::import_csv::convert(&mapping, file)?;
            eprintln!("{}", conversion.stats.summary());
            Ok(conversion.records.iter().map(Value::to_string).collect())
        }
    }
}

/// The converted ServiceNow lines and the log's own final values per incident.
fn servicenow(args: &ImportArgs) -> anyhow::Result<(Vec<String>, Vec<crate::import_servicenow::IncidentCheck>)> {
    let file =
        crate::import_servicenow::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let conversion = crate::import_servicenow::convert(file, &args.no_group_team)?;
    let keep = args.limit.unwrap_or(usize::MAX);
    let lines = conversion.records.iter().take(keep).map(Value::to_string).collect();
    let checks = conversion.stats.per_incident.into_iter().take(keep).collect();
    Ok((lines, checks))
}

/// How the incidents keel stored compare with the log's final values: the
/// state, reopens and reassignments each incident has in keel
/// (`GET /api/v1/incidents/{number}`), not the converted events; mismatched
/// reassignments by cause ([`crate::import_servicenow::IncidentCheck::reassignment_gap`]).
async fn check(client: &Client, checks: &[crate::import_servicenow::IncidentCheck]) -> anyhow::Result<Value> {
    let (mut state, mut reopens, mut reassignments, mut seen) = (0_usize, 0_usize, 0_usize, 0_usize);
    let (mut log_reopened, mut keel_reopened, mut log_moves, mut keel_moves) = (0_usize, 0_usize, 0_u64, 0_u64);
    let mut stored = Vec::with_capacity(checks.len());
    for expected in checks {
        let incident = client
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/incidents/{}", expected.number),
                None,
                None,
            )
            .await?;
        let count = |key: &str| incident[key].as_u64().unwrap_or(0);
        seen += 1;
        state += usize::from(incident["state"].as_str() == Some(expected.log_final_state));
        reopens += usize::from(count("reopens") == u64::from(expected.log_reopens));
        reassignments += usize::from(count("reassignments") == u64::from(expected.log_reassignments));
        log_reopened += usize::from(expected.log_reopens > 0);
        keel_reopened += usize::from(count("reopens") > 0);
        log_moves += u64::from(expected.log_reassignments);
        keel_moves += count("reassignments");
        stored.push((expected, u32::try_from(count("reassignments")).unwrap_or(u32::MAX)));
    }
    let gaps = crate::import_servicenow::reassignment_gaps(stored);
    let share = |n: usize| if seen == 0 { 0.0 } else { n as f64 / seen as f64 };
    // The SLA flag: the log's share of incidents that made their SLA, beside
    // keel's resolution-target metric over every incident resolved since the
    // first registration imported (the source's verdicts, where keel
    // announced no targets of its own).
    let flagged: Vec<bool> = checks.iter().filter_map(|c| c.log_made_sla).collect();
    let log_made_sla =
        (!flagged.is_empty()).then(|| flagged.iter().filter(|m| **m).count() as f64 / flagged.len() as f64);
    let metrics = client
        .call(
            reqwest::Method::GET,
            "/api/v1/metrics?from=1970-01-01T00:00:00Z",
            None,
            None,
        )
        .await?;
    let keel_sla = &metrics["groups"][0]["metrics"]["resolution_target_met"];
    Ok(serde_json::json!({
        "incidents": seen,
        "final_state_match": share(state),
        "reopens_match": share(reopens),
        "reassignments_match": share(reassignments),
        "log_reopen_rate": share(log_reopened),
        "keel_reopen_rate": share(keel_reopened),
        "log_mean_reassignments": log_moves as f64 / seen.max(1) as f64,
        "keel_mean_reassignments": keel_moves as f64 / seen.max(1) as f64,
        "reassignment_mismatches": gaps,
        "log_made_sla": log_made_sla,
        "log_made_sla_count": flagged.len(),
        "keel_resolution_target_met": keel_sla["value"],
        "keel_resolution_target_met_count": keel_sla["count"],
    }))
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if args.check && !matches!(args.from, ImportSource::Servicenow) {
        anyhow::bail!("--check compares with the ServiceNow log's own values: use it with --from servicenow");
    }
    if args.no_group_team != crate::import_servicenow::NO_GROUP_TEAM && !matches!(args.from, ImportSource::Servicenow) {
        anyhow::bail!("--no-group-team names ServiceNow's empty assignment group: use it with --from servicenow");
    }
    let (all, checks) = match args.from {
        ImportSource::Servicenow => servicenow(&args)?,
        _ => {
            let mut all = lines(&args)?;
            all.truncate(args.limit.unwrap_or(usize::MAX));
            (all, Vec::new())
        }
    };
    if args.dry_run {
        for line in &all {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let client = Client::new(&args.connection)?;
    let batch = args.batch.clamp(1, 2000);
    let mut tallied = Tally::default();
    let mut done = 0;
    let total = all.len();
    // (line of the file, text); a replay goes in time order.
    let mut ordered: Vec<(usize, &str)> = all.iter().enumerate().map(|(i, l)| (i + 1, l.as_str())).collect();
    if args.replay {
        ordered.sort_by_cached_key(|(line, text)| (opened_at(text), *line));
    }
    let path = if args.replay {
        "/api/v1/import?replay=true"
    } else {
        "/api/v1/import"
    };
    let mut chunk: Vec<(usize, &str)> = Vec::new();
    let mut bytes = 0;
    for &(line, text) in &ordered {
        if !chunk.is_empty() && (chunk.len() >= batch || bytes + text.len() + 1 > MAX_BYTES) {
            let answer = send(&client, path, &chunk).await?;
            tallied.add(&answer, &chunk);
            done += chunk.len();
            progress(done, total, tallied.entries, started);
            chunk.clear();
            bytes = 0;
        }
        bytes += text.len() + 1;
        chunk.push((line, text));
    }
    if !chunk.is_empty() {
        let answer = send(&client, path, &chunk).await?;
        tallied.add(&answer, &chunk);
        done += chunk.len();
        progress(done, total, tallied.entries, started);
    }
    let Tally {
        imported,
        skipped,
        entries,
        sla_entries,
        failed,
    } = tallied;
    eprintln!();
    let seconds = started.elapsed().as_secs_f64();
    let fidelity = if args.check {
        Some(check(&client, &checks).await?)
    } else {
        None
    };
    if args.connection.json {
        println!(
            "{}",
            serde_json::json!({"imported": imported, "skipped": skipped, "entries": entries,
                               "replayed": args.replay, "sla_entries": sla_entries,
                               "failed": failed, "seconds": seconds, "fidelity": fidelity})
        );
    } else {
        if let Some(f) = &fidelity {
            let pct = |k: &str| f[k].as_f64().unwrap_or(0.0) * 100.0;
            println!(
                "Against the log's final values ({} incidents): state {:.2} %, reopens {:.2} %, reassignments {:.2} % match; \
                 reopen rate log {:.3} % / keel {:.3} %; mean reassignments log {:.4} / keel {:.4}",
                f["incidents"],
                pct("final_state_match"),
                pct("reopens_match"),
                pct("reassignments_match"),
                pct("log_reopen_rate"),
                pct("keel_reopen_rate"),
                f["log_mean_reassignments"].as_f64().unwrap_or(0.0),
                f["keel_mean_reassignments"].as_f64().unwrap_or(0.0),
            );
            if let Some(log) = f["log_made_sla"].as_f64() {
                println!(
                    "SLA flag: the log's made_sla {:.2} % of {} incidents / keel's resolution target met {:.2} % of {}",
                    log * 100.0,
                    f["log_made_sla_count"],
                    f["keel_resolution_target_met"].as_f64().unwrap_or(0.0) * 100.0,
                    f["keel_resolution_target_met_count"]
                );
            }
            for (kind, gap) in f["reassignment_mismatches"].as_object().into_iter().flatten() {
                println!(
                    "  reassignments differ in {} incidents: {kind} (e.g. INC{:07})",
                    gap["count"],
                    gap["sample"].as_u64().unwrap_or(0)
                );
            }
        }
        println!(
            "Imported {imported} incidents ({entries} timeline entries), skipped {skipped} already there, \
             {} refused, in {seconds:.1} s ({:.0} entries/s).",
            failed.len(),
            entries as f64 / seconds.max(1e-9)
        );
        if args.replay {
            println!(
                "Replayed through today's classification rules and SLA policies: {sla_entries} SLA entries \
                 (targets, warnings, breaches) written at the instants they would have happened; \
                 see `keel metrics` for the outcome."
            );
        }
        for f in failed.iter().take(20) {
            println!(
                "  line {}: {} {}",
                f["line"],
                f["key"].as_str().unwrap_or(""),
                f["error"].as_str().unwrap_or("")
            );
        }
        if failed.len() > 20 {
            println!("  … and {} more (--json lists all)", failed.len() - 20);
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Sends one batch of lines.
async fn send(client: &Client, path: &str, chunk: &[(usize, &str)]) -> anyhow::Result<Value> {
    let body = chunk.iter().map(|(_, text)| *text).collect::<Vec<_>>().join("\n");
    client.post_text(path, body).await
}

/// What the batches did, together.
#[derive(Default)]
struct Tally {
    imported: u64,
    skipped: u64,
    entries: u64,
    sla_entries: u64,
    failed: Vec<Value>,
}

impl Tally {
    fn add(&mut self, answer: &Value, chunk: &[(usize, &str)]) {
        self.imported += answer["imported"].as_u64().unwrap_or(0);
        self.skipped += answer["skipped"].as_u64().unwrap_or(0);
        self.entries += answer["entries"].as_u64().unwrap_or(0);
        self.sla_entries += answer["sla_entries"].as_u64().unwrap_or(0);
        for f in answer["failed"].as_array().into_iter().flatten() {
            let mut f = f.clone();
            // Lines count from the request; make them lines of the file.
            if let Some(&(line, _)) = f["line"]
                .as_u64()
                .and_then(|l| usize::try_from(l).ok())
                .and_then(|l| chunk.get(l.wrapping_sub(1)))
            {
                f["line"] = Value::from(line);
            }
            self.failed.push(f);
        }
        self.failed.sort_by_key(|f| f["line"].as_u64());
    }
}

fn progress(done: usize, total: usize, entries: u64, started: Instant) {
    let width = 30;
    let filled = (done * width).checked_div(total).unwrap_or(width).min(width);
    eprint!(
        "\r[{}{}] {done}/{total} incidents, {entries} entries, {:.0} entries/s",
        "#".repeat(filled),
        " ".repeat(width - filled),
        entries as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
}
