//! The token bucket itself: pure arithmetic, shared by the in-memory and the Redis backends
//! (the Redis script does the same steps in Lua; `redis.rs` keeps the two in step).
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens a second. A request takes
//! one token; with less than one token left it is refused. Nothing runs in the background: the
//! tokens a bucket gained since it was last touched are computed from the elapsed time.

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Tokens gained per second (may be below one: `10 / 60.0` is ten a minute).
    pub per_second: f64,
    /// The most tokens a bucket holds: how many requests may arrive at once.
    pub burst: u32,
}

impl Limit {
    /// `per_second` requests a second with bursts of `burst`; `None` when `per_second` is 0
    /// (no limit). A burst of 0 is read as 1, so a limited key can still make requests.
    #[must_use]
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0 && per_second.is_finite()).then(|| Self { per_second, burst: burst.max(1) })
    }

    /// Seconds an empty bucket takes to fill: after that long untouched, a bucket is the same as
    /// a new one and need not be kept.
    #[must_use]
    pub fn fill_seconds(&self) -> f64 {
        f64::from(self.burst) / self.per_second
    }
}

/// A bucket's state: its tokens when it was last touched, and when (seconds on the backend's
/// clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens at `at`.
    pub tokens: f64,
    /// When the bucket was last touched.
    pub at: f64,
}

impl Bucket {
    /// A full bucket at `now`.
    #[must_use]
    pub fn full(limit: &Limit, now: f64) -> Self {
        Self { tokens: f64::from(limit.burst), at: now }
    }

    /// The tokens the bucket holds at `now` (a clock going backwards adds nothing).
    #[must_use]
    pub fn tokens_at(&self, limit: &Limit, now: f64) -> f64 {
        let elapsed = (now - self.at).max(0.0);
        (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst))
    }

    /// Takes one token at `now` if there is one. Returns the bucket afterwards and the
    /// decision.
    #[must_use]
    pub fn take(self, limit: &Limit, now: f64) -> (Self, Decision) {
        let tokens = self.tokens_at(limit, now);
        let allowed = tokens >= 1.0;
        let left = if allowed { tokens - 1.0 } else { tokens };
        (Self { tokens: left, at: now.max(self.at) }, Decision::new(limit, allowed, left))
    }
}

/// The outcome of one request against a bucket, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// `RateLimit-Limit`: the bucket's capacity.
    pub limit: u32,
    /// `RateLimit-Remaining`: whole tokens left after this request.
    pub remaining: u32,
    /// `RateLimit-Reset`: seconds until the bucket is full again.
    pub reset_secs: u64,
    /// `Retry-After` of a refused request: seconds until one token is there (at least 1).
    pub retry_after_secs: u64,
}

impl Decision {
    /// The decision for a bucket left with `tokens` after the request.
    #[must_use]
    pub fn new(limit: &Limit, allowed: bool, tokens: f64) -> Self {
        let tokens = tokens.clamp(0.0, f64::from(limit.burst));
        // Rounded up to whole seconds; the nudge keeps 5.000000001 (float noise) from becoming 6.
        let seconds = |missing: f64| (missing.max(0.0) / limit.per_second - 1e-6).ceil().max(0.0) as u64;
        Self {
            allowed,
            limit: limit.burst,
            remaining: tokens.floor() as u32,
            reset_secs: seconds(f64::from(limit.burst) - tokens),
            retry_after_secs: if allowed { 0 } else { seconds(1.0 - tokens).max(1) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: f64, burst: u32) -> Limit {
        Limit::new(per_second, burst).unwrap()
    }

    /// Takes `n` tokens at `now`, returning the last decision.
    fn take_n(bucket: &mut Bucket, limit: &Limit, now: f64, n: usize) -> Vec<Decision> {
        (0..n)
            .map(|_| {
                let (next, decision) = bucket.take(limit, now);
                *bucket = next;
                decision
            })
            .collect()
    }

    #[test]
    fn a_full_bucket_allows_its_burst_then_refuses() {
        let limit = limit(1.0, 3);
        let mut bucket = Bucket::full(&limit, 100.0);
        let decisions = take_n(&mut bucket, &limit, 100.0, 4);
        let remaining: Vec<u32> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0]);
        assert!(decisions[..3].iter().all(|d| d.allowed));
        let refused = decisions[3];
        assert!(!refused.allowed);
        assert_eq!(refused.limit, 3);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.reset_secs, 3);
        assert_eq!(decisions[0].retry_after_secs, 0);
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_burst() {
        let limit = limit(2.0, 4);
        let mut bucket = Bucket::full(&limit, 0.0);
        take_n(&mut bucket, &limit, 0.0, 4);
        assert!(!bucket.take(&limit, 0.0).1.allowed);
        // Half a second later, one token is back.
        let (after, decision) = bucket.take(&limit, 0.5);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 0);
        bucket = after;
        // Long idle: full, never more.
        assert!((bucket.tokens_at(&limit, 1000.0) - 4.0).abs() < f64::EPSILON);
        let decision = bucket.take(&limit, 1000.0).1;
        assert_eq!(decision.remaining, 3);
        assert_eq!(decision.reset_secs, 1);
    }

    #[test]
    fn slow_limits_wait_whole_seconds() {
        // Ten a minute, bursts of five.
        let limit = limit(10.0 / 60.0, 5);
        let mut bucket = Bucket::full(&limit, 0.0);
        take_n(&mut bucket, &limit, 0.0, 5);
        let refused = bucket.take(&limit, 1.0).1;
        assert!(!refused.allowed);
        // 6 s per token, 1 s of which has passed.
        assert_eq!(refused.retry_after_secs, 5);
        assert_eq!(refused.reset_secs, 29);
        assert!((limit.fill_seconds() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let limit = limit(1.0, 2);
        let bucket = Bucket { tokens: 0.5, at: 10.0 };
        assert!((bucket.tokens_at(&limit, 5.0) - 0.5).abs() < f64::EPSILON);
        let (after, decision) = bucket.take(&limit, 5.0);
        assert!(!decision.allowed);
        assert!((after.at - 10.0).abs() < f64::EPSILON);
    }

    #[test]
    fn zero_means_no_limit_and_bursts_are_at_least_one() {
        assert_eq!(Limit::new(0.0, 10), None);
        assert_eq!(Limit::new(f64::NAN, 10), None);
        assert_eq!(Limit::new(5.0, 0).unwrap().burst, 1);
    }
}
