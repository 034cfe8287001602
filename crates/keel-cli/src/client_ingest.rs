//! The command-line client for monitoring ingest: integrations (the keys
//! monitoring sends events with, and their detection policy), the alerts
//! those events made, and maintenance windows. Same conventions as
//! `client.rs`: one API call per subcommand, a table by default, the API's
//! JSON with `--json`, and the server's problem detail with exit 1 on error.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use keel_domain::Timestamp;
use keel_store::{Clock, SystemClock};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{Client, Connection, encode, put, query_string, show, text};

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Create an integration (admin); prints its key, once, and where to send events.
    Create(IntegrationCreateArgs),
    /// List integrations (admin).
    List(IntegrationListArgs),
    /// Show one integration with its detection policy (admin).
    Show(IntegrationIdArgs),
    /// Change its name, service, team or signing secret (admin).
    Update(IntegrationUpdateArgs),
    /// Replace its detection policy with the one in a JSON file (admin).
    SetPolicy(SetPolicyArgs),
    /// Replace its key; the old key stops working at once (admin).
    Rotate(IntegrationIdArgs),
    /// Refuse events sent with its key (403) until enabled again (admin).
    Disable(IntegrationIdArgs),
    /// Accept events sent with its key again (admin).
    Enable(IntegrationIdArgs),
}

