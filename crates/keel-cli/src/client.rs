//! The command-line client: each subcommand is one API call on a running
//! server. Output is a readable table by default and the API's JSON with
//! `--json`. Errors print the server's problem detail and exit 1.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Map, Value, json};

/// Where and as whom to connect.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, env = "KEEL_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// An API token (see `<data-dir>/admin-token` after the first start).
    #[arg(long, env = "KEEL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Register an incident.
    Create(CreateArgs),
    /// List incidents, newest first.
    List(ListArgs),
    /// Show one incident.
    Show(IdArgs),
    /// Accept it for diagnosis.
    Accept(ActionArgs),
    /// Put it on hold: --reason awaiting_user|awaiting_supplier|awaiting_change|other.
    Hold(ActionArgs),
    /// Resume work after a hold.
    Resume(ActionArgs),
    /// Record the cause (--cause) or a diagnostic note (--note).
    Diagnose(ActionArgs),
    /// Resolve it: --code and --notes.
    Resolve(ActionArgs),
    /// Close a resolved incident.
    Close(ActionArgs),
    /// Reopen a resolved incident: --reason.
    Reopen(ActionArgs),
    /// Cancel it: --reason.
    Cancel(ActionArgs),
    /// Move it to a team and/or owner.
    Assign(ActionArgs),
    /// Join the swarm on it (you, or --user).
    Join(ActionArgs),
    /// Leave the swarm (you, or --user).
    Leave(ActionArgs),
    /// Add a comment (internal unless --public).
    Comment(CommentArgs),
    /// Show the timeline, oldest first.
    Timeline(IdArgs),
    /// Check the timeline's hash chain on the server.
    Verify(IdArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub title: String,
    #[arg(long)]
    pub description: Option<String>,
    /// 1 (extensive) .. 4 (minor)
    #[arg(long)]
    pub impact: Option<u8>,
    /// 1 (critical) .. 4 (low)
    #[arg(long)]
    pub urgency: Option<u8>,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub ci: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    /// User id of the owner (default: you).
    #[arg(long)]
    pub owner: Option<String>,
    /// user | monitoring | specialist | supplier
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long)]
    pub location: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Comma-separated states.
    #[arg(long)]
    pub state: Option<String>,
    /// Comma-separated priorities.
    #[arg(long)]
    pub priority: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    /// A user id or `me`.
    #[arg(long)]
    pub owner: Option<String>,
    /// Owner or collaborator: a user id or `me` (my work, swarms included).
    #[arg(long)]
    pub involved: Option<String>,
    /// Comma-separated SLA states: within, at_risk, breached, met, missed.
    #[arg(long)]
    pub sla: Option<String>,
    /// Search text.
    #[arg(long)]
    pub q: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Incident id, number or INC-number.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Incident id, number or INC-number.
    pub id: String,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub note: Option<String>,
    #[arg(long)]
    pub cause: Option<String>,
    #[arg(long)]
    pub code: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    #[arg(long)]
    pub workaround: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    /// join, leave: the person (user id); default: you.
    #[arg(long)]
    pub user: Option<String>,
    /// close: the reporter's satisfaction, 1 to 5.
    #[arg(long)]
    pub satisfaction: Option<u8>,
    /// close: effort spent, in minutes.
    #[arg(long)]
    pub time_spent_minutes: Option<u32>,
    /// close: a post-incident review is needed.
    #[arg(long)]
    pub review_needed: bool,
    /// When it really happened, if you document it late (RFC 3339).
    #[arg(long)]
    pub occurred_at: Option<String>,
    /// Only act if the incident is still at this version.
    #[arg(long)]
    pub if_match: Option<u64>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct CommentArgs {
    /// Incident id, number or INC-number.
    pub id: String,
    /// The comment text.
    pub body: String,
    /// Visible to the reporting user too.
    #[arg(long)]
    pub public: bool,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (admin).
    Create(UserCreateArgs),
    /// List users.
    List(UserListArgs),
    /// Change a user: name, time zone, contact methods (yourself); role, disabled (admin).
    Update(UserUpdateArgs),
    /// Mint an API token for a user (shown once).
    Token(UserTokenArgs),
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub email: String,
    /// end_user | agent | incident_manager | admin
    #[arg(long)]
    pub role: String,
    /// IANA time zone, e.g. Europe/Berlin.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// KIND:ADDRESS (email, sms, phone, chat, webhook); repeat for each.
    #[arg(long = "contact", value_name = "KIND:ADDRESS")]
    pub contacts: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

/// `keel user update`: what to change.
#[derive(Debug, Args)]
pub struct UserUpdateArgs {
    /// The user's id.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Admins only.
    #[arg(long)]
    pub role: Option<String>,
    /// An empty string clears it.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// KIND:ADDRESS; the list replaces the current one.
    #[arg(long = "contact", value_name = "KIND:ADDRESS")]
    pub contacts: Vec<String>,
    /// Admins only: the user can no longer sign in or use tokens.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    #[arg(long)]
    pub enable: bool,
    #[command(flatten)]
    pub connection: Connection,
}

/// Reads `KIND:ADDRESS` contact methods.
fn contacts(specs: &[String]) -> anyhow::Result<Vec<Value>> {
    specs
        .iter()
        .map(|spec| {
            let (kind, address) = spec
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--contact {spec:?}: write KIND:ADDRESS, e.g. email:ann@example.org"))?;
            Ok(json!({"kind": kind.trim(), "address": address.trim()}))
        })
        .collect()
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Args)]
pub struct UserTokenArgs {
    /// The user's id.
    pub user: String,
    #[arg(long, default_value = "cli")]
    pub name: String,
    #[command(flatten)]
    pub connection: Connection,
}

