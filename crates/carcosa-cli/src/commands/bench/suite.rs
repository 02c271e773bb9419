//! The whole suite: `carcosa bench` / `carcosa bench all`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::layer::{self, LayerResult};
use super::load::Load;
use super::scenarios::{self, ScenarioResult};
use super::server::Running;
use super::sync::{self, SyncResult};
use super::webhooks::{self, WebhookResult};

/// Settings of the whole suite.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Every scenario briefly, on small data (about 1 s each; a smoke test).
    #[arg(long)]
    quick: bool,
    /// Concurrent connections (or database writers) of the HTTP scenarios and baselines.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured seconds per scenario [default: 10; 1 with --quick].
    #[arg(long)]
    seconds: Option<f64>,
    /// Warm-up seconds per scenario, not measured [default: 2; 0.3 with --quick].
    #[arg(long)]
    warmup: Option<f64>,
    /// Tenants seeded for the HTTP scenarios [default: 10000; 500 with --quick].
    #[arg(long)]
    tenants: Option<u64>,
    /// Tenants of the full sync [default: 100000; 1000 with --quick].
    #[arg(long)]
    sync_tenants: Option<u64>,
    /// Events of each incremental sync [default: 10000; 200 with --quick].
    #[arg(long)]
    sync_events: Option<u64>,
    /// Tenant changes per second of the webhook scenario [default: 500; 100 with --quick].
    #[arg(long)]
    webhook_rate: Option<u32>,
    /// Also run on PostgreSQL: an admin URL; scratch databases are created and dropped.
    #[arg(long, env = "CARCOSA_BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Also run the HTTP scenarios at growing numbers of tenants (`--growth-sizes`).
    #[arg(long)]
    growth: bool,
    /// Tenant counts of the growth runs [default: 1000,100000,1000000; 100,1000 with --quick].
    #[arg(long, value_delimiter = ',')]
    growth_sizes: Vec<u64>,
    /// Run only these parts: http, webhooks, sync, detect, growth [default: all but growth,
    /// which `--growth` adds].
    #[arg(long, value_delimiter = ',', value_parser = ["http", "webhooks", "sync", "detect", "growth"])]
    only: Vec<String>,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
struct Report {
    settings: Settings,
    http: Vec<ScenarioResult>,
    webhooks: Vec<WebhookResult>,
    sync: Vec<SyncResult>,
    detection: Option<LayerResult>,
    growth: Vec<ScenarioResult>,
}

/// The effective settings, defaults resolved.
#[derive(Debug, Default, Clone, Serialize)]
struct Settings {
    quick: bool,
    concurrency: usize,
    seconds: f64,
    warmup: f64,
    tenants: u64,
    sync_tenants: u64,
    sync_events: u64,
    webhook_rate: u32,
    growth_sizes: Vec<u64>,
    parts: Vec<String>,
}

impl Settings {
    fn from(args: &SuiteArgs) -> Self {
        let q = args.quick;
        let mut parts = if args.only.is_empty() {
            ["http", "webhooks", "sync", "detect"].map(String::from).to_vec()
        } else {
            args.only.clone()
        };
        if args.growth && !parts.iter().any(|p| p == "growth") {
            parts.push("growth".into());
        }
        Self {
            quick: q,
            concurrency: args.concurrency.max(1),
            seconds: args.seconds.unwrap_or(if q { 1.0 } else { 10.0 }),
            warmup: args.warmup.unwrap_or(if q { 0.3 } else { 2.0 }),
            tenants: args.tenants.unwrap_or(if q { 500 } else { 10_000 }).max(1),
            sync_tenants: args.sync_tenants.unwrap_or(if q { 1000 } else { 100_000 }),
            sync_events: args.sync_events.unwrap_or(if q { 200 } else { 10_000 }),
            webhook_rate: args.webhook_rate.unwrap_or(if q { 100 } else { 500 }),
            growth_sizes: if args.growth_sizes.is_empty() {
                if q { vec![100, 1000] } else { vec![1000, 100_000, 1_000_000] }
            } else {
                args.growth_sizes.clone()
            },
            parts,
        }
    }

    fn has(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }

    fn load(&self) -> Load {
        Load {
            concurrency: self.concurrency,
            warmup: Duration::from_secs_f64(self.warmup.max(0.0)),
            measure: Duration::from_secs_f64(self.seconds.max(0.05)),
        }
    }
}

