//! [`MemoryStore`]: an in-process store on moka (TinyLFU admission, bounded, per-entry TTL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache as Moka;
use moka::notification::RemovalCause;

use crate::error::{Error, Result};
use crate::glob;
use crate::store::{KeyTtl, Store};
use crate::tag_index::TagIndex;

#[derive(Clone, Debug)]
struct Entry {
    bytes: Bytes,
    ttl: Option<Duration>,
    expires_at: Option<Instant>,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Entry, _: Instant) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

/// An in-process cache store on [moka](https://docs.rs/moka): TinyLFU admission and eviction,
/// per-entry TTL, bounded by entry count and/or total bytes. Never blocks on I/O; it never fails.
///
/// ```
/// use nilecare_cache::MemoryStore;
///
/// let store = MemoryStore::builder()
///     .max_entries(50_000)
///     .max_bytes(64 * 1024 * 1024)
///     .build()?;
/// # Ok::<(), nilecare_cache::Error>(())
/// ```
///
/// With both bounds, each entry is charged `max(size, max_bytes / max_entries)`, so neither bound
/// can be exceeded. Size is key length plus value length.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Moka<String, Entry>,
    evictions: Arc<AtomicU64>,
    tags: Arc<TagIndex>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .field("weighted_size", &self.cache.weighted_size())
            .finish()
    }
}

/// Builder of [`MemoryStore`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryStoreBuilder {
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
}

impl MemoryStoreBuilder {
    /// At most this many entries (default 10 000 when no bound is given).
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// At most this many bytes of keys plus values.
    #[must_use]
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// Builds the store; a zero bound is an error naming it.
    pub fn build(self) -> Result<MemoryStore> {
        for (field, value) in [
            ("max_entries", self.max_entries),
            ("max_bytes", self.max_bytes),
        ] {
            if value == Some(0) {
                return Err(Error::InvalidConfig {
                    field,
                    message: "must be greater than zero".into(),
                });
            }
        }
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = evictions.clone();
        let builder = Moka::builder().expire_after(PerEntryTtl).eviction_listener(
            move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            },
        );
        let cache = match (self.max_entries, self.max_bytes) {
            (entries, None) => builder.max_capacity(entries.unwrap_or(10_000)).build(),
            (entries, Some(bytes)) => {
                let floor = entries.map_or(1, |n| bytes.div_ceil(n).max(1));
                builder
                    .max_capacity(bytes)
                    .weigher(move |k: &String, v: &Entry| {
                        let size = (k.len() + v.bytes.len()) as u64;
                        u32::try_from(size.max(floor)).unwrap_or(u32::MAX)
                    })
                    .build()
            }
        };
        Ok(MemoryStore {
            cache,
            evictions,
            tags: Arc::default(),
        })
    }
}

impl MemoryStore {
    /// A builder.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// A store bounded to `max_entries` entries.
    pub fn with_max_entries(max_entries: u64) -> Result<Self> {
        Self::builder().max_entries(max_entries).build()
    }

    /// Runs moka's pending maintenance (evictions, expirations) now; useful in tests.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// Entries currently held (approximate until maintenance ran).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Drops every entry (effective at once for reads).
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    fn live(entry: &Entry) -> bool {
        entry.expires_at.is_none_or(|at| at > Instant::now())
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        // moka never returns an entry past its per-entry expiry: no clock read needed here.
        Ok(self.cache.get(key).await.map(|e| e.bytes))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let entry = Entry {
            bytes: value,
            ttl,
            expires_at: ttl.and_then(|t| Instant::now().checked_add(t)),
        };
        self.cache.insert(key.to_owned(), entry).await;
        Ok(())
    }

    async fn set_many(&self, entries: Vec<(String, Bytes, Option<Duration>)>) -> Result<()> {
        for (key, value, ttl) in entries {
            self.set(&key, value, ttl).await?;
        }
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<u64> {
        let mut n = 0;
        for key in keys {
            if self.cache.remove(key).await.is_some_and(|e| Self::live(&e)) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        Ok(match self.cache.get(key).await.filter(Self::live) {
            None => KeyTtl::Missing,
            Some(Entry {
                expires_at: None, ..
            }) => KeyTtl::Persistent,
            Some(Entry {
                expires_at: Some(at),
                ..
            }) => KeyTtl::Expires(at.saturating_duration_since(Instant::now())),
        })
    }

    async fn delete_matching(
        &self,
        pattern: &str,
        keep_deleting: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<u64> {
        let doomed: Vec<Arc<String>> = self
            .cache
            .iter()
            .filter(|(k, e)| Self::live(e) && glob::matches(pattern, k) && keep_deleting(k))
            .map(|(k, _)| k)
            .collect();
        let mut n = 0;
        for key in doomed {
            if self.cache.remove(key.as_str()).await.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn add_to_tag(&self, index: &str, keys: &[(String, Option<Duration>)]) -> Result<u64> {
        Ok(self.tags.add(index, keys))
    }

    async fn take_tag(&self, index: &str) -> Result<Vec<String>> {
        Ok(self.tags.take(index))
    }

    async fn tag_len(&self, index: &str) -> Result<u64> {
        Ok(self.tags.len(index))
    }

    async fn ping(&self) -> Result<Duration> {
        Ok(Duration::ZERO)
    }

    fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn is_remote(&self) -> bool {
        false
    }
}
