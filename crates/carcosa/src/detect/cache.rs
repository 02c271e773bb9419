//! [`TenantCache`]: identifiers to tenants, in memory, in front of a [`TenantDirectory`].
//!
//! * Hits are kept for a TTL (default 30 s), misses ("no such tenant") for a shorter one (default
//!   5 s), so a flood of requests for the same unknown subdomain reaches the directory once per
//!   negative TTL. Text that cannot be a slug, id or host is unknown without asking at all.
//!   Concurrent misses for one identifier share one lookup.
//! * The size is bounded (default 10 000 entries; least-used entries go first).
//! * [`TenantCache::invalidate`] removes every entry of a tenant: its id, its slug, the old slug
//!   and domains it was cached under (a reverse index remembers them), and any "unknown" entry
//!   for its new slug or domains. The sync engine calls it the moment it applies a change, so the
//!   next request sees a renamed, suspended or new tenant. Other replicas of the app, which did
//!   not apply that change themselves, see it within the TTL.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use carcosa_core::{Tenant, TenantId};
use moka::future::Cache;

use super::directory::DynDirectory;
use super::host::normalize_domain;
use super::{DetectedTenant, DirectoryError, Identifier, TenantDirectory, stats};
use crate::tenancy::domain_list;

/// Above this many remembered keys, a tenant's reverse-index entry drops the keys the cache no
/// longer holds. A tenant has an id, a slug and a few domains; more means old slugs piled up.
const PRUNE_KEYS_AT: usize = 8;

/// A cached answer: the tenant, or `None` for "no such tenant".
#[derive(Clone)]
struct Entry {
    tenant: Option<Arc<DetectedTenant>>,
    /// The invalidation count when its lookup started (see [`TenantCache::get`]).
    generation: u64,
    /// When the answer stops being trusted (its TTL from when it was looked up).
    expires: Instant,
}

/// Per-entry lifetimes: one for tenants, a shorter one for unknown identifiers.
#[derive(Clone, Copy)]
struct Lifetimes {
    found: Duration,
    unknown: Duration,
}

impl Lifetimes {
    fn of(&self, found: bool) -> Duration {
        if found { self.found } else { self.unknown }
    }
}

impl moka::Expiry<Identifier, Entry> for Lifetimes {
    fn expire_after_create(&self, _: &Identifier, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(self.of(entry.tenant.is_some()))
    }

    fn expire_after_update(
        &self,
        key: &Identifier,
        entry: &Entry,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, entry, at)
    }
}

struct Inner {
    directory: Arc<dyn DynDirectory>,
    entries: Cache<Identifier, Entry>,
    /// Tenant id → the keys its positive entries were stored under.
    index: Mutex<HashMap<TenantId, Vec<Identifier>>>,
    /// How many invalidations ran; a lookup that overlapped one is not trusted.
    generation: AtomicU64,
    max_capacity: u64,
    lifetimes: Lifetimes,
    /// The hit path: answers already in `entries`, behind a plain read lock (a moka lookup costs
    /// several times more). Emptied by every invalidation, and when it reaches `max_capacity`;
    /// an answer is copied in only if no invalidation ran since it was read.
    hot: RwLock<HashMap<Identifier, Entry>>,
}

/// The lookup cache the detection layer reads through. Cheap to clone (all clones share it).
#[derive(Clone)]
pub struct TenantCache(Arc<Inner>);

/// Settings for a [`TenantCache`].
pub struct TenantCacheBuilder {
    directory: Arc<dyn DynDirectory>,
    ttl: Duration,
    negative_ttl: Duration,
    max_capacity: u64,
}

