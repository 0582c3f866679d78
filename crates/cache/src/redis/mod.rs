//! [`RedisStore`]: the store on a fred pool from nilecare-redis (standalone, cluster, sentinel).

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::try_join_all;
use nilecare_redis::fred::clients::Pool;
use nilecare_redis::fred::interfaces::{ClientLike, KeysInterface};
use nilecare_redis::fred::prelude::Value;
use nilecare_redis::fred::types::config::Options;
use nilecare_redis::fred::types::{
    ClusterHash, CustomCommand, Expiration, FromValue, Key, SetOptions,
};
use nilecare_redis::{Script, follow_migration};

use crate::error::{Error, Result};
use crate::store::{KeyTtl, Store};

/// A cache store on Redis. Values are plain strings (`GET`/`SET PX`), so any Redis tool can
/// inspect them; the [`Cache`](crate::Cache) envelope tells its own values from foreign ones.
///
/// Every read is bounded by `read_timeout` (default 50 ms) and every write by `write_timeout`
/// (default 250 ms); a disconnected pool fails at once instead of waiting for a reconnect. Pattern
/// deletes use `SCAN` + `UNLINK` on every primary, never `KEYS`. Multi-key reads and deletes are
/// grouped by hash slot, so all of it works on Redis Cluster.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use nilecare_cache::RedisStore;
/// use nilecare_redis::{RedisConfig, connect};
///
/// let pool = connect(&RedisConfig::from_url("redis://127.0.0.1:6379")?).await?;
/// let store = RedisStore::builder(pool).read_timeout(Duration::from_millis(20)).build()?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    read: Options,
    write: Options,
    read_timeout: Duration,
    write_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

/// Builder of [`RedisStore`].
#[derive(Clone, Debug)]
pub struct RedisStoreBuilder {
    pool: Pool,
    read_timeout: Duration,
    write_timeout: Duration,
}

impl RedisStoreBuilder {
    /// Per-call timeout of reads (`GET`, `MGET`, `EXISTS`, `PTTL`); default 50 ms.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Per-call timeout of writes (`SET`, `UNLINK`); default 250 ms.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Builds the store; zero timeouts are errors naming the field.
    pub fn build(self) -> Result<RedisStore> {
        for (field, t) in [
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if t.is_zero() {
                return Err(Error::InvalidConfig {
                    field,
                    message: "must be greater than zero".into(),
                });
            }
        }
        Ok(RedisStore::with_timeouts(
            self.pool,
            self.read_timeout,
            self.write_timeout,
        ))
    }
}

impl RedisStore {
    /// Default read timeout.
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(50);
    /// Default write timeout.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_millis(250);

    /// A store with the default timeouts.
    pub fn new(pool: Pool) -> Self {
        Self::with_timeouts(
            pool,
            Self::DEFAULT_READ_TIMEOUT,
            Self::DEFAULT_WRITE_TIMEOUT,
        )
    }

    /// Commands bounded by `timeout` that fail at once while the pool is disconnected.
    fn with_timeouts(pool: Pool, read_timeout: Duration, write_timeout: Duration) -> Self {
        let options = |timeout| Options {
            timeout: Some(timeout),
            fail_fast: true,
            ..Options::default()
        };
        RedisStore {
            read: options(read_timeout),
            write: options(write_timeout),
            pool,
            read_timeout,
            write_timeout,
        }
    }

