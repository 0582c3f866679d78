//! The in-memory broker end to end in one process: messages published by 64 tasks and handled
//! (acked) by one consumer with 32 in flight, time per message (criterion, `iter_custom`).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nilecare_messaging::{Consumer, MemoryBroker, Message, Outcome, Publisher};
use nilecare_test_support::bench::{runtime, spread_over_tasks};

const TASKS: u64 = 64;

fn memory(c: &mut Criterion) {
    let rt = runtime(2);
    let broker = MemoryBroker::with_max_len(10_000_000);
    let handled = Arc::new(AtomicU64::new(0));
    // The count at which the handler wakes the measuring task (no busy wait stealing a core).
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(tokio::sync::Notify::new());
    let (h, t, d) = (handled.clone(), target.clone(), done.clone());
    let consumer = rt.block_on(async {
        Consumer::builder(broker.clone(), "bench", "bench")
            .concurrency(32)
            .poll(Duration::from_millis(100))
            .run(move |_m: Message| {
                if h.fetch_add(1, Ordering::Relaxed) + 1 == t.load(Ordering::Relaxed) {
                    d.notify_one();
                }
                async { Outcome::Ack }
            })
            .await
            .expect("consumer")
    });
    let publisher = Publisher::new(broker);
    let message =
        Message::new("visit.booked", &serde_json::json!({"patient_id": 7})).expect("message");
    let mut group = c.benchmark_group("messaging_memory");
    group.throughput(Throughput::Elements(1));
    group.bench_function("publish_and_handle", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (publisher, message, handled) =
                (publisher.clone(), message.clone(), handled.clone());
            let (target, done) = (target.clone(), done.clone());
            async move {
                let goal = handled.load(Ordering::Relaxed) + iters;
                target.store(goal, Ordering::Relaxed);
                let started = Instant::now();
                spread_over_tasks(TASKS, iters, false, move |_| {
                    let (publisher, message) = (publisher.clone(), message.clone());
                    async move {
                        publisher.publish("bench", &message).await.expect("publish");
                    }
                })
                .await;
                let notified = done.notified();
                if handled.load(Ordering::Relaxed) < goal {
                    notified.await;
                }
                started.elapsed()
            }
        })
    });
    group.finish();
    rt.block_on(consumer.shutdown());
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = memory
}
criterion_main!(benches);
