//! [`CacheBuilder`]: name, key prefix, TTLs (default, per-namespace policies, jitter), codec,
//! compression and value size limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nilecare_redis::KeyPrefix;

use crate::cache::{Cache, Shared};
use crate::envelope::{Codec, Compression, Envelope};
use crate::error::{Error, Result};
use crate::load::LoadPolicy;
use crate::store::Store;

/// Builds a [`Cache`].
///
/// ```
/// use std::time::Duration;
/// use nilecare_cache::{Cache, Compression, MemoryStore};
///
/// let cache = Cache::builder()
///     .name("clinical")
///     .default_ttl(Duration::from_secs(300))
///     .ttl_policies([
///         ("contacts", Duration::from_secs(5 * 60)),
///         ("appointments", Duration::from_secs(2 * 60)),
///         ("records", Duration::from_secs(10 * 60)),
///         ("analytics", Duration::from_secs(15 * 60)),
///         ("settings", Duration::from_secs(30 * 60)),
///     ])
///     .jitter(0.1)
///     .compression(Compression::gzip().threshold(1024))
///     .build(MemoryStore::with_max_entries(10_000)?)?;
/// # let _ = cache;
/// # Ok::<(), nilecare_cache::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CacheBuilder {
    name: String,
    prefix: Option<String>,
    default_ttl: Option<Duration>,
    policies: Vec<(String, Duration)>,
    load_policies: Vec<(String, LoadPolicy)>,
    jitter: f64,
    codec: Codec,
    compression: Compression,
    max_value_bytes: usize,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            name: "default".into(),
            prefix: None,
            default_ttl: Some(Duration::from_secs(300)),
            policies: Vec::new(),
            load_policies: Vec::new(),
            jitter: 0.1,
            codec: Codec::Json,
            compression: Compression::gzip(),
            max_value_bytes: 16 * 1024 * 1024,
        }
    }
}

impl CacheBuilder {
    /// The cache's name: the `cache` label of its metrics and the `cache` field of its logs.
    /// 1 to 64 characters of `[A-Za-z0-9_-]` (a metric label must stay bounded). Default `default`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The full key prefix (default `nilecare:cache:`). Two caches with different prefixes never
    /// see each other's keys. Rejected when it contains `{`, `}`, whitespace or control characters.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// TTL when `set` gets none and no policy matches (default 5 minutes).
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Entries without an explicit TTL or policy never expire (they are still evicted for size
    /// in memory, and by Redis' `maxmemory-policy`).
    #[must_use]
    pub fn no_default_ttl(mut self) -> Self {
        self.default_ttl = None;
        self
    }

    /// The TTL of keys in `namespace` (the part of the key before its first `:`), used when `set`
    /// gets no explicit TTL: `ttl_policy("appointments", 2 min)` covers `appointments:42`.
    #[must_use]
    pub fn ttl_policy(mut self, namespace: impl Into<String>, ttl: Duration) -> Self {
        self.policies.push((namespace.into(), ttl));
        self
    }

    /// The [`LoadPolicy`] (stale-while-revalidate, negative TTL, cross-instance lock) that
    /// [`Cache::get_or_set_with`] uses for keys in
    /// `namespace` when the call gives none: `load_policy("patients", LoadPolicy::new()
    /// .stale_after(60 s))`. An explicit TTL given to `get_or_set_with` still wins over the
    /// policy's.
    #[must_use]
    pub fn load_policy(mut self, namespace: impl Into<String>, policy: LoadPolicy) -> Self {
        self.load_policies.push((namespace.into(), policy));
        self
    }

    /// Several [`ttl_policy`](Self::ttl_policy)s.
    #[must_use]
    pub fn ttl_policies<N: Into<String>>(
        mut self,
        policies: impl IntoIterator<Item = (N, Duration)>,
    ) -> Self {
        self.policies
            .extend(policies.into_iter().map(|(n, t)| (n.into(), t)));
        self
    }

    /// Random spread of every TTL, as a fraction: `0.1` (default) stores a 100 s TTL as 90 to
    /// 110 s so that entries written together do not expire together. `0.0` disables it.
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The value codec (default JSON).
    #[must_use]
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Compression of large values (default gzip above 1 KiB).
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Largest encoded value accepted on write and after decompression on read (default 16 MiB).
    #[must_use]
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Builds the cache over `store`. Pass an [`AnyStore`](crate::AnyStore)
    /// (`AnyStore::from(memory_store)`) to get the plain `Cache` type whose backend is chosen at
    /// run time. Every setting is checked; errors name the field.
    pub fn build<S: Store>(self, store: S) -> Result<Cache<S>> {
        let invalid = |field, message: String| Error::InvalidConfig { field, message };
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "name",
                format!(
                    "must be 1-64 characters of [A-Za-z0-9_-], got {:?}",
                    self.name
                ),
            ));
        }
        let prefix = match &self.prefix {
            None => KeyPrefix::default().segment("cache"),
            Some(p) => KeyPrefix::new(p.clone()).map_err(|e| invalid("prefix", e.to_string()))?,
        };
        if self.default_ttl.is_some_and(|t| t.is_zero()) {
            return Err(invalid("default_ttl", "must be greater than zero".into()));
        }
        let mut policies = HashMap::with_capacity(self.policies.len());
        for (namespace, ttl) in self.policies {
            if namespace.is_empty() || namespace.contains(':') {
                return Err(invalid(
                    "ttl_policy",
                    format!("namespace must be non-empty and contain no `:`, got {namespace:?}"),
                ));
            }
            if ttl.is_zero() {
                return Err(invalid(
                    "ttl_policy",
                    format!("TTL of {namespace:?} must be greater than zero"),
                ));
            }
            policies.insert(namespace, ttl);
        }
        let mut load_policies = HashMap::with_capacity(self.load_policies.len());
        for (namespace, policy) in self.load_policies {
            if namespace.is_empty() || namespace.contains(':') {
                return Err(invalid(
                    "load_policy",
                    format!("namespace must be non-empty and contain no `:`, got {namespace:?}"),
                ));
            }
            policy.validate()?;
            load_policies.insert(namespace, policy);
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(invalid(
                "jitter",
                format!("must be within 0.0..=0.5, got {}", self.jitter),
            ));
        }
        self.compression.validate()?;
        if self.max_value_bytes == 0 {
            return Err(invalid(
                "max_value_bytes",
                "must be greater than zero".into(),
            ));
        }
        let shared = Shared::new(
            store,
            self.name,
            prefix,
            self.default_ttl,
            policies,
            load_policies,
            self.jitter,
            Envelope {
                codec: self.codec,
                compression: self.compression,
                max_value_bytes: self.max_value_bytes,
            },
        );
        Ok(Cache::from_shared(Arc::new(shared)))
    }
}
