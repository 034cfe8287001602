//! `keel verify`: recompute every incident's hash chain straight from the
//! database (no server needed) and name the first bad entry of each broken
//! one. Exits 0 when all chains hold, 1 otherwise.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use keel_store::{Clock, SystemClock};

use crate::config::{StoreArgs, resolve};
use crate::serve::open_store;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let settings = resolve(&args.store, None, None)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&settings, clock).await?;
    let results = store.verify_all().await?;
    let bad: Vec<_> = results.iter().filter(|r| !r.report.ok).collect();
    let n_entries: u64 = results.iter().map(|r| r.report.entries).sum();
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "ok": bad.is_empty(), "incidents": results.len(), "entries": n_entries, "broken": bad })
        );
    } else {
        for result in &bad {
            println!(
                "INC-{} ({}): first bad entry {}: {}",
                result.number,
                result.id,
                result
                    .report
                    .first_bad_seq
                    .map_or_else(|| "?".into(), |s| s.to_string()),
                result.report.problem.as_deref().unwrap_or("chain broken")
            );
        }
        if bad.is_empty() {
            println!(
                "ok: {} incidents, {n_entries} timeline entries, every chain verifies",
                results.len()
            );
        } else {
            println!(
                "FAILED: {} of {} incidents have a broken timeline",
                bad.len(),
                results.len()
            );
        }
    }
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
