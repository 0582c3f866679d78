//! One pub/sub suite, run against every broker (in memory and on a real redis-server): the
//! scenarios of Watermill's universal pub/sub tests (publish/subscribe, concurrent consumers,
//! resend on error, no-ack, consumer groups, close, message context) plus dead letters,
//! panics, graceful shutdown and idempotent handling.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use nilecare_messaging::{
    Broker, Consumer, Error, MemoryBroker, Message, Outcome, Partitions, ProcessedSet, Publisher,
    StartAt, headers,
};
#[cfg(feature = "redis")]
use nilecare_test_support::RedisServer;
#[cfg(feature = "redis")]
use support::redis_broker;
use support::{Seen, drained, fast_backoff, messages, once_per_id, record_and_ack};

async fn publish_all<B: Broker + Clone>(broker: &B, topic: &str, messages: &[Message]) {
    let publisher = Publisher::new(broker.clone());
    for m in messages {
        publisher.publish(topic, m).await.unwrap();
    }
}

/// Every published message reaches the group's consumer once, in order, and ends acked.
async fn publish_subscribe<B: Broker + Clone>(broker: B) {
    let sent = messages("ps", 100);
    publish_all(&broker, "orders", &sent).await;
    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "orders", "g1")
            .concurrency(1)
            .poll(Duration::from_millis(50)),
    )
    .await;
    assert!(seen.until(|s| s.len() >= 100).await, "got {}", seen.len());
    consumer.shutdown().await;
    let ids: Vec<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    let want: Vec<String> = sent.iter().map(|m| m.id().to_owned()).collect();
    assert_eq!(ids, want, "each once, in publishing order with one worker");
    assert!(seen.all().iter().all(|(_, attempt)| *attempt == 1));
    let backlog = broker.backlog("orders", "g1").await.unwrap();
    assert_eq!((backlog.pending, backlog.lag), (0, 0), "{backlog:?}");
    // A group that will never read again is removed with what it held.
    assert!(broker.delete_group("orders", "g1").await.unwrap());
    assert!(!broker.delete_group("orders", "g1").await.unwrap(), "gone");
    assert!(
        broker.backlog("orders", "g1").await.is_err(),
        "no such group any more"
    );
}

/// Consumers of one group share the messages: each handled exactly once overall.
async fn concurrent_consumers_share_a_group<B: Broker + Clone>(broker: B) {
    let seen = Seen::default();
    let mut consumers = Vec::new();
    for name in ["a", "b", "c"] {
        let s = seen.clone();
        consumers.push(
            Consumer::builder(broker.clone(), "work", "workers")
                .name(name)
                .concurrency(4)
                .poll(Duration::from_millis(50))
                .run(move |m: Message| {
                    s.record(&m);
                    async {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        Outcome::Ack
                    }
                })
                .await
                .unwrap(),
        );
    }
    publish_all(&broker, "work", &messages("w", 300)).await;
    assert!(seen.until(|s| s.len() >= 300).await, "got {}", seen.len());
    tokio::time::sleep(Duration::from_millis(100)).await;
    for c in consumers {
        c.shutdown().await;
    }
    let counts = seen.counts();
    assert_eq!(counts.len(), 300);
    assert!(counts.values().all(|n| *n == 1), "no message twice");
}

