//! Stored bytes the cache did not write (foreign, corrupt, truncated) read back through `get`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nilecare_cache::{AnyStore, Cache, MemoryStore, Store};
use std::sync::LazyLock;

static RT: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().unwrap());
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("fuzz")
        .build(AnyStore::from(MemoryStore::with_max_entries(1_000).unwrap()))
        .unwrap()
});

fuzz_target!(|data: &[u8]| {
    RT.block_on(async {
        let key = CACHE.full_key("k").unwrap();
        CACHE
            .store()
            .set(&key, data.to_vec().into(), None)
            .await
            .unwrap();
        let _: Option<serde_json::Value> = CACHE.get("k").await;
        let _: Option<String> = CACHE.get("k").await;
    });
});
