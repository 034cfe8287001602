//! The command-line client for the catalogue and what hangs on it: teams
//! (their backlog and who is on call), services, configuration items (and
//! what an incident's CI impacts through them), classification rules,
//! on-call schedules and SLA policies. Same conventions as `client.rs`: one
//! API call per subcommand (tables also look up the names of the teams,
//! services, CIs and users they would otherwise show as ids), a table by
//! default, the API's JSON with `--json`, and the server's problem detail
//! with exit 1 on error.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{self, Client, Connection, put, query_string, text};

// ---- commands ----

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team (admin).
    Create(TeamCreateArgs),
    /// List teams.
    List(ListArgs),
    /// Show one team.
    Show(RefArgs),
    /// Change its name, lead, members, WIP limits or description (admin).
    Update(TeamUpdateArgs),
    /// Delete a team (admin); refused while a service or schedule names it.
    Delete(RefArgs),
    /// Its open work, most urgent first, and its board with the WIP limits.
    Backlog(RefArgs),
    /// Who is on call for it now (or at --at), and until when.
    Oncall(OnCallArgs),
}

#[derive(Debug, Args)]
pub struct TeamCreateArgs {
    #[arg(long)]
    pub name: String,
    /// The lead's user id; the lead is always a member.
    #[arg(long, value_name = "USER_ID")]
    pub lead: Option<String>,
    /// A member's user id; repeat for each member.
    #[arg(long = "member", value_name = "USER_ID")]
    pub members: Vec<String>,
    /// Most incidents in an open state on the team's board: new=3, accepted=5, on_hold=2; repeat per state.
    #[arg(long = "wip", value_name = "STATE=N")]
    pub wip: Vec<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct TeamUpdateArgs {
    /// The team's id or name.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The lead's user id; an empty string clears it.
    #[arg(long, value_name = "USER_ID")]
    pub lead: Option<String>,
    /// The members' user ids (repeat): they replace the current members.
    #[arg(long = "member", value_name = "USER_ID", conflicts_with = "clear_members")]
    pub members: Vec<String>,
    /// Remove every member (the lead stays one).
    #[arg(long)]
    pub clear_members: bool,
    /// WIP limits (repeat, STATE=N): they replace the current limits.
    #[arg(long = "wip", value_name = "STATE=N", conflicts_with = "clear_wip")]
    pub wip: Vec<String>,
    /// Remove every WIP limit.
    #[arg(long)]
    pub clear_wip: bool,
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct OnCallArgs {
    /// The team's id or name.
    pub id: String,
    /// The instant to ask about (RFC 3339); default: now.
    #[arg(long)]
    pub at: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct RefArgs {
    /// Its id or name.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service (admin).
    Create(ServiceCreateArgs),
    /// List services.
    List(ListArgs),
    /// Show one service.
    Show(RefArgs),
    /// Change its name, team, criticality or description (admin).
    Update(ServiceUpdateArgs),
    /// Delete a service (admin); refused while a CI or SLA policy names it.
    Delete(RefArgs),
}

#[derive(Debug, Args)]
pub struct ServiceCreateArgs {
    #[arg(long)]
    pub name: String,
    /// The owning team (id or name).
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long, value_parser = ["critical", "high", "medium", "low"])]
    pub criticality: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct ServiceUpdateArgs {
    /// The service's id or name.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The owning team (id or name); an empty string clears it.
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long, value_parser = ["critical", "high", "medium", "low"])]
    pub criticality: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Create a configuration item (admin).
    Create(CiCreateArgs),
    /// List configuration items.
    List(ListArgs),
    /// Show one configuration item.
    Show(RefArgs),
    /// Change it (admin); a dependency cycle is refused.
    Update(CiUpdateArgs),
    /// Delete it (admin); refused while another CI depends on it.
    Delete(RefArgs),
}

