//! One behavioural suite, run against every store: MemoryStore, RedisStore on a standalone
//! server, RedisStore on a 3-master cluster.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use nilecare_cache::{Cache, KeyTtl, MemoryStore, Store};
use nilecare_test_support::{RedisCluster, RedisServer};

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Patient {
    id: u32,
    name: String,
}

fn patient(id: u32) -> Patient {
    Patient {
        id,
        name: format!("patient {id}"),
    }
}

fn cache<S: Store + Clone>(store: &S, prefix: &str) -> Cache<S> {
    Cache::builder()
        .name("suite")
        .prefix(prefix)
        .jitter(0.0)
        .ttl_policy("appointments", Duration::from_secs(120))
        .build(store.clone())
        .expect("valid cache config")
}

async fn round_trip_and_ttl_expiry<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "rt:cache:");
    c.set("patients:1", &patient(1), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(
        c.get::<Patient>("patients:1").await,
        Some(patient(1)),
        "{label}"
    );
    match c.ttl("patients:1").await.unwrap() {
        KeyTtl::Expires(left) => assert!(left <= Duration::from_millis(300), "{label}: {left:?}"),
        other => panic!("{label}: expected a TTL, got {other:?}"),
    }
    assert!(c.exists("patients:1").await.unwrap(), "{label}");
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        c.get::<Patient>("patients:1").await,
        None,
        "{label}: not expired"
    );
    assert!(!c.exists("patients:1").await.unwrap(), "{label}");
    assert_eq!(
        c.ttl("patients:1").await.unwrap(),
        KeyTtl::Missing,
        "{label}"
    );

    // policy TTL by namespace, default TTL otherwise
    c.set("appointments:7", &1, None).await.unwrap();
    match c.ttl("appointments:7").await.unwrap() {
        KeyTtl::Expires(left) => assert!(
            left > Duration::from_secs(110) && left <= Duration::from_secs(120),
            "{label}: {left:?}"
        ),
        other => panic!("{label}: {other:?}"),
    }
    c.set("contacts:7", &1, None).await.unwrap();
    match c.ttl("contacts:7").await.unwrap() {
        KeyTtl::Expires(left) => assert!(left > Duration::from_secs(290), "{label}: {left:?}"),
        other => panic!("{label}: {other:?}"),
    }
}

async fn pattern_invalidation_counts<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "pi:cache:");
    for i in 0..25 {
        c.set(&format!("patients:{i}"), &patient(i), None)
            .await
            .unwrap();
    }
    for i in 0..3 {
        c.set(&format!("appointments:{i}"), &i, None).await.unwrap();
    }
    assert_eq!(
        c.invalidate_pattern("patients:1?").await.unwrap(),
        10,
        "{label}"
    );
    assert_eq!(
        c.invalidate_pattern("patients:*").await.unwrap(),
        15,
        "{label}"
    );
    assert_eq!(
        c.invalidate_pattern("patients:*").await.unwrap(),
        0,
        "{label}"
    );
    let left: Vec<Option<u32>> = c
        .get_many(&["appointments:0", "appointments:1", "appointments:2"])
        .await;
    assert_eq!(left, vec![Some(0), Some(1), Some(2)], "{label}");
}

async fn prefixes_isolate_and_flush_only_touches_its_own<S: Store + Clone>(label: &str, store: &S) {
    let a = cache(store, "iso-a:cache:");
    let b = cache(store, "iso-b:cache:");
    a.set("patients:1", &"from a", None).await.unwrap();
    b.set("patients:1", &"from b", None).await.unwrap();
    store
        .set("unrelated:key", bytes::Bytes::from_static(b"x"), None)
        .await
        .unwrap();
    assert_eq!(
        a.get::<String>("patients:1").await.as_deref(),
        Some("from a"),
        "{label}"
    );
    assert_eq!(
        b.get::<String>("patients:1").await.as_deref(),
        Some("from b"),
        "{label}"
    );
    assert_eq!(a.invalidate_pattern("*").await.unwrap(), 1, "{label}");
    assert_eq!(
        b.get::<String>("patients:1").await.as_deref(),
        Some("from b"),
        "{label}"
    );

    a.set("x", &1, None).await.unwrap();
    assert_eq!(a.flush_all().await.unwrap(), 1, "{label}");
    assert_eq!(
        b.get::<String>("patients:1").await.as_deref(),
        Some("from b"),
        "{label}"
    );
    assert!(
        store.exists("unrelated:key").await.unwrap(),
        "{label}: flush escaped its prefix"
    );
}

