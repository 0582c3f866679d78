//! Classic pub/sub (`PUBLISH`, broadcast to every node over the cluster bus) against sharded
//! pub/sub (`SPUBLISH`, kept on the shard that owns the channel's slot) on real 3- and
//! 6-primary clusters: publish throughput from 64 tasks, the CPU every redis-server spent
//! (`INFO cpu`, summed over the nodes) per message, and the delivery latency to one
//! subscriber. Prints a table; no criterion groups (the figure is the servers' CPU, not the
//! client's time).
//!
//! `cargo bench -p nilecare-redis --features pubsub --bench pubsub_cluster`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fred::clients::{Pool, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Builder;
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::RedisCluster;

const MESSAGES: u64 = 40_000;
const TASKS: u64 = 64;
const CHANNEL: &str = "nilecare:cache:invalidations";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Classic,
    Sharded,
}

/// CPU seconds (user + system) every node of `cluster` has used so far.
fn cluster_cpu(cluster: &RedisCluster) -> f64 {
    cluster
        .nodes()
        .iter()
        .map(|node| {
            let info = node.command(&["INFO", "cpu"]).as_text().unwrap_or_default();
            info.lines()
                .filter_map(|line| {
                    let (name, value) = line.trim().split_once(':')?;
                    matches!(name, "used_cpu_sys" | "used_cpu_user")
                        .then(|| value.parse::<f64>().ok())
                        .flatten()
                })
                .sum::<f64>()
        })
        .sum()
}

async fn subscriber(cluster: &RedisCluster, mode: Mode) -> SubscriberClient {
    let config = fred::types::config::Config::from_url(&cluster.url()).expect("cluster URL");
    let client = Builder::from_config(config)
        .with_performance_config(|p| p.broadcast_channel_capacity = 1 << 17)
        .build_subscriber_client()
        .expect("subscriber");
    client.init().await.expect("subscriber connects");
    match mode {
        Mode::Classic => client.subscribe(CHANNEL).await.expect("SUBSCRIBE"),
        Mode::Sharded => client.ssubscribe(CHANNEL).await.expect("SSUBSCRIBE"),
    }
    client
}

struct Figures {
    per_second: f64,
    cpu_us_per_message: f64,
    p50: Duration,
    p99: Duration,
    received: u64,
}

async fn measure(cluster: &RedisCluster, pool: &Pool, mode: Mode) -> Figures {
    let subscriber = subscriber(cluster, mode).await;
    let base = Instant::now();
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(MESSAGES as usize)));
    let received = Arc::new(AtomicU64::new(0));
    let mut messages = subscriber.message_rx();
    let collector = {
        let (latencies, received) = (latencies.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                let message = match messages.recv().await {
                    Ok(message) => message,
                    // Dropped by this process, not by Redis: not counted as received.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                let sent: u64 = message
                    .value
                    .as_string()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let now = base.elapsed().as_nanos() as u64;
                latencies
                    .lock()
                    .expect("latencies")
                    .push(now.saturating_sub(sent));
                if received.fetch_add(1, Ordering::Relaxed) + 1 == MESSAGES {
                    break;
                }
            }
        })
    };
    let cpu_before = cluster_cpu(cluster);
    let started = Instant::now();
    let publishers: Vec<_> = (0..TASKS)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..MESSAGES / TASKS {
                    let payload = base.elapsed().as_nanos().to_string();
                    let sent: Result<i64, _> = match mode {
                        Mode::Classic => pool.next().publish(CHANNEL, payload).await,
                        Mode::Sharded => pool.next().spublish(CHANNEL, payload).await,
                    };
                    sent.expect("publish");
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    let published = started.elapsed();
    let _ = tokio::time::timeout(Duration::from_secs(20), collector).await;
    let cpu = cluster_cpu(cluster) - cpu_before;
    let _ = subscriber.quit().await;
    let mut latencies = latencies.lock().expect("latencies").clone();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
    };
    Figures {
        per_second: (MESSAGES / TASKS * TASKS) as f64 / published.as_secs_f64(),
        cpu_us_per_message: cpu * 1e6 / MESSAGES as f64,
        p50: at(0.5),
        p99: at(0.99),
        received: received.load(Ordering::Relaxed),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| primaries | mode | publishes/s (64 tasks, pool of 4) | server CPU per message, all nodes | delivery p50 | p99 | received |"
    );
    println!("|---|---|---|---|---|---|---|");
    for primaries in [3, 6] {
        let cluster = RedisCluster::start(primaries);
        runtime.block_on(async {
            let config = RedisConfig::from_url(&cluster.url())
                .expect("cluster URL")
                .with_pool_size(4);
            let pool = connect(&config).await.expect("pool");
            // Interleaved rounds, the last of each mode printed (the first warms up).
            for round in 0..3 {
                for mode in [Mode::Classic, Mode::Sharded] {
                    let f = measure(&cluster, &pool, mode).await;
                    if round > 0 {
                        println!(
                            "| {primaries} | {mode:?} | {:.1}k | {:.1} µs | {:?} | {:?} | {} of {MESSAGES} |",
                            f.per_second / 1000.0,
                            f.cpu_us_per_message,
                            f.p50,
                            f.p99,
                            f.received
                        );
                    }
                }
            }
        });
    }
}
