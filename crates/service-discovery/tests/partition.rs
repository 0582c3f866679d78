//! A silent network partition of one resolving instance from the Redis registry (a fault proxy
//! blackholes its connections) while another instance keeps registering: the partitioned
//! resolver keeps picking from its last known copy without waiting, and sees the changes made
//! meanwhile once the partition heals.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use support::{instance, known, registry};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nilecare_service_discovery::{RedisRegistry, Registry, Resolver};
use nilecare_test_support::{FaultProxy, RedisServer, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_resolver_keeps_its_last_known_instances_and_catches_up() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(&server.addr());
    let b = registry(&server.url()).await;
    let _x1 = b.register(instance("x1")).await.unwrap();
    let _x2 = b.register(instance("x2")).await.unwrap();
    let resolver = Resolver::builder(registry(&proxy.url()).await)
        .build()
        .unwrap();
    let labs = resolver.service("labs").await.unwrap();
    let both = BTreeSet::from(["x1".to_owned(), "x2".to_owned()]);
    assert!(eventually(Duration::from_secs(3), || async { known(&labs) == both }).await);

    proxy.blackhole();
    let _x3 = b.register(instance("x3")).await.unwrap();
    let partitioned = Instant::now();
    while partitioned.elapsed() < Duration::from_secs(2) {
        let started = Instant::now();
        let picked = labs.select().expect("the last known instances are picked");
        assert!(
            started.elapsed() < Duration::from_millis(5),
            "select waited"
        );
        picked.success();
        assert_eq!(
            known(&labs),
            both,
            "nothing new is heard during the partition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.heal();
    let all = BTreeSet::from(["x1".to_owned(), "x2".to_owned(), "x3".to_owned()]);
    assert!(
        eventually(Duration::from_secs(10), || async { known(&labs) == all }).await,
        "after the partition the resolver sees x3: {:?}",
        known(&labs)
    );
}

/// Behind Sentinel: the primary killed; registrations are on the promoted replica (replicated,
/// or put back by their next heartbeat), a resolver keeps picking meanwhile, and an instance
/// registered after the failover is seen by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_keeps_registrations_and_resolving() {
    let mut sentinel = nilecare_test_support::RedisSentinel::start();
    let b = registry(&sentinel.url()).await;
    let _x1 = b.register(instance("x1")).await.unwrap();
    let resolver = Resolver::builder(registry(&sentinel.url()).await)
        .build()
        .unwrap();
    let labs = resolver.service("labs").await.unwrap();
    let one = BTreeSet::from(["x1".to_owned()]);
    assert!(eventually(Duration::from_secs(3), || async { known(&labs) == one }).await);
    sentinel.await_replication();

    let killed = sentinel.kill_primary();
    let promotion = sentinel.await_promotion_in_background(killed);
    while !promotion.is_finished() {
        assert!(labs.select().is_some(), "the last known instance is picked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sentinel, _promoted) = promotion.await.unwrap();
    let _x2 = eventually_register(&b, "x2").await;
    let both = BTreeSet::from(["x1".to_owned(), "x2".to_owned()]);
    assert!(
        eventually(Duration::from_secs(10), || async { known(&labs) == both }).await,
        "after the failover the resolver sees x2: {:?}",
        known(&labs)
    );
    assert_eq!(
        sentinel
            .primary()
            .command(&["EXISTS", "nilecare:discovery:{labs}:i:x1"])
            .as_text()
            .as_deref(),
        Some("1"),
        "x1 is registered on the new primary"
    );
}

/// Registers `id`, retrying while the client reconnects to the new primary.
async fn eventually_register(
    registry: &RedisRegistry,
    id: &str,
) -> nilecare_service_discovery::Registration<RedisRegistry> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match registry.register(instance(id)).await {
            Ok(registration) => return registration,
            Err(e) => assert!(Instant::now() < deadline, "registering {id}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
