//! Rate-limit checks against their anchors, same run:
//! - memory GCRA keyed check vs raw `governor` keyed check (DashMap store);
//! - memory sliding window and token bucket (goal ≤ 200 ns per check);
//! - Redis checks at 64 concurrent tasks vs raw fred `INCR` on the same pool, with p50/p99, batched
//!   (the default) and with every check in its own script call.
//!
//! `cargo bench -p nilecare-rate-limit --all-features --bench rate_limit`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_rate_limit::{Algorithm, MemoryLimiter, Policy, Quota, RateLimiter, RedisLimiter};
use nilecare_redis::fred::clients::Pool;
use nilecare_redis::fred::interfaces::KeysInterface;
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::RedisServer;
use nilecare_test_support::bench::{Spread, runtime, spread_over_tasks};

fn memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_check");
    // Quotas large enough that every check is allowed: the hot path of a busy key.
    let governor = governor::RateLimiter::dashmap(governor::Quota::per_second(
        NonZeroU32::new(1_000_000_000).expect("nonzero"),
    ));
    let key = "client-1".to_owned();
    group.bench_function("raw_governor_keyed_gcra", |b| {
        b.iter(|| governor.check_key(&key).is_ok())
    });
    let limiter = MemoryLimiter::new();
    for (label, algorithm) in [
        ("gcra", Algorithm::Gcra),
        ("sliding_window", Algorithm::SlidingWindow),
        ("token_bucket", Algorithm::TokenBucket),
        ("fixed_window", Algorithm::FixedWindow),
    ] {
        let policy = Policy::new(label, Quota::per_second(1_000_000_000).expect("quota"))
            .expect("policy")
            .algorithm(algorithm);
        // `check_now` is the synchronous form of `check` (the memory limiter never waits),
        // compared with governor's synchronous `check_key`.
        group.bench_function(label, |b| {
            b.iter(|| {
                limiter
                    .check_now(&policy, "client-1", 1)
                    .expect("check")
                    .allowed
            })
        });
    }
    group.finish();
}

const TASKS: u64 = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// The baseline of every Redis group: raw fred `INCR` on one key from 64 tasks.
fn bench_raw_incr(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    pool: &Pool,
) {
    group.bench_function("raw_fred_incr", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let p = pool.clone();
            async move {
                spread_over_tasks(TASKS, iters, true, move |_| {
                    let p = p.clone();
                    async move {
                        let _: i64 = p.incr("bench:incr").await.expect("incr");
                    }
                })
                .await
                .elapsed
            }
        })
    });
}

/// Checks of `policy` through `limiter` from 64 tasks, the i-th on `keys[i % spread]`.
fn bench_checks(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: String,
    limiter: &Arc<RedisLimiter>,
    policy: &Policy,
    keys: &Arc<Vec<String>>,
    spread: usize,
) {
    let (l, policy, keys) = (limiter.clone(), policy.clone(), keys.clone());
    group.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (l, policy, keys) = (l.clone(), policy.clone(), keys.clone());
            async move {
                spread_over_tasks(TASKS, iters, true, move |i| {
                    let (l, policy, keys) = (l.clone(), policy.clone(), keys.clone());
                    async move {
                        let key = &keys[(i as usize) % spread];
                        l.check(&policy, key, 1).await.expect("check");
                    }
                })
                .await
                .elapsed
            }
        })
    });
}

/// A pool of 4 on `url` and a limiter on it with a 1 s timeout.
fn limiter_on(rt: &tokio::runtime::Runtime, url: &str) -> (Pool, Arc<RedisLimiter>) {
    let pool = rt.block_on(async {
        connect(&RedisConfig::from_url(url).expect("url").with_pool_size(4))
            .await
            .expect("connect")
    });
    let limiter = RedisLimiter::new(pool.clone())
        .with_timeout(Duration::from_secs(1))
        .expect("timeout");
    (pool, Arc::new(limiter))
}

/// Every algorithm, in the order the Redis groups measure them.
const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::SlidingWindow,
    Algorithm::Gcra,
    Algorithm::TokenBucket,
    Algorithm::FixedWindow,
    Algorithm::SlidingLog,
];

/// A policy of `algorithm` with a quota never reached, named after the algorithm (each keeps
/// its own kind of state under its name).
fn per_algorithm(algorithm: Algorithm) -> Policy {
    Policy::new(
        format!("bench-{}", algorithm.as_str()),
        Quota::per_second(1_000_000_000).expect("quota"),
    )
    .expect("policy")
    .algorithm(algorithm)
}