#[derive(Debug, Args)]
pub struct CiCreateArgs {
    #[arg(long)]
    pub name: String,
    /// server, database, network, application, …
    #[arg(long)]
    pub kind: String,
    #[arg(long)]
    pub location: Option<String>,
    /// A service it supports (id or name); repeat for each.
    #[arg(long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,
    /// A CI it needs (id or name); repeat for each.
    #[arg(long = "depends-on", value_name = "CI")]
    pub depends_on: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct CiUpdateArgs {
    /// The CI's id or name.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub location: Option<String>,
    /// The services it supports (repeat): they replace the current ones.
    #[arg(long = "service", value_name = "SERVICE", conflicts_with = "clear_services")]
    pub services: Vec<String>,
    /// It supports no service any more.
    #[arg(long)]
    pub clear_services: bool,
    /// The CIs it needs (repeat): they replace the current ones.
    #[arg(long = "depends-on", value_name = "CI", conflicts_with = "clear_depends_on")]
    pub depends_on: Vec<String>,
    /// It depends on no CI any more.
    #[arg(long)]
    pub clear_depends_on: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// `keel incident …`: the lifecycle commands of `client.rs`, and `impact`.
// Parsed once at start; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    #[command(flatten)]
    Lifecycle(client::IncidentCommand),
    /// Show what its CI and service touch: impacted services, dependants, similar systems.
    Impact(client::IdArgs),
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Create a classification rule (admin).
    Create(RuleCreateArgs),
    /// List rules in the order they are tried.
    List(ListArgs),
    /// Show one rule.
    Show(RefArgs),
    /// Change its name, position, conditions or fields (admin).
    Update(RuleUpdateArgs),
    /// Delete a rule (admin).
    Delete(RefArgs),
    /// Apply it to new incidents again (admin).
    Enable(RefArgs),
    /// Stop applying it (admin).
    Disable(RefArgs),
}

#[derive(Debug, Args)]
pub struct RuleCreateArgs {
    #[arg(long)]
    pub name: String,
    /// Lower first (default 0; ties by name).
    #[arg(long, allow_negative_numbers = true)]
    pub position: Option<i64>,
    /// Create it disabled.
    #[arg(long)]
    pub disabled: bool,
    /// A JSON file with the conditions: {"FIELD": "glob" | number | [any of]}.
    #[arg(long, value_name = "FILE.json", conflicts_with = "when")]
    pub when_file: Option<String>,
    /// A condition, FIELD=VALUE (a glob with *, a number); repeat: all must hold,
    /// and a field given twice matches either value. No condition: every incident.
    #[arg(long, value_name = "FIELD=VALUE")]
    pub when: Vec<String>,
    /// A field to fill, FIELD=VALUE (category, subcategory, service, ci, team,
    /// impact, urgency, major); repeat for each.
    #[arg(long, value_name = "FIELD=VALUE", required = true)]
    pub then: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct RuleUpdateArgs {
    /// The rule's id or name.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub position: Option<i64>,
    /// A JSON file with the conditions; they replace the current ones.
    #[arg(long, value_name = "FILE.json", conflicts_with = "when")]
    pub when_file: Option<String>,
    /// The conditions (repeat, FIELD=VALUE): they replace the current ones.
    #[arg(long, value_name = "FIELD=VALUE")]
    pub when: Vec<String>,
    /// The fields to fill (repeat, FIELD=VALUE): they replace the current ones.
    #[arg(long, value_name = "FIELD=VALUE")]
    pub then: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a team's on-call schedule from a layers file (admin).
    Create(ScheduleCreateArgs),
    /// List schedules.
    List(ListArgs),
    /// Show one schedule with its layers and overrides.
    Show(RefArgs),
    /// Replace its layers and/or overrides with those in a file (admin).
    Set(ScheduleSetArgs),
    /// Who is on call when, over a range (default: the next 14 days).
    Shifts(ShiftsArgs),
    /// Delete a schedule (admin).
    Delete(RefArgs),
}

#[derive(Debug, Args)]
pub struct ScheduleCreateArgs {
    #[arg(long)]
    pub name: String,
    /// The team (id or name).
    #[arg(long)]
    pub team: String,
    /// IANA zone the layers' local times are in, e.g. Europe/Berlin.
    #[arg(long)]
    pub time_zone: String,
    /// A JSON file: {"layers": [{"users", "rotation", "start" or "handoff",
    /// "end", "restrictions"}], "overrides": [{"user", "start", "end"}]}.
    #[arg(long, value_name = "FILE.json")]
    pub file: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct ScheduleSetArgs {
    /// The schedule's id or name.
    pub id: String,
    /// A JSON file with "layers" and/or "overrides"; what it leaves out is kept.
    #[arg(long, value_name = "FILE.json")]
    pub file: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct ShiftsArgs {
    /// The schedule's id or name.
    pub id: String,
    /// RFC 3339; default: now.
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339; default: 14 days after --from; at most 366 days after it.
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum SlaPolicyCommand {
    /// Create an SLA policy for a service, or the default one (admin).
    Create(SlaCreateArgs),
    /// List SLA policies.
    List(ListArgs),
    /// Show one SLA policy.
    Show(RefArgs),
    /// Change it (admin); open incidents' timers follow.
    Update(SlaUpdateArgs),
    /// Delete an SLA policy (admin).
    Delete(RefArgs),
}

#[derive(Debug, Subcommand)]
pub enum EscalationCommand {
    /// Create a team's escalation policy (admin).
    Create(EscalationCreateArgs),
    /// List escalation policies.
    List(ListArgs),
    /// Show one escalation policy.
    Show(RefArgs),
    /// Delete an escalation policy (admin).
    Delete(RefArgs),
}

#[derive(Debug, Args)]
pub struct EscalationCreateArgs {
    #[arg(long)]
    pub name: String,
    /// The team (id or name).
    #[arg(long)]
    pub team: String,
    /// DELAY:TARGET[,TARGET…], e.g. 5m:SCHEDULE or 30m:lead or 15m:USER_ID; repeat per level.
    /// Targets are user ids, schedules (id or name) or `lead`; the first that names a person wins.
    #[arg(long = "level", value_name = "DELAY:TARGETS", required = true)]
    pub levels: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

/// Reads `DELAY:TARGET[,TARGET…]` levels.
fn levels(specs: &[String]) -> anyhow::Result<Value> {
    specs
        .iter()
        .map(|spec| {
            let (after, targets) = spec
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--level {spec:?}: write DELAY:TARGET[,TARGET…], e.g. 15m:lead"))?;
            let targets: Vec<&str> = targets.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
            anyhow::ensure!(!targets.is_empty(), "--level {spec:?} names no target");
            Ok(json!({"after": after.trim(), "targets": targets}))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Value::Array)
}

fn print_escalation(policy: &Value, names: &Lookups) {
    let mut out = table();
    add_rows(
        &mut out,
        vec![
            ("name", text(policy, "name")),
            ("team", names.teams.one(policy, "team")),
            ("levels", pretty(policy.get("levels"))),
            ("id", text(policy, "id")),
        ],
    );
    println!("{out}");
}

fn print_escalations(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec!["ID", "NAME", "TEAM", "LEVELS"]);
    for policy in items(page) {
        out.add_row(vec![
            text(policy, "id"),
            text(policy, "name"),
            names.teams.one(policy, "team"),
            policy
                .get("levels")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                .to_string(),
        ]);
    }
    println!("{out}");
}

const HOLD_REASONS: [&str; 4] = ["awaiting_user", "awaiting_supplier", "awaiting_change", "other"];

#[derive(Debug, Args)]
pub struct SlaCreateArgs {
    #[arg(long)]
    pub name: String,
    /// The service (id or name) it is for; default: the policy of every other service.
    #[arg(long)]
    pub service: Option<String>,
    /// PRIORITY:RESPONSE:RESOLUTION, e.g. P1:15m:4h; leave a target out as in
    /// P4::3d or P2:1h; repeat per priority.
    #[arg(long = "target", value_name = "P:RESPONSE:RESOLUTION", required = true)]
    pub targets: Vec<String>,
    /// A hold reason that pauses the clocks; repeat for each.
    #[arg(long, value_parser = HOLD_REASONS)]
    pub pause_on: Vec<String>,
    /// At risk from this percentage of a target (1 to 100, default 80).
    #[arg(long, value_name = "PERCENT")]
    pub at_risk: Option<u8>,
    /// A JSON file with the calendar: "24x7" (default) or
    /// {"time_zone", "hours": {"mon": [["09:00", "17:00"]], …}, "holidays": […]}.
    #[arg(long, value_name = "FILE.json")]
    pub calendar_file: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct SlaUpdateArgs {
    /// The policy's id or name.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// The service it is for; an empty string makes it the default policy.
    #[arg(long)]
    pub service: Option<String>,
    /// The targets (repeat, P:RESPONSE:RESOLUTION): they replace the current ones.
    #[arg(long = "target", value_name = "P:RESPONSE:RESOLUTION")]
    pub targets: Vec<String>,
    /// The hold reasons that pause (repeat): they replace the current ones.
    #[arg(long, value_parser = HOLD_REASONS, conflicts_with = "no_pause")]
    pub pause_on: Vec<String>,
    /// No hold reason pauses the clocks any more.
    #[arg(long)]
    pub no_pause: bool,
    #[arg(long, value_name = "PERCENT")]
    pub at_risk: Option<u8>,
    #[arg(long, value_name = "FILE.json")]
    pub calendar_file: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

// ---- reading arguments ----

/// One path segment: an id or a name, which may hold any character.
fn segment(reference: &str) -> anyhow::Result<String> {
    if reference.is_empty() || reference == "." || reference == ".." {
        bail!("{reference:?} is not an id or a name");
    }
    Ok(reference
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect())
}

/// Reads a JSON file; the server checks what it says.
fn read_json(path: &str) -> anyhow::Result<Value> {
    let content = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    serde_json::from_str(&content).with_context(|| format!("{path} is not JSON"))
}

/// `KEY=VALUE`, with a key that is not empty.
fn pair<'a>(flag: &str, item: &'a str, example: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match item.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        _ => bail!("{flag} {item:?}: expected {example}"),
    }
}

/// A rule value: a number, true/false, else text; "quotes" keep it text.
fn rule_value(text: &str) -> Value {
    if let Some(quoted) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return Value::String(quoted.to_string());
    }
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(integer) = text.parse::<i64>() {
        return json!(integer);
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or_else(|| Value::String(text.to_string()), Value::Number)
}

/// `--when` conditions: a field given twice matches any of its values.
fn conditions(items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let (field, value) = pair("--when", item, "FIELD=VALUE, e.g. title=*disk*")?;
        let value = rule_value(value);
        match out.get_mut(field) {
            None => {
                out.insert(field.to_string(), value);
            }
            Some(Value::Array(options)) => options.push(value),
            Some(existing) => *existing = json!([existing.take(), value]),
        }
    }
    Ok(out)
}

/// `--then` fields, each given once.
fn settings(items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let (field, value) = pair("--then", item, "FIELD=VALUE, e.g. category=storage")?;
        if out.insert(field.to_string(), rule_value(value)).is_some() {
            bail!("--then sets {field:?} twice");
        }
    }
    Ok(out)
}

/// `--wip STATE=N` limits.
fn wip_limits(items: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let example = "STATE=NUMBER, e.g. accepted=5";
        let (state, limit) = pair("--wip", item, example)?;
        let limit: u32 = limit
            .trim()
            .parse()
            .map_err(|_| anyhow!("--wip {item:?}: expected {example}"))?;
        out.insert(state.to_string(), json!(limit));
    }
    Ok(out)
}

/// `--target P1:15m:4h` as `{"priority", "response", "resolution"}`.
fn target(spec: &str) -> anyhow::Result<Value> {
    let wrong = || {
        anyhow!(
            "--target {spec:?}: expected PRIORITY:RESPONSE:RESOLUTION, e.g. P1:15m:4h (leave a target out as in P4::3d)"
        )
    };
    let parts: Vec<&str> = spec.split(':').map(str::trim).collect();
    let (priority, response, resolution) = match parts.as_slice() {
        [priority, response] => (*priority, *response, ""),
        [priority, response, resolution] => (*priority, *response, *resolution),
        _ => return Err(wrong()),
    };
    if priority.is_empty() || (response.is_empty() && resolution.is_empty()) {
        return Err(wrong());
    }
    let mut out = Map::new();
    out.insert("priority".into(), json!(priority));
    if !response.is_empty() {
        out.insert("response".into(), json!(response));
    }
    if !resolution.is_empty() {
        out.insert("resolution".into(), json!(resolution));
    }
    Ok(Value::Object(out))
}

fn targets(specs: &[String]) -> anyhow::Result<Value> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for spec in specs {
        let parsed = target(spec)?;
        let priority = text(&parsed, "priority").to_ascii_uppercase();
        if seen.contains(&priority) {
            bail!("--target: {priority} is given twice");
        }
        seen.push(priority);
        out.push(parsed);
    }
    Ok(Value::Array(out))
}

/// A schedule file's `layers` and `overrides`.
fn schedule_file(path: &str) -> anyhow::Result<Map<String, Value>> {
    let Value::Object(file) = read_json(path)? else {
        bail!("{path}: expected an object with \"layers\" and/or \"overrides\"");
    };
    if let Some(other) = file.keys().find(|k| *k != "layers" && *k != "overrides") {
        bail!("{path}: unknown key {other:?} (a schedule file holds \"layers\" and \"overrides\")");
    }
    if file.is_empty() {
        bail!("{path}: expected \"layers\" and/or \"overrides\"");
    }
    Ok(file)
}

// ---- what tables show ----

/// The names of the things an answer refers to by id, for tables.
#[derive(Debug, Default)]
struct Names(BTreeMap<String, String>);

impl Names {
    fn name(&self, id: &str) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    /// `value[key]`, an id, by name.
    fn one(&self, value: &Value, key: &str) -> String {
        let id = text(value, key);
        if id.is_empty() { id } else { self.name(&id) }
    }