#[derive(Debug, Args)]
pub struct IntegrationCreateArgs {
    #[arg(long)]
    pub name: String,
    /// The format its events come in.
    #[arg(long, value_parser = ["pagerduty", "alertmanager", "grafana", "generic"])]
    pub kind: String,
    /// The service its events are about, unless an event says otherwise.
    #[arg(long)]
    pub service: Option<String>,
    /// The team its incidents go to.
    #[arg(long)]
    pub team: Option<String>,
    /// A JSON file with the detection policy (rules, severity map, windows);
    /// default: the standard policy.
    #[arg(long, value_name = "FILE.json")]
    pub policy_file: Option<String>,
    /// A shared secret (16 to 200 characters) webhooks must be signed with.
    #[arg(long)]
    pub signing_secret: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct IntegrationListArgs {
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct IntegrationIdArgs {
    /// The integration's id.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct IntegrationUpdateArgs {
    /// The integration's id.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The service its events are about; an empty string clears it.
    #[arg(long)]
    pub service: Option<String>,
    /// The team its incidents go to; an empty string clears it.
    #[arg(long)]
    pub team: Option<String>,
    /// A new secret (16 to 200 characters) webhooks must be signed with.
    #[arg(long, conflicts_with = "clear_signing_secret")]
    pub signing_secret: Option<String>,
    /// Accept unsigned webhooks again.
    #[arg(long)]
    pub clear_signing_secret: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct SetPolicyArgs {
    /// The integration's id.
    pub id: String,
    /// A JSON file with the whole new policy; what it leaves out takes the standard values.
    #[arg(long, value_name = "FILE.json")]
    pub file: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// List alerts, newest first.
    List(AlertListArgs),
}

#[derive(Debug, Args)]
pub struct AlertListArgs {
    #[arg(long)]
    pub dedup_key: Option<String>,
    /// Only the alerts of this incident (id, number or INC-number).
    #[arg(long)]
    pub incident: Option<String>,
    #[arg(long, value_parser = ["triggered", "acknowledged", "resolved"])]
    pub status: Option<String>,
    /// 1 to 500 (default 50).
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Plan a window on a service and/or CI: while it is active, their
    /// alerts are stored but open no incident.
    Create(MaintenanceCreateArgs),
    /// List current and future windows, soonest first.
    List(MaintenanceListArgs),
    /// Cancel (delete) a window.
    Delete(MaintenanceIdArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).multiple(true).args(["service", "ci"])))]
#[command(group(ArgGroup::new("end").required(true).args(["ends_at", "duration"])))]
pub struct MaintenanceCreateArgs {
    /// The service under maintenance.
    #[arg(long)]
    pub service: Option<String>,
    /// The configuration item under maintenance.
    #[arg(long)]
    pub ci: Option<String>,
    /// When it starts (RFC 3339); default: now.
    #[arg(long)]
    pub starts_at: Option<String>,
    /// When it ends (RFC 3339).
    #[arg(long)]
    pub ends_at: Option<String>,
    /// How long it lasts from --starts-at (or now): 90s, 30m, 2h, 1d, 1w, 1h30m.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Why: the planned work.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct MaintenanceListArgs {
    /// Include windows that have ended.
    #[arg(long)]
    pub include_past: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct MaintenanceIdArgs {
    /// The window's id.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

/// Parses a duration such as `30m`, `2h`, `1d` or `1h30m` (units s, m, h, d, w).
fn parse_duration(input: &str) -> Result<Duration, String> {
    let wrong = || format!("{input:?} is not a duration like 30m, 2h, 1d or 1h30m");
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in input.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(wrong()),
        };
        let value: u64 = number.parse().map_err(|_| wrong())?;
        total = value
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(wrong)?;
        number.clear();
        any = true;
    }
    if !any || !number.is_empty() {
        return Err(wrong());
    }
    if total == 0 {
        return Err("the duration must be longer than zero".to_string());
    }
    Ok(Duration::from_secs(total))
}

/// `start + duration` in RFC 3339.
fn end_after(start: Timestamp, duration: Duration) -> anyhow::Result<String> {
    let end = i64::try_from(duration.as_micros())
        .ok()
        .and_then(|micros| start.as_micros().checked_add(micros))
        .context("--for is too long")?;
    Ok(Timestamp::from_micros(end).to_string())
}

/// Reads a policy file: it must be JSON; the server checks the rest.
fn read_policy(path: &str) -> anyhow::Result<Value> {
    let content = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    serde_json::from_str(&content).with_context(|| format!("{path} is not JSON"))
}

fn yes(value: &Value, key: &str) -> String {
    if value.get(key).and_then(Value::as_bool) == Some(true) {
        "yes".to_string()
    } else {
        String::new()
    }
}

fn print_integration(integration: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    for key in [
        "name",
        "kind",
        "service",
        "team",
        "key_hint",
        "disabled",
        "signing_secret_set",
        "created_by",
        "created_at",
        "rotated_at",
        "id",
    ] {
        let value = text(integration, key);
        if !value.is_empty() {
            table.add_row(vec![key.to_string(), value]);
        }
    }
    if let Some(policy) = integration.get("policy").filter(|p| !p.is_null()) {
        let pretty = serde_json::to_string_pretty(policy).unwrap_or_else(|_| policy.to_string());
        table.add_row(vec!["policy".to_string(), pretty]);
    }
    println!("{table}");
}

fn print_integrations(page: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec![
        "ID", "NAME", "KIND", "SERVICE", "TEAM", "KEY", "DISABLED", "SIGNED", "CREATED",
    ]);
    for item in page.get("items").and_then(Value::as_array).into_iter().flatten() {
        table.add_row(vec![
            text(item, "id"),
            text(item, "name"),
            text(item, "kind"),
            text(item, "service"),
            text(item, "team"),
            text(item, "key_hint"),
            yes(item, "disabled"),
            yes(item, "signing_secret_set"),
            text(item, "created_at"),
        ]);
    }
    println!("{table}");
}

/// Where a sender of this kind posts its events, with what it must know.
fn ingest_urls(base: &str, kind: &str, key: &str) -> Vec<String> {
    match kind {
        "pagerduty" => vec![format!(
            "{base}/v2/enqueue  (PagerDuty Events API v2, with routing_key {key})"
        )],
        "alertmanager" => vec![
            format!("{base}/api/v1/integrations/{key}/alertmanager  (Alertmanager webhook receiver)"),
            format!("{base}/api/v2/alerts  (Alertmanager push API, with the key as bearer token)"),
        ],
        "grafana" => vec![format!(
            "{base}/api/v1/integrations/{key}/grafana  (Grafana webhook contact point)"
        )],
        _ => vec![format!("{base}/api/v1/integrations/{key}/events  (keel's JSON events)")],
    }
}