/// Every group gets every message (an event bus); a group created later from now on sees
/// only what comes after it.
async fn every_group_gets_every_message<B: Broker + Clone>(broker: B) {
    let (billing, audit) = (Seen::default(), Seen::default());
    let mut consumers = Vec::new();
    for (group, seen) in [("billing", billing.clone()), ("audit", audit.clone())] {
        consumers.push(
            Consumer::builder(broker.clone(), "patients", group)
                .poll(Duration::from_millis(50))
                .run(move |m: Message| {
                    seen.record(&m);
                    async { Outcome::Ack }
                })
                .await
                .unwrap(),
        );
    }
    publish_all(&broker, "patients", &messages("p", 50)).await;
    assert!(billing.until(|s| s.len() >= 50).await);
    assert!(audit.until(|s| s.len() >= 50).await);
    let late = Seen::default();
    let l = late.clone();
    consumers.push(
        Consumer::builder(broker.clone(), "patients", "late")
            .from_now()
            .poll(Duration::from_millis(50))
            .run(move |m: Message| {
                l.record(&m);
                async { Outcome::Ack }
            })
            .await
            .unwrap(),
    );
    publish_all(&broker, "patients", &messages("after", 5)).await;
    assert!(late.until(|s| s.len() >= 5).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for c in consumers {
        c.shutdown().await;
    }
    assert_eq!(billing.counts().len(), 55);
    assert_eq!(audit.counts().len(), 55);
    assert!(
        late.all().iter().all(|(id, _)| id.starts_with("after-")),
        "{:?}",
        late.all()
    );
}

/// A new subscriber can replay the topic from a point in time.
async fn a_new_subscriber_replays_from_a_time<B: Broker + Clone>(broker: B) {
    publish_all(&broker, "events", &messages("old", 5)).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(30)).await;
    publish_all(&broker, "events", &messages("new", 5)).await;
    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "events", "replayer")
            .start_at(StartAt::Time(since))
            .poll(Duration::from_millis(20)),
    )
    .await;
    assert!(seen.until(|s| s.len() >= 5).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    consumer.shutdown().await;
    let mut ids: Vec<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, (0..5).map(|i| format!("new-{i}")).collect::<Vec<_>>());
}