    /// `value[key]`, a list of ids, by name.
    fn all(&self, value: &Value, key: &str) -> String {
        let names: Vec<String> = value
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|id| id.as_str().map_or_else(|| id.to_string(), |id| self.name(id)))
            .collect();
        names.join(", ")
    }
}

/// What a table needs names of.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    Users,
    Teams,
    Services,
    Cis,
}

/// The names a table refers to.
#[derive(Debug, Default)]
struct Lookups {
    users: Names,
    teams: Names,
    services: Names,
    cis: Names,
}

impl Lookups {
    /// Reads the lists; one that cannot be read leaves its ids as they are
    /// (the answer itself was already received).
    async fn fetch(client: &Client, needs: &[Lookup]) -> Self {
        let mut lookups = Self::default();
        for need in needs {
            let (path, names) = match need {
                Lookup::Users => ("/api/v1/users", &mut lookups.users),
                Lookup::Teams => ("/api/v1/teams", &mut lookups.teams),
                Lookup::Services => ("/api/v1/services", &mut lookups.services),
                Lookup::Cis => ("/api/v1/cis", &mut lookups.cis),
            };
            if let Ok(page) = client.call(Method::GET, path, None, None).await {
                for item in page.get("items").and_then(Value::as_array).into_iter().flatten() {
                    names.0.insert(text(item, "id"), text(item, "name"));
                }
            }
        }
        lookups
    }
}

