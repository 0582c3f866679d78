//! Test plumbing for the NileCare crates: real `redis-server` processes on free ports
//! (standalone, cluster and Sentinel) with fault injection, so every Redis test runs against the real
//! thing and never against the system instance on 6379.
//!
//! ```no_run
//! use nilecare_test_support::RedisServer;
//!
//! let mut server = RedisServer::start();      // redis-server on a free port, persistence off
//! let url = server.url();                      // hand this to the code under test
//! server.pause();                              // SIGSTOP: connections open, no answers
//! server.resume();
//! server.restart();                            // same port, data gone
//! # let _ = url;
//! ```
//!
//! When `redis-server` is not installed the first `start` panics with install instructions;
//! `NILECARE_REDIS_SERVER` selects a binary explicitly.

pub mod bench;
mod cluster;
pub mod http;
pub mod jwt;
pub mod logs;
pub mod metrics;
pub mod otlp;

/// The criterion settings every NileCare bench uses: 1 s warm-up, 3 s measurement, 30
/// samples (enough for stable ratios on a 2-core machine, short enough to run every bench).
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(30)
}
mod proxy;
mod resp;
mod sentinel;
mod server;
mod tls;

pub use cluster::{RedisCluster, SlotMigration};
pub use proxy::FaultProxy;
pub use resp::Reply;
pub use sentinel::{RedisSentinel, SENTINEL_SERVICE};
pub use server::{RedisServer, RedisServerBuilder, redis_server_binary};
pub use tls::{IssuedCert, TestCa};

/// Polls `check` every 20 ms until it returns `true` or `timeout` passes; returns whether it
/// succeeded. For eventually-true conditions (reconnects, propagation) without fixed sleeps.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