fn redis(c: &mut Criterion) {
    let rt = runtime(2);
    let server = RedisServer::start();
    let (pool, limiter) = limiter_on(&rt, &server.url());
    // The same limiter sending every check in its own script call (batching off).
    let unbatched = Arc::new(
        RedisLimiter::new(pool.clone())
            .with_timeout(Duration::from_secs(1))
            .and_then(|l| l.with_max_batch(1))
            .expect("unbatched"),
    );

    // Latency distributions of fixed 100k-operation runs, every kind interleaved over 5 rounds
    // so that the machine's drift hits each alike; the median round of each is reported
    // (criterion reports the mean throughput below). `None` = raw `INCR`.
    const ROUNDS: usize = 5;
    let mut kinds: Vec<(String, Option<Algorithm>, &Arc<RedisLimiter>)> =
        vec![("raw_fred_incr".to_owned(), None, &limiter)];
    for algorithm in ALGORITHMS {
        kinds.push((
            format!("{}_check", algorithm.as_str()),
            Some(algorithm),
            &limiter,
        ));
    }
    kinds.push((
        "sliding_window_check_unbatched".to_owned(),
        Some(Algorithm::SlidingWindow),
        &unbatched,
    ));
    let mut rounds: Vec<Vec<(f64, Duration, Duration)>> = vec![Vec::new(); kinds.len()];
    for _ in 0..ROUNDS {
        for (i, (_, algorithm, limiter)) in kinds.iter().enumerate() {
            let (pool, limiter, algorithm) = (pool.clone(), (*limiter).clone(), *algorithm);
            let policy = per_algorithm(algorithm.unwrap_or(Algorithm::SlidingWindow));
            let Spread {
                elapsed,
                latencies: mut lat,
            } = rt.block_on(spread_over_tasks(TASKS, 100_000, true, move |_| {
                let (pool, limiter, policy) = (pool.clone(), limiter.clone(), policy.clone());
                async move {
                    if algorithm.is_none() {
                        let _: i64 = pool.incr("bench:incr").await.expect("incr");
                    } else {
                        limiter.check(&policy, "client-1", 1).await.expect("check");
                    }
                }
            }));
            lat.sort();
            rounds[i].push((
                lat.len() as f64 / elapsed.as_secs_f64(),
                percentile(&lat, 0.50),
                percentile(&lat, 0.99),
            ));
        }
    }
    for ((label, _, _), mut runs) in kinds.iter().zip(rounds) {
        let p99s: Vec<String> = runs
            .iter()
            .map(|r| format!("{} µs", r.2.as_micros()))
            .collect();
        runs.sort_by_key(|r| r.2);
        let (ops, p50, p99) = runs[ROUNDS / 2];
        eprintln!(
            "{label}: median of {ROUNDS} runs (by p99): {ops:.0} ops/s, p50 {p50:?}, p99 {p99:?}; \
             every run's p99: {} (100k ops, 64 tasks)",
            p99s.join(", ")
        );
    }

    let mut group = c.benchmark_group("redis_64_tasks");
    group.throughput(criterion::Throughput::Elements(1));
    bench_raw_incr(&mut group, &rt, &pool);
    // One key, then many clients: each check on one of 1024 keys, so a script call seldom
    // sees a key twice.
    let keys: Arc<Vec<String>> = Arc::new((0..1024).map(|i| format!("client-{i}")).collect());
    let mut one_key: Vec<(Algorithm, &Arc<RedisLimiter>, &str)> =
        ALGORITHMS.iter().map(|a| (*a, &limiter, "")).collect();
    one_key.push((Algorithm::SlidingWindow, &unbatched, "_unbatched"));
    for (algorithm, limiter, suffix) in one_key {
        let name = format!("check_{}{suffix}", algorithm.as_str());
        let policy = per_algorithm(algorithm);
        bench_checks(&mut group, &rt, name, limiter, &policy, &keys, 1);
    }
    for algorithm in ALGORITHMS {
        let name = format!("check_{}_1024_keys", algorithm.as_str());
        let policy = per_algorithm(algorithm);
        bench_checks(&mut group, &rt, name, &limiter, &policy, &keys, 1024);
    }
    group.finish();
    drop(server);
}

/// Checks on a real 3-primary cluster: one key (one primary) and 1 024 keys (spread over the
/// three), against raw fred `INCR` on the same cluster pool.
fn redis_cluster(c: &mut Criterion) {
    let rt = runtime(2);
    let cluster = nilecare_test_support::RedisCluster::start(3);
    let (pool, limiter) = limiter_on(&rt, &cluster.url());
    let policy =
        Policy::new("bench", Quota::per_second(1_000_000_000).expect("quota")).expect("policy");
    let keys: Arc<Vec<String>> = Arc::new((0..1024).map(|i| format!("client-{i}")).collect());
    let mut group = c.benchmark_group("redis_cluster_64_tasks");
    group.throughput(criterion::Throughput::Elements(1));
    bench_raw_incr(&mut group, &rt, &pool);
    for spread in [1usize, 1024] {
        let name = format!("check_sliding_window_{spread}_keys");
        bench_checks(&mut group, &rt, name, &limiter, &policy, &keys, spread);
    }
    group.finish();
    drop(cluster);
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = memory, redis, redis_cluster
}
criterion_main!(benches);
