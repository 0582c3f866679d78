//! [`Cache`]: typed values over any [`Store`], with the envelope, TTL policies, tenants, stats
//! and metrics.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::SharedString;
use nilecare_redis::{KeyPrefix, escape_key_part};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::any::AnyStore;
use crate::config::CacheBuilder;
use crate::envelope::{DecodeError, Envelope};
use crate::error::{Error, Result};
use crate::load::LoadPolicy;
use crate::metrics as m;
use crate::single_flight::Flights;
use crate::stats::{CacheStats, Counters};
use crate::store::{KeyTtl, Store};
use crate::throttle::LogThrottle;

/// Longest accepted user key, in bytes.
const MAX_KEY_LEN: usize = 1024;
/// Longest accepted tenant id, in bytes.
const MAX_TENANT_LEN: usize = 128;
/// Marks tenant segments; user keys may not start with it.
const TENANT_MARK: char = '@';

/// State shared by a cache and all its tenant views.
pub(crate) struct Shared<S> {
    pub(crate) store: S,
    name: SharedString,
    root: KeyPrefix,
    default_ttl: Option<Duration>,
    policies: HashMap<String, Duration>,
    /// Per-namespace load policies (`get_or_set_with`).
    pub(crate) load_policies: HashMap<String, LoadPolicy>,
    jitter: f64,
    envelope: Envelope,
    pub(crate) counters: Counters,
    /// Loads in progress (`get_or_set_with`).
    pub(crate) flights: Flights,
    reported_evictions: AtomicU64,
    warnings: LogThrottle,
    lookups: m::LookupCounters,
    durations: m::OperationDurations,
    /// `store.is_remote()`, read once.
    remote: bool,
}

impl<S: Store> Shared<S> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: S,
        name: String,
        root: KeyPrefix,
        default_ttl: Option<Duration>,
        policies: HashMap<String, Duration>,
        load_policies: HashMap<String, LoadPolicy>,
        jitter: f64,
        envelope: Envelope,
    ) -> Self {
        let name = SharedString::from_shared(Arc::from(name));
        Shared {
            remote: store.is_remote(),
            store,
            lookups: m::LookupCounters::new(name.clone()),
            durations: m::OperationDurations::new(name.clone()),
            name,
            root,
            default_ttl,
            policies,
            load_policies,
            jitter,
            envelope,
            counters: Counters::default(),
            flights: Flights::default(),
            reported_evictions: AtomicU64::new(0),
            warnings: LogThrottle::new(Duration::from_secs(5)),
        }
    }
}

/// A typed cache: `get::<T>` / `set(&T)` with serde, over a memory or Redis [`Store`].
///
/// Cheap to clone (one `Arc`). `Cache` without a type parameter is `Cache<AnyStore>`, whose
/// backend is chosen at run time, so handler and state types carry no generics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), nilecare_cache::Error> {
/// use std::time::Duration;
/// use nilecare_cache::{AnyStore, Cache, MemoryStore};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Patient { id: u32, name: String }
///
/// let cache: Cache = Cache::builder()
///     .name("patients")
///     .ttl_policy("appointments", Duration::from_secs(120))
///     .build(AnyStore::from(MemoryStore::with_max_entries(10_000)?))?;
///
/// let p = Patient { id: 123, name: "Amina".into() };
/// cache.set("patients:123", &p, None).await?;            // default TTL (5 min ± 10 %)
/// assert_eq!(cache.get::<Patient>("patients:123").await, Some(p));
/// assert_eq!(cache.get::<Patient>("patients:999").await, None);
///
/// let clinic = cache.for_tenant("clinic_1")?;           // a view confined to one tenant
/// assert_eq!(clinic.get::<Patient>("patients:123").await, None);
///
/// assert_eq!(cache.invalidate_pattern("patients:*").await?, 1);
/// assert_eq!(cache.stats().hits, 1);
/// # Ok(()) }
/// ```
pub struct Cache<S = AnyStore> {
    shared: Arc<Shared<S>>,
    /// The prefix of this view: the cache's root, or the root plus a tenant segment.
    scope: KeyPrefix,
    tenant: Option<Arc<str>>,
}

impl<S> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Cache {
            shared: self.shared.clone(),
            scope: self.scope.clone(),
            tenant: self.tenant.clone(),
        }
    }
}

