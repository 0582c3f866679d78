//! Tags: exactly the tagged keys go, the index stays bounded as keys expire, tenants keep their
//! own tags; against MemoryStore, a real Redis server and a 3-primary cluster, and across two
//! TieredStore instances.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use nilecare_cache::{Cache, Error, MemoryStore, RedisStore, Store, TieredStore};
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::{RedisCluster, RedisServer, Reply, eventually};

fn cache<S: Store + Clone>(store: &S, prefix: &str) -> Cache<S> {
    Cache::builder()
        .prefix(prefix)
        .jitter(0.0)
        .build(store.clone())
        .unwrap()
}

async fn present<S: Store>(c: &Cache<S>, key: &str) -> bool {
    c.get::<String>(key).await.is_some()
}

async fn invalidating_a_tag_removes_exactly_its_keys<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "tags:exact:");
    let v = "x".to_owned();
    c.set_with_tags("patients:1", &v, None, &["patient:1", "clinic:1"])
        .await
        .unwrap();
    c.set_with_tags("patients:2", &v, None, &["patient:2", "clinic:1"])
        .await
        .unwrap();
    c.set_with_tags("patients:3", &v, None, &["patient:3", "clinic:2"])
        .await
        .unwrap();
    c.set("untagged", &v, None).await.unwrap();

    assert_eq!(c.invalidate_tag("clinic:1").await.unwrap(), 2, "{label}");
    assert!(
        !present(&c, "patients:1").await && !present(&c, "patients:2").await,
        "{label}"
    );
    assert!(
        present(&c, "patients:3").await && present(&c, "untagged").await,
        "{label}"
    );
    assert_eq!(
        c.tag_size("clinic:1").await.unwrap(),
        0,
        "{label}: index removed"
    );
    assert_eq!(c.invalidate_tag("patient:3").await.unwrap(), 1, "{label}");
    assert!(!present(&c, "patients:3").await, "{label}");
    assert_eq!(c.invalidate_tag("never-used").await.unwrap(), 0, "{label}");
    // already-deleted keys are not counted twice
    assert_eq!(c.invalidate_tag("patient:1").await.unwrap(), 0, "{label}");
}

async fn expired_keys_leave_the_index<S: Store + Clone>(label: &str, store: &S) -> String {
    let c = cache(store, "tags:bounded:");
    let short = Some(Duration::from_millis(200));
    for i in 0..50 {
        c.set_with_tags(&format!("k{i}"), &i, short, &["busy"])
            .await
            .unwrap();
    }
    assert_eq!(c.tag_size("busy").await.unwrap(), 50, "{label}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.set_with_tags("fresh", &1, Some(Duration::from_secs(30)), &["busy"])
        .await
        .unwrap();
    assert_eq!(
        c.tag_size("busy").await.unwrap(),
        1,
        "{label}: expired members pruned"
    );
    assert_eq!(c.invalidate_tag("busy").await.unwrap(), 1, "{label}");
    c.tag_index("busy").unwrap()
}

async fn tenants_have_their_own_tags<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "tags:tenants:");
    let (a, b) = (
        c.for_tenant("clinic_a").unwrap(),
        c.for_tenant("clinic_b").unwrap(),
    );
    a.set_with_tags("p", &"a", None, &["patient:1"])
        .await
        .unwrap();
    b.set_with_tags("p", &"b", None, &["patient:1"])
        .await
        .unwrap();
    c.set_with_tags("p", &"global", None, &["patient:1"])
        .await
        .unwrap();
    assert_eq!(a.invalidate_tag("patient:1").await.unwrap(), 1, "{label}");
    assert!(!present(&a, "p").await, "{label}");
    assert!(present(&b, "p").await && present(&c, "p").await, "{label}");
    // a global pattern invalidation does not touch tag indexes (they live under `@:`)
    c.invalidate_pattern("*").await.unwrap();
    assert_eq!(b.invalidate_tag("patient:1").await.unwrap(), 1, "{label}");
}

async fn bad_tags_name_the_field<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "tags:bad:");
    for tags in [vec![""], vec!["a\u{7}b"]] {
        let e = c.set_with_tags("k", &1, None, &tags).await.unwrap_err();
        assert!(
            matches!(e, Error::InvalidKey { field: "tag", .. }),
            "{label}: {e}"
        );
    }
    let many: Vec<String> = (0..65).map(|i| i.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = c.set_with_tags("k", &1, None, &many).await.unwrap_err();
    assert!(
        matches!(e, Error::InvalidKey { field: "tags", .. }),
        "{label}: {e}"
    );
    assert!(!present(&c, "k").await, "{label}: nothing stored");
}

async fn run_suite<S: Store + Clone>(label: &str, store: &S) -> String {
    invalidating_a_tag_removes_exactly_its_keys(label, store).await;
    tenants_have_their_own_tags(label, store).await;
    bad_tags_name_the_field(label, store).await;
    expired_keys_leave_the_index(label, store).await
}

#[tokio::test]
async fn memory_store() {
    run_suite("memory", &MemoryStore::with_max_entries(10_000).unwrap()).await;
}

#[tokio::test]
async fn redis_store_and_its_index_expires_with_its_last_member() {
    let server = RedisServer::start();
    let store = support::redis_store(&server).await;
    run_suite("redis", &store).await;

    let c = cache(&store, "tags:expiry:");
    c.set_with_tags("k", &1, Some(Duration::from_millis(300)), &["short"])
        .await
        .unwrap();
    let index = c.tag_index("short").unwrap();
    match server.command(&["PTTL", &index]) {
        Reply::Integer(ms) => assert!((1..=300).contains(&ms), "index PTTL {ms}"),
        other => panic!("PTTL: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(server.command(&["EXISTS", &index]), Reply::Integer(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster() {
    let cluster = RedisCluster::start(3);
    run_suite("cluster", &support::cluster_store(&cluster).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_invalidation_reaches_other_instances_l1() {
    let server = RedisServer::start();
    tag_invalidation_reaches_other_instances_l1_on(&server.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_invalidation_reaches_other_instances_l1_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    tag_invalidation_reaches_other_instances_l1_on(&cluster.url()).await;
}

async fn tag_invalidation_reaches_other_instances_l1_on(url: &str) {
    let config = RedisConfig::from_url(url).unwrap();
    let mut caches = Vec::new();
    let mut stores = Vec::new();
    for _ in 0..2 {
        let l2 = RedisStore::new(connect(&config).await.unwrap());
        let store = TieredStore::builder(l2, &config)
            .l1_ttl(Duration::from_secs(60))
            .build()
            .await
            .unwrap();
        stores.push(store.clone());
        caches.push(cache(&store, "tags:tiered:"));
    }
    let (a, b) = (&caches[0], &caches[1]);
    let b_store = &stores[1];
    a.set_with_tags("patients:1", &"x".to_owned(), None, &["patient:1"])
        .await
        .unwrap();
    // B hears A's write first (arriving later, it would drop B's fill below).
    assert!(
        eventually(Duration::from_secs(2), || async {
            b_store.invalidations_received() >= 1
        })
        .await
    );
    assert!(present(b, "patients:1").await, "B caches it in L1");
    assert!(b_store.is_coherent());
    let heard = b_store.invalidations_received();
    assert_eq!(a.invalidate_tag("patient:1").await.unwrap(), 1);
    assert!(
        eventually(Duration::from_secs(2), || async {
            b_store.invalidations_received() > heard
        })
        .await,
        "B heard the tag's invalidation"
    );
    assert!(
        !present(b, "patients:1").await,
        "B still serves a key whose tag was invalidated"
    );
}
