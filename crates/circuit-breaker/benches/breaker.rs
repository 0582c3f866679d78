//! Cost of a call through a CLOSED breaker against a direct call, same run, single thread and
//! two contending threads.
//!
//! `cargo bench -p nilecare-circuit-breaker --bench breaker` (add `--features redis` for the
//! shared breaker)
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_circuit_breaker::Breaker as _;
use nilecare_circuit_breaker::{BreakerConfig, CircuitBreaker, WindowType};

#[inline(never)]
fn work(x: u64) -> Result<u64, ()> {
    Ok(black_box(x).wrapping_mul(31))
}

fn closed_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_call");
    group.bench_function("direct", |b| b.iter(|| work(black_box(7))));
    for (label, config) in [
        ("count_window", BreakerConfig::default()),
        (
            "time_window_slow_calls",
            BreakerConfig::default()
                .window(WindowType::TimeBased(60))
                .slow_calls(Duration::from_secs(1), 50.0),
        ),
    ] {
        let breaker = CircuitBreaker::new("bench", config).expect("config");
        group.bench_function(label, |b| {
            b.iter(|| {
                let permit = breaker.try_acquire().expect("closed");
                let r = work(black_box(7));
                match r {
                    Ok(_) => permit.success(),
                    Err(_) => permit.failure(),
                }
                r
            })
        });
    }
    group.finish();

    // Two threads on one breaker: the shared window lock is the contended part.
    let mut group = c.benchmark_group("closed_call_2_threads");
    let breaker = CircuitBreaker::new("bench-contended", BreakerConfig::default()).expect("config");
    for (label, through_breaker) in [("direct", false), ("breaker", true)] {
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            for _ in 0..iters / 2 {
                                if through_breaker {
                                    let permit = breaker.try_acquire().expect("closed");
                                    let _ = black_box(work(7));
                                    permit.success();
                                } else {
                                    let _ = black_box(work(7));
                                }
                            }
                        });
                    }
                });
                started.elapsed()
            })
        });
    }
    group.finish();
}

/// The same async `call` through a local breaker and, with the `redis` feature, through a
/// shared one (CLOSED): the shared hot path adds three atomic adds; outcomes go to Redis in the
/// background.
fn shared_closed_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = CircuitBreaker::new("bench-local", BreakerConfig::default()).expect("config");
    let mut group = c.benchmark_group("closed_call_async");
    group.bench_function("local", |b| {
        b.to_async(&rt)
            .iter(|| async { local.call(async { work(7) }).await })
    });
    #[cfg(feature = "redis")]
    {
        let server = nilecare_test_support::RedisServer::start();
        let pool = rt.block_on(async {
            nilecare_redis::connect(
                &nilecare_redis::RedisConfig::from_url(&server.url()).expect("url"),
            )
            .await
            .expect("connect")
        });
        let shared = rt.block_on(async {
            nilecare_circuit_breaker::SharedBreaker::new(
                CircuitBreaker::new("bench-shared", BreakerConfig::default()).expect("config"),
                pool,
            )
        });
        group.bench_function("shared_redis", |b| {
            b.to_async(&rt)
                .iter(|| async { shared.call(async { work(7) }).await })
        });
        drop(server);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = closed_path, shared_closed_path
}
criterion_main!(benches);