/// The integration, then its key (shown only in this answer) and where to
/// send events with it.
fn print_with_key(base: &str, integration: &Value) {
    print_integration(integration);
    let key = text(integration, "key");
    println!();
    println!("KEY (shown only this once; store it now): {key}");
    println!();
    println!("send events to:");
    for url in ingest_urls(base, &text(integration, "kind"), &key) {
        println!("  {url}");
    }
}

fn print_alerts(page: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec![
        "DEDUP KEY",
        "STATUS",
        "COUNT",
        "INCIDENT",
        "SERVICE",
        "FLAPPING",
        "LAST SEEN",
        "SUMMARY",
    ]);
    for item in page.get("items").and_then(Value::as_array).into_iter().flatten() {
        table.add_row(vec![
            text(item, "dedup_key"),
            text(item, "status"),
            text(item, "count"),
            text(item, "incident"),
            text(item, "service"),
            yes(item, "flapping"),
            text(item, "last_seen"),
            text(item, "summary"),
        ]);
    }
    println!("{table}");
    if let Some(cursor) = page.get("next_cursor").and_then(Value::as_str) {
        println!("more: --cursor {cursor}");
    }
}

fn print_window(window: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    for key in [
        "service",
        "ci",
        "starts_at",
        "ends_at",
        "active",
        "reason",
        "created_by",
        "created_at",
        "id",
    ] {
        let value = text(window, key);
        if !value.is_empty() {
            table.add_row(vec![key.to_string(), value]);
        }
    }
    println!("{table}");
}

fn print_windows(page: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec!["ID", "SERVICE", "CI", "STARTS", "ENDS", "ACTIVE", "REASON"]);
    for item in page.get("items").and_then(Value::as_array).into_iter().flatten() {
        table.add_row(vec![
            text(item, "id"),
            text(item, "service"),
            text(item, "ci"),
            text(item, "starts_at"),
            text(item, "ends_at"),
            yes(item, "active"),
            text(item, "reason"),
        ]);
    }
    println!("{table}");
}

async fn patch_integration(connection: &Connection, id: &str, body: Value) -> anyhow::Result<()> {
    let client = Client::new(connection)?;
    let path = format!("/api/v1/integrations/{}", encode(id));
    let integration = client.call(Method::PATCH, &path, Some(body), None).await?;
    show(connection.json, &integration, print_integration);
    Ok(())
}

