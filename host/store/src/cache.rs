//! A small in-memory cache for data read from the store that changes rarely (tenancy,
//! control-plane registrations), so hot request paths do not read it on every request.
//!
//! Entries are tagged with [`Store::tenancy_generation`](crate::Store::tenancy_generation),
//! which every such write in this process moves, so a change is seen by the very next
//! read. Writes made by another process sharing the database do not move it; entries
//! therefore also expire after [`TENANCY_CACHE_TTL`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a cached value may be used without asking the database: bounds how late a
/// change made by another Weft process on the same database is seen here.
pub const TENANCY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most entries one cache holds (one per tenant, or tenant and app, in use). Past this
/// the cache is emptied and refills from the reads that follow; 16k entries are a few MiB.
pub const MAX_TENANCY_CACHE_ENTRIES: usize = 16_384;

struct Cached<V> {
    generation: u64,
    at: Instant,
    value: Arc<V>,
}

/// A map whose entries hold while the store's tenancy generation has not moved and
/// they are younger than [`TENANCY_CACHE_TTL`].
pub struct GenerationCache<K, V> {
    entries: Mutex<HashMap<K, Cached<V>>>,
}

impl<K, V> Default for GenerationCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V> GenerationCache<K, V> {
    /// The value under `key`, if it was read at `generation` and is still young.
    pub fn get(&self, key: &K, generation: u64) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = entries.get(key)?;
        (hit.generation == generation && hit.at.elapsed() < TENANCY_CACHE_TTL)
            .then(|| Arc::clone(&hit.value))
    }

    /// Stores a value read after `generation` was taken (so a write in between leaves
    /// the entry already stale, never wrongly fresh).
    pub fn insert(&self, key: K, generation: u64, value: Arc<V>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_TENANCY_CACHE_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(
            key,
            Cached {
                generation,
                at: Instant::now(),
                value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_hold_only_for_their_generation() {
        let cache: GenerationCache<String, u32> = GenerationCache::default();
        cache.insert("a".into(), 7, Arc::new(1));
        assert_eq!(cache.get(&"a".into(), 7).as_deref(), Some(&1));
        assert!(cache.get(&"a".into(), 8).is_none());
        assert!(cache.get(&"b".into(), 7).is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache: GenerationCache<usize, usize> = GenerationCache::default();
        for i in 0..MAX_TENANCY_CACHE_ENTRIES {
            cache.insert(i, 0, Arc::new(i));
        }
        cache.insert(usize::MAX, 0, Arc::new(0));
        assert!(cache.get(&0, 0).is_none());
        assert!(cache.get(&usize::MAX, 0).is_some());
    }
}
