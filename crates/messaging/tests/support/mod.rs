//! What the suites share: brokers of each kind and a recording handler.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "redis")]
use nilecare_messaging::RedisBroker;
use nilecare_messaging::{
    Backoff, Begin, Broker, ConsumerBuilder, ConsumerHandle, Error, Message, Outcome, ProcessedSet,
};
#[cfg(feature = "redis")]
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
#[cfg(feature = "redis")]
use nilecare_test_support::RedisServer;

/// A Redis broker on `server` with short timeouts.
#[cfg(feature = "redis")]
pub async fn redis_broker(server: &RedisServer) -> RedisBroker {
    let config = RedisConfig::from_url(&server.url())
        .unwrap()
        .with_command_timeout(Duration::from_millis(1_000))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(200),
        ));
    RedisBroker::new(connect(&config).await.unwrap())
}

/// Runs `builder` with a handler that records every message it gets and acks it.
pub async fn record_and_ack<B: Broker + Clone>(
    builder: ConsumerBuilder<B>,
) -> (Seen, ConsumerHandle) {
    let seen = Seen::default();
    let s = seen.clone();
    let handle = builder
        .run(move |m: Message| {
            s.record(&m);
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    (seen, handle)
}

/// Waits (up to 20 s) until `group` has nothing pending and nothing unread on `topic`.
pub async fn drained<B: Broker>(broker: &B, topic: &str, group: &str) -> bool {
    nilecare_test_support::eventually(Duration::from_secs(20), || async {
        broker
            .backlog(topic, group)
            .await
            .is_ok_and(|b| b.pending == 0 && b.lag == 0)
    })
    .await
}

/// A fast backoff for tests: 20 ms doubling to 200 ms.
pub fn fast_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(20), Duration::from_millis(200)).unwrap()
}

/// What handlers saw: every (message id, attempt), in order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, u32)>>>);

impl Seen {
    pub fn record(&self, message: &Message) {
        self.0
            .lock()
            .unwrap()
            .push((message.id().to_owned(), message.attempt()));
    }

    /// Records the message's type instead of its id (read back with `kinds`).
    pub fn record_kind(&self, message: &Message) {
        self.0
            .lock()
            .unwrap()
            .push((message.kind().to_owned(), message.attempt()));
    }

    /// What `record_kind` recorded, in order.
    pub fn kinds(&self) -> Vec<String> {
        self.all().into_iter().map(|(kind, _)| kind).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<(String, u32)> {
        self.0.lock().unwrap().clone()
    }

    /// How many times each id was handled.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (id, _) in self.all() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Waits until `check` holds (up to 20 s); false when it never does.
    pub async fn until(&self, check: impl Fn(&Seen) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if check(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        check(self)
    }
}

/// `n` messages `kind` with ids `<prefix>-<i>` and payload `i`.
pub fn messages(prefix: &str, n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            Message::new("test.event", &i)
                .unwrap()
                .with_id(&format!("{prefix}-{i}"))
                .unwrap()
        })
        .collect()
}

type Handled = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, Error>> + Send>>;

/// A handler whose effect (recording the message in `effects`) happens once per message id,
/// with `processed`; a delivery that finds another one in progress retries after `retry`.
pub fn once_per_id(
    processed: ProcessedSet,
    effects: Seen,
    retry: Duration,
) -> impl Fn(Message) -> Handled + Send + Sync + 'static {
    move |m: Message| {
        let (p, e) = (processed.clone(), effects.clone());
        Box::pin(async move {
            Ok(match p.begin(m.id()).await? {
                Begin::New => {
                    e.record(&m);
                    p.finish(m.id()).await?;
                    Outcome::Ack
                }
                Begin::Done => Outcome::Ack,
                Begin::InProgress => Outcome::Retry {
                    error: "handled by another delivery".into(),
                    after: Some(retry),
                },
            })
        })
    }
}