pub(crate) struct Client {
    http: reqwest::Client,
    pub(crate) base: String,
    token: String,
}

impl Client {
    pub(crate) fn new(connection: &Connection) -> anyhow::Result<Self> {
        let Some(token) = connection.token.clone() else {
            bail!(
                "no API token: pass --token or set KEEL_TOKEN (the first admin's token is in <data-dir>/admin-token)"
            );
        };
        Ok(Self {
            http: reqwest::Client::new(),
            base: connection.server.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<u64>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(version) = if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        Self::answer(request, &url).await
    }

    /// POSTs a text body (JSON lines) and reads the JSON answer.
    pub(crate) async fn post_text(&self, path: &str, body: String) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header("content-type", "application/x-ndjson")
            .body(body);
        Self::answer(request, &url).await
    }

    async fn answer(request: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let detail = value
                .get("detail")
                .and_then(Value::as_str)
                .map_or_else(|| value.to_string(), str::to_string);
            bail!(
                "{} {}: {detail}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
        }
        Ok(value)
    }
}

pub(crate) fn put(body: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(key.to_string(), value.into());
    }
}

pub(crate) fn encode(segment: &str) -> String {
    segment
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub(crate) fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn print_incident(incident: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    for key in [
        "key",
        "title",
        "state",
        "priority",
        "impact",
        "urgency",
        "service",
        "ci",
        "category",
        "team",
        "owner",
        "reported_by",
        "hold_reason",
        "cause",
        "created_at",
        "updated_at",
        "reassignments",
        "reopens",
        "version",
        "id",
    ] {
        let value = text(incident, key);
        if !value.is_empty() {
            table.add_row(vec![key.to_string(), value]);
        }
    }
    if let Some(resolution) = incident.get("resolution").filter(|r| !r.is_null()) {
        table.add_row(vec![
            "resolution".to_string(),
            format!("{}: {}", text(resolution, "code"), text(resolution, "notes")),
        ]);
    }
    println!("{table}");
}

fn print_list(page: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec!["NUMBER", "STATE", "PRIO", "TITLE", "TEAM", "OWNER", "UPDATED"]);
    for item in page.get("items").and_then(Value::as_array).into_iter().flatten() {
        table.add_row(vec![
            text(item, "key"),
            text(item, "state"),
            text(item, "priority"),
            text(item, "title"),
            text(item, "team"),
            text(item, "owner"),
            text(item, "updated_at"),
        ]);
    }
    println!("{table}");
    if let Some(cursor) = page.get("next_cursor").and_then(Value::as_str) {
        println!("more: --cursor {cursor}");
    }
}

fn summary(entry: &Value) -> String {
    let data = entry.get("data").cloned().unwrap_or(Value::Null);
    let fields = [
        "title", "reason", "cause", "note", "code", "notes", "body", "team", "owner",
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|k| data.get(*k).and_then(Value::as_str).map(|v| format!("{k}: {v}")))
        .collect();
    if parts.is_empty() {
        data.to_string()
    } else {
        parts.join("; ")
    }
}

