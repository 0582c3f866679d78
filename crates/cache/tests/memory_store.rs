//! MemoryStore specifics: bounds and eviction counting.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use nilecare_cache::{Cache, MemoryStore};

#[tokio::test]
async fn entry_bound_evicts_and_counts_evictions() {
    let store = MemoryStore::with_max_entries(50).unwrap();
    let cache = Cache::builder().jitter(0.0).build(store.clone()).unwrap();
    for i in 0..500 {
        cache.set(&format!("k:{i}"), &i, None).await.unwrap();
    }
    store.run_pending_tasks().await;
    assert!(store.entry_count() <= 50, "{}", store.entry_count());
    assert!(cache.stats().evictions >= 400, "{:?}", cache.stats());
}

#[tokio::test]
async fn byte_bound_holds_with_both_bounds() {
    let store = MemoryStore::builder()
        .max_entries(1_000)
        .max_bytes(20_000)
        .build()
        .unwrap();
    let cache = Cache::builder().jitter(0.0).build(store.clone()).unwrap();
    let value = "v".repeat(1_000);
    for i in 0..200 {
        cache.set(&format!("k:{i}"), &value, None).await.unwrap();
    }
    store.run_pending_tasks().await;
    // each entry weighs ~1 KiB: at most ~20 fit in 20 000 bytes
    assert!(store.entry_count() <= 20, "{}", store.entry_count());
    assert!(MemoryStore::builder().max_bytes(0).build().is_err());
}
