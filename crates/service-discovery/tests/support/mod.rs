//! What the Redis registry's fault tests share: a registry with short timings, an instance of
//! the `labs` service, the ids a resolver knows.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use nilecare_redis::RedisConfig;
use nilecare_service_discovery::{RedisRegistry, RegistryConfig, ResolvedService, ServiceInstance};

/// A registry on `url`: 2 s TTL, 200 ms heartbeats, resync every second.
pub async fn registry(url: &str) -> RedisRegistry {
    registry_with_ttl(url, Duration::from_secs(2)).await
}

/// The same with registrations living `ttl` without a heartbeat.
pub async fn registry_with_ttl(url: &str, ttl: Duration) -> RedisRegistry {
    let redis = RedisConfig::from_url(url)
        .unwrap()
        .with_command_timeout(Duration::from_millis(500));
    let config = RegistryConfig::default()
        .with_ttl(ttl)
        .unwrap()
        .with_heartbeat_interval(Duration::from_millis(200))
        .unwrap()
        .with_resync_interval(Duration::from_secs(1))
        .unwrap();
    RedisRegistry::connect(&redis, config).await.unwrap()
}

/// An instance of `labs` at `http://{id}.local:8080`.
pub fn instance(id: &str) -> ServiceInstance {
    ServiceInstance::new("labs", id, format!("http://{id}.local:8080")).unwrap()
}

/// The ids the resolver's balancer holds.
pub fn known(service: &ResolvedService) -> BTreeSet<String> {
    service
        .balancer()
        .instances()
        .map(|i| i.id().to_owned())
        .collect()
}