impl TenantCacheBuilder {
    /// How long a found tenant is kept (default 30 s). It bounds how stale a replica that missed
    /// an invalidation can be.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long "no such tenant" is kept (default 5 s).
    #[must_use]
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The most entries kept, found and unknown together (default 10 000).
    #[must_use]
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.max_capacity = entries;
        self
    }

    /// The cache.
    #[must_use]
    pub fn build(self) -> TenantCache {
        let lifetimes = Lifetimes { found: self.ttl, unknown: self.negative_ttl };
        let entries =
            Cache::builder().max_capacity(self.max_capacity).expire_after(Lifetimes { ..lifetimes }).build();
        TenantCache(Arc::new(Inner {
            directory: self.directory,
            entries,
            index: Mutex::default(),
            generation: AtomicU64::new(0),
            max_capacity: self.max_capacity,
            lifetimes,
            hot: RwLock::default(),
        }))
    }
}

impl TenantCache {
    /// A cache in front of `directory`, with the default settings until changed.
    pub fn builder(directory: impl TenantDirectory) -> TenantCacheBuilder {
        TenantCacheBuilder {
            directory: Arc::new(directory),
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            max_capacity: 10_000,
        }
    }

    /// The tenant `identifier` names, from the cache or else the directory. `Ok(None)` when no
    /// tenant has it. Deleted and suspended tenants are returned as they are.
    pub async fn get(&self, identifier: &Identifier) -> Result<Option<Arc<DetectedTenant>>, DirectoryError> {
        if let Some(tenant) = self.hot(identifier) {
            stats::cache_hit();
            return Ok(tenant);
        }
        let generation = self.0.generation.load(Ordering::SeqCst);
        let entry = self.get_entry(identifier).await?;
        if let Some((key, entry)) = entry {
            let tenant = entry.tenant.clone();
            self.keep_hot(key, entry, generation);
            return Ok(tenant);
        }
        Ok(None)
    }

    /// An unexpired answer from the hot map.
    fn hot(&self, identifier: &Identifier) -> Option<Option<Arc<DetectedTenant>>> {
        let hot = self.0.hot.read().unwrap_or_else(|e| e.into_inner());
        let entry = hot.get(identifier)?;
        (entry.expires > Instant::now()).then(|| entry.tenant.clone())
    }

    /// Copies an answer into the hot map, unless an invalidation ran since `generation` (the
    /// answer may predate it).
    fn keep_hot(&self, key: Identifier, entry: Entry, generation: u64) {
        let mut hot = self.0.hot.write().unwrap_or_else(|e| e.into_inner());
        if self.0.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if hot.len() as u64 >= self.0.max_capacity {
            hot.clear();
        }
        hot.insert(key, entry);
    }

