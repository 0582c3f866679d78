//! `listen` / `publish` against a real server: messages, and the events that tell a consumer
//! when it may have missed some (kill, restart).

#![cfg(feature = "pubsub")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_redis::{ChannelEvent, ReconnectPolicy, RedisConfig, connect, listen, publish};
use nilecare_test_support::RedisServer;
use tokio::sync::mpsc::UnboundedReceiver;

fn config(server: &RedisServer) -> RedisConfig {
    RedisConfig::from_url(&server.url())
        .unwrap()
        .with_command_timeout(Duration::from_millis(300))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(100),
        ))
}

/// The next event, within 5 s.
async fn next_event(events: &mut UnboundedReceiver<ChannelEvent>) -> ChannelEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_and_outages_are_reported() {
    let mut server = RedisServer::start();
    let config = config(&server);
    let (_listener, mut events) = listen(&config, "inv").await.unwrap();
    let pool = connect(&config).await.unwrap();

    assert_eq!(publish(&pool, "inv", "patients:1").await.unwrap(), 1);
    assert_eq!(
        next_event(&mut events).await,
        ChannelEvent::Message("patients:1".into())
    );
    assert_eq!(publish(&pool, "other", "x").await.unwrap(), 0);

    server.kill();
    assert_eq!(next_event(&mut events).await, ChannelEvent::Disconnected);
    server.restart();
    // reconnect attempts may fail a few times before the server is up
    loop {
        match next_event(&mut events).await {
            ChannelEvent::Resubscribed => break,
            ChannelEvent::Disconnected => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut delivered = 0;
    for _ in 0..50 {
        if let Ok(n) = publish(&pool, "inv", "patients:2").await {
            delivered = n;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, 1, "the renewed subscription receives");
    assert_eq!(
        next_event(&mut events).await,
        ChannelEvent::Message("patients:2".into())
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_listen_with_an_error() {
    let server = RedisServer::start();
    let config = config(&server);
    drop(server);
    assert!(listen(&config, "inv").await.is_err());
}
