//! `keel capability`: the capability self-assessment of a running server —
//! the level reached and every criterion with its evidence (`--json`: the
//! API's answer) — and `keel capability set` to record the organisation's
//! part of one criterion (a threshold, or a verdict with a note).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, Connection, query_string};

#[derive(Debug, Args)]
pub struct CapabilityArgs {
    #[command(subcommand)]
    pub command: Option<CapabilityCommand>,
    /// Days of history behind the measured evidence (default 90).
    #[arg(long)]
    pub days: Option<u32>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum CapabilityCommand {
    /// Record the organisation's part of one criterion (replaces what was recorded).
    Set {
        /// The criterion's id (first column of `keel capability`).
        criterion: String,
        /// A measured criterion's threshold (shares 0 to 1, durations in seconds).
        #[arg(long, conflicts_with_all = ["met", "note"])]
        threshold: Option<f64>,
        /// An attested criterion's verdict.
        #[arg(long, value_parser = ["yes", "no"])]
        met: Option<String>,
        /// The evidence, in words.
        #[arg(long)]
        note: Option<String>,
    },
}

pub async fn run(args: CapabilityArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.connection)?;
    let answer = match args.command {
        Some(CapabilityCommand::Set {
            criterion,
            threshold,
            met,
            note,
        }) => {
            let body = json!({"threshold": threshold, "met": met.map(|m| m == "yes"), "note": note});
            client
                .call(
                    Method::PUT,
                    &format!("/api/v1/capability/{criterion}"),
                    Some(body),
                    None,
                )
                .await?
        }
        None => {
            let qs = query_string(&[("days", args.days.map(|d| d.to_string()))]);
            client
                .call(Method::GET, &format!("/api/v1/capability{qs}"), None, None)
                .await?
        }
    };
    if args.connection.json {
        println!("{answer}");
    } else {
        print_assessment(&answer);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_assessment(answer: &Value) {
    println!(
        "Level reached: {} of 5 (evidence from {} to {})",
        answer["level"],
        answer["from"].as_str().unwrap_or("?"),
        answer["to"].as_str().unwrap_or("?")
    );
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["criterion", "level", "met", "evidence", "criterion text"]);
    for c in answer["criteria"].as_array().into_iter().flatten() {
        let evidence = match c["criterion"]["evidence"]["kind"].as_str() {
            Some("attested") => c["setting"]["note"]
                .as_str()
                .unwrap_or("(a person's verdict)")
                .to_string(),
            Some(kind) => {
                let metric = c["criterion"]["evidence"]["metric"].as_str().unwrap_or("");
                let value = c["value"]
                    .as_f64()
                    .map_or_else(|| "no data".to_string(), |v| format!("{v:.3}"));
                match c["threshold"].as_f64() {
                    Some(t) => format!(
                        "{metric} {value} ({} {t})",
                        if kind == "at_least" { ">=" } else { "<=" }
                    ),
                    None => format!("{metric} {value}"),
                }
            }
            None => String::new(),
        };
        let met = match c["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        table.add_row([
            c["criterion"]["id"].as_str().unwrap_or("").to_string(),
            c["criterion"]["level"].to_string(),
            met.to_string(),
            evidence,
            c["criterion"]["text"].as_str().unwrap_or("").to_string(),
        ]);
    }
    println!("{table}");
}