type Print = fn(&Value, &Lookups);

/// The answer: its JSON with `--json`, else a table with names looked up.
async fn answer(client: &Client, json: bool, value: &Value, needs: &[Lookup], print: Print) {
    if json {
        println!("{value}");
    } else {
        print(value, &Lookups::fetch(client, needs).await);
    }
}

fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table
}

/// Key/value rows, leaving out empty values.
fn add_rows(table: &mut Table, rows: Vec<(&str, String)>) {
    for (key, value) in rows {
        if !value.is_empty() {
            table.add_row(vec![key.to_string(), value]);
        }
    }
}

fn items(page: &Value) -> impl Iterator<Item = &Value> {
    page.get("items").and_then(Value::as_array).into_iter().flatten()
}

fn yes(value: &Value, key: &str) -> String {
    if value.get(key).and_then(Value::as_bool) == Some(true) {
        "yes".to_string()
    } else {
        String::new()
    }
}

/// An object's entries as `key=value, …`.
fn entries(value: &Value, key: &str) -> String {
    let pairs: Vec<String> = value
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    pairs.join(", ")
}

fn pretty(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(value) => serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()),
    }
}

fn print_team(team: &Value, names: &Lookups) {
    let mut out = table();
    add_rows(
        &mut out,
        vec![
            ("name", text(team, "name")),
            ("lead", names.users.one(team, "lead")),
            ("members", names.users.all(team, "members")),
            ("wip limits", entries(team, "wip_limits")),
            ("description", text(team, "description")),
            ("id", text(team, "id")),
        ],
    );
    println!("{out}");
}

fn print_teams(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec!["ID", "NAME", "LEAD", "MEMBERS", "WIP LIMITS"]);
    for team in items(page) {
        out.add_row(vec![
            text(team, "id"),
            text(team, "name"),
            names.users.one(team, "lead"),
            names.users.all(team, "members"),
            entries(team, "wip_limits"),
        ]);
    }
    println!("{out}");
}

/// The next SLA due time of an incident: its response's while that runs, else its resolution's.
fn sla_due(incident: &Value) -> String {
    let sla = &incident["sla"];
    let running = |clock: &Value| clock.is_object() && clock["stopped_at"].is_null();
    let due = if running(&sla["response"]) {
        text(&sla["response"], "due_at")
    } else {
        text(sla, "resolution_due")
    };
    if due.is_empty() { text(sla, "response_due") } else { due }
}

fn print_backlog(backlog: &Value, names: &Lookups) {
    println!("team {}", text(backlog, "team"));
    let mut board = table();
    board.set_header(vec!["COLUMN", "COUNT", "WIP LIMIT", ""]);
    for column in backlog.get("columns").and_then(Value::as_array).into_iter().flatten() {
        let over = column.get("over_limit").and_then(Value::as_bool) == Some(true);
        board.add_row(vec![
            text(column, "state"),
            text(column, "count"),
            text(column, "wip_limit"),
            if over { "OVER".to_string() } else { String::new() },
        ]);
    }
    println!("{board}");
    let mut work = table();
    work.set_header(vec!["KEY", "PRIO", "STATE", "SLA", "SLA DUE", "OWNER", "TITLE"]);
    for incident in items(backlog) {
        work.add_row(vec![
            text(incident, "key"),
            text(incident, "priority"),
            text(incident, "state"),
            text(&incident["sla"], "state"),
            sla_due(incident),
            names.users.one(incident, "owner"),
            text(incident, "title"),
        ]);
    }
    println!("{work}");
}