/// Runs the parts the settings select, then prints and writes the report.
pub(super) async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let settings = Settings::from(&args);
    let backends: Vec<(&'static str, Option<&str>)> = std::iter::once(("sqlite", None))
        .chain(args.postgres_url.as_deref().map(|url| ("postgres", Some(url))))
        .collect();
    let mut report = Report { settings: settings.clone(), ..Report::default() };
    let load = settings.load();

    if settings.has("http") {
        for (backend, admin) in &backends {
            eprintln!(
                "HTTP scenarios on {backend}: {} tenants, {} connections",
                settings.tenants, load.concurrency
            );
            let running = Running::start(backend, *admin, settings.tenants).await?;
            let mut results = scenarios::baselines(&running, load).await?;
            results.extend(scenarios::reads(&running, load).await?);
            running.add_endpoint().await?;
            results.push(scenarios::create(&running, load, 0).await?);
            running.stop().await?;
            scenarios::compare(&mut results);
            report.http.extend(results);
        }
    }
    if settings.has("detect") {
        eprintln!("detection layer");
        let (warmup, measure) = (load.warmup.max(Duration::from_millis(200)), load.measure);
        report.detection = Some(layer::measure(warmup, measure).await?);
    }
    if settings.has("webhooks") {
        let seconds = settings.seconds.round().max(1.0) as u64;
        let warmup = settings.warmup.round() as u64;
        for (backend, admin) in &backends {
            report.webhooks.push(
                webhooks::webhook_latency(backend, *admin, settings.webhook_rate, warmup, seconds).await?,
            );
        }
    }
    if settings.has("sync") {
        for (_, admin) in &backends {
            report
                .sync
                .push(sync::sync_throughput(settings.sync_tenants, settings.sync_events, *admin).await?);
        }
    }
    if settings.has("growth") {
        for (backend, admin) in &backends {
            report.growth.extend(super::growth::run(backend, *admin, &settings.growth_sizes, load).await?);
        }
    }

    print(&report)?;
    super::write_json(args.json.as_deref(), &report)
}

fn print(report: &Report) -> anyhow::Result<()> {
    use super::super::print_line;
    let s = &report.settings;
    print_line(&format!(
        "\ncarcosa bench: {} connections, {} s warm-up + {} s measured per scenario{}",
        s.concurrency,
        s.warmup,
        s.seconds,
        if s.quick { " (quick)" } else { "" }
    ))?;
    if !report.http.is_empty() {
        print_line(&format!("\n## HTTP scenarios and baselines ({} tenants)\n", s.tenants))?;
        scenario_table(&report.http, false)?;
    }
    if let Some(d) = &report.detection {
        print_line("\n## Detection layer (in-process, oneshot, cache hit)\n")?;
        print_line("| router | ns/request | added by the layer ns |")?;
        print_line("|---|---|---|")?;
        print_line(&format!("| no layer | {:.0} | |", d.no_layer_ns))?;
        print_line(&format!("| layer, subdomain | {:.0} | {:.0} |", d.subdomain_ns, d.added_subdomain_ns))?;
        print_line(&format!("| layer, header | {:.0} | {:.0} |", d.header_ns, d.added_header_ns))?;
    }
    if !report.webhooks.is_empty() {
        print_line("\n## Webhooks: commit → received\n")?;
        webhooks::print_table(&report.webhooks)?;
    }
    if !report.sync.is_empty() {
        print_line("\n## Sync into the app's database\n")?;
        sync::print_table(&report.sync)?;
    }
    if !report.growth.is_empty() {
        print_line("\n## Growth\n")?;
        scenario_table(&report.growth, true)?;
    }
    Ok(())
}

/// One row per scenario; with `by_size`, the tenant count leads each row.
fn scenario_table(results: &[ScenarioResult], by_size: bool) -> anyhow::Result<()> {
    use super::super::print_line;
    print_line(&format!(
        "| backend | {}scenario | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | {} | peak RSS MiB |",
        if by_size { "tenants | " } else { "" },
        if by_size { "p50, p99 × smallest" } else { "vs baseline" }
    ))?;
    print_line(&format!("|---|{}---|---|---|---|---|---|---|---|---|", if by_size { "---|" } else { "" }))?;
    for r in results {
        let m = &r.summary;
        let size = if by_size { format!("{} | ", r.tenants) } else { String::new() };
        let ratio = if by_size {
            match (r.p50_vs_smallest, r.p99_vs_smallest) {
                (Some(p50), Some(p99)) => format!("{p50:.2}, {p99:.2}"),
                _ => String::new(),
            }
        } else {
            r.ratio.map_or(String::new(), |x| format!("{:.0} %", x * 100.0))
        };
        let rss = r.peak_rss.mib.map_or("n/a".to_owned(), |m| format!("{m:.0}"));
        print_line(&format!(
            "| {} | {size}{} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {ratio} | {rss} |",
            r.backend, r.scenario, m.per_second, m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms, m.errors
        ))?;
        if let Some(error) = &r.first_error {
            eprintln!("  {} {}: first error: {error}", r.backend, r.scenario);
        }
    }
    Ok(())
}
