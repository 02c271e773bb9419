//! `carcosa serve`: run the server until SIGINT or SIGTERM.

use anyhow::Context;
use carcosa_server::Config;
use tokio::net::TcpListener;

/// Options of `carcosa serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
}

/// Serves until a shutdown signal.
pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    if args.print_config {
        use std::io::Write;
        std::io::stdout().lock().write_all(config.to_redacted_toml().as_bytes())?;
        return Ok(());
    }
    // Listen for signals before anything else, so a SIGTERM that arrives during start-up still
    // means "stop gracefully".
    let shutdown = shutdown_signal()?;
    // The process's one metrics recorder, before anything records (served at /metrics).
    carcosa_server::telemetry::install();
    // The database is ready (migrated) before the banner says the server is.
    let store = super::open(&config).await?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!("cannot listen on {} (set CARCOSA_LISTEN or `listen` in the config file)", config.listen)
    })?;
    first_admin(&store).await?;
    let address = listener.local_addr()?;
    let database = config.database_url.redacted();
    eprintln!(
        "\n  Carcosa {version} is listening on http://{address}\n  database:  {database}\n  API docs:  http://{address}/docs\n  dashboard: http://{address}/ui/\n\n  \
No project yet? Create one (it prints an API key):\n    carcosa project create --name \"My SaaS\"\n  \
(from a clone of the repository: cargo run --release -- project create --name \"My SaaS\")\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    tracing::info!(%address, database, "carcosa started");
    carcosa_server::serve_with_store(store, config, listener, shutdown).await?;
    tracing::info!("carcosa stopped");
    Ok(())
}

/// Creates the first operator when there is none: an owner of every project, from
/// `CARCOSA_ADMIN_EMAIL` and `CARCOSA_ADMIN_PASSWORD`, or with a generated password printed here,
/// once, on stderr (never through the log).
async fn first_admin(store: &carcosa_server::store::Store) -> anyhow::Result<()> {
    let email = std::env::var("CARCOSA_ADMIN_EMAIL").ok().filter(|e| !e.trim().is_empty());
    let password = std::env::var("CARCOSA_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
    let Some(admin) =
        carcosa_server::operators::ensure_first_admin(store, email.as_deref(), password.as_deref()).await?
    else {
        return Ok(());
    };
    tracing::info!(operator = %admin.operator.id, "created the first dashboard operator");
    match admin.generated_password {
        Some(password) => eprintln!(
            "\n  First start: created the dashboard admin {email}\n  with the password  {password}\n  \
It is shown only this once; change it with `carcosa user set-password --email {email}`.",
            email = admin.operator.email,
            password = password.expose(),
        ),
        None => eprintln!("\n  First start: created the dashboard admin {}", admin.operator.email),
    }
    Ok(())
}

/// Registers for SIGINT (Ctrl-C) and SIGTERM now; the future completes on either.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