fn print_on_call(on_call: &Value, names: &Lookups) {
    let mut out = table();
    let user = names.users.one(on_call, "user");
    add_rows(
        &mut out,
        vec![
            ("on call", if user.is_empty() { "nobody".to_string() } else { user }),
            ("user id", text(on_call, "user")),
            ("since", text(on_call, "since")),
            ("until", text(on_call, "until")),
            ("from", text(on_call, "source")),
        ],
    );
    println!("{out}");
}

fn print_service(service: &Value, names: &Lookups) {
    let mut out = table();
    add_rows(
        &mut out,
        vec![
            ("name", text(service, "name")),
            ("team", names.teams.one(service, "team")),
            ("criticality", text(service, "criticality")),
            ("description", text(service, "description")),
            ("id", text(service, "id")),
        ],
    );
    println!("{out}");
}

fn print_services(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec!["ID", "NAME", "TEAM", "CRITICALITY", "DESCRIPTION"]);
    for service in items(page) {
        out.add_row(vec![
            text(service, "id"),
            text(service, "name"),
            names.teams.one(service, "team"),
            text(service, "criticality"),
            text(service, "description"),
        ]);
    }
    println!("{out}");
}

fn print_ci(ci: &Value, names: &Lookups) {
    let mut out = table();
    add_rows(
        &mut out,
        vec![
            ("name", text(ci, "name")),
            ("kind", text(ci, "kind")),
            ("location", text(ci, "location")),
            ("services", names.services.all(ci, "services")),
            ("depends on", names.cis.all(ci, "depends_on")),
            ("id", text(ci, "id")),
        ],
    );
    println!("{out}");
}

fn print_cis(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec!["ID", "NAME", "KIND", "LOCATION", "SERVICES", "DEPENDS ON"]);
    for ci in items(page) {
        out.add_row(vec![
            text(ci, "id"),
            text(ci, "name"),
            text(ci, "kind"),
            text(ci, "location"),
            names.services.all(ci, "services"),
            names.cis.all(ci, "depends_on"),
        ]);
    }
    println!("{out}");
}

fn print_impact(impact: &Value, _: &Lookups) {
    let mut out = table();
    let list = |key: &str| {
        let names: Vec<String> = impact
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    out.add_row(vec!["impacted services".to_string(), list("impacted_services")]);
    out.add_row(vec!["dependants".to_string(), list("dependants")]);
    out.add_row(vec!["similar systems".to_string(), list("similar_systems")]);
    println!("{out}");
}

fn print_rule(rule: &Value, _: &Lookups) {
    let mut out = table();
    add_rows(
        &mut out,
        vec![
            ("name", text(rule, "name")),
            ("position", text(rule, "position")),
            ("enabled", text(rule, "enabled")),
            ("when", entries(rule, "when")),
            ("then", entries(rule, "then")),
            ("id", text(rule, "id")),
        ],
    );
    println!("{out}");
}

fn print_rules(page: &Value, _: &Lookups) {
    let mut out = table();
    out.set_header(vec!["POSITION", "NAME", "ENABLED", "WHEN", "THEN", "ID"]);
    for rule in items(page) {
        out.add_row(vec![
            text(rule, "position"),
            text(rule, "name"),
            yes(rule, "enabled"),
            entries(rule, "when"),
            entries(rule, "then"),
            text(rule, "id"),
        ]);
    }
    println!("{out}");
}

fn count(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_array).map_or(0, Vec::len).to_string()
}

fn print_schedule(schedule: &Value, names: &Lookups) {
    let mut out = table();
    add_rows(
        &mut out,
        vec![
            ("name", text(schedule, "name")),
            ("team", names.teams.one(schedule, "team")),
            ("time zone", text(schedule, "time_zone")),
            ("id", text(schedule, "id")),
            ("layers", pretty(schedule.get("layers"))),
            ("overrides", pretty(schedule.get("overrides"))),
        ],
    );
    println!("{out}");
}

fn print_schedules(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec!["ID", "NAME", "TEAM", "TIME ZONE", "LAYERS", "OVERRIDES"]);
    for schedule in items(page) {
        out.add_row(vec![
            text(schedule, "id"),
            text(schedule, "name"),
            names.teams.one(schedule, "team"),
            text(schedule, "time_zone"),
            count(schedule, "layers"),
            count(schedule, "overrides"),
        ]);
    }
    println!("{out}");
}

fn print_shifts(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec!["START", "END", "USER", "FROM"]);
    for shift in items(page) {
        out.add_row(vec![
            text(shift, "start"),
            text(shift, "end"),
            names.users.one(shift, "user"),
            text(shift, "source"),
        ]);
    }
    println!("{out}");
}

/// Targets as `P1 15m / 4h` lines (`-` for a target not measured).
fn target_lines(policy: &Value) -> String {
    let lines: Vec<String> = policy
        .get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            let or_dash = |key: &str| {
                let value = text(t, key);
                if value.is_empty() { "-".to_string() } else { value }
            };
            format!(
                "{} {} / {}",
                text(t, "priority"),
                or_dash("response"),
                or_dash("resolution")
            )
        })
        .collect();
    lines.join("\n")
}

fn strings(value: &Value, key: &str) -> String {
    let all: Vec<String> = value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect();
    all.join(", ")
}

fn calendar(policy: &Value) -> String {
    match policy.get("calendar") {
        Some(Value::String(name)) => name.clone(),
        other => pretty(other),
    }
}

