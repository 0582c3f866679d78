//! A silent network partition of one instance from Redis (a fault proxy blackholes its
//! connections) while another instance keeps using Redis: every check of the partitioned
//! instance returns within the limiter's timeout, decided by its local fallback, and the two
//! together grant at most `limit × (1 + share)` in the window (the over-grant bound the README
//! states); after the partition heals, decisions come from Redis again.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use nilecare_rate_limit::{
    OnRedisFailure, Policy, Quota, RateLimiter, RedisLimiter, ResilientLimiter,
};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::{FaultProxy, RedisServer, eventually};

const TIMEOUT: Duration = Duration::from_millis(300);

async fn instance(url: &str, share: f64) -> ResilientLimiter {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .with_command_timeout(Duration::from_millis(500))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
    let redis = RedisLimiter::new(connect(&config).await.unwrap())
        .with_timeout(TIMEOUT)
        .unwrap();
    ResilientLimiter::new(redis)
        .on_redis_failure(OnRedisFailure::Fallback { share })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_instance_over_grants_at_most_its_share() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(&server.addr());
    let share = 0.5;
    let a = instance(&proxy.url(), share).await;
    let b = instance(&server.url(), share).await;
    let limit = 10;
    let policy = Policy::new("api", Quota::per_minute(limit).unwrap()).unwrap();

    let mut granted = 0;
    for limiter in [&a, &b] {
        for _ in 0..2 {
            let d = limiter.check(&policy, "client-7", 1).await.unwrap();
            assert!(d.allowed && !d.fallback, "{d:?}");
            granted += 1;
        }
    }

    proxy.blackhole();
    let mut local = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let d = a.check(&policy, "client-7", 1).await.unwrap();
        assert!(
            started.elapsed() < TIMEOUT * 3,
            "a check took {:?} during the partition",
            started.elapsed()
        );
        assert!(d.fallback, "decided locally: {d:?}");
        local += u64::from(d.allowed);
        let d = b.check(&policy, "client-7", 1).await.unwrap();
        assert!(!d.fallback, "B still decides on Redis");
        granted += u64::from(d.allowed);
    }
    granted += local;
    let bound = limit + (limit as f64 * share) as u64;
    assert!(
        granted <= bound,
        "granted {granted} in the window, bound limit × (1 + share) = {bound}"
    );
    assert_eq!(
        local, 5,
        "the partitioned instance granted exactly its share"
    );

    proxy.heal();
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.check(&policy, "client-8", 1)
                .await
                .is_ok_and(|d| !d.fallback)
        })
        .await,
        "decisions come from Redis again after the partition"
    );
}
