//! Publishing, settling and the group's backlog reach the metrics recorder.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use nilecare_messaging::metrics::{LAG_MESSAGES, PUBLISHED_TOTAL, SETTLED_TOTAL};
use nilecare_messaging::{Consumer, MemoryBroker, Message, Outcome, Publisher};
use nilecare_test_support::metrics::{counter, snapshot};
use support::{Seen, messages};

#[tokio::test(flavor = "current_thread")]
async fn published_settled_and_backlog_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let broker = MemoryBroker::new();
    let publisher = Publisher::new(broker.clone());
    for m in messages("m", 3) {
        publisher.publish("visits", &m).await.unwrap();
    }
    let seen = Seen::default();
    let s = seen.clone();
    let consumer = Consumer::builder(broker, "visits", "audit")
        .poll(Duration::from_millis(10))
        .run(move |m: Message| {
            s.record(&m);
            let id = m.id().to_owned();
            async move {
                if id == "m-2" {
                    Outcome::Reject("bad".into())
                } else {
                    Outcome::Ack
                }
            }
        })
        .await
        .unwrap();
    assert!(seen.until(|s| s.len() >= 3).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    consumer.shutdown().await;
    let snap = snapshot(&snapshotter);
    assert_eq!(
        counter(
            &snap,
            PUBLISHED_TOTAL,
            &[("topic", "visits"), ("result", "ok")]
        ),
        3
    );
    let settled = |result| {
        counter(
            &snap,
            SETTLED_TOTAL,
            &[("group", "audit"), ("result", result)],
        )
    };
    assert_eq!((settled("acked"), settled("dead_lettered")), (2, 1));
    // The backlog as the consumer found it when it started: 3 not yet delivered.
    let lag = snap.iter().find_map(|(key, _, _, value)| {
        (key.key().name() == LAG_MESSAGES).then(|| match value {
            DebugValue::Gauge(g) => g.into_inner(),
            _ => -1.0,
        })
    });
    assert_eq!(lag, Some(3.0));
}

#[tokio::test(flavor = "current_thread")]
async fn sagas_are_counted_by_outcome() {
    use nilecare_messaging::metrics::SAGAS_TOTAL;
    use nilecare_messaging::saga::{MemorySagaStore, Saga, SagaRunner};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let saga = Saga::<u32>::builder("counted")
        .step(
            "first",
            |n, _| async move { Ok(n + 1) },
            |n, _| async move { Ok(n - 1) },
        )
        .step_without_compensation("second", |n, _| async move {
            if n > 5 { Err("too big".into()) } else { Ok(n) }
        })
        .build()
        .unwrap();
    let runner = SagaRunner::new(MemorySagaStore::new(), "a").unwrap();
    runner.start(&saga, "ok", 1).await.unwrap();
    runner.start(&saga, "big", 10).await.unwrap();
    let snap = snapshot(&snapshotter);
    let sagas = |result| {
        counter(
            &snap,
            SAGAS_TOTAL,
            &[("saga", "counted"), ("result", result)],
        )
    };
    assert_eq!(
        (sagas("started"), sagas("completed"), sagas("compensated")),
        (2, 1, 1)
    );
}
