//! `keel rebuild-metrics`: forget the metrics' kept per-incident facts and
//! fold every incident's timeline again, straight from the database (no
//! server needed). The facts are derived data: this is how they are proven
//! to come from the timelines, and how they are refreshed after an upgrade
//! that changes a metric's definition.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use keel_store::{Clock, SystemClock};

use crate::config::{StoreArgs, resolve};
use crate::serve::open_store;

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let settings = resolve(&args.store, None, None)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&settings, Arc::clone(&clock)).await?;
    let started = Instant::now();
    let (cleared, done) = keel_http::facts::rebuild(&*store, clock.now()).await?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"cleared": cleared, "incidents": done.known, "folded": done.folded, "seconds": seconds})
        );
    } else {
        println!(
            "rebuilt: {} incidents folded from their timelines in {seconds:.1} s ({cleared} kept facts replaced); \
             a running server reloads them at its next start",
            done.folded
        );
    }
    Ok(ExitCode::SUCCESS)
}
