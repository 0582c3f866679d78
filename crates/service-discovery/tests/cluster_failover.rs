//! The Redis registry on a replicated Redis Cluster through the failover of the primary serving
//! a service's slot: a resolver keeps picking from its last known instances without waiting,
//! registrations land on the promoted replica, and an instance registered after the failover
//! is seen. Slow (a real failover), so it is its own test binary; it also holds the slot
//! migration case.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use support::{instance, known, registry, registry_with_ttl};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nilecare_redis::key_slot;
use nilecare_service_discovery::{Registry, Resolver};
use nilecare_test_support::{RedisCluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_continues_and_registrations_resume_after_a_primary_fails_over() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let range = cluster.range_of_slot(key_slot("{labs}"));
    // Registrations outlive the failover (promotion takes 3.5-5 s here): with a TTL shorter
    // than that, x1 expires on the promoted replica and a resolver relisting before x1's next
    // heartbeat sees the service empty (the README's advice on the TTL).
    let b = registry_with_ttl(&cluster.url(), Duration::from_secs(15)).await;
    let _x1 = b.register(instance("x1")).await.unwrap();
    let resolver = Resolver::builder(registry(&cluster.url()).await)
        .build()
        .unwrap();
    let labs = resolver.service("labs").await.unwrap();
    let one = BTreeSet::from(["x1".to_owned()]);
    assert!(eventually(Duration::from_secs(3), || async { known(&labs) == one }).await);

    let killed = cluster.kill_primary(range);
    let promotion = cluster.await_promotion_in_background(range, killed);
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

/// The service's slot moved to another primary (clients see `ASK`, then `MOVED`) while one
/// registry puts, lists and removes instances and a resolver watches: no call fails, and the
/// resolver ends with exactly the instances registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_calls_surface_no_error_while_the_service_slot_migrates() {
    let cluster = RedisCluster::start(3);
    let slot = key_slot("{labs}");
    let to = (cluster.range_of_slot(slot) + 1) % 3;
    let a = registry(&cluster.url()).await;
    let _x1 = a.register(instance("x1")).await.unwrap();
    let resolver = Resolver::builder(registry(&cluster.url()).await)
        .build()
        .unwrap();
    let labs = resolver.service("labs").await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (a, stop) = (a.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut errors, mut calls) = (Vec::new(), 0u32);
            while !stop.load(Ordering::Relaxed) {
                let id = format!("y{}", calls % 8);
                if let Err(e) = a.put(&instance(&id)).await {
                    errors.push(format!("put {id}: {e}"));
                }
                match a.instances("labs").await {
                    Ok(found) if found.iter().any(|i| i.id() == id) => {}
                    other => errors.push(format!("instances after putting {id}: {other:?}")),
                }
                if let Err(e) = a.remove("labs", &id).await {
                    errors.push(format!("remove {id}: {e}"));
                }
                calls += 1;
            }
            (errors, calls)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cluster = cluster
        .migrate_slot_in_background(slot, to, Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (errors, calls) = load.await.unwrap();
    assert_eq!(errors, Vec::<String>::new());
    assert!(calls > 20, "the load ran ({calls} rounds)");
    assert_eq!(cluster.node_index_for_slot(slot), to, "the slot moved");
    let _x2 = a.register(instance("x2")).await.unwrap();
    let both = BTreeSet::from(["x1".to_owned(), "x2".to_owned()]);
    assert!(
        eventually(Duration::from_secs(5), || async { known(&labs) == both }).await,
        "the resolver follows the registry after the move: {:?}",
        known(&labs)
    );
}
