//! [`AnyStore`]: the store chosen at run time (memory, Redis or tiered, e.g. from `REDIS_URL`).

use bytes::Bytes;
use std::time::Duration;

use crate::error::Result;
use crate::store::{KeyTtl, Store};

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