/// A failure is delivered again (attempt 2) after the backoff; a panic counts as a failure.
async fn resend_on_error_and_panic<B: Broker + Clone>(broker: B) {
    let seen = Seen::default();
    let s = seen.clone();
    let consumer = Consumer::builder(broker.clone(), "flaky", "g")
        .backoff(fast_backoff())
        .poll(Duration::from_millis(20))
        .run(move |m: Message| {
            s.record(&m);
            let (attempt, id) = (m.attempt(), m.id().to_owned());
            async move {
                if attempt == 1 && id.ends_with("-0") {
                    panic!("boom on the first try");
                }
                if attempt == 1 {
                    return Err::<(), String>("not yet".into());
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    publish_all(&broker, "flaky", &messages("f", 10)).await;
    assert!(seen.until(|s| s.len() >= 20).await, "got {:?}", seen.all());
    tokio::time::sleep(Duration::from_millis(100)).await;
    consumer.shutdown().await;
    for (id, n) in seen.counts() {
        assert_eq!(n, 2, "{id}: once failed, once acked");
    }
    let attempts: Vec<u32> = seen.all().iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts.iter().filter(|a| **a == 2).count(), 10);
    let backlog = broker.backlog("flaky", "g").await.unwrap();
    assert_eq!(backlog.pending, 0, "{backlog:?}");
}

/// A message its consumer never settles (the consumer hangs or died) is taken over by another
/// consumer of the group after the visibility timeout: none is lost.
async fn an_unsettled_message_is_reclaimed<B: Broker + Clone>(broker: B) {
    let stuck = Consumer::builder(broker.clone(), "jobs", "g")
        .name("stuck")
        .concurrency(20)
        .shutdown_grace(Duration::from_millis(10))
        .poll(Duration::from_millis(20))
        .run(|_m: Message| async {
            // Never finishes: the consumer is as good as dead.
            std::future::pending::<()>().await;
            Outcome::Ack
        })
        .await
        .unwrap();
    publish_all(&broker, "jobs", &messages("j", 10)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while broker.backlog("jobs", "g").await.unwrap().pending < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck consumer took them"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stuck.shutdown().await;

    let (seen, rescuer) = record_and_ack(
        Consumer::builder(broker.clone(), "jobs", "g")
            .name("rescuer")
            .visibility_timeout(Duration::from_millis(200))
            .poll(Duration::from_millis(20)),
    )
    .await;
    assert!(seen.until(|s| s.len() >= 10).await, "got {:?}", seen.all());
    rescuer.shutdown().await;
    assert!(
        seen.all().iter().all(|(_, attempt)| *attempt == 2),
        "{:?}",
        seen.all()
    );
    assert_eq!(broker.backlog("jobs", "g").await.unwrap().pending, 0);
}

/// A poison message goes to the dead-letter stream after `max_attempts` with its last error,
/// while the others flow; a rejected one goes at once.
async fn poison_messages_reach_the_dead_letter_stream<B: Broker + Clone>(broker: B) {
    let seen = Seen::default();
    let s = seen.clone();
    let consumer = Consumer::builder(broker.clone(), "mixed", "g")
        .max_attempts(3)
        .backoff(fast_backoff())
        .poll(Duration::from_millis(20))
        .run(move |m: Message| {
            s.record(&m);
            let id = m.id().to_owned();
            async move {
                match id.as_str() {
                    "poison" => Outcome::retry("cannot parse the chart"),
                    "refused" => Outcome::Reject("unknown clinic".into()),
                    _ => Outcome::Ack,
                }
            }
        })
        .await
        .unwrap();
    let mut batch = messages("ok", 20);
    batch.insert(
        3,
        Message::new("test.event", &"x")
            .unwrap()
            .with_id("poison")
            .unwrap(),
    );
    batch.insert(
        7,
        Message::new("test.event", &"y")
            .unwrap()
            .with_id("refused")
            .unwrap(),
    );
    publish_all(&broker, "mixed", &batch).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let dead = broker.dead_letters("mixed", "g", 10).await.unwrap();
        if dead.len() == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters: {dead:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    consumer.shutdown().await;
    let counts = seen.counts();
    assert_eq!(counts["poison"], 3, "tried max_attempts times");
    assert_eq!(counts["refused"], 1, "rejected at once");
    assert_eq!(
        counts
            .iter()
            .filter(|(id, _)| id.starts_with("ok-"))
            .count(),
        20
    );
    let dead = broker.dead_letters("mixed", "g", 10).await.unwrap();
    let poison = dead
        .iter()
        .find(|d| d.message.as_ref().map(Message::id) == Some("poison"))
        .unwrap();
    assert_eq!(poison.attempts, 3);
    assert!(
        poison.error.contains("cannot parse the chart"),
        "{}",
        poison.error
    );
    let refused = dead
        .iter()
        .find(|d| d.message.as_ref().map(Message::id) == Some("refused"))
        .unwrap();
    assert_eq!(refused.error, "unknown clinic");
    // Purge one.
    assert!(
        broker
            .remove_dead_letter("mixed", "g", &poison.entry)
            .await
            .unwrap()
    );
    assert_eq!(
        broker.dead_letters("mixed", "g", 10).await.unwrap().len(),
        1
    );
    let backlog = broker.backlog("mixed", "g").await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.dead_letters),
        (0, 1),
        "{backlog:?}"
    );
}

/// Shutdown stops reading, lets the handler in flight finish and acks it.
async fn shutdown_finishes_what_is_in_flight<B: Broker + Clone>(broker: B) {
    let seen = Seen::default();
    let s = seen.clone();
    let consumer = Consumer::builder(broker.clone(), "slow", "g")
        .poll(Duration::from_millis(20))
        .run(move |m: Message| {
            let s = s.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                s.record(&m);
                Outcome::Ack
            }
        })
        .await
        .unwrap();
    publish_all(&broker, "slow", &messages("s", 1)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while broker.backlog("slow", "g").await.unwrap().pending == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    consumer.shutdown().await;
    assert_eq!(seen.len(), 1, "the handler finished");
    assert_eq!(
        broker.backlog("slow", "g").await.unwrap().pending,
        0,
        "and its message was acked"
    );
}

/// Id, type, headers and payload arrive as published.
async fn message_context_arrives_intact<B: Broker + Clone>(broker: B) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Registered {
        patient_id: u64,
        name: String,
    }
    let sent = Message::new(
        "patient.registered",
        &Registered {
            patient_id: 7,
            name: "Amina".into(),
        },
    )
    .unwrap()
    .with_id("reg-7")
    .unwrap()
    .with_header(
        headers::TRACEPARENT,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    .unwrap()
    .with_header(headers::TENANT, "clinic-7")
    .unwrap();
    publish_all(&broker, "ctx", std::slice::from_ref(&sent)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = Consumer::builder(broker.clone(), "ctx", "g")
        .poll(Duration::from_millis(20))
        .run(move |m: Message| {
            let _ = tx.send(m);
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    consumer.shutdown().await;
    assert_eq!(got.id(), "reg-7");
    assert_eq!(got.kind(), "patient.registered");
    assert_eq!(got.headers(), sent.headers());
    assert_eq!(got.published_at_ms(), sent.published_at_ms());
    assert_eq!(
        got.payload::<Registered>().unwrap(),
        Registered {
            patient_id: 7,
            name: "Amina".into()
        }
    );
    assert!(matches!(
        got.payload::<Vec<u8>>(),
        Err(Error::Payload { .. })
    ));
}

/// A message delivered again (published twice, even handled at the same moment by two
/// workers) has its effect once, with the processed set.
async fn a_redelivery_is_recognised<B: Broker + Clone>(broker: B, processed: ProcessedSet) {
    let effects = Seen::default();
    let handler = once_per_id(
        processed.lease(Duration::from_secs(5)),
        effects.clone(),
        Duration::from_millis(50),
    );
    let consumer = Consumer::builder(broker.clone(), "idem", "g")
        .concurrency(8)
        .poll(Duration::from_millis(20))
        .run(handler)
        .await
        .unwrap();
    // The same message ids published twice (a producer retrying after a timeout).
    let again = messages("i", 3);
    publish_all(&broker, "idem", &again).await;
    publish_all(&broker, "idem", &again).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let b = broker.backlog("idem", "g").await.unwrap();
        if b.lag == 0 && b.pending == 0 && effects.len() >= 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{b:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    consumer.shutdown().await;
    assert!(
        effects.counts().values().all(|n| *n == 1),
        "{:?}",
        effects.all()
    );
    assert_eq!(effects.counts().len(), 3);
}

/// Bad names and oversize messages are refused with the field named.
async fn bad_input_names_the_field<B: Broker + Clone>(broker: B) {
    let publisher = Publisher::new(broker.clone()).max_bytes(1024);
    let m = Message::new("test.event", &1).unwrap();
    match publisher.publish("{other}", &m).await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "topic"),
        other => panic!("{other:?}"),
    }
    let big = Message::new("test.event", &"x".repeat(2000)).unwrap();
    assert!(matches!(
        publisher.publish("t", &big).await,
        Err(Error::TooLarge { limit: 1024, .. })
    ));
    assert!(matches!(
        Message::new("bad type!", &1),
        Err(Error::Invalid { field: "kind", .. })
    ));
    assert!(matches!(
        m.clone().with_header("h", "a\nb"),
        Err(Error::Invalid {
            field: "header",
            ..
        })
    ));
    match Consumer::builder(broker.clone(), "t", "bad:group")
        .run(|_m: Message| async { Outcome::Ack })
        .await
    {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "group"),
        other => panic!("{other:?}"),
    }
}

/// Idempotent publishing: the same producer id within the window is appended once (the first
/// entry id comes back), after the window again; other ids are unaffected.
async fn publishing_twice_within_the_dedup_window_appends_once<B: Broker + Clone>(broker: B) {
    let publisher = Publisher::new(broker.clone()).dedup_window(Duration::from_millis(400));
    let order = || {
        Message::new("order.placed", &serde_json::json!({"order": 17}))
            .unwrap()
            .with_id("order-17")
            .unwrap()
    };
    let first = publisher.publish("orders-once", &order()).await.unwrap();
    let again = publisher.publish("orders-once", &order()).await.unwrap();
    assert_eq!(first, again, "the duplicate answers the first entry id");
    let other = Message::new("order.placed", &1)
        .unwrap()
        .with_id("order-18")
        .unwrap();
    assert_ne!(
        publisher.publish("orders-once", &other).await.unwrap(),
        first
    );
    // The same id on another topic is another message.
    publisher.publish("invoices-once", &order()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = publisher.publish("orders-once", &order()).await.unwrap();
    assert_ne!(later, first, "the window is over: published again");

    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "orders-once", "g")
            .concurrency(1)
            .poll(Duration::from_millis(50)),
    )
    .await;
    assert!(seen.until(|s| s.len() >= 3).await, "got {}", seen.len());
    tokio::time::sleep(Duration::from_millis(200)).await;
    consumer.shutdown().await;
    let ids: Vec<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["order-17", "order-18", "order-17"]);
}

/// An event bus: each group subscribes to the types it wants, by name or prefix; other
/// types are acknowledged unseen; a bad pattern is named.
async fn groups_subscribe_to_types_by_name_and_prefix<B: Broker + Clone>(broker: B) {
    let kinds = [
        "patient.registered",
        "payment.completed",
        "patient.updated",
        "appointment.booked",
    ];
    let sent: Vec<Message> = kinds
        .iter()
        .map(|k| Message::new(k, &serde_json::json!({})).unwrap())
        .collect();
    publish_all(&broker, "events", &sent).await;
    let subscribe = |group: &str, patterns: &[&str]| {
        let seen = Seen::default();
        let s = seen.clone();
        let builder = Consumer::builder(broker.clone(), "events", group)
            .poll(Duration::from_millis(50))
            .concurrency(1)
            .types(patterns.iter().copied());
        async move {
            let handle = builder
                .run(move |m: Message| {
                    s.record_kind(&m);
                    async { Outcome::Ack }
                })
                .await
                .unwrap();
            (seen, handle)
        }
    };
    let (patients, p) = subscribe("patients", &["patient.*"]).await;
    let (billing, b) = subscribe("billing", &["payment.completed", "invoice.*"]).await;
    let (audit, a) = subscribe("audit", &["*"]).await;
    assert!(audit.until(|s| s.len() >= 4).await);
    assert!(patients.until(|s| s.len() >= 2).await);
    assert!(billing.until(|s| !s.is_empty()).await);
    // Every group settled every message (the skipped ones acked unseen).
    for group in ["patients", "billing", "audit"] {
        assert!(
            drained(&broker, "events", group).await,
            "{group} has a backlog"
        );
    }
    for handle in [p, b, a] {
        handle.shutdown().await;
    }
    assert_eq!(patients.kinds(), ["patient.registered", "patient.updated"]);
    assert_eq!(billing.kinds(), ["payment.completed"]);
    assert_eq!(audit.kinds(), kinds);
    let error = Consumer::builder(broker.clone(), "events", "bad")
        .types(["patient.{x}"])
        .run(|_m: Message| async { Outcome::Ack })
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Invalid { field: "types", .. }),
        "{error:?}"
    );
}

