//! `keel serve`: open the store (migrating it), make sure an admin exists,
//! and serve the API until SIGTERM or Ctrl-C, draining requests in flight.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use keel_domain::Role;
use keel_http::{AppState, HttpConfig, TOKEN_PREFIX, hash_token, new_token_secret};
use keel_store::{ApiToken, Clock, NewUser, Store, SystemClock};
use tokio::net::TcpListener;

use crate::config::{Settings, StoreArgs, resolve};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KEEL_LISTEN")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// `text` or `json` (one JSON object per line).
    #[arg(long, env = "KEEL_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Fill an empty database with a demo organisation and three weeks of incidents.
    #[arg(long)]
    pub demo: bool,
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the store the settings name.
pub async fn open_store(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Store>> {
    keel_store::open(&settings.database_url, clock, settings.sqlite)
        .await
        .with_context(|| format!("opening the database {}", redact(&settings.database_url)))
}

/// Hides a password in a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// On an empty database, creates the first admin (`admin@localhost`) with a
/// token and a password: the values of `KEEL_BOOTSTRAP_TOKEN` and
/// `KEEL_BOOTSTRAP_PASSWORD`, or new ones that are printed once and written to
/// `<data-dir>/admin-token` and `<data-dir>/admin-password` (mode 0600).
pub async fn bootstrap(store: &dyn Store, clock: &dyn Clock, data_dir: &Path) -> anyhow::Result<()> {
    let given = std::env::var("KEEL_BOOTSTRAP_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    if given.as_ref().is_some_and(|t| t.len() < 16) {
        anyhow::bail!("KEEL_BOOTSTRAP_TOKEN must have at least 16 characters");
    }
    let secret = given.clone().unwrap_or_else(new_token_secret);
    let given_password = std::env::var("KEEL_BOOTSTRAP_PASSWORD")
        .ok()
        .filter(|p| !p.trim().is_empty());
    if given_password.as_ref().is_some_and(|p| p.chars().count() < 12) {
        anyhow::bail!("KEEL_BOOTSTRAP_PASSWORD must have at least 12 characters");
    }
    let password = given_password
        .clone()
        .unwrap_or_else(|| new_token_secret().chars().skip(TOKEN_PREFIX.len()).take(20).collect());
    let password_hash = keel_http::auth::hash_password(&password).map_err(|e| anyhow::anyhow!(e.detail))?;
    let admin_id = uuid_v7();
    let admin = NewUser {
        id: admin_id.clone(),
        name: "Administrator".into(),
        email: "admin@localhost".into(),
        role: Role::Admin,
        time_zone: None,
        password_hash: Some(password_hash),
        contact_methods: Vec::new(),
    };
    let token = ApiToken {
        id: uuid_v7(),
        user_id: admin_id,
        name: "bootstrap".into(),
        token_hash: hash_token(&secret),
        created_at: clock.now(),
    };
    if !store
        .bootstrap_admin(admin, token)
        .await
        .context("creating the first admin")?
    {
        return Ok(());
    }
    if given.is_some() && given_password.is_some() {
        tracing::info!(
            "created the first admin with the token and password from KEEL_BOOTSTRAP_TOKEN and KEEL_BOOTSTRAP_PASSWORD"
        );
        return Ok(());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    if given.is_none() {
        let path = data_dir.join("admin-token");
        write_secret(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "Created the first admin. Its API token (shown once, also in {}):\n{secret}",
            path.display()
        );
    }
    if given_password.is_none() {
        let path = data_dir.join("admin-password");
        write_secret(&path, &password).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "Sign in at /login as admin@localhost with this password (shown once, also in {}):\n{password}",
            path.display()
        );
    }
    Ok(())
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{secret}")
}

fn uuid_v7() -> String {
    keel_http::new_id()
}

/// Builds the app for settings and an opened store.
pub fn app(settings: &Settings, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> axum::Router {
    let state = AppState::new(store, clock, settings.matrix.clone());
    // Load the metrics' facts now rather than on the first report.
    let warming = state.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match warming.facts.warm(&*warming.store, warming.clock.now()).await {
            Ok(done) => tracing::info!(
                incidents = done.known,
                folded = done.folded,
                seconds = started.elapsed().as_secs_f64(),
                "metrics facts loaded"
            ),
            Err(error) => tracing::warn!(%error, "metrics facts not loaded; the first report will load them"),
        }
    });
    if settings.workers {
        keel_http::workers::spawn(state.clone(), settings.notify_webhook.clone());
    }
    keel_http::router(
        state,
        &HttpConfig {
            max_body_bytes: settings.max_body_bytes,
            ingest_rate_per_key: settings.ingest_rate_per_key,
        },
    )
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining requests in flight");
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = resolve(&args.store, args.listen, args.log_format)?;
    init_logs(&settings.log_format);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&settings, Arc::clone(&clock)).await?;
    bootstrap(store.as_ref(), clock.as_ref(), &settings.data_dir).await?;
    if args.demo {
        let n_incidents = crate::demo::fill(
            store.as_ref(),
            clock.as_ref(),
            std::sync::Arc::new(settings.matrix.clone()),
        )
        .await
        .context("filling the demo data")?;
        if n_incidents > 0 {
            tracing::info!(n_incidents, "--demo: added demo users and incidents");
            println!(
                "Demo people sign in with the password {:?}: sam.okafor@demo.keel (agent), \
                 maya.brandt@demo.keel (incident manager), eve.martin@demo.keel (end user).",
                crate::demo::DEMO_PASSWORD
            );
        }
    }
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address: SocketAddr = listener.local_addr()?;
    tracing::info!(%address, engine = store.engine(), database = %redact(&settings.database_url), "keel is serving");
    let app = app(&settings, store, clock);
    // Answers are small and latency matters more than packet count.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn database_passwords_are_hidden_in_messages() {
        assert_eq!(
            redact("postgres://keel:s3cret@db:5432/keel"),
            "postgres://keel:***@db:5432/keel"
        );
        assert_eq!(redact("sqlite://./keel-data/keel.db"), "sqlite://./keel-data/keel.db");
    }
}
