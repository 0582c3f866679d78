//! Shared breakers on a replicated Redis Cluster through the failover of the primary serving
//! the breaker's slot: calls never wait on Redis (decided locally while it is away), the loss
//! is noticed, and the instances share state again on the promoted replica. Slow (a real
//! failover), so it is its own test binary; it also holds the slot migration case.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use nilecare_circuit_breaker::Breaker as _;
use nilecare_circuit_breaker::{BreakerError, SharedBreaker, State};
use nilecare_redis::key_slot;
use nilecare_test_support::{RedisCluster, eventually};

mod support;

use support::{fail, instance};

/// Whether the state is shared: `successes + 10` failures on `a` and `b` (outnumbering the
/// successes already in the shared window) open `c`, which then rejects a call.
async fn failures_on_two_open_the_third([a, b, c]: [&SharedBreaker; 3], successes: usize) -> bool {
    fail(a, successes).await;
    fail(b, 10).await;
    eventually(Duration::from_secs(5), || async {
        c.shared_state() == State::Open
    })
    .await
        && matches!(
            c.call(async { Ok::<_, ()>(()) }).await,
            Err(BreakerError::Rejected(_))
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_decide_locally_then_share_again_after_a_primary_fails_over() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    // A breaker name whose keys the first range serves.
    let name = (0..)
        .map(|i| format!("pharmacy-{i}"))
        .find(|n| cluster.range_of_slot(key_slot(&format!("{{{n}}}"))) == 0)
        .unwrap();
    let [a, b, c] = [
        instance(&cluster.url(), &name, Duration::from_secs(30)).await,
        instance(&cluster.url(), &name, Duration::from_secs(30)).await,
        instance(&cluster.url(), &name, Duration::from_secs(30)).await,
    ];
    assert!(eventually(Duration::from_secs(3), || async { a.redis_available() }).await);

    let killed = cluster.kill_primary(0);
    let promotion = cluster.await_promotion_in_background(0, killed);
    let mut slowest = Duration::ZERO;
    let mut noticed = None;
    let mut succeeded = 0;
    while !promotion.is_finished() {
        let started = Instant::now();
        a.call(async { Ok::<_, ()>(()) }).await.unwrap();
        succeeded += 1;
        slowest = slowest.max(started.elapsed());
        if noticed.is_none() && !a.redis_available() {
            noticed = Some(killed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_cluster, promoted) = promotion.await.unwrap();
    let noticed = noticed.expect("the loss of the primary was never noticed");
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.redis_available() && b.redis_available() && c.redis_available()
        })
        .await,
        "the instances never rejoined after the promotion ({promoted:?})"
    );
    let rejoined = killed.elapsed();
    // Shared again: failures on two instances open the third (outnumbering the successes `a`
    // recorded during the failover, which are in the shared window now).
    assert!(
        failures_on_two_open_the_third([&a, &b, &c], succeeded).await,
        "failures on a and b did not open c after the failover"
    );
    eprintln!(
        "breaker, cluster primary killed: loss noticed {noticed:?} after the kill, promotion \
         after {promoted:?}, rejoined by {rejoined:?}; slowest call {slowest:?}"
    );
    assert!(
        slowest < Duration::from_millis(50),
        "a call waited {slowest:?}"
    );
    assert!(
        rejoined <= promoted + Duration::from_secs(10),
        "rejoined {rejoined:?} after the kill, promotion at {promoted:?}"
    );
}

/// The breaker's slot moved to another primary (clients see `ASK`, then `MOVED`) while three
/// instances call through it and flush every 50 ms: Redis never looks unavailable to them (no
/// flush failed), and the shared state still works on the new owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_state_stays_available_while_the_breaker_slot_migrates() {
    let cluster = RedisCluster::start(3);
    let name = "pharmacy";
    let slot = key_slot(&format!("{{{name}}}"));
    let to = (cluster.range_of_slot(slot) + 1) % 3;
    let [a, b, c] = [
        instance(&cluster.url(), name, Duration::from_secs(30)).await,
        instance(&cluster.url(), name, Duration::from_secs(30)).await,
        instance(&cluster.url(), name, Duration::from_secs(30)).await,
    ];
    assert!(eventually(Duration::from_secs(3), || async { a.redis_available() }).await);
    let migration = cluster.migrate_slot_in_background(slot, to, Duration::from_millis(50));
    let mut unavailable = 0;
    let mut calls = 0usize;
    while !migration.is_finished() {
        for breaker in [&a, &b, &c] {
            breaker.call(async { Ok::<_, ()>(()) }).await.unwrap();
            unavailable += u32::from(!breaker.redis_available());
        }
        calls += 3;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cluster = migration.await.unwrap();
    // A few flushes after the move, on the new owner.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        unavailable, 0,
        "Redis looked unavailable during the migration"
    );
    assert!(a.redis_available() && b.redis_available() && c.redis_available());
    assert_eq!(cluster.node_index_for_slot(slot), to, "the slot moved");
    assert!(
        failures_on_two_open_the_third([&a, &b, &c], calls).await,
        "failures on a and b did not open c after the move"
    );
}