    /// The entry for `identifier` (and the canonical key it is stored under), from the cache or
    /// else the directory; `None` for text that cannot name a tenant.
    async fn get_entry(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<(Identifier, Entry)>, DirectoryError> {
        // Only canonical keys are ever stored, so a hit needs no canonicalization: try the
        // identifier as it is first (the hit path), and canonicalize only on a miss.
        if let Some(entry) = self.0.entries.get(identifier).await {
            stats::cache_hit();
            return Ok(Some((identifier.clone(), entry)));
        }
        let Some(key) = identifier.canonical() else {
            return Ok(None);
        };
        if key != *identifier
            && let Some(entry) = self.0.entries.get(&key).await
        {
            stats::cache_hit();
            return Ok(Some((key, entry)));
        }
        let inner = &self.0;
        // Whether this call asked the directory, or joined a concurrent call's lookup.
        let mut asked = false;
        let entry = inner
            .entries
            .try_get_with(key.clone(), async {
                asked = true;
                let generation = inner.generation.load(Ordering::SeqCst);
                let tenant = inner.directory.lookup_boxed(&key).await?.map(Arc::new);
                if let Some(tenant) = &tenant {
                    // Before the entry is stored, so an invalidation cannot miss it.
                    self.remember(tenant.id, &key);
                }
                let expires = Instant::now() + inner.lifetimes.of(tenant.is_some());
                Ok::<_, DirectoryError>(Entry { tenant, generation, expires })
            })
            .await;
        let stale = entry.as_ref().is_ok_and(|e| e.generation != inner.generation.load(Ordering::SeqCst));
        if asked || stale {
            stats::cache_miss()
        } else {
            stats::cache_hit()
        }
        let entry = entry.map_err(|err| (*err).clone())?;
        if stale {
            // An invalidation ran while this lookup (or the one it joined) was under way: its
            // answer may predate the change. Drop it and ask again (not kept hot either).
            inner.entries.invalidate(&key).await;
            let tenant = inner.directory.lookup_boxed(&key).await?.map(Arc::new);
            let entry = Entry { tenant, generation: u64::MAX, expires: Instant::now() };
            return Ok(Some((key, entry)));
        }
        Ok(Some((key, entry)))
    }

    /// Forgets everything cached about `tenant` (as it is now, after the change): its id, its
    /// slug, its `metadata.domains`, and the keys its previous versions were cached under.
    pub async fn invalidate(&self, tenant: &Tenant) {
        let inner = &self.0;
        inner.generation.fetch_add(1, Ordering::SeqCst);
        let mut keys =
            inner.index.lock().unwrap_or_else(|e| e.into_inner()).remove(&tenant.id).unwrap_or_default();
        keys.push(Identifier::Id(tenant.id.to_string()));
        keys.push(Identifier::Slug(tenant.slug.to_string()));
        keys.extend(
            domain_list(tenant.metadata.get("domains")).filter_map(normalize_domain).map(Identifier::Domain),
        );
        for key in &keys {
            inner.entries.invalidate(key).await;
        }
        // After the entries: an answer read before them carries an older generation and is not
        // copied in again.
        let mut hot = inner.hot.write().unwrap_or_else(|e| e.into_inner());
        inner.generation.fetch_add(1, Ordering::SeqCst);
        hot.clear();
    }

    /// Forgets everything.
    pub fn invalidate_all(&self) {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.entries.invalidate_all();
        self.0.hot.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.0.index.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Roughly how many entries are cached (found and unknown).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.0.entries.entry_count()
    }

    /// Records that `key` maps to tenant `id`.
    fn remember(&self, id: TenantId, key: &Identifier) {
        let inner = &self.0;
        let mut index = inner.index.lock().unwrap_or_else(|e| e.into_inner());
        let keys = index.entry(id).or_default();
        keys.retain(|k| k != key);
        if keys.len() >= PRUNE_KEYS_AT {
            keys.retain(|k| inner.entries.contains_key(k));
        }
        keys.push(key.clone());
        // Tenants whose entries all expired leave their keys behind; sweep now and then.
        let bound = usize::try_from(inner.max_capacity).unwrap_or(usize::MAX).saturating_mul(2).max(1024);
        if index.len() > bound {
            index.retain(|_, keys| {
                keys.retain(|k| inner.entries.contains_key(k));
                !keys.is_empty()
            });
        }
    }
}

impl fmt::Debug for TenantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCache").field("entries", &self.entry_count()).finish_non_exhaustive()
    }
}

