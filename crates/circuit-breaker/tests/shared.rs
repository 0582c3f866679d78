//! Shared breaker state on a real Redis: three instances with their own pools.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nilecare_circuit_breaker::Breaker as _;
use nilecare_circuit_breaker::{BreakerError, State};
use nilecare_test_support::{FaultProxy, RedisCluster, RedisServer, eventually};

mod support;

use support::{FLUSH, fail, instance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_two_instances_open_the_breaker_on_the_third() {
    let server = RedisServer::start();
    failures_on_two_instances_open_the_third(&server.url()).await;
}

/// The shared state on a real 3-primary cluster (each breaker's keys in one slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_two_instances_open_the_breaker_on_the_third_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    failures_on_two_instances_open_the_third(&cluster.url()).await;
}

async fn failures_on_two_instances_open_the_third(url: &str) {
    let (a, b, c) = (
        instance(url, "billing", Duration::from_secs(30)).await,
        instance(url, "billing", Duration::from_secs(30)).await,
        instance(url, "billing", Duration::from_secs(30)).await,
    );
    // 3 failures each: neither instance reaches minimum_calls (6) alone.
    fail(&a, 3).await;
    fail(&b, 3).await;
    assert_eq!(
        a.local().state(),
        State::MetricsOnly,
        "an instance opened on its own"
    );
    // Within a few flush intervals every instance, c included, is open.
    let opened = eventually(Duration::from_secs(2), || async {
        [&a, &b, &c].iter().all(|i| i.shared_state() == State::Open)
    })
    .await;
    assert!(opened, "{a:?} {b:?} {c:?}");
    let r = c.call(async { Ok::<_, ()>(()) }).await;
    match r {
        Err(BreakerError::Rejected(rej)) => {
            assert!(
                rej.retry_after.unwrap() > Duration::from_secs(25),
                "{rej:?}"
            )
        }
        other => panic!("the third instance let a call through: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_probes_are_limited_cluster_wide_and_close_the_breaker() {
    let server = RedisServer::start();
    let wait = Duration::from_millis(300);
    let instances = vec![
        instance(&server.url(), "patients", wait).await,
        instance(&server.url(), "patients", wait).await,
        instance(&server.url(), "patients", wait).await,
    ];
    fail(&instances[0], 6).await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            instances.iter().all(|i| i.shared_state() == State::Open)
        })
        .await
    );
    tokio::time::sleep(wait + FLUSH * 2).await;
    // 3 instances x 10 concurrent callers: only the 2 permitted probes run.
    let ran = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for i in &instances {
        for _ in 0..10 {
            let (i, ran) = (i.clone(), ran.clone());
            tasks.push(tokio::spawn(async move {
                i.call(async {
                    ran.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, ()>(())
                })
                .await
            }));
        }
    }
    for t in tasks {
        let _ = t.await.unwrap();
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "more probes than permitted ran"
    );
    // Both probes succeeded: closed everywhere.
    assert!(
        eventually(Duration::from_secs(2), || async {
            instances.iter().all(|i| i.shared_state() == State::Closed)
        })
        .await
    );
    assert!(instances[2].call(async { Ok::<_, ()>(()) }).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_an_instance_decides_locally_and_rejoins_after_restart() {
    let mut server = RedisServer::start();
    let a = instance(&server.url(), "appointments", Duration::from_secs(30)).await;
    assert!(a.redis_available());
    server.kill();
    assert!(
        eventually(Duration::from_secs(3), || async { !a.redis_available() }).await,
        "the outage was not noticed"
    );
    assert_eq!(
        a.local().state(),
        State::Closed,
        "local decisions use the local thresholds"
    );
    fail(&a, 6).await;
    assert_eq!(
        a.local().state(),
        State::Open,
        "the local breaker protects during the outage"
    );
    server.restart();
    assert!(
        eventually(Duration::from_secs(5), || async { a.redis_available() }).await,
        "never rejoined the shared state"
    );
    // The shared record (fresh after the restart) is closed: the instance follows it.
    assert!(
        eventually(Duration::from_secs(2), || async {
            a.call(async { Ok::<_, ()>(()) }).await.is_ok()
        })
        .await
    );
}

/// A silent partition of one instance (a fault proxy blackholes its connection): its calls
/// never wait for Redis, it notices the loss and decides locally, the shared state opened by
/// the others meanwhile reaches it once the partition heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_instance_decides_locally_and_follows_the_shared_state_after() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(&server.addr());
    let a = instance(&proxy.url(), "labs", Duration::from_secs(30)).await;
    let (b, c) = (
        instance(&server.url(), "labs", Duration::from_secs(30)).await,
        instance(&server.url(), "labs", Duration::from_secs(30)).await,
    );
    assert!(a.redis_available());

    proxy.blackhole();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let call = std::time::Instant::now();
        assert!(a.call(async { Ok::<_, ()>(()) }).await.is_ok());
        assert!(
            call.elapsed() < Duration::from_millis(50),
            "a call waited {:?} on the partitioned Redis",
            call.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        eventually(Duration::from_secs(3), || async { !a.redis_available() }).await,
        "the partition was not noticed"
    );
    let noticed = started.elapsed();
    // The others open the shared breaker meanwhile; A, cut off, still lets calls through.
    fail(&b, 3).await;
    fail(&c, 3).await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.shared_state() == State::Open && c.shared_state() == State::Open
        })
        .await
    );
    assert!(
        a.call(async { Ok::<_, ()>(()) }).await.is_ok(),
        "A decides locally"
    );

    proxy.heal();
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.redis_available()
                && matches!(
                    a.call(async { Ok::<_, ()>(()) }).await,
                    Err(BreakerError::Rejected(_))
                )
        })
        .await,
        "after the partition A follows the shared open state"
    );
    eprintln!("breaker partition: noticed {noticed:?} after it began");
}

/// Behind Sentinel: the primary killed; the instance notices, decides locally, and rejoins the
/// shared state on the promoted replica (where the record replicated before the kill is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_keeps_the_shared_state() {
    let mut sentinel = nilecare_test_support::RedisSentinel::start();
    let (a, b) = (
        instance(&sentinel.url(), "pharmacy", Duration::from_secs(30)).await,
        instance(&sentinel.url(), "pharmacy", Duration::from_secs(30)).await,
    );
    fail(&a, 3).await;
    fail(&b, 3).await;
    assert!(
        eventually(Duration::from_secs(2), || async {
            a.shared_state() == State::Open && b.shared_state() == State::Open
        })
        .await
    );
    sentinel.await_replication();
    let killed = sentinel.kill_primary();
    let promotion = sentinel.await_promotion_in_background(killed);
    assert!(
        eventually(Duration::from_secs(5), || async { !a.redis_available() }).await,
        "the loss was not noticed"
    );
    let (_sentinel, promoted) = promotion.await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { a.redis_available() }).await,
        "never rejoined after the promotion ({promoted:?})"
    );
    // The open state replicated before the kill is what the promoted replica holds.
    assert!(matches!(
        a.call(async { Ok::<_, ()>(()) }).await,
        Err(BreakerError::Rejected(_))
    ));
}
