//! What the memory and Redis suites share: the algorithm list and scenarios run against any
//! [`RateLimiter`].
#![allow(dead_code, clippy::unwrap_used)] // test helpers (each binary uses a subset): a failed unwrap is a failed test

use nilecare_rate_limit::{Algorithm, Policy, RateLimiter};

/// Every algorithm.
pub(crate) const ALL: [Algorithm; 5] = [
    Algorithm::FixedWindow,
    Algorithm::SlidingWindow,
    Algorithm::SlidingLog,
    Algorithm::TokenBucket,
    Algorithm::Gcra,
];

/// Runs `n` unit checks of `key`; how many were allowed.
pub(crate) async fn allowed(l: &impl RateLimiter, p: &Policy, key: &str, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if l.check(p, key, 1).await.unwrap().allowed {
            ok += 1;
        }
    }
    ok
}

/// Peek, check, consume past the limit, refund, reset on a fresh key of `p`, a policy of 3 units
/// whose window neither refills nor rolls over while it runs.
pub(crate) async fn peek_consume_refund_reset(l: &impl RateLimiter, p: &Policy) {
    let a = p.algorithm_kind();
    assert_eq!(l.peek(p, "k").await.unwrap().remaining, 3, "{a:?}");
    assert_eq!(
        l.peek(p, "k").await.unwrap().remaining,
        3,
        "{a:?}: peek consumed"
    );
    assert_eq!(l.check(p, "k", 1).await.unwrap().remaining, 2, "{a:?}");
    assert_eq!(l.peek(p, "k").await.unwrap().remaining, 2, "{a:?}");
    // A penalty beyond the limit.
    assert!(!l.consume(p, "k", 5).await.unwrap().allowed, "{a:?}");
    assert!(!l.check(p, "k", 1).await.unwrap().allowed, "{a:?}");
    l.refund(p, "k", 4).await.unwrap();
    assert!(
        l.check(p, "k", 1).await.unwrap().allowed,
        "{a:?}: the refund gave units back"
    );
    assert!(
        !l.check(p, "k", 1).await.unwrap().allowed,
        "{a:?}: only 4 of 6"
    );
    l.reset(p, "k").await.unwrap();
    assert_eq!(allowed(l, p, "k", 5).await, 3, "{a:?}");
}

/// The timeout of the Redis limiter in the fault tests.
#[cfg(feature = "redis")]
pub(crate) const TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);

/// A `ResilientLimiter` on `url` (reconnecting every 10-100 ms, checks timing out after
/// [`TIMEOUT`]) falling back to `share` of each quota.
#[cfg(feature = "redis")]
pub(crate) async fn resilient(url: &str, share: f64) -> nilecare_rate_limit::ResilientLimiter {
    use std::time::Duration;

    use nilecare_rate_limit::{OnRedisFailure, RedisLimiter, ResilientLimiter};
    use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};

    let config = RedisConfig::from_url(url)
        .unwrap()
        .with_command_timeout(Duration::from_millis(500))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
    let redis = RedisLimiter::new(connect(&config).await.unwrap())
        .with_timeout(TIMEOUT)
        .unwrap();
    ResilientLimiter::new(redis)
        .on_redis_failure(OnRedisFailure::Fallback { share })
        .unwrap()
}
