//! [`RedisRegistry`]: a registry shared by every process on one Redis (standalone, Sentinel or
//! Cluster).
//!
//! Layout under the prefix (default `nilecare:discovery:`), every key of a service in one hash
//! slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{service}:i:<id>` | string, own TTL | the instance's JSON; a crashed instance disappears when its own TTL lapses |
//! | `{service}:index` | sorted set, TTL | id → expiry (ms); pruned in Lua on every read |
//! | `services` | sorted set, TTL | service → latest expiry (ms) |
//!
//! Changes are announced on the channel `<prefix>changes` (message: the service name);
//! watchers re-read the service on each notice, at the next expiry they know of, and every
//! resync interval, so a lost notice heals.

mod follow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use fred::clients::Pool;
use fred::types::Value;
use nilecare_redis::{KeyPrefix, RedisConfig, Script};
use tokio::sync::OnceCell;

use crate::config::RegistryConfig;
use crate::error::Result;
use crate::instance::{ServiceInstance, check_service_name};
use crate::registry::Registry;
use crate::watch::Watch;

use follow::{Follower, Listener};

static PUT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("put.lua")));
static LIST: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("list.lua")));
static REMOVE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("remove.lua")));
static SERVICES_TOUCH: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("services_touch.lua")));
static LIVE_COUNT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("live_count.lua")));
static SERVICES_LIST: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("services_list.lua")));

/// A registry on Redis: every process connected to the same Redis sees the same instances.
///
/// ```no_run
/// # async fn demo() -> nilecare_service_discovery::Result<()> {
/// use nilecare_redis::RedisConfig;
/// use nilecare_service_discovery::{RedisRegistry, Registry, RegistryConfig, ServiceInstance};
/// let redis = RedisConfig::from_url("redis://127.0.0.1:6379")?;
/// let registry = RedisRegistry::connect(&redis, RegistryConfig::default()).await?;
/// let _me = registry
///     .register(ServiceInstance::new("patients", "patients-1", "http://10.0.0.7:8080")?)
///     .await?;
/// let mut watch = registry.watch("appointments").await?;
/// while let Some(change) = watch.next().await {
///     println!("{change:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RedisRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pool: Pool,
    redis: RedisConfig,
    config: RegistryConfig,
    prefix: KeyPrefix,
    channel: String,
    followers: Mutex<HashMap<String, Weak<Follower>>>,
    listener: OnceCell<Arc<Listener>>,
}

/// One read of a service: the server's clock and each live instance with its expiry.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) now_ms: i64,
    pub(crate) instances: Vec<(ServiceInstance, i64)>,
}

impl RedisRegistry {
    /// Connects with the default key prefix `nilecare:discovery:`.
    pub async fn connect(redis: &RedisConfig, config: RegistryConfig) -> Result<Self> {
        Self::connect_with_prefix(redis, config, KeyPrefix::default().segment("discovery")).await
    }

