//! Buckets in this process's memory: a sharded map from a bucket's name to its state, each shard
//! behind its own mutex (held for a hash-map lookup and a few float operations).
//!
//! Memory stays bounded: a bucket untouched long enough to be full again is the same as no
//! bucket, so each shard drops those every [`SWEEP_EVERY_SECS`]; and a shard never holds more
//! than [`MAX_PER_SHARD`] buckets — past that, new names are answered as a full bucket without
//! being remembered (the limit fails open rather than growing without end).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::bucket::{Bucket, Decision, Limit};

/// Shards of the map: requests for different keys rarely wait for each other.
const SHARDS: usize = 16;
/// How often a shard forgets its full buckets.
pub const SWEEP_EVERY_SECS: f64 = 10.0;
/// The most buckets one shard keeps (16 shards: about a quarter of a million names).
pub const MAX_PER_SHARD: usize = 16_384;

/// Token buckets kept in memory: per replica.
#[derive(Debug)]
pub struct LocalBuckets {
    origin: Instant,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<String, Entry>,
    swept_at: f64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    bucket: Bucket,
    /// When the bucket will be full again: past that, it can be forgotten.
    full_at: f64,
}

impl Entry {
    fn new(bucket: Bucket, limit: &Limit) -> Self {
        Self { bucket, full_at: bucket.at + (f64::from(limit.burst) - bucket.tokens) / limit.per_second }
    }
}

impl Default for LocalBuckets {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl LocalBuckets {
    /// Takes a token from the bucket `name` under `limit`.
    pub fn take(&self, name: &str, limit: &Limit) -> Decision {
        self.take_at(name, limit, self.origin.elapsed().as_secs_f64())
    }

    fn take_at(&self, name: &str, limit: &Limit, now: f64) -> Decision {
        let index = (self.hasher.hash_one(name) % SHARDS as u64) as usize;
        let mut shard = self.shards[index].lock().unwrap_or_else(PoisonError::into_inner);
        if now - shard.swept_at >= SWEEP_EVERY_SECS {
            shard.buckets.retain(|_, entry| entry.full_at > now);
            shard.swept_at = now;
        }
        if let Some(entry) = shard.buckets.get_mut(name) {
            let (bucket, decision) = entry.bucket.take(limit, now);
            *entry = Entry::new(bucket, limit);
            return decision;
        }
        let (bucket, decision) = Bucket::full(limit, now).take(limit, now);
        if shard.buckets.len() < MAX_PER_SHARD {
            shard.buckets.insert(name.to_owned(), Entry::new(bucket, limit));
        }
        decision
    }

    /// How many buckets are kept (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().buckets.len()).sum()
    }

    /// Whether the bucket `name` is kept (for tests).
    #[cfg(test)]
    fn contains(&self, name: &str) -> bool {
        self.shards.iter().any(|s| s.lock().unwrap().buckets.contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_has_its_own_bucket() {
        let buckets = LocalBuckets::default();
        let limit = Limit::new(1.0, 2).unwrap();
        assert!(buckets.take_at("a", &limit, 0.0).allowed);
        assert!(buckets.take_at("a", &limit, 0.0).allowed);
        assert!(!buckets.take_at("a", &limit, 0.0).allowed);
        assert!(buckets.take_at("b", &limit, 0.0).allowed);
        assert!(buckets.take_at("a", &limit, 1.0).allowed, "a token came back");
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let buckets = LocalBuckets::default();
        let limit = Limit::new(1.0, 2).unwrap();
        for name in ["a", "b", "c"] {
            buckets.take_at(name, &limit, 0.0);
        }
        buckets.take_at("a", &limit, 0.5);
        assert_eq!(buckets.len(), 3);
        // Every shard sweeps when next touched after SWEEP_EVERY_SECS; touch them all.
        for i in 0..1000 {
            buckets.take_at(&format!("n{i}"), &limit, SWEEP_EVERY_SECS + 1.0);
        }
        for name in ["a", "b", "c"] {
            assert!(!buckets.contains(name), "{name} was full again, hence dropped");
        }
        assert!(buckets.contains("n0"), "a bucket in use is kept");
    }

    #[test]
    fn a_full_shard_answers_without_remembering() {
        let buckets = LocalBuckets::default();
        let limit = Limit::new(1.0, 1).unwrap();
        for i in 0..(MAX_PER_SHARD * SHARDS * 2) {
            buckets.take_at(&format!("k{i}"), &limit, 0.0);
        }
        assert_eq!(buckets.len(), MAX_PER_SHARD * SHARDS);
        // A name that found no room is not limited (and not remembered).
        assert!(buckets.take_at("late", &limit, 0.0).allowed);
        assert!(buckets.take_at("late", &limit, 0.0).allowed);
        assert!(!buckets.contains("late"));
    }
}
