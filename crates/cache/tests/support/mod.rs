//! Stores on real servers, shared by the cache's integration tests.

#![allow(dead_code)] // each test binary uses a subset

use std::time::Duration;

use nilecare_cache::RedisStore;
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::{RedisCluster, RedisServer};

/// A `RedisStore` with default timeouts on a pool connected to `server`.
pub(crate) async fn redis_store(server: &RedisServer) -> RedisStore {
    let pool = connect(&RedisConfig::from_url(&server.url()).expect("url"))
        .await
        .expect("connect");
    RedisStore::new(pool)
}

/// A `RedisStore` on `cluster`. Reads get 500 ms: a cluster round trip takes longer on a busy
/// 2-core machine.
pub(crate) async fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    let pool = connect(&RedisConfig::from_url(&cluster.url()).expect("url"))
        .await
        .expect("connect");
    RedisStore::builder(pool)
        .read_timeout(Duration::from_millis(500))
        .build()
        .expect("store")
}

/// A `TieredStore` (memory L1 in front of [`cluster_store`], invalidations over pub/sub) on
/// `cluster`, its L1 entries living up to a minute.
#[cfg(feature = "tiered")]
pub(crate) async fn tiered_cluster_store(cluster: &RedisCluster) -> nilecare_cache::TieredStore {
    let config = RedisConfig::from_url(&cluster.url()).expect("url");
    nilecare_cache::TieredStore::builder(cluster_store(cluster).await, &config)
        .l1_ttl(Duration::from_secs(60))
        .build()
        .await
        .expect("tiered store")
}
