//! The Redis broker behind Sentinel: a consumer keeps consuming through a failover (the
//! primary SIGKILLed, the replica promoted), publishers retrying with the producer's ids and a
//! dedup window publish each message once, and every message replicated before the failover
//! or published after it is handled.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nilecare_messaging::{Consumer, Message, Publisher, RedisBroker};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::RedisSentinel;
use support::record_and_ack;

async fn publish_retrying(publisher: &Publisher<RedisBroker>, from: usize, to: usize) {
    for i in from..to {
        let m = Message::new("visit.booked", &i)
            .unwrap()
            .with_id(&format!("visit-{i}"))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while publisher.publish("visits", &m).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "publishing visit-{i} never succeeded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_and_publishers_carry_on_through_a_sentinel_failover() {
    let mut sentinel = RedisSentinel::start();
    let config = RedisConfig::from_url(&sentinel.url())
        .unwrap()
        .with_command_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_secs(1))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ));
    let broker = RedisBroker::new(connect(&config).await.unwrap());
    let publisher = Publisher::new(broker.clone()).dedup_window(Duration::from_secs(60));
    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "visits", "billing")
            .visibility_timeout(Duration::from_secs(2))
            .poll(Duration::from_millis(100)),
    )
    .await;

    publish_retrying(&publisher, 0, 100).await;
    sentinel.await_replication();
    let killed = sentinel.kill_primary();
    publish_retrying(&publisher, 100, 200).await;
    let published_again = killed.elapsed();
    sentinel.await_promotion(killed);

    let want: HashSet<String> = (0..200).map(|i| format!("visit-{i}")).collect();
    let all_handled = seen
        .until(|s| {
            let got: HashSet<String> = s.all().into_iter().map(|(id, _)| id).collect();
            got.is_superset(&want)
        })
        .await;
    consumer.shutdown().await;
    let got: HashSet<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    assert!(
        all_handled,
        "missing: {:?}",
        want.difference(&got).collect::<Vec<_>>()
    );
    // Published once each: the stream holds 200 entries (retried publishes were deduplicated).
    assert_eq!(
        sentinel
            .primary()
            .command(&["XLEN", "nilecare:msg:{visits}"]),
        nilecare_test_support::Reply::Integer(200)
    );
    eprintln!(
        "sentinel failover under messaging: the 100 publishes after the kill were done \
         {published_again:?} after it"
    );
}
