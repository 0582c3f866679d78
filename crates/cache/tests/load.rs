//! `get_or_set_with` and its variants (single flight, errors, stale-while-revalidate, negative
//! caching, cancellation, panics), against MemoryStore and a real Redis server.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nilecare_cache::{Cache, LoadError, LoadPolicy, MemoryStore, RedisStore, Store};
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::{RedisCluster, RedisServer, eventually};

#[derive(Debug, PartialEq)]
struct DbDown(u32);

fn cache<S: Store + Clone>(store: &S, prefix: &str) -> Cache<S> {
    Cache::builder()
        .name("load")
        .prefix(prefix)
        .jitter(0.0)
        .build(store.clone())
        .unwrap()
}

/// A loader that counts its runs and takes `delay`.
fn counted<T: Send + 'static, E: Send + 'static>(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    result: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send + 'static
{
    let calls = calls.clone();
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            result()
        })
    }
}

async fn concurrent_misses_run_the_loader_once<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "sf:");
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (c, loader) = (
                c.clone(),
                counted(&calls, Duration::from_millis(150), || {
                    Ok::<_, DbDown>("Amina".to_owned())
                }),
            );
            tokio::spawn(async move { c.get_or_set_with("patients:1", None, loader).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "Amina", "{label}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{label}: loader runs");
    assert_eq!(c.stats().loads, 1, "{label}");
    assert_eq!(c.loads_in_flight(), 0, "{label}");
    // now cached: no further load
    let v: String = c
        .get_or_set_with(
            "patients:1",
            None,
            counted(&calls, Duration::ZERO, || Ok::<_, DbDown>("other".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        (v.as_str(), calls.load(Ordering::SeqCst)),
        ("Amina", 1),
        "{label}"
    );
}

async fn loader_errors_reach_every_waiter_and_are_not_cached<S: Store + Clone>(
    label: &str,
    store: &S,
) {
    let c = cache(store, "err:");
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (c, loader) = (
                c.clone(),
                counted(&calls, Duration::from_millis(100), || {
                    Err::<String, _>(DbDown(503))
                }),
            );
            tokio::spawn(async move { c.get_or_set_with("patients:2", None, loader).await })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Err(LoadError::Loader(e)) => errors.push(e),
            other => panic!("{label}: expected the loader's error, got {other:?}"),
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{label}");
    assert!(errors.iter().all(|e| **e == DbDown(503)), "{label}");
    assert!(
        errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])),
        "{label}: one shared error"
    );
    assert_eq!(c.get::<String>("patients:2").await, None, "{label}");
    // not cached: the next call loads again and succeeds
    let v = c
        .get_or_set_with(
            "patients:2",
            None,
            counted(&calls, Duration::ZERO, || {
                Ok::<_, DbDown>("Bakhita".to_owned())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (v.as_str(), calls.load(Ordering::SeqCst)),
        ("Bakhita", 2),
        "{label}"
    );
    let stats = c.stats();
    assert_eq!((stats.loads, stats.load_errors), (2, 1), "{label}");
}

async fn stale_values_are_served_while_one_refresh_runs<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "swr:");
    let policy = LoadPolicy::new()
        .ttl(Duration::from_secs(30))
        .stale_after(Duration::from_millis(200));
    let calls = Arc::new(AtomicUsize::new(0));
    let first = c
        .get_or_set_with_policy(
            "clinics:1",
            &policy,
            counted(&calls, Duration::ZERO, || Ok::<_, DbDown>(1u32)),
        )
        .await
        .unwrap();
    assert_eq!(first, 1, "{label}");
    // fresh: served from the cache
    let again = c
        .get_or_set_with_policy(
            "clinics:1",
            &policy,
            counted(&calls, Duration::ZERO, || Ok::<_, DbDown>(99u32)),
        )
        .await
        .unwrap();
    assert_eq!((again, calls.load(Ordering::SeqCst)), (1, 1), "{label}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    // stale: 20 callers get the old value at once; one slow refresh runs in the background
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (c, loader) = (
                c.clone(),
                counted(&calls, Duration::from_millis(400), || Ok::<_, DbDown>(2u32)),
            );
            tokio::spawn(
                async move { c.get_or_set_with_policy("clinics:1", &policy, loader).await },
            )
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1, "{label}: stale value");
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{label}: stale reads waited for the refresh ({:?})",
        started.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            c.get::<u32>("clinics:1").await == Some(2)
        })
        .await,
        "{label}: the refresh never landed"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "{label}: exactly one refresh"
    );
    assert_eq!(c.stats().refreshes, 1, "{label}");
    // the refreshed value is fresh again
    let now = c
        .get_or_set_with_policy(
            "clinics:1",
            &policy,
            counted(&calls, Duration::ZERO, || Ok::<_, DbDown>(3u32)),
        )
        .await
        .unwrap();
    assert_eq!((now, calls.load(Ordering::SeqCst)), (2, 2), "{label}");
}

