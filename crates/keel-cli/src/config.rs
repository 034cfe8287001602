//! Settings of `keel serve` and `keel verify`, layered as the contract says:
//! command-line flag > `KEEL_*` environment variable > TOML file > default.
//! Flags and variables are read by clap; this module adds the file and the
//! defaults and checks the result once, at start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use keel_domain::PriorityMatrix;
use serde::Deserialize;

/// Flags shared by every command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database and the bootstrap token.
    #[arg(long, env = "KEEL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`; default: SQLite in the data directory.
    #[arg(long, env = "KEEL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A TOML configuration file.
    #[arg(long, env = "KEEL_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The configuration file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_format: Option<String>,
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub sqlite: SqliteFile,
    #[serde(default)]
    pub priority: PriorityFile,
    #[serde(default)]
    pub ingest: IngestFile,
    #[serde(default)]
    pub notify: NotifyFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    /// Where SLA warnings and breaches (and later other notifications) are POSTed as JSON.
    pub webhook_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestFile {
    /// Events per second one integration key may send to one node (429 above); default: no limit.
    pub rate_per_key_per_second: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteFile {
    /// `normal` (default: survives crashes of keel) or `full` (also power loss).
    pub synchronous: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityFile {
    /// Four rows (impact 1..4) of four priorities (urgency 1..4).
    pub matrix: Option<Vec<Vec<String>>>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub matrix: PriorityMatrix,
    pub sqlite: keel_store::SqliteOptions,
    pub max_body_bytes: usize,
    pub listen: String,
    pub log_format: String,
    pub ingest_rate_per_key: Option<f64>,
    /// The outbound webhook for notifications (`[notify] webhook_url` or `KEEL_NOTIFY_WEBHOOK_URL`).
    pub notify_webhook: Option<String>,
    /// Whether this process runs the background sweep and delivery (the bench turns them off).
    pub workers: bool,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./keel-data";

fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing the configuration file {}", path.display()))
}

/// Resolves the settings from flags/env (`store`, `listen`, `log_format`) and the file.
///
/// # Errors
/// When the file cannot be read or a value is invalid.
pub fn resolve(store: &StoreArgs, listen: Option<String>, log_format: Option<String>) -> anyhow::Result<Settings> {
    let file = read_file(store.config.as_deref())?;
    let data_dir = store
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database_url = store
        .database_url
        .clone()
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("keel.db").display()));
    let matrix = match &file.priority.matrix {
        Some(rows) => PriorityMatrix::from_rows(rows).context("priority.matrix in the configuration file")?,
        None => PriorityMatrix::default(),
    };
    let synchronous_full = match file.sqlite.synchronous.as_deref() {
        None | Some("normal") => false,
        Some("full") => true,
        Some(other) => bail!("sqlite.synchronous must be \"normal\" or \"full\", not {other:?}"),
    };
    let log_format = log_format.or(file.log_format).unwrap_or_else(|| "text".into());
    if !matches!(log_format.as_str(), "text" | "json") {
        bail!("log format must be \"text\" or \"json\", not {log_format:?}");
    }
    let notify_webhook = std::env::var("KEEL_NOTIFY_WEBHOOK_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or(file.notify.webhook_url);
    if let Some(url) = &notify_webhook
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        bail!("notify.webhook_url must be an https:// or http:// URL, not {url:?}");
    }
    let max_body_bytes = file.max_body_bytes.unwrap_or(1024 * 1024);
    if max_body_bytes < 1024 {
        bail!("max_body_bytes must be at least 1024");
    }
    Ok(Settings {
        data_dir,
        database_url,
        matrix,
        sqlite: keel_store::SqliteOptions {
            synchronous_full,
            ..keel_store::SqliteOptions::default()
        },
        max_body_bytes,
        listen: listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into()),
        ingest_rate_per_key: match file.ingest.rate_per_key_per_second {
            Some(rate) if !(rate >= 0.0 && rate.is_finite()) => {
                bail!("ingest.rate_per_key_per_second must be a number, 0 for no limit")
            }
            Some(0.0) => None,
            Some(rate) => Some(rate),
            None => Some(DEFAULT_INGEST_RATE),
        },
        log_format,
        notify_webhook,
        workers: true,
    })
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a configuration file with every default, to start from.
    Example,
}

/// Events per second per integration key per node unless configured.
pub const DEFAULT_INGEST_RATE: f64 = 1000.0;

pub const EXAMPLE: &str = r#"# keel configuration. Precedence: command-line flag > KEEL_* variable > this file > default.
listen = "127.0.0.1:8080"
data_dir = "./keel-data"
# database_url = "postgres://postgres@127.0.0.1:5432/keel"   # default: sqlite://<data_dir>/keel.db
log_format = "text"            # or "json"
max_body_bytes = 1048576        # larger request bodies get 413

[sqlite]
synchronous = "normal"         # "full" also survives power loss, at a cost in write speed

[ingest]
rate_per_key_per_second = 1000   # events per integration key per node; above it senders get 429 with
                                 # Retry-After (bursts up to 1000 events pass). 0: no limit.

[notify]
# webhook_url = "https://hooks.example.org/keel"   # SLA warnings, breaches, escalations are POSTed here as JSON

[priority]
# rows: impact 1 (extensive) .. 4 (minor); columns: urgency 1 (critical) .. 4 (low)
matrix = [
  ["P1", "P2", "P3", "P4"],
  ["P2", "P3", "P4", "P5"],
  ["P3", "P4", "P5", "P5"],
  ["P4", "P5", "P5", "P5"],
]
"#;

pub fn run(command: &ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Example => print!("{EXAMPLE}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_matches_the_defaults() {
        let file: FileConfig = toml::from_str(EXAMPLE).expect("example parses");
        let rows = file.priority.matrix.expect("example has a matrix");
        assert_eq!(
            PriorityMatrix::from_rows(&rows).expect("valid"),
            PriorityMatrix::default()
        );
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keel.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\n").expect("write");
        let args = StoreArgs {
            data_dir: None,
            database_url: None,
            config: Some(path),
        };
        let from_file = resolve(&args, None, None).expect("resolves");
        assert_eq!(from_file.listen, "127.0.0.1:9000");
        assert_eq!(from_file.database_url, "sqlite:///tmp/from-file/keel.db");
        let from_flag = resolve(&args, Some("0.0.0.0:1".into()), None).expect("resolves");
        assert_eq!(from_flag.listen, "0.0.0.0:1");
    }

    #[test]
    fn notification_webhooks_must_be_http_or_https_urls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resolve_with = |url: &str| {
            let path = dir.path().join("keel.toml");
            std::fs::write(&path, format!("[notify]\nwebhook_url = \"{url}\"\n")).expect("write");
            let args = StoreArgs {
                data_dir: Some(dir.path().to_path_buf()),
                database_url: None,
                config: Some(path),
            };
            resolve(&args, None, None)
        };
        assert_eq!(
            resolve_with("https://hooks.example.org/keel")
                .expect("https is fine")
                .notify_webhook
                .as_deref(),
            Some("https://hooks.example.org/keel")
        );
        assert!(resolve_with("http://127.0.0.1:9000/hook").is_ok());
        assert!(resolve_with("ftp://example.org/").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