/// Per-key ordering: a partitioned topic consumed in order by two instances; every key's
/// messages are handled in publishing order, each once, through in-place retries, a failing
/// message sent to the dead-letter stream without blocking its partition for good, and one
/// instance leaving (its partitions move to the other, which finishes what it left pending).
async fn messages_of_a_key_are_handled_in_order<B: Broker + Clone>(broker: B) {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    let partitions = Partitions::new("visits", 4).unwrap();
    let keys = [
        "patient-1",
        "patient-2",
        "patient-3",
        "patient-4",
        "patient-5",
    ];
    let publisher = Publisher::new(broker.clone());
    let publish = |from: u32, to: u32| {
        let publisher = publisher.clone();
        let partitions = partitions.clone();
        async move {
            for seq in from..to {
                for key in keys {
                    let m = Message::new(
                        "visit.updated",
                        &serde_json::json!({"key": key, "seq": seq}),
                    )
                    .unwrap()
                    .with_id(&format!("{key}-{seq}"))
                    .unwrap();
                    publisher
                        .publish(partitions.topic_for(key), &m)
                        .await
                        .unwrap();
                }
            }
        }
    };
    publish(0, 20).await;
    // key -> the sequence numbers handled successfully, in handling order.
    let handled: Arc<Mutex<BTreeMap<String, Vec<u64>>>> = Arc::default();
    let attempts: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let instance = |name: &str| {
        let (handled, attempts) = (handled.clone(), attempts.clone());
        Consumer::builder(broker.clone(), "unused", "records")
            .name(name)
            .in_order(Duration::from_millis(600))
            .max_attempts(3)
            .backoff(fast_backoff())
            .poll(Duration::from_millis(50))
            .run_partitions(&partitions, move |m: Message| {
                let (handled, attempts) = (handled.clone(), attempts.clone());
                async move {
                    let body: serde_json::Value = m.payload().unwrap();
                    let (key, seq) = (
                        body["key"].as_str().unwrap().to_owned(),
                        body["seq"].as_u64().unwrap(),
                    );
                    let n = {
                        let mut attempts = attempts.lock().unwrap();
                        let n = attempts.entry(m.id().to_owned()).or_default();
                        *n += 1;
                        *n
                    };
                    // Every 7th message fails once (retried in place); patient-3's 11th
                    // always fails (dead letter after 3 attempts).
                    if (seq % 7 == 3 && n == 1) || (key == "patient-3" && seq == 11) {
                        return Outcome::retry("not yet");
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    handled.lock().unwrap().entry(key).or_default().push(seq);
                    Outcome::Ack
                }
            })
    };
    let a = instance("a").await.unwrap();
    let b = instance("b").await.unwrap();
    let count = |handled: &Arc<Mutex<BTreeMap<String, Vec<u64>>>>| {
        handled
            .lock()
            .unwrap()
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    assert!(
        nilecare_test_support::eventually(Duration::from_secs(20), || async {
            count(&handled) >= 5 * 10
        })
        .await
    );
    // Instance a leaves in the middle; b takes its partitions over.
    a.shutdown().await;
    publish(20, 30).await;
    assert!(
        nilecare_test_support::eventually(Duration::from_secs(20), || async {
            count(&handled) >= 5 * 30 - 1
        })
        .await,
        "handled {}",
        count(&handled)
    );
    b.shutdown().await;
    let handled = handled.lock().unwrap().clone();
    for key in keys {
        let want: Vec<u64> = (0..30)
            .filter(|seq| !(key == "patient-3" && *seq == 11))
            .collect();
        assert_eq!(handled[key], want, "{key}: in order, each once");
    }
    let dead = broker
        .dead_letters(partitions.topic_for("patient-3"), "records", 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert!(dead[0].error.contains("not yet"), "{}", dead[0].error);
}

/// A subscriber resumes after a known entry: the messages published after it, and only those;
/// a bad entry id is named.
async fn a_subscriber_resumes_after_an_entry<B: Broker + Clone>(broker: B) {
    let publisher = Publisher::new(broker.clone());
    let mut entries = Vec::new();
    for m in messages("m", 10) {
        entries.push(publisher.publish("resume", &m).await.unwrap());
    }
    let (seen, consumer) = record_and_ack(
        Consumer::builder(broker.clone(), "resume", "late")
            .start_at(StartAt::after(&entries[3]).unwrap())
            .concurrency(1)
            .poll(Duration::from_millis(20)),
    )
    .await;
    assert!(seen.until(|s| s.len() >= 6).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    consumer.shutdown().await;
    let ids: Vec<String> = seen.all().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, (4..10).map(|i| format!("m-{i}")).collect::<Vec<_>>());
    assert!(matches!(
        StartAt::after("yesterday"),
        Err(Error::Invalid { field: "entry", .. })
    ));
}

/// Stress: 2 000 messages, two groups of two consumers, one first attempt in ten failing:
/// each group acks every message exactly once and ends with nothing pending.
async fn stress_two_groups_with_failures<B: Broker + Clone>(broker: B) {
    let sent = messages("s", 2_000);
    publish_all(&broker, "stress", &sent).await;
    let mut groups = Vec::new();
    for group in ["alpha", "beta"] {
        let acked = Seen::default();
        let tried: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>> =
            std::sync::Arc::default();
        let mut handles = Vec::new();
        for _ in 0..2 {
            let (acked, tried) = (acked.clone(), tried.clone());
            handles.push(
                Consumer::builder(broker.clone(), "stress", group)
                    .concurrency(8)
                    .backoff(fast_backoff())
                    .poll(Duration::from_millis(20))
                    .run(move |m: Message| {
                        let first = tried.lock().unwrap().insert(m.id().to_owned());
                        let fail = first && m.payload::<usize>().unwrap() % 10 == 7;
                        if !fail {
                            acked.record(&m);
                        }
                        async move {
                            if fail {
                                Outcome::retry("first attempts of one in ten fail")
                            } else {
                                Outcome::Ack
                            }
                        }
                    })
                    .await
                    .unwrap(),
            );
        }
        groups.push((group, acked, handles));
    }
    for (group, acked, handles) in groups {
        assert!(
            acked.until(|s| s.counts().len() >= 2_000).await,
            "{group}: {} acked",
            acked.counts().len()
        );
        assert!(
            drained(&broker, "stress", group).await,
            "{group} has a backlog"
        );
        for handle in handles {
            handle.shutdown().await;
        }
        let counts = acked.counts();
        assert!(counts.values().all(|n| *n == 1), "{group}: acked twice");
    }
}

macro_rules! on_every_broker {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(MemoryBroker::new()).await;
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let server = RedisServer::start();
                    super::$scenario(redis_broker(&server).await).await;
                }
            )*
        }
    };
}

