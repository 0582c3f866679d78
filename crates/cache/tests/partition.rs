//! A silent network partition of one instance from Redis (a fault proxy blackholes its
//! connections: nothing is answered, nothing is closed) while another instance keeps working:
//! every call of the partitioned instance returns within its timeout, it never serves an entry
//! older than `l1_ttl` after the other instance changed it, and it is coherent again after the
//! partition heals.

#![cfg(feature = "tiered")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use nilecare_cache::{Cache, RedisStore, TieredStore};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::{FaultProxy, RedisServer, eventually};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
const L1_TTL: Duration = Duration::from_millis(600);

async fn instance(url: &str) -> (Cache<TieredStore>, TieredStore) {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .with_command_timeout(COMMAND_TIMEOUT)
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(100),
        ));
    let store = TieredStore::builder(RedisStore::new(connect(&config).await.unwrap()), &config)
        .l1_ttl(L1_TTL)
        .build()
        .await
        .unwrap();
    let cache = Cache::builder()
        .prefix("partition:")
        .jitter(0.0)
        .build(store.clone())
        .unwrap();
    (cache, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_instance_never_serves_past_the_l1_ttl_and_recovers() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(&server.addr());
    let (a, a_store) = instance(&proxy.url()).await;
    let (b, _) = instance(&server.url()).await;

    b.set("patients:1", &"v1", None).await.unwrap();
    // B's announcement of v1 reaches A first (arriving later, it would drop A's fill below).
    assert!(
        eventually(Duration::from_secs(2), || async {
            a_store.invalidations_received() >= 1
        })
        .await
    );
    assert_eq!(a.get::<String>("patients:1").await.as_deref(), Some("v1"));
    // A serves v1 from L1 now, filled at or before this instant.
    let filled = Instant::now();

    proxy.blackhole();
    b.set("patients:1", &"v2", None).await.unwrap();
    let changed = Instant::now();
    // For three L1 lifetimes: every read answers within its timeout, and the old value only
    // while the L1 entry filled before the change can still live.
    let mut stale_reads = 0;
    let mut misses = 0;
    while changed.elapsed() < L1_TTL * 3 {
        let started = Instant::now();
        let read = a.get::<String>("patients:1").await;
        let took = started.elapsed();
        assert!(
            took < COMMAND_TIMEOUT * 3,
            "a read took {took:?} during the partition"
        );
        match read.as_deref() {
            Some("v1") => {
                stale_reads += 1;
                assert!(
                    filled.elapsed() <= L1_TTL + Duration::from_millis(50),
                    "v1 served {:?} after it entered L1 (l1_ttl {L1_TTL:?})",
                    filled.elapsed()
                );
            }
            Some(other) => panic!("unexpected value {other}"),
            None => misses += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        misses > 0,
        "after the L1 lifetime the partitioned reads are misses"
    );
    assert!(
        stale_reads > 0,
        "within its lifetime L1 kept serving (the partition is silent)"
    );

    proxy.heal();
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.get::<String>("patients:1").await.as_deref() == Some("v2")
        })
        .await,
        "A reads the change once the partition heals"
    );
    assert!(
        eventually(Duration::from_secs(5), || async { a_store.is_coherent() }).await,
        "A's L1 is coherent again"
    );
    eprintln!(
        "partitioned instance: {stale_reads} reads served from L1 within its lifetime, {misses} \
         misses after it"
    );
}

/// Behind Sentinel: the primary killed under two instances' traffic; reads fail open and
/// writes fail within their timeouts until the replica is promoted, then both work on the new
/// primary, and what was replicated before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_followed_within_a_bound() {
    let mut sentinel = nilecare_test_support::RedisSentinel::start();
    let (a, _) = instance(&sentinel.url()).await;
    let (b, _) = instance(&sentinel.url()).await;
    a.set("clinics:1", &"before", None).await.unwrap();
    sentinel.await_replication();

    let killed = sentinel.kill_primary();
    // The harness waits for the promotion on its own thread while the instances keep calling.
    let promotion = sentinel.await_promotion_in_background(killed);
    let mut failed = 0;
    let resumed = loop {
        let started = Instant::now();
        let wrote = a.set("clinics:2", &"after", None).await;
        let read = b.get::<String>("clinics:2").await;
        assert!(
            started.elapsed() < COMMAND_TIMEOUT * 6,
            "calls took {:?} during the failover",
            started.elapsed()
        );
        if wrote.is_ok() && read.as_deref() == Some("after") {
            break killed.elapsed();
        }
        failed += 1;
        assert!(killed.elapsed() < Duration::from_secs(30), "never resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_sentinel, promoted) = promotion.await.unwrap();
    assert!(failed > 0, "the primary was down for a while");
    assert!(
        resumed <= promoted + Duration::from_secs(5),
        "resumed {resumed:?} after the kill, promotion at {promoted:?}"
    );
    assert_eq!(
        b.get::<String>("clinics:1").await.as_deref(),
        Some("before")
    );
    eprintln!("cache behind Sentinel: resumed {resumed:?} after the kill (promotion {promoted:?})");
}
