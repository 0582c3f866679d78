//! Messaging throughput and latency against a real redis-server: publish vs raw `XADD` (64
//! tasks, criterion), then printed end-to-end figures: publish → handled → acked with 4
//! consumers (throughput, and p50/p99 latency at half that rate). The in-memory broker has its
//! own benchmark (`benches/memory.rs`).
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_messaging::{Broker, Consumer, Message, Outcome, Publisher, RedisBroker};
use nilecare_redis::fred::interfaces::StreamsInterface;
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::RedisServer;
use nilecare_test_support::bench::{runtime, spread_over_tasks};

const TASKS: u64 = 64;

fn payload() -> Message {
    Message::new(
        "visit.booked",
        &serde_json::json!({"patient_id": 7, "clinic": "clinic-7"}),
    )
    .expect("message")
}

fn publish(c: &mut Criterion) {
    let rt = runtime(2);
    let server = RedisServer::start();
    let pool = rt.block_on(async {
        connect(
            &RedisConfig::from_url(&server.url())
                .expect("url")
                .with_pool_size(4),
        )
        .await
        .expect("connect")
    });
    let publisher = Publisher::new(RedisBroker::new(pool.clone()));
    let mut group = c.benchmark_group("redis_publish_64_tasks");
    group.throughput(criterion::Throughput::Elements(1));
    let p = pool.clone();
    group.bench_function("raw_fred_xadd", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let p = p.clone();
            async move {
                spread_over_tasks(TASKS, iters, false, move |_| {
                    let p = p.clone();
                    async move {
                        // The same fields and trimming as a published message.
                        let fields = vec![
                            ("v", "1".to_owned()),
                            ("id", "18c2-1-1".to_owned()),
                            ("type", "visit.booked".to_owned()),
                            ("at", "1733300000000".to_owned()),
                            ("h", "{}".to_owned()),
                            ("p", r#"{"clinic":"clinic-7","patient_id":7}"#.to_owned()),
                        ];
                        let _: String = p
                            .xadd(
                                "nilecare:msg:{raw}",
                                false,
                                ("MAXLEN", "~", 100_000),
                                "*",
                                fields,
                            )
                            .await
                            .expect("xadd");
                    }
                })
                .await
                .elapsed
            }
        })
    });
    let pb = publisher.clone();
    group.bench_function("publish", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let pb = pb.clone();
            async move {
                spread_over_tasks(TASKS, iters, false, move |_| {
                    let pb = pb.clone();
                    async move {
                        pb.publish("visits", &payload()).await.expect("publish");
                    }
                })
                .await
                .elapsed
            }
        })
    });
    group.finish();
    drop(server);
}

/// Publishes `n` messages from 64 tasks (at `rate` per second overall when given) while
/// `consumers` consumers ack them; returns (messages per second, sorted latencies).
async fn end_to_end<B: Broker + Clone>(
    broker: B,
    topic: &str,
    n: u64,
    consumers: usize,
    rate: Option<f64>,
) -> (f64, Vec<Duration>) {
    let base = Instant::now();
    let handled = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n as usize)));
    let mut running = Vec::new();
    for i in 0..consumers {
        let (handled, latencies) = (handled.clone(), latencies.clone());
        running.push(
            Consumer::builder(broker.clone(), topic, "bench")
                .name(&format!("bench-{i}"))
                .concurrency(32)
                .poll(Duration::from_millis(100))
                .run(move |m: Message| {
                    let sent: u64 = m.payload().expect("payload");
                    let took = base.elapsed().saturating_sub(Duration::from_micros(sent));
                    latencies.lock().expect("latencies").push(took);
                    handled.fetch_add(1, Ordering::Relaxed);
                    async { Outcome::Ack }
                })
                .await
                .expect("consumer"),
        );
    }
    let publisher = Publisher::new(broker.clone());
    let started = Instant::now();
    let topic_owned = topic.to_owned();
    spread_over_tasks(TASKS, n, false, move |i| {
        let (publisher, topic) = (publisher.clone(), topic_owned.clone());
        async move {
            if let Some(rate) = rate {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let sent = u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX);
            publisher
                .publish(&topic, &Message::new("bench", &sent).expect("message"))
                .await
                .expect("publish");
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while handled.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} handled",
            handled.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let per_second = n as f64 / started.elapsed().as_secs_f64();
    for c in running {
        c.shutdown().await;
    }
    let mut sorted = latencies.lock().expect("latencies").clone();
    sorted.sort();
    (per_second, sorted)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn end_to_end_figures(_c: &mut Criterion) {
    let rt = runtime(2);
    let server = RedisServer::start();
    rt.block_on(async {
        let pool = connect(&RedisConfig::from_url(&server.url()).expect("url").with_pool_size(4))
            .await
            .expect("connect");
        let broker = RedisBroker::new(pool);
        let (full, lat) = end_to_end(broker.clone(), "e2e-full", 40_000, 4, None).await;
        eprintln!(
            "redis end to end, 4 consumers, 64 publishing tasks, 40k messages: {full:.0} messages/s \
             (p50 {:?}, p99 {:?} under full load)",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
        let half = full / 2.0;
        let (_, lat) = end_to_end(broker.clone(), "e2e-half", (half * 4.0) as u64, 4, Some(half)).await;
        eprintln!(
            "redis end to end at half that rate ({half:.0}/s for 4 s): p50 {:?}, p99 {:?}",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    });
    drop(server);
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = end_to_end_figures, publish
}
criterion_main!(benches);
