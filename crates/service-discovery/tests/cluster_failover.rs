//! The Redis registry on a replicated Redis Cluster through the failover of the primary serving
//! a service's slot: a resolver keeps picking from its last known instances without waiting,
//! registrations land on the promoted replica, and an instance registered after the failover
//! is seen. Slow (a real failover), so it is its own test binary.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use support::{instance, known, registry};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nilecare_redis::key_slot;
use nilecare_service_discovery::{Registry, Resolver};
use nilecare_test_support::{RedisCluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_continues_and_registrations_resume_after_a_primary_fails_over() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let range = cluster.range_of_slot(key_slot("{labs}"));
    let b = registry(&cluster.url()).await;
    let _x1 = b.register(instance("x1")).await.unwrap();
    let resolver = Resolver::builder(registry(&cluster.url()).await)
        .build()
        .unwrap();
    let labs = resolver.service("labs").await.unwrap();
    let one = BTreeSet::from(["x1".to_owned()]);
    assert!(eventually(Duration::from_secs(3), || async { known(&labs) == one }).await);

    let killed = cluster.kill_primary(range);
    let promotion = tokio::task::spawn_blocking(move || {
        let took = cluster.await_promotion(range, killed);
        (cluster, took)
    });
    let mut slowest = Duration::ZERO;
    while !promotion.is_finished() {
        let started = Instant::now();
        assert!(labs.select().is_some(), "the last known instance is picked");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cluster, promoted) = promotion.await.unwrap();
    let registered = Instant::now();
    let _x2 = loop {
        match b.register(instance("x2")).await {
            Ok(registration) => break registration,
            Err(e) => assert!(
                registered.elapsed() < Duration::from_secs(10),
                "registering: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let both = BTreeSet::from(["x1".to_owned(), "x2".to_owned()]);
    assert!(
        eventually(Duration::from_secs(10), || async { known(&labs) == both }).await,
        "after the failover the resolver sees x2: {:?}",
        known(&labs)
    );
    let seen = killed.elapsed();
    eprintln!(
        "registry, cluster primary killed: promotion after {promoted:?}, x2 registered {:?} after \
         it and seen by the resolver {seen:?} after the kill; slowest pick {slowest:?}",
        registered.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(50),
        "a pick waited {slowest:?}"
    );
    let owner = &cluster.nodes()[cluster.node_index_for_slot(key_slot("{labs}"))];
    assert_eq!(
        owner
            .command(&["EXISTS", "nilecare:discovery:{labs}:i:x2"])
            .as_text()
            .as_deref(),
        Some("1"),
        "x2 is registered on the promoted replica"
    );
}
