//! The arithmetic of a measurement: percentiles, throughput and ratios to a baseline.

use std::time::Duration;

use serde::Serialize;

/// Latencies and throughput of one scenario's measured window.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Summary {
    /// Operations completed inside the measured window.
    pub operations: u64,
    /// Operations that failed inside the window (not in the latencies).
    pub errors: u64,
    /// Completed operations per second.
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Summarises latencies in nanoseconds (in any order) over a window of `window`.
    pub fn of(mut nanos: Vec<u64>, errors: u64, window: Duration) -> Self {
        nanos.sort_unstable();
        let ms = |p: f64| percentile_sorted(&nanos, p).map_or(f64::NAN, |n| n as f64 / 1e6);
        Self {
            operations: nanos.len() as u64,
            errors,
            per_second: per_second(nanos.len() as u64, window),
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        }
    }
}

/// The `p`-th percentile of sorted values, by nearest rank; `None` for no values.
pub(super) fn percentile_sorted<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `count` operations over `window`, per second (0 for an empty window).
pub(super) fn per_second(count: u64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

/// `value / baseline`, or `None` when the baseline measured nothing.
pub(super) fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline.is_finite() && baseline > 0.0 && value.is_finite()).then(|| value / baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_sorted(&values, 50.0), Some(50));
        assert_eq!(percentile_sorted(&values, 90.0), Some(90));
        assert_eq!(percentile_sorted(&values, 99.0), Some(99));
        assert_eq!(percentile_sorted(&values, 100.0), Some(100));
        assert_eq!(percentile_sorted(&values, 0.0), Some(1));
        assert_eq!(percentile_sorted(&[7], 99.0), Some(7));
        assert_eq!(percentile_sorted::<u64>(&[], 50.0), None);
        // Ten values: p99 rounds up to the largest, p50 to the fifth.
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile_sorted(&ten, 99.0), Some(10));
        assert_eq!(percentile_sorted(&ten, 50.0), Some(5));
    }

    #[test]
    fn a_summary_sorts_and_converts_to_milliseconds() {
        // 1..=1000 ms, shuffled by reversal, over 2 s.
        let nanos: Vec<u64> = (1..=1000).rev().map(|ms| ms * 1_000_000).collect();
        let summary = Summary::of(nanos, 3, Duration::from_secs(2));
        assert_eq!(summary.operations, 1000);
        assert_eq!(summary.errors, 3);
        assert!((summary.per_second - 500.0).abs() < 1e-9);
        assert_eq!((summary.p50_ms, summary.p90_ms, summary.p99_ms), (500.0, 900.0, 990.0));
        assert_eq!(summary.max_ms, 1000.0);
        let empty = Summary::of(Vec::new(), 0, Duration::from_secs(1));
        assert!(empty.p50_ms.is_nan() && empty.per_second == 0.0);
    }

    #[test]
    fn ratios_need_a_baseline() {
        assert_eq!(ratio(25.0, 100.0), Some(0.25));
        assert_eq!(ratio(25.0, 0.0), None);
        assert_eq!(ratio(25.0, f64::NAN), None);
        assert_eq!(ratio(f64::NAN, 10.0), None);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert!((per_second(30, Duration::from_millis(1500)) - 20.0).abs() < 1e-9);
    }
}
