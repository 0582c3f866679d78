//! Cache metrics reach the recorder that is current when they are recorded.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use metrics_util::debugging::DebuggingRecorder;
use nilecare_cache::{Cache, MemoryStore};
use nilecare_test_support::metrics::{counter, snapshot};

#[tokio::test(flavor = "current_thread")]
async fn hits_misses_and_decode_errors_are_counted_per_recorder() {
    let cache = Cache::builder()
        .name("metrics_test")
        .build(MemoryStore::with_max_entries(100).unwrap())
        .unwrap();
    cache.set("k:1", &1u32, None).await.unwrap();

    let first = DebuggingRecorder::new();
    let first_snap = first.snapshotter();
    {
        let _guard = metrics::set_default_local_recorder(&first);
        let _ = cache.get::<u32>("k:1").await;
        let _ = cache.get::<u32>("k:1").await;
        let _ = cache.get::<u32>("k:2").await;
        let _ = cache.get::<String>("k:1").await; // decode error: a miss
    }
    let taken = snapshot(&first_snap);
    let hit = [("cache", "metrics_test"), ("result", "hit")];
    let miss = [("cache", "metrics_test"), ("result", "miss")];
    assert_eq!(counter(&taken, "nilecare_cache_requests_total", &hit), 2);
    assert_eq!(counter(&taken, "nilecare_cache_requests_total", &miss), 2);
    assert_eq!(
        counter(&taken, "nilecare_cache_errors_total", &[("kind", "decode")]),
        1
    );

    // A different recorder later: the cached handles of the first must not swallow the counts.
    let second = DebuggingRecorder::new();
    let second_snap = second.snapshotter();
    {
        let _guard = metrics::set_default_local_recorder(&second);
        let _ = cache.get::<u32>("k:1").await;
    }
    assert_eq!(
        counter(
            &snapshot(&second_snap),
            "nilecare_cache_requests_total",
            &hit
        ),
        1
    );
    assert_eq!(
        counter(
            &snapshot(&first_snap),
            "nilecare_cache_requests_total",
            &hit
        ),
        0,
        "the first recorder got the second recorder's hit"
    );
}