impl<S: Store> std::fmt::Debug for Cache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &&*self.shared.name)
            .field("store", &self.shared.store.kind())
            .field("prefix", &self.scope)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Cache {
    /// A builder (name, prefix, TTLs, codec, compression).
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }
}

/// Validates a user key: 1..=1024 bytes, not starting with `@` (reserved for tenant segments).
fn check_key(key: &str) -> Result<()> {
    let bad = |message: String| Error::InvalidKey {
        field: "key",
        message,
    };
    if key.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad(format!(
            "must be at most {MAX_KEY_LEN} bytes, got {}",
            key.len()
        )));
    }
    if key.starts_with(TENANT_MARK) {
        return Err(bad(format!(
            "must not start with `{TENANT_MARK}` (reserved for tenant segments): {:?}",
            shorten(key)
        )));
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    if s.len() <= 64 {
        s.to_owned()
    } else {
        let mut end = 64;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

/// The namespace of a key for TTL policies and logs: the part before the first `:`.
pub(crate) fn namespace(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

impl<S: Store> Cache<S> {
    pub(crate) fn shared(&self) -> &Shared<S> {
        &self.shared
    }

    pub(crate) fn scope(&self) -> &KeyPrefix {
        &self.scope
    }

    pub(crate) fn envelope(&self) -> &Envelope {
        &self.shared.envelope
    }

    pub(crate) fn from_shared(shared: Arc<Shared<S>>) -> Self {
        Cache {
            scope: shared.root.clone(),
            shared,
            tenant: None,
        }
    }

    /// A view of this cache confined to one tenant (e.g. a clinic): its keys live under
    /// `<prefix>@<tenant>:`, and its patterns, invalidations and flushes can never reach another
    /// tenant's keys or the global ones. The tenant id is escaped (`:`, `{`, `}`, `%`) and
    /// glob-escaped in patterns; it must be 1..=128 bytes without control characters.
    pub fn for_tenant(&self, tenant: &str) -> Result<Cache<S>> {
        let bad = |message: String| Error::InvalidKey {
            field: "tenant",
            message,
        };
        if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
            return Err(bad(format!(
                "must be 1 to {MAX_TENANT_LEN} bytes, got {}",
                tenant.len()
            )));
        }
        if tenant.chars().any(char::is_control) {
            return Err(bad(format!(
                "must not contain control characters: {:?}",
                shorten(tenant)
            )));
        }
        let segment = format!("{TENANT_MARK}{}", escape_key_part(tenant));
        Ok(Cache {
            shared: self.shared.clone(),
            scope: self.shared.root.segment(&segment),
            tenant: Some(Arc::from(tenant)),
        })
    }

    /// The tenant of this view, `None` for the global view.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The cache's name (its metrics label).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The backend.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// The full key a user key is stored under (for debugging and `redis-cli`).
    pub fn full_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(self.scope.key(key))
    }

    /// The value under `key`, or `None` when it is absent, expired, unreadable (foreign, corrupt,
    /// other type) or when the backend fails or times out. Failures are counted (`errors`) and
    /// logged (at most one warning per 5 s); they never reach the caller.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.try_get(key).await.unwrap_or(None)
    }

    /// Like [`get`](Self::get), but backend failures and invalid keys are returned as errors
    /// (unreadable values are still misses).
    pub async fn try_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let started = self.start();
        // No nested future: the key check, the store's future and the decode in this one.
        let result = match check_key(key) {
            Err(e) => Err(e),
            Ok(()) => {
                // The full key only lent to the store: on the stack, no allocation.
                let full = self.scope.stack_key(key);
                match self.shared.store.get(&full).await {
                    Ok(bytes) => Ok(bytes.and_then(|b| self.decode(key, &b))),
                    Err(e) => Err(e),
                }
            }
        };
        let found = matches!(result, Ok(Some(_)));
        self.count_lookups(u64::from(found), u64::from(!found));
        self.finish("get", started, &result);
        result
    }

    /// The values under `keys`, in order (one round trip per hash slot on Redis). Fails open
    /// like [`get`](Self::get): on a backend failure every value is `None`.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(&self, keys: &[K]) -> Vec<Option<T>> {
        let started = self.start();
        let result = async {
            let full = keys
                .iter()
                .map(|k| self.full_key(k.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            self.shared.store.get_many(&full).await
        }
        .await;
        self.finish("get_many", started, &result);
        let values: Vec<Option<T>> = match result {
            Ok(found) => found
                .into_iter()
                .zip(keys)
                .map(|(bytes, key)| bytes.and_then(|b| self.decode(key.as_ref(), &b)))
                .collect(),
            Err(_) => keys.iter().map(|_| None).collect(),
        };
        let hits = values.iter().filter(|v| v.is_some()).count() as u64;
        self.count_lookups(hits, values.len() as u64 - hits);
        values
    }

    /// Stores `value` under `key`. TTL: `ttl` if given, else the policy of the key's namespace,
    /// else the default TTL; the jitter is applied to all of them. Returns an error (the caller
    /// may ignore it) when the value cannot be encoded or the backend fails.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let started = self.start();
        let result = async {
            let full = self.full_key(key)?;
            let ttl = self.effective_ttl(key, ttl)?;
            let bytes = self.shared.envelope.encode(value)?;
            self.shared.store.set(&full, bytes, ttl).await
        }
        .await;
        if result.is_ok() {
            Counters::add(&self.shared.counters.sets, 1);
            self.report_evictions();
        }
        self.finish("set", started, &result);
        result
    }

    /// Stores several values (each with the TTL rules of [`set`](Self::set)).
    pub async fn set_many<T: Serialize, K: AsRef<str>>(
        &self,
        entries: &[(K, T)],
        ttl: Option<Duration>,
    ) -> Result<()> {
        let started = self.start();
        let result = async {
            let mut batch = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key = key.as_ref();
                batch.push((
                    self.full_key(key)?,
                    self.shared.envelope.encode(value)?,
                    self.effective_ttl(key, ttl)?,
                ));
            }
            self.shared.store.set_many(batch).await
        }
        .await;
        if result.is_ok() {
            Counters::add(&self.shared.counters.sets, entries.len() as u64);
            self.report_evictions();
        }
        self.finish("set_many", started, &result);
        result
    }

    /// Deletes `key`; `true` when it existed.
    pub async fn del(&self, key: &str) -> Result<bool> {
        Ok(self.del_many(&[key]).await? > 0)
    }

    /// Deletes `keys`; returns how many existed.
    pub async fn del_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        let started = self.start();
        let result = async {
            let full = keys
                .iter()
                .map(|k| self.full_key(k.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            self.shared.store.delete(&full).await
        }
        .await;
        if let Ok(n) = result {
            Counters::add(&self.shared.counters.deletes, n);
        }
        self.finish("del", started, &result);
        result
    }

    /// Whether `key` holds a value.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let started = self.start();
        let result = async { self.shared.store.exists(&self.full_key(key)?).await }.await;
        self.finish("exists", started, &result);
        result
    }

    /// The remaining lifetime of `key`.
    pub async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let started = self.start();
        let result = async { self.shared.store.ttl(&self.full_key(key)?).await }.await;
        self.finish("ttl", started, &result);
        result
    }

    /// Deletes every key of this view matching `pattern` (a Redis glob: `*`, `?`, `[a-z]`,
    /// `\` escapes) and returns how many went. The pattern applies below this view's prefix and
    /// cannot leave it: on the global view it never touches tenant keys, on a tenant view never
    /// another tenant's. Uses `SCAN` (every primary of a cluster), never `KEYS`.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64> {
        if pattern.is_empty() {
            let e = Error::InvalidKey {
                field: "pattern",
                message: "must not be empty".into(),
            };
            let result = Err(e);
            self.finish("invalidate_pattern", None, &result);
            return result;
        }
        let spare_tenants = self.tenant.is_none();
        self.delete_by_pattern(
            "invalidate_pattern",
            &self.scope.pattern(pattern),
            spare_tenants,
        )
        .await
    }

    /// Deletes every key of this view: the whole cache (all tenants included) on the global
    /// view, one tenant's keys on a tenant view. Only this cache's prefix, never `FLUSHALL`.
    pub async fn flush_all(&self) -> Result<u64> {
        self.delete_by_pattern("flush_all", &self.scope.pattern_all(), false)
            .await
    }

    /// Round trip to the backend (zero for memory).
    pub async fn ping(&self) -> Result<Duration> {
        self.shared.store.ping().await
    }

    /// The counters of this cache (shared by all its tenant views).
    pub fn stats(&self) -> CacheStats {
        self.shared.counters.snapshot(self.shared.store.evictions())
    }

    /// Deletes the keys matching a full pattern (optionally sparing tenant segments), counting
    /// and timing the operation.
    async fn delete_by_pattern(
        &self,
        operation: &'static str,
        pattern: &str,
        spare_tenants: bool,
    ) -> Result<u64> {
        let started = self.start();
        let root = &self.shared.root;
        let keep_deleting = |key: &str| {
            !spare_tenants
                || root
                    .strip(key)
                    .is_some_and(|rest| !rest.starts_with(TENANT_MARK))
        };
        let result = self
            .shared
            .store
            .delete_matching(pattern, &keep_deleting)
            .await;
        if let Ok(n) = result {
            Counters::add(&self.shared.counters.deletes, n);
        }
        self.finish(operation, started, &result);
        result
    }

    pub(crate) fn effective_ttl(
        &self,
        key: &str,
        explicit: Option<Duration>,
    ) -> Result<Option<Duration>> {
        if explicit.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidConfig {
                field: "ttl",
                message: "must be greater than zero".into(),
            });
        }
        let base = explicit
            .or_else(|| self.shared.policies.get(namespace(key)).copied())
            .or(self.shared.default_ttl);
        Ok(base.map(|ttl| self.jittered(ttl)))
    }

    fn jittered(&self, ttl: Duration) -> Duration {
        if self.shared.jitter == 0.0 {
            return ttl;
        }
        // Uniform in [-1, 1) from a randomly keyed hash: no RNG dependency needed.
        let r = RandomState::new().hash_one(Instant::now());
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        ttl.mul_f64(1.0 + unit * self.shared.jitter)
            .max(Duration::from_millis(1))
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        match self.shared.envelope.decode(bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                self.record_decode_error(key, &e);
                None
            }
        }
    }

    pub(crate) fn record_decode_error(&self, key: &str, e: &DecodeError) {
        Counters::add(&self.shared.counters.errors, 1);
        m::error(&self.shared.name, "get", "decode");
        if let Some(suppressed) = self.shared.warnings.allow() {
            tracing::warn!(
                cache = %self.shared.name,
                key.namespace = namespace(key),
                error = %e,
                suppressed,
                "unreadable cache value treated as a miss"
            );
        }
    }

    pub(crate) fn count_lookups(&self, hits: u64, misses: u64) {
        Counters::add(&self.shared.counters.hits, hits);
        Counters::add(&self.shared.counters.misses, misses);
        self.shared.lookups.record(hits, misses);
    }

    /// Starts timing an operation when the store is remote (see [`Store::is_remote`]).
    pub(crate) fn start(&self) -> Option<Instant> {
        self.shared.remote.then(Instant::now)
    }

    /// Records duration, and on failure the error counter, metric and (throttled) warning.
    pub(crate) fn finish<T>(
        &self,
        operation: &'static str,
        started: Option<Instant>,
        result: &Result<T>,
    ) {
        if let Some(started) = started {
            self.shared.durations.record(operation, started.elapsed());
        }
        if let Err(e) = result {
            Counters::add(&self.shared.counters.errors, 1);
            m::error(&self.shared.name, operation, e.kind());
            if let Some(suppressed) = self.shared.warnings.allow() {
                tracing::warn!(
                    cache = %self.shared.name,
                    store = self.shared.store.kind(),
                    operation,
                    error = %e,
                    suppressed,
                    "cache operation failed"
                );
            }
        }
    }

    fn report_evictions(&self) {
        let now = self.shared.store.evictions();
        let before = self.shared.reported_evictions.swap(now, Ordering::Relaxed);
        if now > before {
            m::evictions(&self.shared.name, now - before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("patients:1").is_ok());
        for bad in ["", "@clinic:x", &"k".repeat(1025)] {
            assert!(
                matches!(check_key(bad), Err(Error::InvalidKey { field: "key", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace("appointments:42"), "appointments");
        assert_eq!(namespace("plain"), "plain");
    }
}