fn print_timeline(page: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec!["SEQ", "RECORDED", "CLAIMED", "KIND", "ACTOR", "DETAIL"]);
    for entry in page.get("items").and_then(Value::as_array).into_iter().flatten() {
        table.add_row(vec![
            text(entry, "seq"),
            text(entry, "recorded_at"),
            text(entry, "occurred_at"),
            text(entry, "kind"),
            text(entry, "actor"),
            summary(entry),
        ]);
    }
    println!("{table}");
}

pub(crate) fn show(json: bool, value: &Value, table: fn(&Value)) {
    if json {
        println!("{value}");
    } else {
        table(value);
    }
}

pub async fn incident(command: IncidentCommand) -> anyhow::Result<ExitCode> {
    use reqwest::Method;
    match command {
        IncidentCommand::Create(args) => {
            let client = Client::new(&args.connection)?;
            let mut body = Map::new();
            body.insert("title".into(), json!(args.title));
            put(&mut body, "description", args.description);
            put(&mut body, "impact", args.impact);
            put(&mut body, "urgency", args.urgency);
            put(&mut body, "service", args.service);
            put(&mut body, "ci", args.ci);
            put(&mut body, "category", args.category);
            put(&mut body, "team", args.team);
            put(&mut body, "owner", args.owner);
            put(&mut body, "source", args.source);
            put(&mut body, "location", args.location);
            let created = client
                .call(Method::POST, "/api/v1/incidents", Some(Value::Object(body)), None)
                .await?;
            show(args.connection.json, &created, print_incident);
        }
        IncidentCommand::List(args) => {
            let client = Client::new(&args.connection)?;
            let qs = query_string(&[
                ("state", args.state),
                ("priority", args.priority),
                ("service", args.service),
                ("team", args.team),
                ("owner", args.owner),
                ("involved", args.involved),
                ("sla", args.sla),
                ("q", args.q),
                ("limit", args.limit.map(|l| l.to_string())),
                ("cursor", args.cursor),
            ]);
            let page = client
                .call(Method::GET, &format!("/api/v1/incidents{qs}"), None, None)
                .await?;
            show(args.connection.json, &page, print_list);
        }
        IncidentCommand::Show(args) => {
            let client = Client::new(&args.connection)?;
            let incident = client
                .call(
                    Method::GET,
                    &format!("/api/v1/incidents/{}", encode(&args.id)),
                    None,
                    None,
                )
                .await?;
            show(args.connection.json, &incident, print_incident);
        }
        IncidentCommand::Timeline(args) => {
            let client = Client::new(&args.connection)?;
            // Follow the cursors so the whole timeline prints, however long.
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let after = cursor
                    .as_deref()
                    .map_or_else(String::new, |c| format!("&cursor={}", percent(c)));
                let path = format!("/api/v1/incidents/{}/timeline?limit=500{after}", encode(&args.id));
                let page = client.call(Method::GET, &path, None, None).await?;
                items.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
                match page.get("next_cursor").and_then(Value::as_str) {
                    Some(next) => cursor = Some(next.to_string()),
                    None => break,
                }
            }
            let whole = json!({ "items": items, "next_cursor": null });
            show(args.connection.json, &whole, print_timeline);
        }
        IncidentCommand::Verify(args) => {
            let client = Client::new(&args.connection)?;
            let report = client
                .call(
                    Method::GET,
                    &format!("/api/v1/incidents/{}/verify", encode(&args.id)),
                    None,
                    None,
                )
                .await?;
            let ok = report.get("ok").and_then(Value::as_bool) == Some(true);
            if args.connection.json {
                println!("{report}");
            } else if ok {
                println!("ok: {} entries verify", text(&report, "entries"));
            } else {
                println!(
                    "BROKEN at entry {}: {}",
                    text(&report, "first_bad_seq"),
                    text(&report, "problem")
                );
            }
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        IncidentCommand::Comment(args) => {
            let client = Client::new(&args.connection)?;
            let body = json!({ "body": args.body, "visibility": if args.public { "public" } else { "internal" } });
            let entry = client
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{}/comments", encode(&args.id)),
                    Some(body),
                    None,
                )
                .await?;
            if args.connection.json {
                println!("{entry}");
            } else {
                println!("comment recorded as entry {}", text(&entry, "seq"));
            }
        }
        IncidentCommand::Accept(args) => action("accept", args).await?,
        IncidentCommand::Hold(args) => action("hold", args).await?,
        IncidentCommand::Resume(args) => action("resume", args).await?,
        IncidentCommand::Diagnose(args) => action("diagnose", args).await?,
        IncidentCommand::Resolve(args) => action("resolve", args).await?,
        IncidentCommand::Close(args) => action("close", args).await?,
        IncidentCommand::Reopen(args) => action("reopen", args).await?,
        IncidentCommand::Cancel(args) => action("cancel", args).await?,
        IncidentCommand::Assign(args) => action("assign", args).await?,
        IncidentCommand::Join(args) => action("join", args).await?,
        IncidentCommand::Leave(args) => action("leave", args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A query string (`?a=1&b=2`) of the parameters that have a value; empty when none has.
pub(crate) fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent(v))))
        .collect();
    if encoded.is_empty() {
        return String::new();
    }
    format!("?{}", encoded.join("&"))
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn action(name: &str, args: ActionArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection)?;
    let mut body = Map::new();
    put(&mut body, "reason", args.reason);
    put(&mut body, "note", args.note);
    put(&mut body, "cause", args.cause);
    put(&mut body, "code", args.code);
    put(&mut body, "notes", args.notes);
    put(&mut body, "workaround", args.workaround);
    put(&mut body, "team", args.team);
    put(&mut body, "owner", args.owner);
    put(&mut body, "user", args.user);
    put(&mut body, "occurred_at", args.occurred_at);
    put(&mut body, "satisfaction", args.satisfaction);
    put(&mut body, "time_spent_minutes", args.time_spent_minutes);
    if args.review_needed {
        body.insert("review_needed".into(), json!(true));
    }
    let path = format!("/api/v1/incidents/{}/actions/{name}", encode(&args.id));
    let incident = client
        .call(reqwest::Method::POST, &path, Some(Value::Object(body)), args.if_match)
        .await?;
    show(args.connection.json, &incident, print_incident);
    Ok(())
}