impl fmt::Debug for TenantCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCacheBuilder")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("max_capacity", &self.max_capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use carcosa_core::{Slug, TenantStatus};
    use serde_json::json;

    use super::*;
    use crate::detect::InMemoryDirectory;
    use crate::detect::testing::tenant;

    fn slug(s: &str) -> Identifier {
        Identifier::Slug(s.into())
    }

    /// The snapshot the sync engine would hand to `invalidate` for `tenant`.
    fn snapshot(tenant: &DetectedTenant) -> Tenant {
        let now = chrono::Utc::now();
        Tenant {
            id: tenant.id,
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            status: tenant.status,
            plan: tenant.plan.clone(),
            metadata: tenant.metadata.as_object().cloned().unwrap_or_default(),
            version: 2,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }

    fn setup(tenants: impl IntoIterator<Item = DetectedTenant>) -> (Arc<InMemoryDirectory>, TenantCache) {
        let directory = Arc::new(InMemoryDirectory::with(tenants));
        (directory.clone(), TenantCache::builder(directory).build())
    }

    #[tokio::test]
    async fn hits_do_not_reach_the_directory() {
        let acme = tenant("acme");
        let (directory, cache) = setup([acme.clone()]);
        for _ in 0..5 {
            assert_eq!(cache.get(&slug("acme")).await.unwrap().map(|t| t.id), Some(acme.id));
        }
        // The id is a separate key, looked up once; lower case ids share the canonical key.
        let id = acme.id.to_string();
        assert!(cache.get(&Identifier::Id(id.clone())).await.unwrap().is_some());
        assert!(
            cache
                .get(&Identifier::Id(id.to_lowercase().replacen("TEN_", "ten_", 1)))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(directory.lookups(), 2);
    }

    #[tokio::test]
    async fn unknown_identifiers_are_remembered() {
        let (directory, cache) = setup([]);
        for _ in 0..100 {
            assert!(cache.get(&slug("ghost")).await.unwrap().is_none());
        }
        assert_eq!(directory.lookups(), 1);
        // Text that is no slug, id or host never reaches the directory.
        for junk in [
            slug("Not A Slug"),
            slug("xn--bcher-kva"),
            Identifier::Id("ten_x".into()),
            Identifier::Domain("1.2.3.4".into()),
        ] {
            assert!(cache.get(&junk).await.unwrap().is_none());
        }
        assert_eq!(directory.lookups(), 1);
    }

    #[tokio::test]
    async fn negative_entries_expire_sooner() {
        let directory = Arc::new(InMemoryDirectory::new());
        let cache = TenantCache::builder(directory.clone()).negative_ttl(Duration::from_millis(50)).build();
        assert!(cache.get(&slug("late")).await.unwrap().is_none());
        directory.upsert(tenant("late"));
        assert!(cache.get(&slug("late")).await.unwrap().is_none(), "still remembered as unknown");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(cache.get(&slug("late")).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_lookup() {
        let (directory, cache) = setup([tenant("acme")]);
        let lookups = (0..50).map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&slug("acme")).await.unwrap().is_some() })
        });
        for found in futures_join(lookups).await {
            assert!(found);
        }
        assert_eq!(directory.lookups(), 1);
    }

    async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_rename_forgets_the_old_slug_and_finds_the_new_one() {
        let acme = tenant("acme");
        let (directory, cache) = setup([acme.clone()]);
        assert!(cache.get(&slug("acme")).await.unwrap().is_some());
        assert!(cache.get(&Identifier::Id(acme.id.to_string())).await.unwrap().is_some());
        // Someone asked for the new slug before it existed: a negative entry.
        assert!(cache.get(&slug("acme-corp")).await.unwrap().is_none());

        let mut renamed = acme.clone();
        renamed.slug = Slug::parse("acme-corp").unwrap();
        directory.upsert(renamed.clone());
        cache.invalidate(&snapshot(&renamed)).await;

        assert!(cache.get(&slug("acme")).await.unwrap().is_none(), "the old slug is unknown now");
        assert_eq!(cache.get(&slug("acme-corp")).await.unwrap().map(|t| t.id), Some(acme.id));
        let by_id = cache.get(&Identifier::Id(acme.id.to_string())).await.unwrap().unwrap();
        assert_eq!(by_id.slug.as_str(), "acme-corp");
    }

    #[tokio::test]
    async fn a_suspension_is_seen_at_once() {
        let acme = tenant("acme");
        let (directory, cache) = setup([acme.clone()]);
        assert_eq!(cache.get(&slug("acme")).await.unwrap().unwrap().status, TenantStatus::Active);
        let mut suspended = acme;
        suspended.status = TenantStatus::Suspended;
        directory.upsert(suspended.clone());
        cache.invalidate(&snapshot(&suspended)).await;
        assert_eq!(cache.get(&slug("acme")).await.unwrap().unwrap().status, TenantStatus::Suspended);
    }

    #[tokio::test]
    async fn creating_a_tenant_clears_the_negative_entries_for_its_slug_and_domains() {
        let (directory, cache) = setup([]);
        assert!(cache.get(&slug("newco")).await.unwrap().is_none());
        assert!(cache.get(&Identifier::Domain("newco.example".into())).await.unwrap().is_none());
        let mut newco = tenant("newco");
        newco.metadata = json!({"domains": ["NewCo.Example."]});
        directory.upsert(newco.clone());
        cache.invalidate(&snapshot(&newco)).await;
        assert_eq!(cache.get(&slug("newco")).await.unwrap().map(|t| t.id), Some(newco.id));
        let by_domain = cache.get(&Identifier::Domain("newco.example".into())).await.unwrap();
        assert_eq!(by_domain.map(|t| t.id), Some(newco.id));
    }

    #[tokio::test]
    async fn a_removed_domain_stops_resolving() {
        let mut acme = tenant("acme");
        acme.metadata = json!({"domains": ["shop.acme.example"]});
        let (directory, cache) = setup([acme.clone()]);
        let shop = Identifier::Domain("shop.acme.example".into());
        assert!(cache.get(&shop).await.unwrap().is_some());
        acme.metadata = json!({"domains": []});
        directory.upsert(acme.clone());
        cache.invalidate(&snapshot(&acme)).await;
        assert!(cache.get(&shop).await.unwrap().is_none(), "found through the reverse index");
    }

    #[tokio::test]
    async fn invalidating_one_tenant_keeps_the_others() {
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        let (directory, cache) = setup([acme.clone(), globex]);
        cache.get(&slug("acme")).await.unwrap();
        cache.get(&slug("globex")).await.unwrap();
        cache.invalidate(&snapshot(&acme)).await;
        cache.get(&slug("acme")).await.unwrap();
        cache.get(&slug("globex")).await.unwrap();
        assert_eq!(directory.lookups(), 3);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let (directory, cache) = setup([tenant("acme")]);
        directory.set_unavailable(true);
        assert!(cache.get(&slug("acme")).await.is_err());
        directory.set_unavailable(false);
        assert!(cache.get(&slug("acme")).await.unwrap().is_some());
    }

    /// A directory whose first lookup stops half-way until the test lets it go on.
    struct Paused {
        tenants: InMemoryDirectory,
        entered: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
        release: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    }

    impl TenantDirectory for Paused {
        async fn lookup(&self, identifier: &Identifier) -> Result<Option<DetectedTenant>, DirectoryError> {
            let found = self.tenants.lookup(identifier).await;
            let release = self.release.lock().unwrap().take();
            if let Some(release) = release {
                self.entered.lock().unwrap().take().unwrap().send(()).unwrap();
                release.await.unwrap();
            }
            found
        }
    }

    #[tokio::test]
    async fn a_lookup_that_overlaps_an_invalidation_is_not_kept() {
        let acme = tenant("acme");
        let (entered_tx, entered) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel();
        let directory = Arc::new(Paused {
            tenants: InMemoryDirectory::with([acme.clone()]),
            entered: Mutex::new(Some(entered_tx)),
            release: Mutex::new(Some(release_rx)),
        });
        let cache = TenantCache::builder(directory.clone()).build();

        // A request reads the tenant as active…
        let request = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get(&slug("acme")).await.unwrap().unwrap().status }
        });
        entered.await.unwrap();
        // …while the sync engine suspends it and invalidates.
        let mut suspended = acme;
        suspended.status = TenantStatus::Suspended;
        directory.tenants.upsert(suspended.clone());
        cache.invalidate(&snapshot(&suspended)).await;
        release.send(()).unwrap();

        assert_eq!(request.await.unwrap(), TenantStatus::Suspended, "the overlapping lookup is redone");
        assert_eq!(cache.get(&slug("acme")).await.unwrap().unwrap().status, TenantStatus::Suspended);
    }
}
