//! The backends: all in memory, or all on Redis when `REDIS_URL` is set (two orchestrators on
//! one Redis then share cache, rate limits, breaker state and registry).

use std::collections::HashMap;
use std::time::Duration;

use nilecare::cache::{AnyStore, Cache, MemoryStore, RedisStore, TieredStore};
use nilecare::circuit_breaker::{
    AnyBreaker, BreakerConfig, CircuitBreaker, SharedBreaker, WaitStrategy, WindowType,
};
use nilecare::rate_limit::{AnyLimiter, MemoryLimiter, RedisLimiter, ResilientLimiter};
use nilecare::redis::{RedisConfig, connect};
use nilecare::service_discovery::{AnyRegistry, MemoryRegistry, RedisRegistry, RegistryConfig};

use super::config::Settings;

/// The downstream services the orchestrator calls.
pub const DOWNSTREAM: [&str; 3] = ["patients", "appointments", "billing"];

/// Every stateful part of the service.
pub struct Backends {
    /// The response cache (L1 memory + L2 Redis with coherency, or memory only).
    pub cache: Cache,
    /// The rate limiter (Redis with a local fallback, or memory).
    pub limiter: AnyLimiter,
    /// The service registry.
    pub registry: AnyRegistry,
    /// One breaker per downstream service (state shared through Redis when configured).
    pub breakers: HashMap<&'static str, AnyBreaker>,
    /// The Redis pool, for readiness.
    pub redis: Option<nilecare::redis::fred::clients::Pool>,
}

/// The breaker settings: open at 50 % failures over the last 20 calls (at least 10), probe
/// after `wait` with 2 calls.
fn breaker_config(wait: Duration) -> BreakerConfig {
    BreakerConfig::default()
        .window(WindowType::CountBased(20))
        .minimum_calls(10)
        .failure_rate_threshold(50.0)
        .wait(WaitStrategy::Fixed(wait))
        .half_open_permits(2)
}

/// Connects every backend.
pub async fn connect_all(
    settings: &Settings,
) -> Result<Backends, Box<dyn std::error::Error + Send + Sync>> {
    let registry_config = RegistryConfig::default().with_ttl(settings.registry_ttl)?;
    let mut breakers = HashMap::new();
    let Some(url) = &settings.redis_url else {
        for name in DOWNSTREAM {
            breakers.insert(
                name,
                CircuitBreaker::new(name, breaker_config(settings.breaker_wait))?.into(),
            );
        }
        return Ok(Backends {
            cache: Cache::builder()
                .name("orchestrator")
                .build(AnyStore::from(MemoryStore::with_max_entries(100_000)?))?,
            limiter: MemoryLimiter::new().into(),
            registry: MemoryRegistry::new(registry_config).into(),
            breakers,
            redis: None,
        });
    };
    let mut redis = RedisConfig::from_url(url)?;
    if let Some(ca) = &settings.redis_tls_ca_file {
        redis = redis.with_tls_ca_file(ca)?;
    }
    let redis = redis
        .with_pool_size(settings.redis_pool_size)
        .with_connect_timeout(settings.redis_connect_timeout)
        .with_command_timeout(settings.redis_command_timeout);
    let pool = connect(&redis).await?;
    let l2 = RedisStore::new(pool.clone());
    let tiered = TieredStore::builder(l2, &redis)
        .l1_ttl(Duration::from_secs(5))
        .build()
        .await?;
    for name in DOWNSTREAM {
        let local = CircuitBreaker::new(name, breaker_config(settings.breaker_wait))?;
        breakers.insert(name, SharedBreaker::new(local, pool.clone()).into());
    }
    Ok(Backends {
        cache: Cache::builder()
            .name("orchestrator")
            .build(AnyStore::from(tiered))?,
        limiter: ResilientLimiter::new(RedisLimiter::new(pool.clone())).into(),
        registry: RedisRegistry::connect(&redis, registry_config)
            .await?
            .into(),
        breakers,
        redis: Some(pool),
    })
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("cache", &self.cache)
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}
