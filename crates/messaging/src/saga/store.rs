//! Where sagas are persisted: the [`SagaStore`] trait, in memory and on Redis.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::{millis as ms, now_ms};

#[cfg(feature = "redis")]
use crate::error::Error;
use crate::error::Result;
use crate::saga::record::SagaRecord;

/// Persists saga records with compare-and-set and leases.
pub trait SagaStore: Send + Sync + 'static {
    /// Writes `record` if the stored version is `expected` (0: only if there is none) and
    /// `record.owner` holds the lease or it ran out; the store sets the version (+1) and the
    /// lease end (now + `lease` by the store's clock; none when `lease` is zero). Returns the
    /// record as written, or `None` when another write or owner got there first.
    fn compare_and_set(
        &self,
        record: &SagaRecord,
        expected: u64,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<SagaRecord>>> + Send;

    /// The record of saga `saga` with `id`.
    fn load(&self, saga: &str, id: &str)
    -> impl Future<Output = Result<Option<SagaRecord>>> + Send;

    /// Up to `max` ids of unfinished sagas of `saga` whose lease ran out.
    fn expired(&self, saga: &str, max: usize) -> impl Future<Output = Result<Vec<String>>> + Send;
}

/// Sagas in process (cheap to clone; clones share them).
#[derive(Debug, Clone, Default)]
pub struct MemorySagaStore {
    records: Arc<Mutex<HashMap<(String, String), SagaRecord>>>,
}

impl MemorySagaStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SagaStore for MemorySagaStore {
    async fn compare_and_set(
        &self,
        record: &SagaRecord,
        expected: u64,
        lease: Duration,
    ) -> Result<Option<SagaRecord>> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (record.saga.clone(), record.id.clone());
        let now = now_ms();
        let (version, owner, until) = records.get(&key).map_or((0, String::new(), 0), |r| {
            (r.version, r.owner.clone(), r.lease_until_ms)
        });
        if version != expected || (version > 0 && owner != record.owner && until > now) {
            return Ok(None);
        }
        let mut written = record.clone();
        written.version = version + 1;
        written.lease_until_ms = if lease.is_zero() { 0 } else { now + ms(lease) };
        records.insert(key, written.clone());
        Ok(Some(written))
    }

    async fn load(&self, saga: &str, id: &str) -> Result<Option<SagaRecord>> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records.get(&(saga.to_owned(), id.to_owned())).cloned())
    }

    async fn expired(&self, saga: &str, max: usize) -> Result<Vec<String>> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_ms();
        Ok(records
            .values()
            .filter(|r| r.saga == saga && r.lease_until_ms != 0 && r.lease_until_ms <= now)
            .map(|r| r.id.clone())
            .take(max)
            .collect())
    }
}

/// Sagas on Redis: a hash per saga (`nilecare:saga:{<saga>}:<id>`: `version`, `owner`,
/// `lease_until`, `record`) and a lease index per definition (`nilecare:saga:{<saga>}:leases`,
/// ids by lease end), both under the definition's hash tag, written by one compare-and-set
/// script on the server's clock.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[derive(Clone)]
pub struct RedisSagaStore {
    pool: fred::clients::Pool,
    /// `<root>saga:`: saga definitions are hash-tagged segments under it.
    prefix: nilecare_redis::KeyPrefix,
    cas: nilecare_redis::Script,
    expired: nilecare_redis::Script,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisSagaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSagaStore").finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl RedisSagaStore {
    /// A store on `pool`, keys under `nilecare:saga:`.
    pub fn new(pool: fred::clients::Pool) -> Self {
        Self::with_prefix(pool, &nilecare_redis::KeyPrefix::default())
    }

    /// The same with keys under `<root>saga:` (the root prefix the service gives every crate).
    pub fn with_prefix(pool: fred::clients::Pool, root: &nilecare_redis::KeyPrefix) -> Self {
        RedisSagaStore {
            pool,
            prefix: root.segment("saga"),
            cas: nilecare_redis::Script::new(include_str!("cas.lua")),
            expired: nilecare_redis::Script::new(include_str!("expired.lua")),
        }
    }

