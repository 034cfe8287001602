//! The `keel` binary: `keel serve` runs the server, `keel verify` checks
//! every timeline offline, `keel bench` measures throughput, and the other
//! subcommands are a client of a running server (`--server`, `--token`).

mod bench;
mod bench_metrics;
mod bench_pages;
mod client;
mod client_capability;
mod client_catalogue;
mod client_import;
mod client_ingest;
mod client_metrics;
mod config;
mod demo;
mod import_csv;
mod import_servicenow;
mod rebuild;
mod serve;
mod verify;

use std::process::ExitCode;

/// mimalloc: request handling allocates many small, short-lived buffers,
/// which glibc's allocator serves noticeably slower on the hot paths.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// keel: incident management, from the alert to the review.
#[derive(Debug, Parser)]
#[command(name = "keel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

// Parsed once at start; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the server (API, metrics, health).
    Serve(serve::ServeArgs),
    /// Check every incident's hash chain in the database, offline.
    Verify(verify::VerifyArgs),
    /// Recompute the metrics' per-incident facts from every timeline, offline.
    RebuildMetrics(rebuild::RebuildArgs),
    /// Measure incident creation and timeline appends through the HTTP API.
    Bench(bench::BenchArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Work with incidents on a running server.
    #[command(subcommand)]
    Incident(client_catalogue::IncidentCommand),
    /// Manage users on a running server.
    #[command(subcommand)]
    User(client::UserCommand),
    /// Manage monitoring integrations (their keys and detection policy).
    #[command(subcommand)]
    Integration(client_ingest::IntegrationCommand),
    /// List the alerts monitoring events made.
    #[command(subcommand)]
    Alert(client_ingest::AlertCommand),
    /// Plan maintenance windows: alerts are kept but open no incident.
    #[command(subcommand)]
    Maintenance(client_ingest::MaintenanceCommand),
    /// Manage teams; see their backlog and who is on call.
    #[command(subcommand)]
    Team(client_catalogue::TeamCommand),
    /// Manage services (owner team, criticality).
    #[command(subcommand)]
    Service(client_catalogue::ServiceCommand),
    /// Manage configuration items and their dependencies.
    #[command(subcommand)]
    Ci(client_catalogue::CiCommand),
    /// Manage classification rules for new incidents.
    #[command(subcommand)]
    Rule(client_catalogue::RuleCommand),
    /// Manage on-call schedules and list their shifts.
    #[command(subcommand)]
    Schedule(client_catalogue::ScheduleCommand),
    /// Manage SLA policies (targets per priority).
    #[command(subcommand)]
    SlaPolicy(client_catalogue::SlaPolicyCommand),
    /// Escalation policies: who takes over when nobody accepts in time.
    #[command(subcommand)]
    Escalation(client_catalogue::EscalationCommand),
    /// The capability self-assessment: level reached, criteria and evidence.
    Capability(client_capability::CapabilityArgs),
    /// Practice metrics for a period (table, --json or --csv).
    Metrics(client_metrics::MetricsArgs),
    /// Bring in history: keel-import/1 JSON lines, or --from servicenow.
    Import(client_import::ImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Commands::Serve(args) => serve::run(args).await,
            Commands::Verify(args) => verify::run(args).await,
            Commands::RebuildMetrics(args) => rebuild::run(args).await,
            Commands::Capability(args) => client_capability::run(args).await,
            Commands::Bench(args) => bench::run(args).await,
            Commands::Config(command) => config::run(&command),
            Commands::Incident(command) => client_catalogue::incident(command).await,
            Commands::User(command) => client::user(command).await,
            Commands::Integration(command) => client_ingest::integration(command).await,
            Commands::Alert(command) => client_ingest::alert(command).await,
            Commands::Maintenance(command) => client_ingest::maintenance(command).await,
            Commands::Team(command) => client_catalogue::team(command).await,
            Commands::Service(command) => client_catalogue::service(command).await,
            Commands::Ci(command) => client_catalogue::ci(command).await,
            Commands::Rule(command) => client_catalogue::rule(command).await,
            Commands::Schedule(command) => client_catalogue::schedule(command).await,
            Commands::SlaPolicy(command) => client_catalogue::sla_policy(command).await,
            Commands::Escalation(command) => client_catalogue::escalation(command).await,
            Commands::Metrics(args) => client_metrics::run(args).await,
            Commands::Import(args) => client_import::run(args).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
