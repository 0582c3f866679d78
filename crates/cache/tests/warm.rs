//! `Cache::warm`: bounded concurrency, failures counted not fatal, progress logged; on
//! MemoryStore and a real Redis server.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nilecare_cache::{Cache, Error, MemoryStore, Store};
use nilecare_test_support::RedisServer;
use nilecare_test_support::logs::LogBuffer;

async fn warms_with_bounded_concurrency<S: Store + Clone>(label: &str, store: &S) {
    let c = Cache::builder()
        .prefix("warm:")
        .build(store.clone())
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut keys: Vec<String> = (1..=200).map(|i| format!("patients:{i}")).collect();
    keys.push("@not-a-key".into());
    let summary = c
        .warm(keys, None, 4, |key: String| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                let id: u32 = key.rsplit(':').next().unwrap().parse().unwrap_or(0);
                if id % 10 == 0 {
                    Err(format!("record {id} unavailable"))
                } else {
                    Ok(id)
                }
            }
        })
        .await
        .unwrap();
    // 20 loader failures + 1 invalid key
    assert_eq!((summary.loaded, summary.failed), (180, 21), "{label}");
    let peak = peak.load(Ordering::SeqCst);
    assert!((2..=4).contains(&peak), "{label}: peak concurrency {peak}");
    assert_eq!(c.get::<u32>("patients:7").await, Some(7), "{label}");
    assert_eq!(c.get::<u32>("patients:10").await, None, "{label}");
}

#[tokio::test]
async fn memory_store() {
    let logs = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = nilecare_test_support::logs::set_thread_default(subscriber);
    warms_with_bounded_concurrency("memory", &MemoryStore::with_max_entries(10_000).unwrap()).await;
    let text = logs.text();
    assert!(
        text.contains("cache warmed") && text.contains("loaded=180") && text.contains("failed=21"),
        "{text}"
    );
}

#[tokio::test]
async fn redis_store() {
    let server = RedisServer::start();
    warms_with_bounded_concurrency("redis", &support::redis_store(&server).await).await;
}

#[tokio::test]
async fn zero_concurrency_is_rejected() {
    let c = Cache::builder()
        .build(MemoryStore::with_max_entries(10).unwrap())
        .unwrap();
    let e = c
        .warm(["k"], None, 0, |_| async { Ok::<_, String>(1) })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "concurrency",
                ..
            }
        ),
        "{e}"
    );
}
