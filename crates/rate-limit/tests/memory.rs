//! The memory limiter against a manual clock: boundaries, refill, all-or-nothing, extras.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use support::{ALL, allowed};

use std::time::Duration;

use nilecare_rate_limit::{
    Algorithm, Error, ManualClock, MemoryLimiter, Policy, Quota, RateLimiter,
};

fn limiter() -> (MemoryLimiter, ManualClock) {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(1_000)); // window-aligned start
    (
        MemoryLimiter::builder()
            .clock(clock.clone())
            .build()
            .unwrap(),
        clock,
    )
}

fn policy(name: &str, q: Quota, a: Algorithm) -> Policy {
    Policy::new(name, q).unwrap().algorithm(a)
}

#[tokio::test]
async fn exact_limit_and_refill_per_algorithm() {
    for a in ALL {
        let (l, clock) = limiter();
        let p = policy("p", Quota::per_second(10).unwrap(), a);
        assert_eq!(allowed(&l, &p, "k", 30).await, 10, "{a:?}");
        let d = l.check(&p, "k", 1).await.unwrap();
        assert!(
            !d.allowed && d.remaining == 0 && d.retry_after.is_some(),
            "{a:?}: {d:?}"
        );
        // other keys are independent
        assert_eq!(allowed(&l, &p, "other", 10).await, 10, "{a:?}");
        // after two full windows everything is back
        clock.advance(Duration::from_secs(2));
        assert_eq!(allowed(&l, &p, "k", 30).await, 10, "{a:?} after refill");
    }
}

#[tokio::test]
async fn window_roll_over_and_sliding_accuracy() {
    let (l, clock) = limiter();
    let fixed = policy(
        "fixed",
        Quota::per(Duration::from_secs(10), 10).unwrap(),
        Algorithm::FixedWindow,
    );
    let sliding = policy(
        "sliding",
        Quota::per(Duration::from_secs(10), 10).unwrap(),
        Algorithm::SlidingWindow,
    );
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(allowed(&l, &fixed, "k", 10).await, 10);
    assert_eq!(allowed(&l, &sliding, "k", 10).await, 10);
    clock.advance(Duration::from_millis(1)); // the next fixed window starts
    assert_eq!(
        allowed(&l, &fixed, "k", 20).await,
        10,
        "fixed window rolls over"
    );
    assert_eq!(
        allowed(&l, &sliding, "k", 20).await,
        0,
        "sliding window still counts them"
    );
    clock.advance(Duration::from_secs(5)); // half of the previous window still weighs
    assert_eq!(allowed(&l, &sliding, "k", 20).await, 5);
}

#[tokio::test]
async fn denied_requests_consume_nothing() {
    for a in ALL {
        let (l, clock) = limiter();
        let p = policy("p", Quota::per_second(10).unwrap(), a);
        assert_eq!(allowed(&l, &p, "k", 10).await, 10);
        assert_eq!(allowed(&l, &p, "k", 1_000).await, 0, "{a:?}");
        if matches!(a, Algorithm::TokenBucket | Algorithm::Gcra) {
            clock.advance(Duration::from_millis(100)); // exactly one unit refilled
            assert_eq!(
                allowed(&l, &p, "k", 5).await,
                1,
                "{a:?}: denials consumed capacity"
            );
        }
    }
}

#[tokio::test]
async fn check_many_is_all_or_nothing() {
    let (l, _clock) = limiter();
    let wide = policy(
        "wide",
        Quota::per_minute(5).unwrap(),
        Algorithm::SlidingWindow,
    );
    let narrow = policy(
        "narrow",
        Quota::per_minute(2).unwrap(),
        Algorithm::FixedWindow,
    );
    for _ in 0..2 {
        let d = l
            .check_many(&[(&wide, "user", 1), (&narrow, "user", 1)])
            .await
            .unwrap();
        assert!(d.iter().all(|d| d.allowed));
    }
    let d = l
        .check_many(&[(&wide, "user", 1), (&narrow, "user", 1)])
        .await
        .unwrap();
    assert!(d.iter().all(|d| !d.allowed), "{d:?}");
    assert!(d[1].retry_after.is_some());
    // the wide policy was not consumed by the failed call
    assert_eq!(l.peek(&wide, "user").await.unwrap().remaining, 3);
    // the same key twice counts both
    let once = policy("once", Quota::per_minute(1).unwrap(), Algorithm::Gcra);
    let d = l
        .check_many(&[(&once, "k", 1), (&once, "k", 1)])
        .await
        .unwrap();
    assert!(d.iter().all(|d| !d.allowed));
    assert!(l.check(&once, "k", 1).await.unwrap().allowed);
}

