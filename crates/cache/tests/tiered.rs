//! TieredStore: two instances (two pools, two listeners, as two service replicas) on one real
//! Redis. L1 really serves reads, other instances' writes, deletes and pattern invalidations
//! reach it, an outage turns L1 off (nothing missed is served) and a restart turns it back on.

#![cfg(feature = "tiered")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_cache::{Cache, RedisStore, TieredStore};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::{RedisCluster, RedisServer, eventually};

const PREFIX: &str = "tiered:";
/// How long a change may take to reach another instance's L1 in these tests (the documented
/// bound on a connected channel is the pub/sub delivery time; this leaves room for a busy CI).
const DELIVERY: Duration = Duration::from_secs(2);

fn config(server: &RedisServer) -> RedisConfig {
    RedisConfig::from_url(&server.url())
        .unwrap()
        .with_command_timeout(Duration::from_millis(300))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(100),
        ))
}

async fn instance(server: &RedisServer, l1_ttl: Duration) -> (Cache<TieredStore>, TieredStore) {
    let config = config(server);
    let store = TieredStore::builder(RedisStore::new(connect(&config).await.unwrap()), &config)
        .l1_ttl(l1_ttl)
        .build()
        .await
        .unwrap();
    let cache = Cache::builder()
        .prefix(PREFIX)
        .jitter(0.0)
        .build(store.clone())
        .unwrap();
    (cache, store)
}

/// A cache on the same keys that writes to Redis without telling anyone.
async fn behind_the_back(server: &RedisServer) -> Cache<RedisStore> {
    let pool = connect(&config(server)).await.unwrap();
    Cache::builder()
        .prefix(PREFIX)
        .jitter(0.0)
        .build(RedisStore::new(pool))
        .unwrap()
}

/// On a cluster a message published on one node reaches subscribers of another through the
/// cluster bus: with every core busy (the whole suite runs in parallel on two cores) it was
/// once seen to take over 2 s, so the cluster test waits longer.
const CLUSTER_DELIVERY: Duration = Duration::from_secs(10);

async fn reads(cache: &Cache<TieredStore>, key: &str, want: Option<&str>) -> bool {
    reads_within(cache, key, want, DELIVERY).await
}