    /// A builder to set the timeouts.
    pub fn builder(pool: Pool) -> RedisStoreBuilder {
        RedisStoreBuilder {
            pool,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// The pool (shared with other crates if you like).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn err(
        &self,
        operation: &'static str,
        after: Duration,
        e: nilecare_redis::fred::error::Error,
    ) -> Error {
        if matches!(e.kind(), nilecare_redis::fred::error::ErrorKind::Timeout) {
            Error::Timeout { operation, after }
        } else {
            Error::Redis(nilecare_redis::Error::Redis(e))
        }
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        // MGET with one key answers a bare value, not an array: use GET.
        if let [key] = keys {
            let v: Option<Bytes> = self
                .read_key(key.as_bytes(), "GET")
                .await
                .map_err(|e| self.err("get_many", self.read_timeout, e))?;
            return Ok(vec![v]);
        }
        let pool = self.pool.with_options(&self.read);
        let found = pool
            .mget(keys.iter().map(|k| Key::from(*k)).collect::<Vec<_>>())
            .await;
        let first = keys.first().map_or(&[][..], |k| k.as_bytes());
        follow_migration(&pool, found, first, "MGET", || {
            keys.iter().map(|k| Value::from(*k)).collect()
        })
        .await
        .map_err(|e| self.err("get_many", self.read_timeout, e))
    }

    /// `command key` (`GET`, `EXISTS`, `PTTL`) with the read options, following the key to its
    /// new node while its cluster slot is being migrated.
    async fn read_key<R: FromValue>(
        &self,
        key: &[u8],
        command: &'static str,
    ) -> std::result::Result<R, nilecare_redis::fred::error::Error> {
        let pool = self.pool.with_options(&self.read);
        let routed = CustomCommand::new_static(command, ClusterHash::FirstKey, false);
        let read = pool.custom(routed, vec![Value::from(key)]).await;
        follow_migration(&pool, read, key, command, || vec![Value::from(key)]).await
    }

    /// `SET key value [PX ms] [NX]` with the write options, following the key to its new node
    /// while its cluster slot is being migrated.
    async fn write_key<R: FromValue>(
        &self,
        key: &str,
        value: Value,
        ttl: Option<Duration>,
        only_new: bool,
    ) -> std::result::Result<R, nilecare_redis::fred::error::Error> {
        let pool = self.pool.with_options(&self.write);
        let set_options = only_new.then_some(SetOptions::NX);
        let written = pool
            .set(key, value.clone(), px(ttl), set_options, false)
            .await;
        follow_migration(&pool, written, key.as_bytes(), "SET", || {
            let mut args = vec![Value::from(key), value];
            if let Some(Expiration::PX(ms)) = px(ttl) {
                args.extend([Value::from("PX"), Value::from(ms)]);
            }
            if only_new {
                args.push(Value::from("NX"));
            }
            args
        })
        .await
    }
}

fn px(ttl: Option<Duration>) -> Option<Expiration> {
    ttl.map(|t| Expiration::PX(i64::try_from(t.as_millis().max(1)).unwrap_or(i64::MAX)))
}

impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.read_key(key.as_bytes(), "GET")
            .await
            .map_err(|e| self.err("get", self.read_timeout, e))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if !self.pool.is_clustered() {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            return self.mget(&keys).await;
        }
        // One MGET per hash slot, concurrently, then back into the caller's order.
        let mut groups: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            groups
                .entry(nilecare_redis::key_slot(key))
                .or_default()
                .push(i);
        }
        let fetches = groups.into_values().map(|idx| async move {
            let slot_keys: Vec<&str> = idx.iter().map(|&i| keys[i].as_str()).collect();
            self.mget(&slot_keys).await.map(|values| (idx, values))
        });
        let mut out = vec![None; keys.len()];
        for (idx, values) in try_join_all(fetches).await? {
            for (i, v) in idx.into_iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.write_key::<()>(key, Value::Bytes(value), ttl, false)
            .await
            .map_err(|e| self.err("set", self.write_timeout, e))
    }

    async fn set_many(&self, entries: Vec<(String, Bytes, Option<Duration>)>) -> Result<()> {
        // Concurrent SETs are pipelined by fred on each connection (and routed per node on a
        // cluster); MSET cannot carry per-key TTLs.
        let writes = entries
            .into_iter()
            .map(|(key, value, ttl)| async move { self.set(&key, value, ttl).await });
        try_join_all(writes).await.map(drop)
    }

    async fn delete(&self, keys: &[String]) -> Result<u64> {
        Ok(nilecare_redis::unlink_keys(&self.pool, keys.iter().map(String::as_str)).await?)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let n: u64 = self
            .read_key(key.as_bytes(), "EXISTS")
            .await
            .map_err(|e| self.err("exists", self.read_timeout, e))?;
        Ok(n > 0)
    }

    async fn ttl(&self, key: &str) -> Result<KeyTtl> {
        let ms: i64 = self
            .read_key(key.as_bytes(), "PTTL")
            .await
            .map_err(|e| self.err("ttl", self.read_timeout, e))?;
        Ok(match ms {
            -2 => KeyTtl::Missing,
            ms if ms < 0 => KeyTtl::Persistent,
            ms => KeyTtl::Expires(Duration::from_millis(ms.unsigned_abs())),
        })
    }

    async fn delete_matching(
        &self,
        pattern: &str,
        keep_deleting: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<u64> {
        Ok(nilecare_redis::delete_matching_where(&self.pool, pattern, keep_deleting).await?)
    }

    async fn add_to_tag(&self, index: &str, keys: &[(String, Option<Duration>)]) -> Result<u64> {
        static ADD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("tag_add.lua")));
        let mut args: Vec<String> = Vec::with_capacity(keys.len() * 2);
        for (key, ttl) in keys {
            args.push(key.clone());
            args.push(
                ttl.map_or(-1, |t| t.as_millis().min(i64::MAX as u128) as i64)
                    .to_string(),
            );
        }
        Ok(ADD.run(&self.pool, index, args).await?)
    }

    async fn take_tag(&self, index: &str) -> Result<Vec<String>> {
        static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("tag_take.lua")));
        Ok(TAKE.run(&self.pool, index, Vec::<String>::new()).await?)
    }

    async fn tag_len(&self, index: &str) -> Result<u64> {
        static LEN: LazyLock<Script> =
            LazyLock::new(|| Script::new("return redis.call('ZCARD', KEYS[1])"));
        Ok(LEN.run(&self.pool, index, Vec::<String>::new()).await?)
    }

    async fn try_lock(&self, key: &str, token: &str, lease: Duration) -> Result<bool> {
        let lease_ms = lease.as_millis().clamp(1, i64::MAX as u128) as i64;
        let lease = Duration::from_millis(lease_ms.unsigned_abs());
        let taken: Option<String> = self
            .write_key(key, Value::from(token), Some(lease), true)
            .await
            .map_err(|e| self.err("lock", self.write_timeout, e))?;
        Ok(taken.is_some())
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<()> {
        static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
            Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
        });
        let _: i64 = UNLOCK.run(&self.pool, key, token).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<Duration> {
        Ok(nilecare_redis::ping(&self.pool).await?)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