    fn key(&self, saga: &str, id: &str) -> String {
        self.prefix
            .tagged_key(saga, &nilecare_redis::escape_key_part(id))
    }

    fn index(&self, saga: &str) -> String {
        self.prefix.tagged_key(saga, "leases")
    }
}

#[cfg(feature = "redis")]
fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

#[cfg(feature = "redis")]
impl SagaStore for RedisSagaStore {
    async fn compare_and_set(
        &self,
        record: &SagaRecord,
        expected: u64,
        lease: Duration,
    ) -> Result<Option<SagaRecord>> {
        use fred::types::Value;
        let json = serde_json::to_string(record).map_err(|e| Error::Invalid {
            field: "state",
            message: format!("not serializable: {e}"),
        })?;
        let reply: Value = self
            .cas
            .run(
                &self.pool,
                vec![self.key(&record.saga, &record.id), self.index(&record.saga)],
                vec![
                    expected.to_string(),
                    record.owner.clone(),
                    ms(lease).to_string(),
                    json,
                    record.id.clone(),
                ],
            )
            .await
            .map_err(unavailable)?;
        let parts = reply.into_array();
        if parts.len() != 2 {
            return Ok(None);
        }
        let mut written = record.clone();
        written.version = parts[0].as_u64().unwrap_or(expected + 1);
        written.lease_until_ms = parts[1].as_u64().unwrap_or(0);
        Ok(Some(written))
    }

    async fn load(&self, saga: &str, id: &str) -> Result<Option<SagaRecord>> {
        use fred::interfaces::HashesInterface;
        let fields: HashMap<String, String> = self
            .pool
            .hgetall(self.key(saga, id))
            .await
            .map_err(unavailable)?;
        let Some(json) = fields.get("record") else {
            return Ok(None);
        };
        let mut record: SagaRecord = serde_json::from_str(json).map_err(|e| Error::Decode {
            id: id.to_owned(),
            reason: format!("saga record: {e}"),
        })?;
        record.version = fields
            .get("version")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        record.lease_until_ms = fields
            .get("lease_until")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if let Some(owner) = fields.get("owner") {
            record.owner.clone_from(owner);
        }
        Ok(Some(record))
    }

    async fn expired(&self, saga: &str, max: usize) -> Result<Vec<String>> {
        self.expired
            .run(&self.pool, vec![self.index(saga)], vec![max.to_string()])
            .await
            .map_err(unavailable)
    }
}

/// Memory or Redis, picked at run time.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnySagaStore {
    /// In process.
    Memory(MemorySagaStore),
    /// On Redis.
    #[cfg(feature = "redis")]
    Redis(RedisSagaStore),
}

impl SagaStore for AnySagaStore {
    async fn compare_and_set(
        &self,
        record: &SagaRecord,
        expected: u64,
        lease: Duration,
    ) -> Result<Option<SagaRecord>> {
        match self {
            AnySagaStore::Memory(s) => s.compare_and_set(record, expected, lease).await,
            #[cfg(feature = "redis")]
            AnySagaStore::Redis(s) => s.compare_and_set(record, expected, lease).await,
        }
    }
    async fn load(&self, saga: &str, id: &str) -> Result<Option<SagaRecord>> {
        match self {
            AnySagaStore::Memory(s) => s.load(saga, id).await,
            #[cfg(feature = "redis")]
            AnySagaStore::Redis(s) => s.load(saga, id).await,
        }
    }
    async fn expired(&self, saga: &str, max: usize) -> Result<Vec<String>> {
        match self {
            AnySagaStore::Memory(s) => s.expired(saga, max).await,
            #[cfg(feature = "redis")]
            AnySagaStore::Redis(s) => s.expired(saga, max).await,
        }
    }
}
