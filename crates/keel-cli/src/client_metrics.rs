//! `keel metrics`: the practice metrics of a running server for a period,
//! as a table per group (each metric now, in the previous period, and the
//! change), the API's JSON with `--json`, or CSV with `--csv`.

use std::process::ExitCode;

use clap::Args;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use reqwest::Method;
use serde_json::Value;

use crate::client::{Client, Connection, query_string};

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Start of the period (RFC 3339); default: 30 days before --to.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the period, exclusive (RFC 3339); default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// team | service | ci | category | priority | source
    #[arg(long)]
    pub group_by: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub ci: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub priority: Option<String>,
    #[arg(long)]
    pub source: Option<String>,
    /// Print CSV (group, metric, current, count, previous, change).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(args: MetricsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.connection)?;
    let qs = query_string(&[
        ("from", args.from),
        ("to", args.to),
        ("group_by", args.group_by),
        ("team", args.team),
        ("service", args.service),
        ("ci", args.ci),
        ("category", args.category),
        ("priority", args.priority),
        ("source", args.source),
        ("format", args.csv.then(|| "csv".to_string())),
    ]);
    let answer = client
        .call(Method::GET, &format!("/api/v1/metrics{qs}"), None, None)
        .await?;
    match (&answer, args.csv, args.connection.json) {
        (Value::String(csv), true, _) => print!("{csv}"),
        (_, _, true) => println!("{answer}"),
        _ => print_report(&answer),
    }
    Ok(ExitCode::SUCCESS)
}

/// A value for people: seconds as a duration, shares as percentages.
fn shown(metric: &str, value: Option<f64>) -> String {
    let Some(v) = value else { return "—".into() };
    if metric.ends_with("_secs") {
        let secs = v.abs();
        let text = if secs >= 86_400.0 {
            format!("{:.1} d", secs / 86_400.0)
        } else if secs >= 3_600.0 {
            format!("{:.1} h", secs / 3_600.0)
        } else if secs >= 60.0 {
            format!("{:.1} min", secs / 60.0)
        } else {
            format!("{secs:.0} s")
        };
        if v < 0.0 { format!("-{text}") } else { text }
    } else if v.abs() <= 1.0 && !metric.contains("reassignments") && !metric.contains("satisfaction.mean") {
        format!("{:.1} %", v * 100.0)
    } else {
        format!("{v:.2}")
    }
}

fn print_report(report: &Value) {
    println!(
        "Practice metrics {} … {} (previous period from {})",
        report["from"].as_str().unwrap_or(""),
        report["to"].as_str().unwrap_or(""),
        report["previous"]["from"].as_str().unwrap_or("")
    );
    for group in report["groups"].as_array().into_iter().flatten() {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        table.set_header(["metric", "now", "of incidents", "previous", "change"]);
        for (metric, trend) in group["trend"].as_object().into_iter().flatten() {
            table.add_row([
                metric.clone(),
                shown(metric, trend["current"].as_f64()),
                trend["count"].to_string(),
                shown(metric, trend["previous"].as_f64()),
                shown(metric, trend["change"].as_f64()),
            ]);
        }
        let m = &group["metrics"];
        println!(
            "\n{} ({} incidents, {} cancelled)",
            group["group"].as_str().unwrap_or(""),
            m["incidents"],
            m["cancelled"]
        );
        println!("{table}");
    }
}