pub async fn integration(command: IntegrationCommand) -> anyhow::Result<ExitCode> {
    match command {
        IntegrationCommand::Create(args) => {
            let client = Client::new(&args.connection)?;
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            body.insert("kind".into(), json!(args.kind));
            put(&mut body, "service", args.service);
            put(&mut body, "team", args.team);
            put(
                &mut body,
                "policy",
                args.policy_file.as_deref().map(read_policy).transpose()?,
            );
            put(&mut body, "signing_secret", args.signing_secret);
            let created = client
                .call(Method::POST, "/api/v1/integrations", Some(Value::Object(body)), None)
                .await?;
            if args.connection.json {
                println!("{created}");
            } else {
                print_with_key(&client.base, &created);
            }
        }
        IntegrationCommand::List(args) => {
            let client = Client::new(&args.connection)?;
            let page = client.call(Method::GET, "/api/v1/integrations", None, None).await?;
            show(args.connection.json, &page, print_integrations);
        }
        IntegrationCommand::Show(args) => {
            let client = Client::new(&args.connection)?;
            let path = format!("/api/v1/integrations/{}", encode(&args.id));
            let integration = client.call(Method::GET, &path, None, None).await?;
            show(args.connection.json, &integration, print_integration);
        }
        IntegrationCommand::Rotate(args) => {
            let client = Client::new(&args.connection)?;
            let path = format!("/api/v1/integrations/{}/rotate", encode(&args.id));
            let rotated = client.call(Method::POST, &path, None, None).await?;
            if args.connection.json {
                println!("{rotated}");
            } else {
                print_with_key(&client.base, &rotated);
                println!();
                println!("the old key no longer works");
            }
        }
        IntegrationCommand::Disable(args) => {
            patch_integration(&args.connection, &args.id, json!({"disabled": true})).await?;
        }
        IntegrationCommand::Enable(args) => {
            patch_integration(&args.connection, &args.id, json!({"disabled": false})).await?;
        }
        IntegrationCommand::SetPolicy(args) => {
            let policy = read_policy(&args.file)?;
            patch_integration(&args.connection, &args.id, json!({ "policy": policy })).await?;
        }
        IntegrationCommand::Update(args) => {
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "service", args.service);
            put(&mut body, "team", args.team);
            put(&mut body, "signing_secret", args.signing_secret);
            if args.clear_signing_secret {
                body.insert("signing_secret".into(), json!(""));
            }
            if body.is_empty() {
                bail!("nothing to change: pass --name, --service, --team, --signing-secret or --clear-signing-secret");
            }
            patch_integration(&args.connection, &args.id, Value::Object(body)).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn alert(command: AlertCommand) -> anyhow::Result<ExitCode> {
    match command {
        AlertCommand::List(args) => {
            let client = Client::new(&args.connection)?;
            // The API filters by incident id; accept a number or INC-number too.
            let incident = match args.incident {
                Some(reference) => {
                    let path = format!("/api/v1/incidents/{}", encode(&reference));
                    let incident = client.call(Method::GET, &path, None, None).await?;
                    Some(text(&incident, "id"))
                }
                None => None,
            };
            let qs = query_string(&[
                ("dedup_key", args.dedup_key),
                ("incident", incident),
                ("status", args.status),
                ("limit", args.limit.map(|l| l.to_string())),
                ("cursor", args.cursor),
            ]);
            let page = client
                .call(Method::GET, &format!("/api/v1/alerts{qs}"), None, None)
                .await?;
            show(args.connection.json, &page, print_alerts);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn maintenance(command: MaintenanceCommand) -> anyhow::Result<ExitCode> {
    match command {
        MaintenanceCommand::Create(args) => {
            let client = Client::new(&args.connection)?;
            let ends_at = match (args.ends_at, args.duration) {
                (Some(ends_at), _) => ends_at,
                (None, Some(duration)) => {
                    let start = match args.starts_at.as_deref() {
                        Some(text) => Timestamp::from_str(text).with_context(|| format!("--starts-at {text:?}"))?,
                        None => SystemClock.now(),
                    };
                    end_after(start, duration)?
                }
                (None, None) => bail!("pass --ends-at or --for"),
            };
            let mut body = Map::new();
            put(&mut body, "service", args.service);
            put(&mut body, "ci", args.ci);
            put(&mut body, "starts_at", args.starts_at);
            body.insert("ends_at".into(), json!(ends_at));
            body.insert("reason".into(), json!(args.reason));
            let created = client
                .call(
                    Method::POST,
                    "/api/v1/maintenance-windows",
                    Some(Value::Object(body)),
                    None,
                )
                .await?;
            show(args.connection.json, &created, print_window);
        }
        MaintenanceCommand::List(args) => {
            let client = Client::new(&args.connection)?;
            let path = if args.include_past {
                "/api/v1/maintenance-windows?include_past=true"
            } else {
                "/api/v1/maintenance-windows"
            };
            let page = client.call(Method::GET, path, None, None).await?;
            show(args.connection.json, &page, print_windows);
        }
        MaintenanceCommand::Delete(args) => {
            let client = Client::new(&args.connection)?;
            let path = format!("/api/v1/maintenance-windows/{}", encode(&args.id));
            client.call(Method::DELETE, &path, None, None).await?;
            if args.connection.json {
                // The API answers 204 with no body; say what happened in JSON.
                println!("{}", json!({"id": args.id, "deleted": true}));
            } else {
                println!("deleted maintenance window {}", args.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_combinations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "2", "h", "2x", "1h30", "0m", "-1h", "1.5h", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_end_is_the_start_plus_the_duration() {
        let start = Timestamp::from_str("2026-03-01T10:00:00Z").expect("timestamp");
        let end = end_after(start, Duration::from_secs(5400)).expect("end");
        assert_eq!(
            Timestamp::from_str(&end).expect("RFC 3339"),
            Timestamp::from_str("2026-03-01T11:30:00Z").expect("timestamp")
        );
    }
}