async fn after_the_hard_ttl_values_load_synchronously<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "hard:");
    let calls = Arc::new(AtomicUsize::new(0));
    let ttl = Some(Duration::from_millis(250));
    let load = |v: u32| counted(&calls, Duration::ZERO, move || Ok::<_, DbDown>(v));
    assert_eq!(c.get_or_set_with("k", ttl, load(1)).await.unwrap(), 1);
    assert_eq!(c.get_or_set_with("k", ttl, load(2)).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        c.get_or_set_with("k", ttl, load(3)).await.unwrap(),
        3,
        "{label}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "{label}");
}

async fn not_found_is_cached_only_with_a_negative_ttl<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "neg:");
    let calls = Arc::new(AtomicUsize::new(0));
    let missing = || {
        counted(&calls, Duration::ZERO, || {
            Ok::<Option<String>, DbDown>(None)
        })
    };

    // without a negative TTL every lookup reaches the loader
    let plain = LoadPolicy::new();
    for _ in 0..3 {
        let v = c
            .get_or_set_optional_with("patients:404", &plain, missing())
            .await
            .unwrap();
        assert_eq!(v, None, "{label}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3, "{label}");

    // with one, "not found" is remembered for its TTL
    let negative = LoadPolicy::new().negative_ttl(Duration::from_millis(300));
    for _ in 0..3 {
        let v = c
            .get_or_set_optional_with("patients:405", &negative, missing())
            .await
            .unwrap();
        assert_eq!(v, None, "{label}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "{label}: one load for three lookups"
    );
    assert!(
        matches!(c.ttl("patients:405").await.unwrap(), nilecare_cache::KeyTtl::Expires(t) if t <= Duration::from_millis(300)),
        "{label}: negative entries carry the negative TTL"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let found = c
        .get_or_set_optional_with(
            "patients:405",
            &negative,
            counted(&calls, Duration::ZERO, || {
                Ok::<_, DbDown>(Some("Chol".to_owned()))
            }),
        )
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some("Chol"), "{label}");
    assert_eq!(calls.load(Ordering::SeqCst), 5, "{label}");
}

async fn a_caller_that_gives_up_does_not_cancel_the_load<S: Store + Clone>(label: &str, store: &S) {
    let c = cache(store, "cancel:");
    let calls = Arc::new(AtomicUsize::new(0));
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        c.get_or_set_with(
            "reports:1",
            None,
            counted(&calls, Duration::from_millis(200), || {
                Ok::<_, DbDown>("report".to_owned())
            }),
        ),
    )
    .await;
    assert!(gave_up.is_err(), "{label}: the caller timed out");
    assert!(
        eventually(Duration::from_secs(3), || async {
            c.get::<String>("reports:1").await.as_deref() == Some("report")
        })
        .await,
        "{label}: the abandoned load never stored its value"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{label}");
    assert_eq!(c.loads_in_flight(), 0, "{label}");
}

async fn a_panicking_loader_fails_its_waiters_and_unblocks_the_key<S: Store + Clone>(
    label: &str,
    store: &S,
) {
    let c = cache(store, "panic:");
    let calls = Arc::new(AtomicUsize::new(0));
    let boom = c
        .get_or_set_with(
            "k",
            None,
            counted(
                &calls,
                Duration::from_millis(10),
                || -> Result<u8, DbDown> { panic!("loader bug") },
            ),
        )
        .await;
    assert!(
        matches!(boom, Err(LoadError::Panicked)),
        "{label}: {boom:?}"
    );
    assert_eq!(c.loads_in_flight(), 0, "{label}");
    let ok = c
        .get_or_set_with(
            "k",
            None,
            counted(&calls, Duration::ZERO, || Ok::<_, DbDown>(7u8)),
        )
        .await
        .unwrap();
    assert_eq!(ok, 7, "{label}");
}

async fn bad_keys_and_policies_are_rejected_before_loading<S: Store + Clone>(
    label: &str,
    store: &S,
) {
    let c = cache(store, "bad:");
    let calls = Arc::new(AtomicUsize::new(0));
    let load = || counted(&calls, Duration::ZERO, || Ok::<_, DbDown>(1u8));
    let bad_key = c.get_or_set_with("@tenant:x", None, load()).await;
    assert!(
        matches!(
            bad_key,
            Err(LoadError::Cache(nilecare_cache::Error::InvalidKey {
                field: "key",
                ..
            }))
        ),
        "{label}: {bad_key:?}"
    );
    let zero = LoadPolicy::new().stale_after(Duration::ZERO);
    let bad_policy = c.get_or_set_with_policy("k", &zero, load()).await;
    assert!(
        matches!(
            bad_policy,
            Err(LoadError::Cache(nilecare_cache::Error::InvalidConfig {
                field: "stale_after",
                ..
            }))
        ),
        "{label}: {bad_policy:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "{label}");
}

async fn run_suite<S: Store + Clone>(label: &str, store: S) {
    concurrent_misses_run_the_loader_once(label, &store).await;
    loader_errors_reach_every_waiter_and_are_not_cached(label, &store).await;
    stale_values_are_served_while_one_refresh_runs(label, &store).await;
    after_the_hard_ttl_values_load_synchronously(label, &store).await;
    not_found_is_cached_only_with_a_negative_ttl(label, &store).await;
    a_caller_that_gives_up_does_not_cancel_the_load(label, &store).await;
    a_panicking_loader_fails_its_waiters_and_unblocks_the_key(label, &store).await;
    bad_keys_and_policies_are_rejected_before_loading(label, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    run_suite("memory", MemoryStore::with_max_entries(10_000).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store() {
    let server = RedisServer::start();
    run_suite("redis", support::redis_store(&server).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_open_to_the_loader() {
    let mut server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url())
        .unwrap()
        .with_command_timeout(Duration::from_millis(200));
    let c = cache(&RedisStore::new(connect(&config).await.unwrap()), "outage:");
    server.kill();
    let calls = Arc::new(AtomicUsize::new(0));
    let v = c
        .get_or_set_with(
            "patients:1",
            None,
            counted(&calls, Duration::ZERO, || {
                Ok::<_, DbDown>("Deng".to_owned())
            }),
        )
        .await
        .unwrap();
    assert_eq!(v, "Deng");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        c.stats().errors >= 1,
        "the failed read and write are counted"
    );
}

async fn two_instances(url: &str) -> (Cache<RedisStore>, Cache<RedisStore>) {
    let config = RedisConfig::from_url(url).unwrap();
    let a = RedisStore::new(connect(&config).await.unwrap());
    let b = RedisStore::new(connect(&config).await.unwrap());
    (cache(&a, "lock:"), cache(&b, "lock:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_lock_instances_load_a_cold_key_once() {
    let server = RedisServer::start();
    let (a, b) = two_instances(&server.url()).await;
    let lock = one_load_for_two_instances(&a, &b).await;
    // the lock was released
    assert_eq!(
        server.command(&["EXISTS", &lock]),
        nilecare_test_support::Reply::Integer(0)
    );
}

/// The cross-instance lock on a real 3-primary cluster (the lock key shares the value's slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_lock_instances_load_a_cold_key_once_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    let (a, b) = two_instances(&cluster.url()).await;
    one_load_for_two_instances(&a, &b).await;
}

/// Two instances ask for a cold key at once under a lock: one loader call; without the lock,
/// each loads. Returns the lock's key.
async fn one_load_for_two_instances(a: &Cache<RedisStore>, b: &Cache<RedisStore>) -> String {
    let policy = LoadPolicy::new().lock(Duration::from_secs(2));
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = |v: &'static str| {
        counted(&calls, Duration::from_millis(300), move || {
            Ok::<_, DbDown>(v.to_owned())
        })
    };
    let (ra, rb) = tokio::join!(
        a.get_or_set_with_policy("reports:1", &policy, slow("from a")),
        b.get_or_set_with_policy("reports:1", &policy, slow("from b")),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra, rb, "both instances return the one loaded value");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one database call for two instances"
    );
    let lock = a.full_key("x").unwrap().replace(":x", ":@:lock:reports:1");

    // without the lock, each instance loads
    let plain = LoadPolicy::new();
    let (ra, rb) = tokio::join!(
        a.get_or_set_with_policy("reports:2", &plain, slow("from a")),
        b.get_or_set_with_policy("reports:2", &plain, slow("from b")),
    );
    assert!(ra.is_ok() && rb.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    lock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_never_waited_on_longer_than_its_lease() {
    let server = RedisServer::start();
    let (a, b) = two_instances(&server.url()).await;
    let policy = LoadPolicy::new().lock(Duration::from_millis(100));
    let calls = Arc::new(AtomicUsize::new(0));
    // A holds the lock with a loader far slower than the lease
    let a_task = {
        let a = a.clone();
        let loader = counted(&calls, Duration::from_millis(1500), || {
            Ok::<_, DbDown>(1u32)
        });
        tokio::spawn(async move { a.get_or_set_with_policy("k", &policy, loader).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = Instant::now();
    let v = b
        .get_or_set_with_policy(
            "k",
            &policy,
            counted(&calls, Duration::ZERO, || Ok::<_, DbDown>(2u32)),
        )
        .await
        .unwrap();
    assert_eq!(v, 2, "B loaded itself after the lease");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "B waited {:?}",
        started.elapsed()
    );
    assert_eq!(a_task.await.unwrap().unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_load_policies_apply_to_get_or_set_with() {
    let c = Cache::builder()
        .jitter(0.0)
        .load_policy(
            "clinics",
            LoadPolicy::new()
                .ttl(Duration::from_secs(30))
                .stale_after(Duration::from_millis(150)),
        )
        .build(MemoryStore::with_max_entries(100).unwrap())
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let load = |v: u32| counted(&calls, Duration::ZERO, move || Ok::<_, DbDown>(v));
    assert_eq!(
        c.get_or_set_with("clinics:1", None, load(1)).await.unwrap(),
        1
    );
    assert_eq!(
        c.get_or_set_with("patients:1", None, load(1))
            .await
            .unwrap(),
        1
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    // clinics: stale, served at once and refreshed; patients: no soft TTL, still fresh
    assert_eq!(
        c.get_or_set_with("clinics:1", None, load(2)).await.unwrap(),
        1
    );
    assert_eq!(
        c.get_or_set_with("patients:1", None, load(2))
            .await
            .unwrap(),
        1
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            c.get::<u32>("clinics:1").await == Some(2)
        })
        .await
    );
    assert_eq!((calls.load(Ordering::SeqCst), c.stats().refreshes), (3, 1));

    let bad = Cache::builder()
        .load_policy("a:b", LoadPolicy::new())
        .build(MemoryStore::with_max_entries(10).unwrap());
    assert!(matches!(
        bad,
        Err(nilecare_cache::Error::InvalidConfig {
            field: "load_policy",
            ..
        })
    ));
}
