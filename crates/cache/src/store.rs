//! The backend trait: bytes in, bytes out. [`AnyStore`](crate::AnyStore) picks the backend
//! at run time.

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
