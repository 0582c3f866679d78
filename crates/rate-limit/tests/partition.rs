//! A silent network partition of one instance from Redis (a fault proxy blackholes its
//! connections) while another instance keeps using Redis: every check of the partitioned
//! instance returns within the limiter's timeout, decided by its local fallback, and the two
//! together grant at most `limit × (1 + share)` in the window (the over-grant bound the README
//! states); after the partition heals, decisions come from Redis again.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use nilecare_rate_limit::{Policy, Quota, RateLimiter};
use nilecare_test_support::{FaultProxy, RedisServer, eventually};

mod support;

use support::{TIMEOUT, resilient as instance};

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

/// On a cluster, an unresponsive primary (paused: connections open, nothing answered) sends
/// only its own keys to the fallback: checks of keys on healthy primaries keep being decided by
/// Redis meanwhile, and its keys go back to Redis once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_primary_sends_only_its_keys_to_the_fallback() {
    let cluster = nilecare_test_support::RedisCluster::start(3);
    let limiter = instance(&cluster.url(), 1.0).await;
    let policy = Policy::new("api", Quota::per_minute(1_000).unwrap()).unwrap();
    let node_of =
        |key: &str| cluster.node_index_for_slot(nilecare_redis::key_slot(&format!("{{{key}}}")));
    let failing = "client-0".to_owned();
    let healthy = (1..)
        .map(|i| format!("client-{i}"))
        .find(|k| node_of(k) != node_of(&failing))
        .unwrap();
    for key in [&failing, &healthy] {
        assert!(!limiter.check(&policy, key, 1).await.unwrap().fallback);
    }

    let paused = &cluster.nodes()[node_of(&failing)];
    paused.pause();
    let since = Instant::now();
    let (mut local, mut from_redis) = (0, 0);
    while since.elapsed() < Duration::from_secs(2) {
        let started = Instant::now();
        let d = limiter.check(&policy, &failing, 1).await.unwrap();
        assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
        local += u32::from(d.fallback);
        let d = limiter.check(&policy, &healthy, 1).await.unwrap();
        assert!(
            !d.fallback,
            "a key on a healthy primary went to the fallback {:?} into the pause",
            since.elapsed()
        );
        from_redis += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(local > 0, "the paused primary's key was decided locally");
    assert!(from_redis > 10);

    paused.resume();
    assert!(
        eventually(Duration::from_secs(10), || async {
            limiter
                .check(&policy, &failing, 1)
                .await
                .is_ok_and(|d| !d.fallback)
        })
        .await,
        "the paused node's keys are decided by Redis again"
    );
}

/// Behind Sentinel: the primary killed; checks are decided locally within the timeout until the
/// replica is promoted, then by Redis again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_decided_locally_then_on_the_new_primary() {
    let mut sentinel = nilecare_test_support::RedisSentinel::start();
    let limiter = instance(&sentinel.url(), 0.5).await;
    let policy = Policy::new("api", Quota::per_minute(1_000).unwrap()).unwrap();
    assert!(!limiter.check(&policy, "k", 1).await.unwrap().fallback);

    let killed = sentinel.kill_primary();
    let promotion = sentinel.await_promotion_in_background(killed);
    let mut local = 0;
    let resumed = loop {
        let started = Instant::now();
        let d = limiter.check(&policy, "k", 1).await.unwrap();
        assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
        if !d.fallback && local > 0 {
            break killed.elapsed();
        }
        local += u32::from(d.fallback);
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "never back on Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_sentinel, promoted) = promotion.await.unwrap();
    assert!(
        resumed <= promoted + Duration::from_secs(3),
        "back on Redis {resumed:?} after the kill, promotion at {promoted:?}"
    );
    eprintln!(
        "rate limit behind Sentinel: local decisions until {resumed:?} (promotion {promoted:?})"
    );
}