async fn many_at_once<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "many:cache:");
    let entries: Vec<(String, Patient)> = (0..40)
        .map(|i| (format!("patients:{i}"), patient(i)))
        .collect();
    c.set_many(&entries, None).await.unwrap();
    let keys: Vec<String> = (0..45).rev().map(|i| format!("patients:{i}")).collect();
    let got: Vec<Option<Patient>> = c.get_many(&keys).await;
    for (key, value) in keys.iter().zip(&got) {
        let i: u32 = key["patients:".len()..].parse().unwrap();
        let want = (i < 40).then(|| patient(i));
        assert_eq!(value, &want, "{label}: {key}");
    }
    let keys_vec: Vec<&str> = vec!["patients:1", "patients:2", "patients:404"];
    assert_eq!(c.del_many(&keys_vec).await.unwrap(), 2, "{label}");
    assert!(!c.del("patients:1").await.unwrap(), "{label}");
    assert!(c.get_many::<Patient, &str>(&[]).await.is_empty());
}

async fn tenants_cannot_touch_each_other<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "ten:cache:");
    let tricky = [
        "clinic_1",
        "clinic*",
        "clinic?",
        "clinic[1]",
        "clinic:1",
        "c{x}",
        "%3A",
    ];
    for t in tricky {
        let view = c.for_tenant(t).unwrap();
        view.set("patients:1", &t, None).await.unwrap();
        view.set("p*:[x]?", &t, None).await.unwrap();
    }
    c.set("patients:1", &"global", None).await.unwrap();

    // Each view reads only its own value.
    for t in tricky {
        let view = c.for_tenant(t).unwrap();
        assert_eq!(
            view.get::<String>("patients:1").await.as_deref(),
            Some(t),
            "{label}: {t}"
        );
    }
    // Patterns with wildcards from one tenant do not reach siblings with similar ids.
    let star = c.for_tenant("clinic*").unwrap();
    assert_eq!(star.invalidate_pattern("*").await.unwrap(), 2, "{label}");
    for t in tricky.iter().filter(|t| **t != "clinic*") {
        let view = c.for_tenant(t).unwrap();
        assert_eq!(
            view.get::<String>("patients:1").await.as_deref(),
            Some(*t),
            "{label}: {t}"
        );
    }
    // The global view's patterns never touch tenant keys.
    assert_eq!(c.invalidate_pattern("*").await.unwrap(), 1, "{label}");
    assert_eq!(
        c.for_tenant("clinic:1")
            .unwrap()
            .get::<String>("patients:1")
            .await
            .as_deref(),
        Some("clinic:1"),
        "{label}"
    );
    // A tenant flush removes that tenant only.
    assert_eq!(
        c.for_tenant("clinic[1]")
            .unwrap()
            .flush_all()
            .await
            .unwrap(),
        2,
        "{label}"
    );
    assert_eq!(
        c.for_tenant("clinic_1")
            .unwrap()
            .get::<String>("p*:[x]?")
            .await
            .as_deref(),
        Some("clinic_1"),
        "{label}"
    );
    // Keys cannot impersonate tenant segments; ids with control characters are rejected.
    assert!(
        c.set("@clinic_1:patients:1", &"x", None).await.is_err(),
        "{label}"
    );
    assert!(c.for_tenant("bad\nid").is_err());
    assert!(c.for_tenant("").is_err());
    // The global flush clears every tenant of this cache.
    let remaining = c.flush_all().await.unwrap();
    assert_eq!(remaining, 10, "{label}"); // 7 tenants x 2 keys, minus clinic* and clinic[1]
}

async fn stats_count_what_happened<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "stats:cache:");
    let before = c.stats();
    c.set("k:1", &1, None).await.unwrap();
    let _ = c.get::<u32>("k:1").await;
    let _ = c.get::<u32>("k:2").await;
    let _ = c.get::<String>("k:1").await; // wrong type: a miss and a decode error
    c.del("k:1").await.unwrap();
    let after = c.stats();
    assert_eq!(after.sets - before.sets, 1, "{label}");
    assert_eq!(after.hits - before.hits, 1, "{label}");
    assert_eq!(after.misses - before.misses, 2, "{label}");
    assert_eq!(after.errors - before.errors, 1, "{label}");
    assert_eq!(after.deletes - before.deletes, 1, "{label}");
}

async fn run_suite<S: Store + Clone>(label: &str, store: S) {
    round_trip_and_ttl_expiry(label, &store).await;
    pattern_invalidation_counts(label, &store).await;
    prefixes_isolate_and_flush_only_touches_its_own(label, &store).await;
    many_at_once(label, &store).await;
    tenants_cannot_touch_each_other(label, &store).await;
    stats_count_what_happened(label, &store).await;
}

#[tokio::test]
async fn memory_store() {
    run_suite("memory", MemoryStore::with_max_entries(10_000).unwrap()).await;
}

#[tokio::test]
async fn redis_store_standalone() {
    let server = RedisServer::start();
    run_suite("redis", support::redis_store(&server).await).await;
}

#[tokio::test]
async fn redis_store_cluster() {
    let cluster = RedisCluster::start(3);
    run_suite("cluster", support::cluster_store(&cluster).await).await;
}
