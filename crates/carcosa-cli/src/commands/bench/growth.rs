//! Growth: the HTTP scenarios at growing numbers of tenants on one database, seeded in between
//! through the store (1,000 tenants per transaction). Reads of one tenant, a tenant page and a
//! feed page should stay flat (DESIGN §7: within 1.5× from 1,000 to 1,000,000 tenants).

use super::load::Load;
use super::scenarios::{self, ScenarioResult};
use super::server::Running;
use super::stats::ratio;

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
    let mut results = Vec::new();
    for (run, size) in sizes.into_iter().enumerate() {
        running.seed_to(size.max(1)).await?;
        results.extend(scenarios::reads(&running, load).await?);
        // The endpoint exists only while tenants are created, so the next seeding writes no
        // deliveries for the dispatcher to work through during the next reads.
        let endpoint = running.add_endpoint().await?;
        results.push(scenarios::create(&running, load, run as u64 + 1).await?);
        running.remove_endpoint(&endpoint).await?;
    }
    running.stop().await?;
    compare_to_smallest(&mut results);
    Ok(results)
}

/// Sets each result's latencies as multiples of its scenario's at the smallest size.
fn compare_to_smallest(results: &mut [ScenarioResult]) {
    let smallest: Vec<(&'static str, f64, f64)> = results
        .iter()
        .filter(|r| r.tenants == results.iter().map(|r| r.tenants).min().unwrap_or(0))
        .map(|r| (r.scenario, r.summary.p50_ms, r.summary.p99_ms))
        .collect();
    for result in results.iter_mut() {
        if let Some((_, p50, p99)) = smallest.iter().find(|(name, _, _)| *name == result.scenario) {
            result.p50_vs_smallest = ratio(result.summary.p50_ms, *p50);
            result.p99_vs_smallest = ratio(result.summary.p99_ms, *p99);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::{Method, Peak};
    use super::super::stats::Summary;
    use super::*;

    fn result(tenants: u64, scenario: &'static str, p50_ms: f64, p99_ms: f64) -> ScenarioResult {
        ScenarioResult {
            backend: "sqlite",
            scenario,
            tenants,
            concurrency: 64,
            summary: Summary {
                operations: 1,
                errors: 0,
                per_second: 1.0,
                p50_ms,
                p90_ms: p99_ms,
                p99_ms,
                max_ms: p99_ms,
            },
            baseline: None,
            ratio: None,
            peak_rss: Peak { mib: None, method: Method::Unavailable },
            p50_vs_smallest: None,
            p99_vs_smallest: None,
            first_error: None,
        }
    }

    #[test]
    fn latencies_are_compared_with_the_smallest_size_of_the_same_scenario() {
        let mut results = vec![
            result(1000, "get", 2.0, 4.0),
            result(1000, "list", 5.0, 10.0),
            result(1_000_000, "get", 3.0, 10.0),
            result(1_000_000, "list", 5.0, 5.0),
        ];
        compare_to_smallest(&mut results);
        let got: Vec<_> = results.iter().map(|r| (r.p50_vs_smallest, r.p99_vs_smallest)).collect();
        assert_eq!(
            got,
            [(Some(1.0), Some(1.0)), (Some(1.0), Some(1.0)), (Some(1.5), Some(2.5)), (Some(1.0), Some(0.5))]
        );
    }
}