#[tokio::test]
async fn reset_consume_refund_and_peek() {
    for a in ALL {
        let (l, _clock) = limiter();
        let p = policy("p", Quota::per_minute(3).unwrap(), a);
        support::peek_consume_refund_reset(&l, &p).await;
    }
}

#[tokio::test]
async fn penalty_box_and_shadow_mode() {
    for a in ALL {
        let (l, clock) = limiter();
        let login = Policy::new("login", Quota::per_minute(2).unwrap())
            .unwrap()
            .algorithm(a)
            .block_for(Duration::from_secs(600));
        assert_eq!(allowed(&l, &login, "ip", 3).await, 2, "{a:?}");
        clock.advance(Duration::from_secs(120)); // the window is long gone...
        let d = l.check(&login, "ip", 1).await.unwrap();
        assert!(!d.allowed, "{a:?}: ...but the penalty box holds");
        assert!(d.retry_after.unwrap() > Duration::from_secs(400), "{a:?}");
        clock.advance(Duration::from_secs(500));
        assert!(l.check(&login, "ip", 1).await.unwrap().allowed, "{a:?}");

        let shadow = policy("shadow", Quota::per_minute(1).unwrap(), a).shadow(true);
        assert!(l.check(&shadow, "k", 1).await.unwrap().allowed, "{a:?}");
        let d = l.check(&shadow, "k", 1).await.unwrap();
        assert!(d.allowed && d.shadow_limited, "{a:?}");
        assert_eq!(d.retry_after, None, "{a:?}: shadow mode never asks to wait");
    }
}

