//! What the shared-breaker tests share: the breaker configuration and an instance on its own
//! pool.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use nilecare_circuit_breaker::Breaker as _;
use nilecare_circuit_breaker::{
    BreakerConfig, CircuitBreaker, SharedBreaker, SharedOptions, WaitStrategy, WindowType,
};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};

/// How often a shared breaker flushes its counts.
pub const FLUSH: Duration = Duration::from_millis(50);

/// A time window of 10 s, 6 calls minimum, 50 % failures open it for `wait`.
pub fn config(wait: Duration) -> BreakerConfig {
    BreakerConfig::default()
        .window(WindowType::TimeBased(10))
        .minimum_calls(6)
        .failure_rate_threshold(50.0)
        .wait(WaitStrategy::Fixed(wait))
        .half_open_permits(2)
}

/// A shared breaker named `name` on its own one-connection pool to `url`.
pub async fn instance(url: &str, name: &str, wait: Duration) -> SharedBreaker {
    let redis = RedisConfig::from_url(url)
        .unwrap()
        .with_pool_size(1)
        .with_command_timeout(Duration::from_millis(300))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
    let pool = connect(&redis).await.unwrap();
    let local = CircuitBreaker::new(name, config(wait)).unwrap();
    SharedBreaker::with_options(
        local,
        pool,
        SharedOptions {
            flush_interval: FLUSH,
            ..SharedOptions::default()
        },
    )
}

/// `n` failed calls through `b`.
pub async fn fail(b: &SharedBreaker, n: usize) {
    for _ in 0..n {
        let _ = b.call(async { Err::<(), _>("boom") }).await;
    }
}