pub async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    use reqwest::Method;
    match command {
        UserCommand::Create(args) => {
            let client = Client::new(&args.connection)?;
            let user = client
                .call(
                    Method::POST,
                    "/api/v1/users",
                    Some({
                        let mut body = json!({"name": args.name, "email": args.email, "role": args.role});
                        if let Some(tz) = args.time_zone {
                            body["time_zone"] = json!(tz);
                        }
                        if !args.contacts.is_empty() {
                            body["contact_methods"] = Value::Array(contacts(&args.contacts)?);
                        }
                        body
                    }),
                    None,
                )
                .await?;
            if args.connection.json {
                println!("{user}");
            } else {
                println!(
                    "created user {} ({}) with id {}",
                    text(&user, "name"),
                    text(&user, "role"),
                    text(&user, "id")
                );
            }
        }
        UserCommand::Update(args) => {
            let client = Client::new(&args.connection)?;
            let mut body = Map::new();
            put(&mut body, "name", args.name);
            put(&mut body, "role", args.role);
            put(&mut body, "time_zone", args.time_zone);
            if !args.contacts.is_empty() {
                body.insert("contact_methods".into(), Value::Array(contacts(&args.contacts)?));
            }
            if args.disable || args.enable {
                body.insert("disabled".into(), json!(args.disable));
            }
            anyhow::ensure!(
                !body.is_empty(),
                "nothing to change: give --name, --role, --time-zone, --contact, --disable or --enable"
            );
            let user = client
                .call(
                    Method::PATCH,
                    &format!("/api/v1/users/{}", encode(&args.id)),
                    Some(Value::Object(body)),
                    None,
                )
                .await?;
            if args.connection.json {
                println!("{user}");
            } else {
                println!("updated user {} ({})", text(&user, "name"), text(&user, "id"));
            }
        }
        UserCommand::List(args) => {
            let client = Client::new(&args.connection)?;
            let page = client.call(Method::GET, "/api/v1/users", None, None).await?;
            if args.connection.json {
                println!("{page}");
            } else {
                let mut table = Table::new();
                table.load_preset(UTF8_BORDERS_ONLY);
                table.set_header(vec!["ID", "NAME", "EMAIL", "ROLE"]);
                for u in page.get("items").and_then(Value::as_array).into_iter().flatten() {
                    table.add_row(vec![text(u, "id"), text(u, "name"), text(u, "email"), text(u, "role")]);
                }
                println!("{table}");
            }
        }
        UserCommand::Token(args) => {
            let client = Client::new(&args.connection)?;
            let token = client
                .call(
                    Method::POST,
                    &format!("/api/v1/users/{}/tokens", encode(&args.user)),
                    Some(json!({"name": args.name})),
                    None,
                )
                .await?;
            if args.connection.json {
                println!("{token}");
            } else {
                println!("{}", text(&token, "token"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