on_every_broker!(
    publish_subscribe,
    concurrent_consumers_share_a_group,
    every_group_gets_every_message,
    resend_on_error_and_panic,
    an_unsettled_message_is_reclaimed,
    poison_messages_reach_the_dead_letter_stream,
    shutdown_finishes_what_is_in_flight,
    message_context_arrives_intact,
    a_new_subscriber_replays_from_a_time,
    bad_input_names_the_field,
    publishing_twice_within_the_dedup_window_appends_once,
    groups_subscribe_to_types_by_name_and_prefix,
    messages_of_a_key_are_handled_in_order,
    a_subscriber_resumes_after_an_entry,
    stress_two_groups_with_failures,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_retention_by_age_drops_old_messages() {
    let broker = MemoryBroker::with_max_age(Duration::from_millis(150));
    publish_all(&broker, "aged", &messages("old", 3)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_all(&broker, "aged", &messages("new", 2)).await;
    broker
        .create_group("aged", "g", StartAt::Beginning)
        .await
        .unwrap();
    let delivered = broker
        .receive("aged", "g", "c", 10, Duration::from_millis(10))
        .await
        .unwrap();
    let ids: Vec<String> = delivered
        .into_iter()
        .map(|d| d.message.unwrap().id().to_owned())
        .collect();
    assert_eq!(ids, ["new-0", "new-1"]);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_retention_by_age_trims_with_minid() {
    let server = RedisServer::start();
    let broker = redis_broker(&server)
        .await
        .max_age(Duration::from_millis(150));
    // Approximate trimming removes whole stream nodes (100 entries each).
    publish_all(&broker, "aged", &messages("old", 300)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_all(&broker, "aged", &messages("new", 1)).await;
    let nilecare_test_support::Reply::Integer(len) =
        server.command(&["XLEN", "nilecare:msg:{aged}"])
    else {
        panic!("XLEN");
    };
    assert!(len <= 101, "old nodes trimmed by age: {len} entries left");
    assert!(len >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_recognised_in_memory() {
    a_redelivery_is_recognised(
        MemoryBroker::new(),
        ProcessedSet::memory("g", Duration::from_secs(60)),
    )
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_recognised_on_redis() {
    let server = RedisServer::start();
    let pool =
        nilecare_redis::connect(&nilecare_redis::RedisConfig::from_url(&server.url()).unwrap())
            .await
            .unwrap();
    a_redelivery_is_recognised(
        redis_broker(&server).await,
        ProcessedSet::redis(pool, "g", Duration::from_secs(60)),
    )
    .await;
}

/// On a real 3-primary Redis Cluster: every script of a topic runs on the node of its hash
/// tag, blocking reads follow the slot's node.
#[cfg(feature = "redis")]
mod cluster {
    use nilecare_test_support::RedisCluster;

    async fn broker(cluster: &RedisCluster) -> nilecare_messaging::RedisBroker {
        let pool = nilecare_redis::connect(
            &nilecare_redis::RedisConfig::from_url(&cluster.url()).unwrap(),
        )
        .await
        .unwrap();
        nilecare_messaging::RedisBroker::new(pool)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_retries_dead_letters_and_reclaiming_work_on_a_cluster() {
        let cluster = RedisCluster::start(3);
        let broker = broker(&cluster).await;
        super::publish_subscribe(broker.clone()).await;
        super::poison_messages_reach_the_dead_letter_stream(broker.clone()).await;
        super::an_unsettled_message_is_reclaimed(broker.clone()).await;
        super::every_group_gets_every_message(broker.clone()).await;
        super::publishing_twice_within_the_dedup_window_appends_once(broker.clone()).await;
        super::messages_of_a_key_are_handled_in_order(broker).await;
    }
}
