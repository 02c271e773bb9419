//! Peak resident memory of this process during a scenario. The server runs in-process, so this
//! is the server's memory plus the load generator's (and SQLite's page cache; a PostgreSQL
//! server's memory is its own and not counted).
//!
//! Linux keeps a high-water mark (`VmHWM` in `/proc/self/status`) that writing `5` to
//! `/proc/self/clear_refs` resets. When that is permitted, a scenario's peak is the mark after
//! it, reset before it. Otherwise a sampler reads `VmRSS` every 10 ms during the scenario and
//! reports the largest value seen ("sampled"). Elsewhere than Linux there is no figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// How a peak was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Method {
    /// `VmHWM`, reset before the scenario through `/proc/self/clear_refs`.
    HighWaterMark,
    /// The largest `VmRSS` sampled every 10 ms.
    Sampled,
    /// Not available on this system.
    Unavailable,
}

/// A scenario's peak resident set size.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Peak {
    pub mib: Option<f64>,
    pub method: Method,
}

/// Watches memory from [`Watch::start`] to [`Watch::finish`].
#[derive(Debug)]
pub(super) struct Watch {
    method: Method,
    sampled_kib: Arc<AtomicU64>,
    sampler: Option<tokio::task::JoinHandle<()>>,
}

impl Watch {
    /// Resets the high-water mark, or starts sampling.
    pub fn start() -> Self {
        let sampled_kib = Arc::new(AtomicU64::new(0));
        if status_kib("VmHWM").is_none() {
            return Self { method: Method::Unavailable, sampled_kib, sampler: None };
        }
        if std::fs::write("/proc/self/clear_refs", "5").is_ok() {
            return Self { method: Method::HighWaterMark, sampled_kib, sampler: None };
        }
        let max = sampled_kib.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                if let Some(kib) = status_kib("VmRSS") {
                    max.fetch_max(kib, Ordering::Relaxed);
                }
            }
        });
        Self { method: Method::Sampled, sampled_kib, sampler: Some(sampler) }
    }

    /// The peak since [`Watch::start`].
    pub fn finish(self) -> Peak {
        if let Some(sampler) = &self.sampler {
            sampler.abort();
        }
        let kib = match self.method {
            Method::HighWaterMark => status_kib("VmHWM"),
            Method::Sampled => Some(self.sampled_kib.load(Ordering::Relaxed)).filter(|k| *k > 0),
            Method::Unavailable => None,
        };
        Peak { mib: kib.map(|k| k as f64 / 1024.0), method: self.method }
    }
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_status_kib;

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tcarcosa\nVmHWM:\t   13584 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(13584));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(9000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }
}