fn print_sla_policy(policy: &Value, names: &Lookups) {
    let mut out = table();
    let service = names.services.one(policy, "service");
    add_rows(
        &mut out,
        vec![
            ("name", text(policy, "name")),
            (
                "service",
                if service.is_empty() {
                    "(default)".to_string()
                } else {
                    service
                },
            ),
            ("targets", target_lines(policy)),
            ("pause on", strings(policy, "pause_on")),
            ("at risk at", format!("{}%", text(policy, "at_risk_percent"))),
            ("calendar", calendar(policy)),
            ("id", text(policy, "id")),
        ],
    );
    println!("{out}");
}

fn print_sla_policies(page: &Value, names: &Lookups) {
    let mut out = table();
    out.set_header(vec![
        "ID", "NAME", "SERVICE", "TARGETS", "PAUSE ON", "AT RISK", "CALENDAR",
    ]);
    for policy in items(page) {
        let service = names.services.one(policy, "service");
        out.add_row(vec![
            text(policy, "id"),
            text(policy, "name"),
            if service.is_empty() {
                "(default)".to_string()
            } else {
                service
            },
            target_lines(policy),
            strings(policy, "pause_on"),
            format!("{}%", text(policy, "at_risk_percent")),
            calendar(policy),
        ]);
    }
    println!("{out}");
}

// ---- the calls ----

/// A kind of catalogue object: where it lives and how tables show it.
struct Resource {
    path: &'static str,
    noun: &'static str,
    needs: &'static [Lookup],
    one: Print,
    many: Print,
}

const TEAMS: Resource = Resource {
    path: "/api/v1/teams",
    noun: "team",
    needs: &[Lookup::Users],
    one: print_team,
    many: print_teams,
};

const SERVICES: Resource = Resource {
    path: "/api/v1/services",
    noun: "service",
    needs: &[Lookup::Teams],
    one: print_service,
    many: print_services,
};

const CIS: Resource = Resource {
    path: "/api/v1/cis",
    noun: "CI",
    needs: &[Lookup::Services, Lookup::Cis],
    one: print_ci,
    many: print_cis,
};

const RULES: Resource = Resource {
    path: "/api/v1/rules",
    noun: "rule",
    needs: &[],
    one: print_rule,
    many: print_rules,
};

const SCHEDULES: Resource = Resource {
    path: "/api/v1/schedules",
    noun: "schedule",
    needs: &[Lookup::Teams],
    one: print_schedule,
    many: print_schedules,
};

const ESCALATIONS: Resource = Resource {
    path: "/api/v1/escalation-policies",
    noun: "escalation policy",
    needs: &[Lookup::Teams],
    one: print_escalation,
    many: print_escalations,
};

const SLA_POLICIES: Resource = Resource {
    path: "/api/v1/sla-policies",
    noun: "SLA policy",
    needs: &[Lookup::Services],
    one: print_sla_policy,
    many: print_sla_policies,
};

impl Resource {
    fn at(&self, reference: &str) -> anyhow::Result<String> {
        Ok(format!("{}/{}", self.path, segment(reference)?))
    }

    async fn create(&self, connection: &Connection, body: Map<String, Value>) -> anyhow::Result<()> {
        let client = Client::new(connection)?;
        let created = client
            .call(Method::POST, self.path, Some(Value::Object(body)), None)
            .await?;
        answer(&client, connection.json, &created, self.needs, self.one).await;
        Ok(())
    }

    async fn list(&self, connection: &Connection) -> anyhow::Result<()> {
        let client = Client::new(connection)?;
        let page = client.call(Method::GET, self.path, None, None).await?;
        answer(&client, connection.json, &page, self.needs, self.many).await;
        Ok(())
    }

    async fn show(&self, connection: &Connection, reference: &str) -> anyhow::Result<()> {
        let client = Client::new(connection)?;
        let found = client.call(Method::GET, &self.at(reference)?, None, None).await?;
        answer(&client, connection.json, &found, self.needs, self.one).await;
        Ok(())
    }

    /// A PATCH with the fields given; `flags` names them when there are none.
    async fn update(
        &self,
        connection: &Connection,
        reference: &str,
        body: Map<String, Value>,
        flags: &str,
    ) -> anyhow::Result<()> {
        if body.is_empty() {
            bail!("nothing to change: pass {flags}");
        }
        let client = Client::new(connection)?;
        let path = self.at(reference)?;
        let changed = client
            .call(Method::PATCH, &path, Some(Value::Object(body)), None)
            .await?;
        answer(&client, connection.json, &changed, self.needs, self.one).await;
        Ok(())
    }

    async fn delete(&self, connection: &Connection, reference: &str) -> anyhow::Result<()> {
        let client = Client::new(connection)?;
        client.call(Method::DELETE, &self.at(reference)?, None, None).await?;
        if connection.json {
            // The API answers 204 with no body; say what happened in JSON.
            println!("{}", json!({"id": reference, "deleted": true}));
        } else {
            println!("deleted {} {reference}", self.noun);
        }
        Ok(())
    }
}

