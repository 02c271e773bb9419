//! `carcosa`: run the Carcosa server and manage its projects and API keys.
//!
//! Every command reads the same configuration as the server (defaults, `--config FILE`,
//! `CARCOSA_*` variables, then `--database-url`), so the CLI and a running server on the same
//! machine talk to the same database. Machine-readable output goes to stdout; messages and logs
//! go to stderr.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use carcosa_server::Config;
use carcosa_server::config::LogFormat;
use clap::{Parser, Subcommand};

/// Carcosa: the tenant control plane.
#[derive(Debug, Parser)]
#[command(name = "carcosa", version, about, propagate_version = true)]
struct Cli {
    /// A TOML configuration file (see `carcosa serve --print-config` for the keys).
    #[arg(long, global = true, env = "CARCOSA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The database: `sqlite://PATH` (default `sqlite://carcosa.db`) or `postgres://…`.
    /// Overrides the config file and CARCOSA_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (REST API, changes feed, docs at /docs).
    Serve(commands::serve::Args),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create and list projects.
    #[command(subcommand)]
    Project(commands::project::Command),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Key(commands::key::Command),
    /// Keep an app's own tenant table in sync with Carcosa (the sidecar, for apps in any
    /// language). The app's database is `--database-url`.
    Sync(Box<commands::sync::Args>),
    /// Measure Carcosa on this machine (see docs/BENCHMARKS.md): the whole suite, or one
    /// part of it.
    Bench(Box<commands::bench::Args>),
    /// Create and list dashboard operators, set their passwords.
    #[command(subcommand)]
    User(commands::user::Command),
    /// Webhook tools for development.
    #[command(subcommand)]
    Webhook(commands::webhook::Command),
}

impl Cli {
    /// The effective configuration for this invocation.
    fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(url) = &self.database_url {
            config.database_url = carcosa_server::config::DatabaseUrl(url.clone());
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = cli.load_config().and_then(|config| {
        init_logging(&config, matches!(cli.command, Command::Serve(_) | Command::Sync(_)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(run(cli.command, config, cli.database_url))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config, app_database: Option<String>) -> anyhow::Result<()> {
    match command {
        Command::Sync(args) => commands::sync::run(*args, app_database).await,
        Command::Serve(args) => commands::serve::run(args, config).await,
        Command::Migrate => commands::migrate::run(config).await,
        Command::Project(command) => commands::project::run(command, config).await,
        Command::Key(command) => commands::key::run(command, config).await,
        Command::User(command) => commands::user::run(command, config).await,
        Command::Webhook(command) => commands::webhook::run(command).await,
        Command::Bench(args) => commands::bench::run(*args).await,
    }
}

/// Logs to stderr: `info` for the server, `warn` for one-shot commands; `CARCOSA_LOG` overrides
/// (an `EnvFilter` directive such as `debug` or `carcosa_server=debug,sqlx=warn`).
fn init_logging(config: &Config, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_env("CARCOSA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
