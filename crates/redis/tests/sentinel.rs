//! A `redis+sentinel://` URL against a real Sentinel deployment (a primary, a replica, three
//! sentinels): the pool finds the primary through the sentinels, and after the primary is
//! killed and the replica promoted it writes to the new primary, within a measured bound,
//! with every call returning within its timeout while the failover runs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use fred::prelude::*;
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::RedisSentinel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_url_follows_the_primary_through_a_failover() {
    let mut sentinel = RedisSentinel::start();
    let config = RedisConfig::from_url(&sentinel.url())
        .unwrap()
        .with_pool_size(2)
        .with_command_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_secs(1))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ));
    let pool = connect(&config).await.unwrap();
    let _: () = pool.set("before", "1", None, None, false).await.unwrap();
    assert_eq!(
        sentinel
            .primary()
            .command(&["GET", "before"])
            .as_text()
            .as_deref(),
        Some("1"),
        "the write went to the primary the sentinels named"
    );
    sentinel.await_replication();

    let killed = sentinel.kill_primary();
    // Write until a write lands again; no call may hang past its timeout meanwhile.
    let mut failed = 0;
    let resumed = loop {
        let started = Instant::now();
        let result: Result<(), Error> = pool.set("after", "2", None, None, false).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a call hung for {:?}",
            started.elapsed()
        );
        match result {
            Ok(()) => break killed.elapsed(),
            Err(_) => failed += 1,
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "never resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let promoted = sentinel.await_promotion(killed);
    assert!(
        failed > 0,
        "the writes during the failover failed (the primary was down)"
    );
    assert!(
        resumed <= promoted + Duration::from_secs(10),
        "resumed {resumed:?} after the kill, promotion at {promoted:?}"
    );
    assert_eq!(
        sentinel
            .primary()
            .command(&["GET", "after"])
            .as_text()
            .as_deref(),
        Some("2"),
        "the write after the failover went to the new primary"
    );
    let before: String = pool.get("before").await.unwrap();
    assert_eq!(
        before, "1",
        "what was replicated before the failover survived it"
    );
    eprintln!(
        "sentinel failover: promoted {promoted:?} after the kill, writes resumed {resumed:?}"
    );
}
