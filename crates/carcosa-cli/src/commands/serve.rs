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
        print!("{}", config.to_redacted_toml());
        return Ok(());
    }
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (set CARCOSA_LISTEN or `listen` in the config file)",
            config.listen
        )
    })?;
    let address = listener.local_addr()?;
    let database = config.database_url.redacted();
    eprintln!(
        "\n  Carcosa {version} is listening on http://{address}\n  database:  {database}\n  API docs:  http://{address}/docs\n\n  \
No project yet? Create one (it prints an API key):\n    carcosa project create --name \"My SaaS\"\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    tracing::info!(%address, database, "carcosa started");
    carcosa_server::serve(config, listener, shutdown_signal()).await?;
    tracing::info!("carcosa stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
