//! The backend trait: bytes in, bytes out. [`AnyStore`] picks the backend at run time.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;

/// Remaining lifetime of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// No such key.
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// A cache backend storing opaque bytes under full keys (the [`Cache`](crate::Cache) adds the
/// prefix, the envelope and the stats).
///
/// Implementations must bound every call in time (a stalled backend must not stall callers) and
/// must not panic on any input.
pub trait Store: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>>> + Send;

    /// The values under `keys`, in order.
    fn get_many(&self, keys: &[String]) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send;

    /// Stores `value` under `key`, expiring after `ttl` (never when `None`).
    fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stores several entries, each with its own TTL.
    fn set_many(
        &self,
        entries: Vec<(String, Bytes, Option<Duration>)>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes `keys`; returns how many existed.
    fn delete(&self, keys: &[String]) -> impl Future<Output = Result<u64>> + Send;

    /// Whether `key` exists.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Remaining lifetime of `key`.
    fn ttl(&self, key: &str) -> impl Future<Output = Result<KeyTtl>> + Send;

    /// Deletes every key matching the Redis glob `pattern` for which `keep_deleting(key)` is
    /// `true`; returns how many went.
    fn delete_matching(
        &self,
        pattern: &str,
        keep_deleting: &(dyn Fn(&str) -> bool + Sync),
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Records that `keys` (written with these TTLs) carry the tag whose index is `index`;
    /// returns the index size. Implementations drop members whose keys expired, so an index
    /// never outgrows the live keys of its tag.
    fn add_to_tag(
        &self,
        index: &str,
        keys: &[(String, Option<Duration>)],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Removes the tag index `index`; returns the keys it held that have not expired.
    fn take_tag(&self, index: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Members of the tag index `index` (members whose keys expired may count until the tag's
    /// next write).
    fn tag_len(&self, index: &str) -> impl Future<Output = Result<u64>> + Send;

    /// Takes the lock `key` for `lease` unless someone holds it: `true` when taken. Used so
    /// that instances sharing a store do not all load the same cold key. The default (stores
    /// not shared between processes) always grants it.
    fn try_lock(
        &self,
        key: &str,
        token: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<bool>> + Send {
        let _ = (key, token, lease);
        std::future::ready(Ok(true))
    }

    /// Releases the lock `key` if `token` still holds it (an expired lease may have passed to
    /// someone else).
    fn unlock(&self, key: &str, token: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = (key, token);
        std::future::ready(Ok(()))
    }

    /// Round trip to the backend.
    fn ping(&self) -> impl Future<Output = Result<Duration>> + Send;

    /// Entries evicted for size so far (0 where the backend does not report it).
    fn evictions(&self) -> u64 {
        0
    }

    /// Short backend name for logs (`memory`, `redis`).
    fn kind(&self) -> &'static str;

    /// Whether calls cross the network (default `true`). The cache times operations of remote
    /// stores only: in-process calls take well under a microsecond, and reading the clock twice
    /// would double their cost.
    fn is_remote(&self) -> bool {
        true
    }
}

/// A store chosen at run time (memory or Redis, e.g. from `REDIS_URL`), so that handler types
/// never carry a backend generic: `Cache` means `Cache<AnyStore>`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// In-process moka store.
    #[cfg(feature = "memory")]
    #[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
    Memory(crate::memory::MemoryStore),
    /// Redis store.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(crate::redis::RedisStore),
    /// L1 memory in front of Redis.
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    Tiered(crate::tiered::TieredStore),
}

#[cfg(feature = "tiered")]
impl From<crate::tiered::TieredStore> for AnyStore {
    fn from(s: crate::tiered::TieredStore) -> Self {
        AnyStore::Tiered(s)
    }
}

#[cfg(feature = "memory")]
impl From<crate::memory::MemoryStore> for AnyStore {
    fn from(s: crate::memory::MemoryStore) -> Self {
        AnyStore::Memory(s)
    }
}

#[cfg(feature = "redis")]
impl From<crate::redis::RedisStore> for AnyStore {
    fn from(s: crate::redis::RedisStore) -> Self {
        AnyStore::Redis(s)
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            #[cfg(feature = "memory")]
            AnyStore::Memory($s) => $e,
            #[cfg(feature = "redis")]
            AnyStore::Redis($s) => $e,
            #[cfg(feature = "tiered")]
            AnyStore::Tiered($s) => $e,
            #[allow(unreachable_patterns)]
            _ => unreachable!("AnyStore has no variants without the memory or redis feature"),
        }
    };
}

// Without a store feature `AnyStore` has no variants and the arguments go unused.
#[cfg_attr(
    not(any(feature = "memory", feature = "redis")),
    allow(unused_variables)
)]
impl Store for AnyStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        dispatch!(self, s => s.get(key).await)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        dispatch!(self, s => s.get_many(keys).await)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        dispatch!(self, s => s.set(key, value, ttl).await)
    }

    async fn set_many(&self, entries: Vec<(String, Bytes, Option<Duration>)>) -> Result<()> {
        dispatch!(self, s => s.set_many(entries).await)
    }

    async fn delete(&self, keys: &[String]) -> Result<u64> {
        dispatch!(self, s => s.delete(keys).await)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        dispatch!(self, s => s.exists(key).await)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        dispatch!(self, s => s.ttl(key).await)
    }

    async fn delete_matching(
        &self,
        pattern: &str,
        keep_deleting: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<u64> {
        dispatch!(self, s => s.delete_matching(pattern, keep_deleting).await)
    }

    async fn add_to_tag(&self, index: &str, keys: &[(String, Option<Duration>)]) -> Result<u64> {
        dispatch!(self, s => s.add_to_tag(index, keys).await)
    }

    async fn take_tag(&self, index: &str) -> Result<Vec<String>> {
        dispatch!(self, s => s.take_tag(index).await)
    }

    async fn tag_len(&self, index: &str) -> Result<u64> {
        dispatch!(self, s => s.tag_len(index).await)
    }

    async fn try_lock(&self, key: &str, token: &str, lease: Duration) -> Result<bool> {
        dispatch!(self, s => s.try_lock(key, token, lease).await)
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<()> {
        dispatch!(self, s => s.unlock(key, token).await)
    }

    async fn ping(&self) -> Result<Duration> {
        dispatch!(self, s => s.ping().await)
    }

    fn evictions(&self) -> u64 {
        dispatch!(self, s => s.evictions())
    }

    fn kind(&self) -> &'static str {
        dispatch!(self, s => s.kind())
    }

    fn is_remote(&self) -> bool {
        dispatch!(self, s => s.is_remote())
    }
}
