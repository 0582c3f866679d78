//! The resilient limiter on a replicated Redis Cluster through the failover of a primary, two
//! instances checking under load: every check returns within the limiter's timeout (decided
//! locally while the client cannot reach Redis), and decisions come from Redis again within a
//! bound of the promotion. Slow (a real failover: the cluster's node timeout plus an election),
//! so it is its own test binary.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nilecare_rate_limit::{Policy, Quota, RateLimiter};
use nilecare_redis::key_slot;
use nilecare_test_support::RedisCluster;

mod support;

use support::{TIMEOUT, resilient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_stay_within_the_timeout_and_return_to_redis_after_a_primary_fails_over() {
    let mut cluster = RedisCluster::start_with_replicas(3, 1);
    let instances = [
        resilient(&cluster.url(), 0.5).await,
        resilient(&cluster.url(), 0.5).await,
    ];
    let policy = Policy::new("api", Quota::per_minute(1_000_000).unwrap()).unwrap();
    // A key of the range the killed primary serves.
    let failing = (0..)
        .map(|i| format!("clinic-{i}"))
        .find(|k| cluster.range_of_slot(key_slot(&format!("{{{k}}}"))) == 0)
        .unwrap();
    for limiter in &instances {
        assert!(!limiter.check(&policy, &failing, 1).await.unwrap().fallback);
    }

    // Steady load from both instances over 32 keys of every range.
    let stop = Arc::new(AtomicBool::new(false));
    let (slowest, checks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for limiter in &instances {
        let (limiter, policy, stop) = (limiter.clone(), policy.clone(), stop.clone());
        let (slowest, checks) = (slowest.clone(), checks.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let d = limiter
                    .check(&policy, &format!("patient-{}", n % 32), 1)
                    .await;
                assert!(d.unwrap().allowed);
                slowest.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                checks.fetch_add(1, Ordering::Relaxed);
                n += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let killed = cluster.kill_primary(0);
    let failed_over = cluster.await_promotion_in_background(0, killed);
    let mut local = 0u32;
    let resumed = loop {
        let mut on_redis = true;
        for limiter in &instances {
            let started = Instant::now();
            let d = limiter.check(&policy, &failing, 1).await.unwrap();
            assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
            local += u32::from(d.fallback);
            on_redis &= !d.fallback;
        }
        if on_redis && local > 0 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "never back on Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_cluster, promoted) = failed_over.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let slowest = Duration::from_micros(slowest.load(Ordering::Relaxed));
    eprintln!(
        "rate limit, cluster primary killed: promotion after {promoted:?}, both instances on Redis \
         again after {resumed:?}; {local} local decisions of the failed key; {} checks of the load, \
         the slowest {slowest:?}",
        checks.load(Ordering::Relaxed)
    );
    assert!(
        local > 0,
        "the failed range never went to the fallback: no kill"
    );
    assert!(
        slowest < TIMEOUT * 3,
        "a check of the load took {slowest:?}"
    );
    assert!(
        resumed <= promoted + Duration::from_secs(5),
        "back on Redis {resumed:?} after the kill, promotion at {promoted:?}"
    );
}
