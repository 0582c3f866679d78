//! Tenant ids, keys and patterns: a tenant's pattern deletion never reaches another view.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nilecare_cache::{AnyStore, Cache, MemoryStore};
use std::sync::LazyLock;

static RT: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().unwrap());

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (tenant, key, pattern) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let cache: Cache = Cache::builder()
        .name("fuzz")
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap();
    RT.block_on(async {
        let other = cache.for_tenant("other").unwrap();
        other.set("kept", &1, None).await.unwrap();
        cache.set("global", &1, None).await.unwrap();
        let Ok(view) = cache.for_tenant(tenant) else { return };
        let _ = view.set(key, &2, None).await;
        let _ = view.invalidate_pattern(pattern).await;
        let _ = view.flush_all().await;
        if tenant != "other" {
            assert_eq!(other.get::<i32>("kept").await, Some(1));
        }
        assert_eq!(cache.get::<i32>("global").await, Some(1));
    });
});
