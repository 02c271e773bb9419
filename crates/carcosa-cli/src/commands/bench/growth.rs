//! Growth: the HTTP scenarios at growing numbers of tenants on one database, seeded in between
//! through the store (1,000 tenants per transaction). Reads of one tenant, a tenant page and a
//! feed page should stay flat (DESIGN §7: within 1.5× from 1,000 to 1,000,000 tenants).

use super::load::Load;
use super::scenarios::{self, ScenarioResult};
use super::server::Running;

/// Runs the reads and the create scenario at each size in `sizes` (ascending).
pub(super) async fn run(
    backend: &'static str,
    admin: Option<&str>,
    sizes: &[u64],
    load: Load,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    let Some(&first) = sizes.first() else { return Ok(Vec::new()) };
    eprintln!("growth on {backend}: {sizes:?} tenants");
    let mut running = Running::start(backend, admin, first.max(1)).await?;
    running.add_endpoint().await?;
    let mut results = Vec::new();
    for (run, size) in sizes.into_iter().enumerate() {
        running.seed_to(size.max(1)).await?;
        results.extend(scenarios::reads(&running, load).await?);
        results.push(scenarios::create(&running, load, run as u64 + 1).await?);
    }
    running.stop().await?;
    Ok(results)
}