#[tokio::test]
async fn idle_keys_are_swept_and_the_key_cap_holds() {
    let clock = ManualClock::new();
    let l = MemoryLimiter::builder()
        .clock(clock.clone())
        .max_keys(100)
        .sweep_every(50)
        .build()
        .unwrap();
    let p = Policy::new("p", Quota::per_second(1).unwrap()).unwrap();
    for i in 0..100 {
        assert!(l.check(&p, &format!("k{i}"), 1).await.unwrap().allowed);
    }
    // Over the cap: new keys share one overflow state (1/s for all of them together).
    let mut overflow_allowed = 0;
    for i in 100..1_000 {
        if l.check(&p, &format!("k{i}"), 1).await.unwrap().allowed {
            overflow_allowed += 1;
        }
    }
    assert!(l.len() <= 101, "{}", l.len());
    assert_eq!(overflow_allowed, 1, "overflow keys escaped the limit");
    // Once their windows passed, idle keys vanish on their own.
    clock.advance(Duration::from_secs(10));
    for i in 0..60 {
        l.check(&p, &format!("fresh{i}"), 1).await.unwrap();
    }
    assert!(l.len() <= 61, "idle keys were not swept: {}", l.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_never_exceed_the_limit() {
    let l = MemoryLimiter::new();
    let p = Policy::new("p", Quota::per_minute(500).unwrap())
        .unwrap()
        .algorithm(Algorithm::Gcra);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (l, p) = (l.clone(), p.clone());
            tokio::spawn(async move {
                let mut ok = 0u32;
                for _ in 0..200 {
                    ok += u32::from(l.check(&p, "hot", 1).await.unwrap().allowed);
                }
                ok
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    // 500 burst, plus at most the refill during the test (500/min ≈ 8/s)
    assert!((500..=520).contains(&total), "{total}");
}

/// A policy remembers the state map of the limiter it last ran on; on another limiter (or
/// alternating between two) each limiter still keeps its own count.
#[tokio::test]
async fn one_policy_on_two_limiters_keeps_separate_state() {
    let (a, b) = (MemoryLimiter::new(), MemoryLimiter::new());
    for algorithm in [Algorithm::Gcra, Algorithm::FixedWindow] {
        let p = Policy::new("shared", Quota::per_minute(3).unwrap())
            .unwrap()
            .algorithm(algorithm);
        for _ in 0..3 {
            assert!(a.check(&p, "k", 1).await.unwrap().allowed);
            assert!(b.check(&p, "k", 1).await.unwrap().allowed);
        }
        assert!(!a.check(&p, "k", 1).await.unwrap().allowed, "{algorithm:?}");
        assert!(!b.check(&p, "k", 1).await.unwrap().allowed, "{algorithm:?}");
        // A policy built separately with the same name shares the state on each limiter.
        let same = Policy::new("shared", Quota::per_minute(3).unwrap())
            .unwrap()
            .algorithm(algorithm);
        assert!(!a.check(&same, "k", 1).await.unwrap().allowed);
        a.reset(&p, "k").await.unwrap();
        b.reset(&p, "k").await.unwrap();
    }
    assert_eq!(a.len(), 0);
}

/// Threads racing on one GCRA key (the lock-free path) while others take it in `check_many`
/// (which holds it): no unit is granted twice.
#[test]
fn gcra_single_checks_and_check_many_race_without_over_granting() {
    let l = MemoryLimiter::new();
    let gcra = Policy::new("g", Quota::per_minute(600).unwrap())
        .unwrap()
        .algorithm(Algorithm::Gcra);
    let wide = Policy::new("w", Quota::per_minute(1_000_000).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (l, gcra, wide) = (l.clone(), gcra.clone(), wide.clone());
            std::thread::spawn(move || {
                let mut granted = 0u32;
                for _ in 0..400 {
                    let ok = if t % 2 == 0 {
                        l.check_now(&gcra, "hot", 1).unwrap().allowed
                    } else {
                        let checks = [(&gcra, "hot", 1), (&wide, "other", 1)];
                        let d = futures_lite_block_on(l.check_many(&checks)).unwrap();
                        assert_eq!(d[0].allowed, d[1].allowed, "check_many split: {d:?}");
                        d[0].allowed
                    };
                    granted += u32::from(ok);
                }
                granted
            })
        })
        .collect();
    let total: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // 600 burst, plus the refill while the threads ran (10 per second).
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil() as u32;
    assert!(
        (600..=600 + refill).contains(&total),
        "{total} granted, refill {refill}"
    );
}

/// Runs a future that never waits (the memory limiter's) to completion on this thread.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[tokio::test]
async fn bad_input_is_an_error_naming_the_field() {
    assert!(matches!(
        Quota::per_second(0),
        Err(Error::InvalidQuota { field: "limit", .. })
    ));
    assert!(matches!(
        Quota::per_second(u64::MAX),
        Err(Error::InvalidQuota { field: "limit", .. })
    ));
    assert!(matches!(
        Quota::per(Duration::ZERO, 1),
        Err(Error::InvalidQuota {
            field: "window",
            ..
        })
    ));
    assert!(matches!(
        Quota::per(Duration::from_secs(u64::MAX), 1),
        Err(Error::InvalidQuota {
            field: "window",
            ..
        })
    ));
    assert!(matches!(
        Quota::per_second(1).unwrap().with_burst(0),
        Err(Error::InvalidQuota { field: "burst", .. })
    ));
    assert!(matches!(
        Policy::new("has space", Quota::per_second(1).unwrap()),
        Err(Error::InvalidInput {
            field: "policy",
            ..
        })
    ));
    let l = MemoryLimiter::new();
    let p = Policy::new("p", Quota::per_second(1).unwrap()).unwrap();
    assert!(matches!(
        l.check(&p, "", 1).await,
        Err(Error::InvalidInput { field: "key", .. })
    ));
    // A key too long to store is counted under its digest: limited, never an error to let through.
    let long = "k".repeat(10_000);
    assert!(l.check(&p, &long, 1).await.unwrap().allowed);
    assert!(!l.check(&p, &long, 1).await.unwrap().allowed);
    assert!(l.check(&p, &"k".repeat(10_001), 1).await.unwrap().allowed);
    assert!(matches!(
        l.check(&p, "k", 0).await,
        Err(Error::InvalidInput { field: "cost", .. })
    ));
    assert!(!l.check(&p, "k", u32::MAX).await.unwrap().allowed);
}
