//! The consumer's span continues the publisher's trace: a `send <topic>` producer span and a
//! `process <topic>` consumer span, child of it, as a real OTLP receiver gets them.
#![cfg(feature = "tracing")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_messaging::{Consumer, MemoryBroker, Message, Outcome, Publisher, headers};
use nilecare_test_support::otlp::{KIND_SERVER, collector};
use tracing_subscriber::layer::SubscriberExt as _;

const KIND_PRODUCER: i32 = 4;
const KIND_CONSUMER: i32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_continues_the_publishers_trace() {
    let (receiver, spans) = collector().await;
    let guard = nilecare_tracing::init(
        &nilecare_tracing::TracingConfig::new("messaging-test")
            .endpoint(format!("http://{receiver}")),
    )
    .unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(guard.layer()))
        .unwrap();

    let broker = MemoryBroker::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = Consumer::builder(broker.clone(), "patients", "billing")
        .poll(Duration::from_millis(20))
        .run(move |m: Message| {
            let _ = tx.send(m.header(headers::TRACEPARENT).map(str::to_owned));
            async { Outcome::Ack }
        })
        .await
        .unwrap();
    let request = tracing::info_span!("request", otel.kind = "server");
    let publisher = Publisher::new(broker.clone());
    let message = Message::new("patient.registered", &7).unwrap();
    tracing::Instrument::instrument(publisher.publish("patients", &message), request)
        .await
        .unwrap();
    let carried = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
        .expect("the message carries a traceparent");
    consumer.shutdown().await;
    guard.flush();

    let find = |kind: i32| {
        let spans = spans.clone();
        async move {
            for _ in 0..100 {
                if let Some(s) = spans
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|s| s.kind == kind)
                    .cloned()
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("no span of kind {kind}: {:?}", spans.lock().unwrap());
        }
    };
    let server = find(KIND_SERVER).await;
    let producer = find(KIND_PRODUCER).await;
    let consumer = find(KIND_CONSUMER).await;
    assert_eq!(producer.name, "send patients");
    assert_eq!(consumer.name, "process patients");
    assert_eq!(producer.parent, server.span_id, "send inside the request");
    assert_eq!(consumer.trace_id, producer.trace_id, "one trace");
    assert_eq!(
        consumer.parent, producer.span_id,
        "process is a child of send"
    );
    assert!(carried.contains(&producer.span_id), "{carried}");
    assert_eq!(
        consumer.attributes["messaging.destination.name"],
        "patients"
    );
    assert_eq!(
        consumer.attributes["messaging.consumer.group.name"],
        "billing"
    );
    assert_eq!(consumer.attributes["messaging.message.id"], message.id());
}