async fn reads_within(
    cache: &Cache<TieredStore>,
    key: &str,
    want: Option<&str>,
    within: Duration,
) -> bool {
    eventually(within, || async {
        cache.get::<String>(key).await.as_deref() == want
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_deletes_and_patterns_reach_the_other_instance() {
    let server = RedisServer::start();
    let (a, _) = instance(&server, Duration::from_secs(60)).await;
    let (b, b_store) = instance(&server, Duration::from_secs(60)).await;
    let sneaky = behind_the_back(&server).await;

    a.set("patients:1", &"v1", None).await.unwrap();
    // wait for B to see A's announcement, which would otherwise drop B's fill below on arrival
    assert!(eventually(DELIVERY, || async { b_store.invalidations_received() >= 1 }).await);
    assert_eq!(b.get::<String>("patients:1").await.as_deref(), Some("v1"));
    // B now serves from L1: a change that is not announced is not seen
    sneaky
        .set("patients:1", &"unannounced", None)
        .await
        .unwrap();
    assert_eq!(
        b.get::<String>("patients:1").await.as_deref(),
        Some("v1"),
        "L1 hit"
    );

    // an announced write reaches B's L1
    a.set("patients:1", &"v2", None).await.unwrap();
    assert!(
        reads(&b, "patients:1", Some("v2")).await,
        "write not propagated"
    );

    // a delete
    a.del("patients:1").await.unwrap();
    assert!(reads(&b, "patients:1", None).await, "delete not propagated");

    // a pattern invalidation
    for id in 1..=3 {
        a.set(&format!("appointments:{id}"), &"x", None)
            .await
            .unwrap();
        assert!(reads(&b, &format!("appointments:{id}"), Some("x")).await);
    }
    b.set("contacts:1", &"kept", None).await.unwrap();
    assert_eq!(a.invalidate_pattern("appointments:*").await.unwrap(), 3);
    for id in 1..=3 {
        assert!(
            reads(&b, &format!("appointments:{id}"), None).await,
            "pattern not propagated"
        );
    }
    assert_eq!(b.get::<String>("contacts:1").await.as_deref(), Some("kept"));
    assert!(b_store.invalidations_received() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_keeps_its_own_fresh_write() {
    let server = RedisServer::start();
    let (a, a_store) = instance(&server, Duration::from_secs(60)).await;
    let sneaky = behind_the_back(&server).await;
    a.set("k", &"mine", None).await.unwrap();
    // let the echo of its own announcement arrive
    tokio::time::sleep(Duration::from_millis(200)).await;
    sneaky.set("k", &"unannounced", None).await.unwrap();
    assert_eq!(
        a.get::<String>("k").await.as_deref(),
        Some("mine"),
        "own echo evicted the entry"
    );
    assert_eq!(a_store.invalidations_received(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_entries_live_no_longer_than_the_l1_ttl() {
    let server = RedisServer::start();
    let (a, _) = instance(&server, Duration::from_millis(300)).await;
    let sneaky = behind_the_back(&server).await;
    a.set("k", &"old", None).await.unwrap();
    sneaky.set("k", &"new", None).await.unwrap();
    assert_eq!(a.get::<String>("k").await.as_deref(), Some("old"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.get::<String>("k").await.as_deref(), Some("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_turns_l1_off_and_a_restart_turns_it_back_on() {
    let mut server = RedisServer::start();
    let (a, _) = instance(&server, Duration::from_secs(60)).await;
    let (b, b_store) = instance(&server, Duration::from_secs(60)).await;
    a.set("k", &"before", None).await.unwrap();
    assert_eq!(b.get::<String>("k").await.as_deref(), Some("before"));
    assert!(b_store.l1_entry_count() <= 1);

    server.kill();
    assert!(
        eventually(DELIVERY, || async { !b_store.is_coherent() }).await,
        "the listener did not notice the outage"
    );
    // L1 is not used while invalidations may be missed: the value is not served from it
    assert_eq!(b.get::<String>("k").await, None);

    server.restart();
    assert!(
        eventually(Duration::from_secs(10), || async { b_store.is_coherent() }).await,
        "the listener did not resubscribe"
    );
    // coherency works again (the restarted server lost its data)
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.set("k", &"after", None).await.is_ok()
        })
        .await
    );
    assert!(reads(&b, "k", Some("after")).await);
    a.set("k", &"again", None).await.unwrap();
    assert!(
        reads(&b, "k", Some("again")).await,
        "write after restart not propagated"
    );
}

/// Only the subscriber connection is lost (`CLIENT KILL TYPE pubsub`) while Redis stays up and
/// the data connections work: invalidations sent meanwhile are missed, so L1 must not serve
/// what it held; once resubscribed it is cleared and coherent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_only_the_subscription_clears_l1_until_resubscribed() {
    let server = RedisServer::start();
    let (a, _) = instance(&server, Duration::from_secs(60)).await;
    let (b, b_store) = instance(&server, Duration::from_secs(60)).await;
    let sneaky = behind_the_back(&server).await;
    a.set("k", &"v1", None).await.unwrap();
    assert!(eventually(DELIVERY, || async { b_store.invalidations_received() >= 1 }).await);
    assert_eq!(b.get::<String>("k").await.as_deref(), Some("v1"));
    // B holds v1 in L1 (an unannounced change is not seen).
    sneaky.set("k", &"unannounced", None).await.unwrap();
    assert_eq!(b.get::<String>("k").await.as_deref(), Some("v1"));

    let killed = server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(
        matches!(killed, nilecare_test_support::Reply::Integer(n) if n >= 2),
        "both subscriber connections killed: {killed:?}"
    );
    // Whether B is still reconnecting (L1 off) or already resubscribed (L1 cleared), the L1
    // copy of v1 is never served again.
    assert!(
        reads(&b, "k", Some("unannounced")).await,
        "B serves what Redis holds, not its old L1 copy"
    );
    assert!(
        eventually(Duration::from_secs(5), || async { b_store.is_coherent() }).await,
        "B resubscribed"
    );
    let heard = b_store.invalidations_received();
    a.set("k", &"v2", None).await.unwrap();
    assert!(
        eventually(DELIVERY, || async {
            b_store.invalidations_received() > heard
        })
        .await,
        "B hears announcements again"
    );
    assert!(reads(&b, "k", Some("v2")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coherency_works_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    let config = RedisConfig::from_url(&cluster.url()).unwrap();
    let mut instances = Vec::new();
    let mut stores = Vec::new();
    for _ in 0..2 {
        let pool = connect(&config).await.unwrap();
        let l2 = RedisStore::builder(pool)
            .read_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let store = TieredStore::builder(l2, &config)
            .l1_ttl(Duration::from_secs(60))
            .build()
            .await
            .unwrap();
        stores.push(store.clone());
        instances.push(Cache::builder().prefix(PREFIX).build(store).unwrap());
    }
    let (a, b) = (&instances[0], &instances[1]);
    let b_store = &stores[1];
    // keys on different slots, hence different primaries
    for key in ["patients:1", "patients:2", "clinics:9"] {
        a.set(key, &"v1", None).await.unwrap();
        assert!(reads_within(b, key, Some("v1"), CLUSTER_DELIVERY).await);
        a.set(key, &"v2", None).await.unwrap();
        assert!(
            reads_within(b, key, Some("v2"), CLUSTER_DELIVERY).await,
            "{key}: write not propagated"
        );
    }
    assert!(b_store.is_coherent(), "L1 is on for B on the cluster");
    // B may read a new value before the announcement of the write reaches it (the first
    // write's announcement, arriving late, already cleared its L1): count with delivery time.
    assert!(
        eventually(CLUSTER_DELIVERY, || async {
            b_store.invalidations_received() >= 6
        })
        .await,
        "B heard A's six writes: {}",
        b_store.invalidations_received()
    );
    // B really serves from L1 on the cluster: a change nobody announces is not seen.
    let sneaky = Cache::builder()
        .prefix(PREFIX)
        .jitter(0.0)
        .build(RedisStore::new(connect(&config).await.unwrap()))
        .unwrap();
    assert_eq!(b.get::<String>("clinics:9").await.as_deref(), Some("v2"));
    sneaky.set("clinics:9", &"unannounced", None).await.unwrap();
    assert_eq!(
        b.get::<String>("clinics:9").await.as_deref(),
        Some("v2"),
        "an L1 hit on the cluster"
    );
    assert_eq!(a.invalidate_pattern("patients:*").await.unwrap(), 2);
    assert!(
        reads_within(b, "patients:1", None, CLUSTER_DELIVERY).await
            && reads_within(b, "patients:2", None, CLUSTER_DELIVERY).await
    );
}
