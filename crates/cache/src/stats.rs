//! Per-cache counters readable with [`Cache::stats`](crate::Cache::stats).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a cache's counters (shared by every tenant view of the cache).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a value.
    pub hits: u64,
    /// Lookups that found nothing (or an unreadable value, or hit a backend failure).
    pub misses: u64,
    /// Values written.
    pub sets: u64,
    /// Keys deleted (including by pattern invalidation and flush).
    pub deletes: u64,
    /// Failures: backend errors, timeouts, undecodable values, encode errors.
    pub errors: u64,
    /// Loader runs started by `get_or_set_with` and its variants (one per single flight).
    pub loads: u64,
    /// Loader runs that returned an error.
    pub load_errors: u64,
    /// Background refreshes of stale values (stale-while-revalidate).
    pub refreshes: u64,
    /// Entries evicted for size (memory store; 0 for Redis, which evicts on its own).
    pub evictions: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, 0.0 before the first lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) sets: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) refreshes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, evictions: u64) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            errors: self.errors.load(Relaxed),
            loads: self.loads.load(Relaxed),
            load_errors: self.load_errors.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            evictions,
        }
    }
}