pub async fn team(command: TeamCommand) -> anyhow::Result<ExitCode> {
    match command {
        TeamCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            put(&mut body, "lead", args.lead);
            if !args.members.is_empty() {
                body.insert("members".into(), json!(args.members));
            }
            if !args.wip.is_empty() {
                body.insert("wip_limits".into(), Value::Object(wip_limits(&args.wip)?));
            }
            put(&mut body, "description", args.description);
            TEAMS.create(&args.connection, body).await?;
        }
        TeamCommand::List(args) => TEAMS.list(&args.connection).await?,
        TeamCommand::Show(args) => TEAMS.show(&args.connection, &args.id).await?,
        TeamCommand::Update(args) => {
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "lead", args.lead);
            if !args.members.is_empty() || args.clear_members {
                body.insert("members".into(), json!(args.members));
            }
            if !args.wip.is_empty() || args.clear_wip {
                body.insert("wip_limits".into(), Value::Object(wip_limits(&args.wip)?));
            }
            put(&mut body, "description", args.description);
            let flags = "--name, --lead, --member, --clear-members, --wip, --clear-wip or --description";
            TEAMS.update(&args.connection, &args.id, body, flags).await?;
        }
        TeamCommand::Delete(args) => TEAMS.delete(&args.connection, &args.id).await?,
        TeamCommand::Backlog(args) => {
            let client = Client::new(&args.connection)?;
            let path = format!("{}/backlog", TEAMS.at(&args.id)?);
            let backlog = client.call(Method::GET, &path, None, None).await?;
            answer(&client, args.connection.json, &backlog, &[Lookup::Users], print_backlog).await;
        }
        TeamCommand::Oncall(args) => {
            let client = Client::new(&args.connection)?;
            let path = format!("{}/oncall{}", TEAMS.at(&args.id)?, query_string(&[("at", args.at)]));
            let on_call = client.call(Method::GET, &path, None, None).await?;
            answer(&client, args.connection.json, &on_call, &[Lookup::Users], print_on_call).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn service(command: ServiceCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServiceCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            put(&mut body, "team", args.team);
            put(&mut body, "criticality", args.criticality);
            put(&mut body, "description", args.description);
            SERVICES.create(&args.connection, body).await?;
        }
        ServiceCommand::List(args) => SERVICES.list(&args.connection).await?,
        ServiceCommand::Show(args) => SERVICES.show(&args.connection, &args.id).await?,
        ServiceCommand::Update(args) => {
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "team", args.team);
            put(&mut body, "criticality", args.criticality);
            put(&mut body, "description", args.description);
            let flags = "--name, --team, --criticality or --description";
            SERVICES.update(&args.connection, &args.id, body, flags).await?;
        }
        ServiceCommand::Delete(args) => SERVICES.delete(&args.connection, &args.id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ci(command: CiCommand) -> anyhow::Result<ExitCode> {
    match command {
        CiCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            body.insert("kind".into(), json!(args.kind));
            put(&mut body, "location", args.location);
            if !args.services.is_empty() {
                body.insert("services".into(), json!(args.services));
            }
            if !args.depends_on.is_empty() {
                body.insert("depends_on".into(), json!(args.depends_on));
            }
            CIS.create(&args.connection, body).await?;
        }
        CiCommand::List(args) => CIS.list(&args.connection).await?,
        CiCommand::Show(args) => CIS.show(&args.connection, &args.id).await?,
        CiCommand::Update(args) => {
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "kind", args.kind);
            put(&mut body, "location", args.location);
            if !args.services.is_empty() || args.clear_services {
                body.insert("services".into(), json!(args.services));
            }
            if !args.depends_on.is_empty() || args.clear_depends_on {
                body.insert("depends_on".into(), json!(args.depends_on));
            }
            let flags = "--name, --kind, --location, --service, --clear-services, --depends-on or --clear-depends-on";
            CIS.update(&args.connection, &args.id, body, flags).await?;
        }
        CiCommand::Delete(args) => CIS.delete(&args.connection, &args.id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn incident(command: IncidentCommand) -> anyhow::Result<ExitCode> {
    match command {
        IncidentCommand::Lifecycle(command) => client::incident(command).await,
        IncidentCommand::Impact(args) => {
            let client = Client::new(&args.connection)?;
            let path = format!("/api/v1/incidents/{}/impact", segment(&args.id)?);
            let impact = client.call(Method::GET, &path, None, None).await?;
            answer(&client, args.connection.json, &impact, &[], print_impact).await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `when` from `--when-file` or `--when`, if either is given.
fn when(file: Option<&str>, items: &[String]) -> anyhow::Result<Option<Value>> {
    match file {
        Some(path) => Ok(Some(read_json(path)?)),
        None if items.is_empty() => Ok(None),
        None => Ok(Some(Value::Object(conditions(items)?))),
    }
}

async fn enable_rule(args: RefArgs, enabled: bool) -> anyhow::Result<()> {
    let mut body = Map::new();
    body.insert("enabled".into(), json!(enabled));
    RULES.update(&args.connection, &args.id, body, "").await
}

pub async fn rule(command: RuleCommand) -> anyhow::Result<ExitCode> {
    match command {
        RuleCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            put(&mut body, "position", args.position);
            if args.disabled {
                body.insert("enabled".into(), json!(false));
            }
            put(&mut body, "when", when(args.when_file.as_deref(), &args.when)?);
            body.insert("then".into(), Value::Object(settings(&args.then)?));
            RULES.create(&args.connection, body).await?;
        }
        RuleCommand::List(args) => RULES.list(&args.connection).await?,
        RuleCommand::Show(args) => RULES.show(&args.connection, &args.id).await?,
        RuleCommand::Update(args) => {
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "position", args.position);
            put(&mut body, "when", when(args.when_file.as_deref(), &args.when)?);
            if !args.then.is_empty() {
                body.insert("then".into(), Value::Object(settings(&args.then)?));
            }
            let flags = "--name, --position, --when, --when-file or --then";
            RULES.update(&args.connection, &args.id, body, flags).await?;
        }
        RuleCommand::Delete(args) => RULES.delete(&args.connection, &args.id).await?,
        RuleCommand::Enable(args) => enable_rule(args, true).await?,
        RuleCommand::Disable(args) => enable_rule(args, false).await?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn schedule(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScheduleCommand::Create(args) => {
            let file = schedule_file(&args.file)?;
            if !file.contains_key("layers") {
                bail!("{}: a new schedule needs \"layers\"", args.file);
            }
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            body.insert("team".into(), json!(args.team));
            body.insert("time_zone".into(), json!(args.time_zone));
            body.extend(file);
            SCHEDULES.create(&args.connection, body).await?;
        }
        ScheduleCommand::List(args) => SCHEDULES.list(&args.connection).await?,
        ScheduleCommand::Show(args) => SCHEDULES.show(&args.connection, &args.id).await?,
        ScheduleCommand::Set(args) => {
            let body = schedule_file(&args.file)?;
            SCHEDULES.update(&args.connection, &args.id, body, "--file").await?;
        }
        ScheduleCommand::Shifts(args) => {
            let client = Client::new(&args.connection)?;
            let query = query_string(&[("from", args.from), ("to", args.to)]);
            let path = format!("{}/shifts{query}", SCHEDULES.at(&args.id)?);
            let shifts = client.call(Method::GET, &path, None, None).await?;
            answer(&client, args.connection.json, &shifts, &[Lookup::Users], print_shifts).await;
        }
        ScheduleCommand::Delete(args) => SCHEDULES.delete(&args.connection, &args.id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn escalation(command: EscalationCommand) -> anyhow::Result<ExitCode> {
    match command {
        EscalationCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            body.insert("team".into(), json!(args.team));
            body.insert("levels".into(), levels(&args.levels)?);
            ESCALATIONS.create(&args.connection, body).await?;
        }
        EscalationCommand::List(args) => ESCALATIONS.list(&args.connection).await?,
        EscalationCommand::Show(args) => ESCALATIONS.show(&args.connection, &args.id).await?,
        EscalationCommand::Delete(args) => ESCALATIONS.delete(&args.connection, &args.id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn sla_policy(command: SlaPolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        SlaPolicyCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            put(&mut body, "service", args.service);
            body.insert("targets".into(), targets(&args.targets)?);
            if !args.pause_on.is_empty() {
                body.insert("pause_on".into(), json!(args.pause_on));
            }
            put(&mut body, "at_risk_percent", args.at_risk);
            put(
                &mut body,
                "calendar",
                args.calendar_file.as_deref().map(read_json).transpose()?,
            );
            SLA_POLICIES.create(&args.connection, body).await?;
        }
        SlaPolicyCommand::List(args) => SLA_POLICIES.list(&args.connection).await?,
        SlaPolicyCommand::Show(args) => SLA_POLICIES.show(&args.connection, &args.id).await?,
        SlaPolicyCommand::Update(args) => {
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "service", args.service);
            if !args.targets.is_empty() {
                body.insert("targets".into(), targets(&args.targets)?);
            }
            if !args.pause_on.is_empty() || args.no_pause {
                body.insert("pause_on".into(), json!(args.pause_on));
            }
            put(&mut body, "at_risk_percent", args.at_risk);
            put(
                &mut body,
                "calendar",
                args.calendar_file.as_deref().map(read_json).transpose()?,
            );
            let flags = "--name, --service, --target, --pause-on, --no-pause, --at-risk or --calendar-file";
            SLA_POLICIES.update(&args.connection, &args.id, body, flags).await?;
        }
        SlaPolicyCommand::Delete(args) => SLA_POLICIES.delete(&args.connection, &args.id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_values_are_numbers_booleans_or_text() {
        assert_eq!(rule_value("3"), json!(3));
        assert_eq!(rule_value("-2"), json!(-2));
        assert_eq!(rule_value("1.5"), json!(1.5));
        assert_eq!(rule_value("true"), json!(true));
        assert_eq!(rule_value("false"), json!(false));
        assert_eq!(rule_value("*disk*"), json!("*disk*"));
        assert_eq!(rule_value("\"3\""), json!("3"), "quotes keep it text");
        assert_eq!(rule_value("inf"), json!("inf"));
        assert_eq!(rule_value(""), json!(""));
    }

    #[test]
    fn a_field_given_twice_in_when_matches_either() {
        let when = conditions(&["service=mail".into(), "service=smtp".into(), "impact=1".into()]).expect("conditions");
        assert_eq!(Value::Object(when), json!({"service": ["mail", "smtp"], "impact": 1}));
        assert!(conditions(&["=x".into()]).is_err());
        assert!(conditions(&["service".into()]).is_err());
        assert!(settings(&["team=a".into(), "team=b".into()]).is_err(), "then sets once");
    }

    #[test]
    fn targets_read_priority_response_and_resolution() {
        assert_eq!(
            target("P1:15m:4h").expect("target"),
            json!({"priority": "P1", "response": "15m", "resolution": "4h"})
        );
        assert_eq!(
            target("P4::3d").expect("target"),
            json!({"priority": "P4", "resolution": "3d"})
        );
        assert_eq!(
            target("P2:1h").expect("target"),
            json!({"priority": "P2", "response": "1h"})
        );
        for bad in ["P1", "P1::", ":15m:4h", "P1:1m:2m:3m", ""] {
            assert!(target(bad).is_err(), "{bad:?}");
        }
        assert!(
            targets(&["P1:1m:1h".into(), "p1:2m:2h".into()]).is_err(),
            "a priority once"
        );
    }

    #[test]
    fn wip_limits_are_state_equals_number() {
        let limits = wip_limits(&["new=3".into(), "accepted=5".into()]).expect("limits");
        assert_eq!(Value::Object(limits), json!({"new": 3, "accepted": 5}));
        for bad in ["new", "new=-1", "new=x", "=3"] {
            assert!(wip_limits(&[bad.into()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(segment("Site Reliability").expect("segment"), "Site%20Reliability");
        assert_eq!(segment("a/b?c#d").expect("segment"), "a%2Fb%3Fc%23d");
        assert_eq!(segment("INC-12").expect("segment"), "INC-12");
        for bad in ["", ".", ".."] {
            assert!(segment(bad).is_err(), "{bad:?}");
        }
    }
}
