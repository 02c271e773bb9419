//! `carcosa bench …`: measurements against the design's performance targets (DESIGN §7).
//!
//! `carcosa bench` (or `carcosa bench all`) runs the whole suite: every scenario starts a real
//! server in this process on a scratch database (SQLite, and PostgreSQL when `--postgres-url` is
//! given), drives it from this process, and prints the numbers beside the baselines measured in
//! the same run. `--quick` runs everything briefly (CI runs it as a smoke test). `bench webhooks`
//! and `bench sync` run one part on its own. Nothing here asserts a speed: the results go into
//! `docs/BENCHMARKS.md`.

use anyhow::Context;
use clap::Subcommand;

mod baseline;
mod growth;
mod layer;
mod load;
mod memory;
mod scenarios;
mod server;
mod stats;
mod suite;
mod sync;
mod webhooks;

pub use suite::SuiteArgs;

/// `carcosa bench [SUBCOMMAND] [SUITE FLAGS]`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    suite: SuiteArgs,
}

/// Benchmark scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole suite (the default): HTTP scenarios beside their baselines, webhooks, sync,
    /// the detection layer, and with `--growth` the same at growing numbers of tenants.
    All(SuiteArgs),
    /// Webhook latency: a tenant change commits → a local receiver has the signed delivery.
    /// Creates tenants at a steady rate and measures each event's commit-to-receipt time.
    Webhooks {
        /// Tenant changes per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// How long to measure, in seconds (after the warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Warm-up, in seconds, not measured.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Also run on PostgreSQL: an admin URL; a scratch database is created and dropped.
        #[arg(long, env = "CARCOSA_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Write the results as JSON to this file too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Sync throughput into the app's own database: a full sync of `--tenants` tenants, then
    /// incremental syncs of `--events` creations and `--events` renames, beside their floors
    /// (listing only; raw inserts) measured in the same run.
    Sync {
        /// Tenants on the server for the full sync.
        #[arg(long, default_value_t = 100_000)]
        tenants: u64,
        /// Events for each incremental sync.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Sync into PostgreSQL: an admin URL; a scratch database is created and dropped.
        /// Without it, into SQLite.
        #[arg(long, env = "CARCOSA_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Write the results as JSON to this file too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
}

/// Runs the suite or one part of it.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let command = args.command.unwrap_or(Command::All(args.suite));
    match command {
        Command::All(suite) => suite::run(suite).await,
        Command::Webhooks { rate, seconds, warmup, postgres_url, json } => {
            let mut results = vec![webhooks::webhook_latency("sqlite", None, rate, warmup, seconds).await?];
            if let Some(admin) = postgres_url {
                results
                    .push(webhooks::webhook_latency("postgres", Some(&admin), rate, warmup, seconds).await?);
            }
            webhooks::print_table(&results)?;
            write_json(json.as_deref(), &results)
        }
        Command::Sync { tenants, events, postgres_url, json } => {
            let result = sync::sync_throughput(tenants, events, postgres_url.as_deref()).await?;
            sync::print_table(std::slice::from_ref(&result))?;
            write_json(json.as_deref(), &result)
        }
    }
}

/// Writes `value` as pretty JSON to `path`, when there is one.
fn write_json(path: Option<&std::path::Path>, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_vec_pretty(value)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A scratch database for one run.
struct Scratch {
    dir: tempfile::TempDir,
    url: String,
    drop_pg: Option<(String, String)>,
}

impl Scratch {
    /// A scratch directory for files of the run.
    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Drops the PostgreSQL database, if there is one (the directory goes with `self`).
    fn remove(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = &self.drop_pg {
            sqlx_free::drop_database(admin, name)?;
        }
        Ok(())
    }
}

async fn scratch(backend: &str, admin: Option<&str>) -> anyhow::Result<Scratch> {
    let dir = tempfile::tempdir()?;
    match admin {
        None => {
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            Ok(Scratch { dir, url, drop_pg: None })
        }
        Some(admin) => {
            use sqlx_free::create_database;
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("carcosa_bench_{}_{n}", std::process::id());
            let url = create_database(admin, &name)
                .await
                .with_context(|| format!("cannot create the {backend} scratch database"))?;
            Ok(Scratch { dir, url, drop_pg: Some((admin.to_owned(), name)) })
        }
    }
}

/// Creating and dropping a PostgreSQL database through the server's store types would need
/// sqlx here; `psql` does it without another dependency.
mod sqlx_free {
    use anyhow::Context;

    pub async fn create_database(admin: &str, name: &str) -> anyhow::Result<String> {
        psql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        psql(admin, &format!("CREATE DATABASE {name}"))?;
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        Ok(format!("{base}/{name}"))
    }

    pub fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
        psql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    }

    fn psql(admin: &str, sql: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("psql").args([admin, "-qc", sql]).status().context("psql")?;
        anyhow::ensure!(status.success(), "psql failed: {sql}");
        Ok(())
    }
}