    /// Connects with the key prefix `prefix` (registries with different prefixes on one Redis
    /// do not see each other).
    pub async fn connect_with_prefix(
        redis: &RedisConfig,
        config: RegistryConfig,
        prefix: KeyPrefix,
    ) -> Result<Self> {
        let pool = nilecare_redis::connect(redis).await?;
        Ok(RedisRegistry {
            inner: Arc::new(Inner {
                pool,
                redis: redis.clone(),
                config,
                channel: prefix.key("changes"),
                prefix,
                followers: Mutex::new(HashMap::new()),
                listener: OnceCell::new(),
            }),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }
}

impl Inner {
    fn service_prefix(&self, service: &str) -> KeyPrefix {
        self.prefix.tagged(service)
    }

    fn instance_key(&self, service: &str, id: &str) -> String {
        self.service_prefix(service).key(&format!("i:{id}"))
    }

    fn index_key(&self, service: &str) -> String {
        self.service_prefix(service).key("index")
    }

    fn services_key(&self) -> String {
        self.prefix.key("services")
    }

    /// Reads the live instances of `service`. Entries that do not decode or validate (written
    /// by something else, or corrupted) are skipped with a warning.
    ///
    /// Two steps, so the script declares every key it reads: the index's members, then one
    /// script over the index and those members' keys (a member registered in between is seen
    /// by the next read or notification).
    pub(crate) async fn list(&self, service: &str) -> Result<Listing> {
        use fred::interfaces::SortedSetsInterface;
        let index = self.index_key(service);
        let members = self
            .pool
            .zrange(&index, 0, -1, None, false, None, false)
            .await;
        let members: Vec<String> = nilecare_redis::follow_migration(
            &self.pool,
            members,
            index.as_bytes(),
            "ZRANGE",
            || vec![index.as_str().into(), 0.into(), (-1).into()],
        )
        .await
        .map_err(nilecare_redis::Error::Redis)?;
        let mut keys = Vec::with_capacity(members.len() + 1);
        keys.push(index);
        keys.extend(members.iter().map(|id| self.instance_key(service, id)));
        let reply: Vec<Value> = LIST.run(&self.pool, keys, members).await?;
        let mut reply = reply.into_iter();
        let now_ms = reply.next().and_then(|v| v.as_i64()).unwrap_or_default();
        let mut instances = Vec::new();
        while let (Some(description), Some(expiry)) = (reply.next(), reply.next()) {
            let expiry = expiry.as_i64().unwrap_or(now_ms);
            let bytes = description.as_bytes().unwrap_or_default();
            match decode(service, bytes) {
                Ok(instance) => instances.push((instance, expiry)),
                Err(error) => tracing::warn!(
                    target: "nilecare_service_discovery",
                    service,
                    %error,
                    "skipping an unreadable registry entry"
                ),
            }
        }
        instances.sort_by(|a, b| a.0.id().cmp(b.0.id()));
        Ok(Listing { now_ms, instances })
    }
}

/// Decodes and checks one stored description.
fn decode(service: &str, bytes: &[u8]) -> Result<ServiceInstance> {
    let instance: ServiceInstance =
        serde_json::from_slice(bytes).map_err(|e| crate::Error::InvalidInstance {
            field: "json",
            message: e.to_string(),
        })?;
    instance.validate()?;
    if instance.service() != service {
        return Err(crate::Error::InvalidInstance {
            field: "service",
            message: format!(
                "stored under {service:?} but names {:?}",
                instance.service()
            ),
        });
    }
    Ok(instance)
}

impl Registry for RedisRegistry {
    fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    async fn put(&self, instance: &ServiceInstance) -> Result<()> {
        instance.validate()?;
        let inner = &self.inner;
        let json = serde_json::to_string(instance).map_err(|e| crate::Error::InvalidInstance {
            field: "json",
            message: e.to_string(),
        })?;
        let ttl_ms = i64::try_from(inner.config.ttl().as_millis()).unwrap_or(i64::MAX);
        let (_changed, expiry): (i64, i64) = PUT
            .run(
                &inner.pool,
                vec![
                    inner.instance_key(instance.service(), instance.id()),
                    inner.index_key(instance.service()),
                ],
                vec![
                    instance.id().to_owned(),
                    json,
                    ttl_ms.to_string(),
                    inner.channel.clone(),
                    instance.service().to_owned(),
                ],
            )
            .await?;
        let _: i64 = SERVICES_TOUCH
            .run(
                &inner.pool,
                vec![inner.services_key()],
                vec![
                    instance.service().to_owned(),
                    expiry.to_string(),
                    ttl_ms.to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    async fn remove(&self, service: &str, id: &str) -> Result<bool> {
        check_service_name(service)?;
        let inner = &self.inner;
        let existed: i64 = REMOVE
            .run(
                &inner.pool,
                vec![inner.instance_key(service, id), inner.index_key(service)],
                vec![id.to_owned(), inner.channel.clone(), service.to_owned()],
            )
            .await?;
        Ok(existed == 1)
    }

    async fn instances(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        check_service_name(service)?;
        let listing = self.inner.list(service).await?;
        Ok(listing.instances.into_iter().map(|(i, _)| i).collect())
    }

    async fn services(&self) -> Result<Vec<String>> {
        let inner = &self.inner;
        let reply: Vec<Value> = SERVICES_LIST
            .run(
                &inner.pool,
                vec![inner.services_key()],
                Vec::<String>::new(),
            )
            .await?;
        let mut reply = reply.into_iter();
        reply.next(); // the server time
        // A service whose instances all deregistered is still in the set until its last
        // expiry: ask each index (its own hash slot) for a live member.
        let candidates: Vec<String> = reply.filter_map(|v| v.into_string()).collect();
        let live = futures_util::future::try_join_all(candidates.iter().map(|service| {
            let index = inner.index_key(service);
            async move {
                let n: i64 = LIVE_COUNT
                    .run(&inner.pool, vec![index], Vec::<String>::new())
                    .await?;
                Ok::<bool, crate::Error>(n > 0)
            }
        }))
        .await?;
        let mut names: Vec<String> = candidates
            .into_iter()
            .zip(live)
            .filter_map(|(name, live)| live.then_some(name))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn watch(&self, service: &str) -> Result<Watch> {
        check_service_name(service)?;
        follow::watch(&self.inner, service).await
    }
}
