//! Property tests: a tenant view never reads, writes, matches or deletes a key of another tenant
//! or of the global view, whatever characters the tenant id, key or pattern contain (`%`, `:`,
//! `{`, `}`, `*`, `?`, `[`, `\`, `@`, non-ASCII, empty). 10 000 cases on the memory store (its
//! glob follows Redis' rules), 300 on a real Redis (Redis' own `SCAN MATCH`).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use nilecare_cache::{AnyStore, Cache, MemoryStore};
use nilecare_test_support::RedisServer;
use proptest::prelude::*;

/// Text built from the characters that could break key or pattern escaping.
fn hostile() -> impl Strategy<Value = String> {
    "(%3A|[%:{}*?\\[\\]\\\\@abé名 ^!-]){0,8}"
}

/// What the other tenant and the global view hold; the tenant under test may do anything to its
/// own keys, but these must stay exactly as they are.
async fn isolated(cache: &Cache, a: &str, b: &str, key: &str, pattern: &str) -> Result<(), String> {
    let (Ok(view_a), Ok(view_b)) = (cache.for_tenant(a), cache.for_tenant(b)) else {
        return Ok(()); // an invalid tenant id is an error, never a view
    };
    if a == b {
        return Ok(());
    }
    let mut bystanders: Vec<(&Cache, String, String)> = Vec::new();
    for (view, who) in [(&view_b, "b"), (cache, "global")] {
        for k in [key.to_owned(), format!("{who}-own"), "*".to_owned()] {
            if view.set(&k, &format!("{who}:{k}"), None).await.is_ok() {
                bystanders.push((view, k.clone(), format!("{who}:{k}")));
            }
        }
    }
    let own = view_a.set(key, &"a".to_owned(), None).await.is_ok();
    // What the tenant sees of its own key is its own value, never a bystander's.
    let seen = read(&view_a, key).await?;
    if own && seen.as_deref() != Some("a") {
        return Err(format!("tenant {a:?} read {seen:?} under {key:?}"));
    }
    let _ = view_a.invalidate_pattern(pattern).await;
    let _ = view_a.invalidate_pattern("*").await;
    let _ = view_a.del(key).await;
    let _ = view_a.invalidate_tag(pattern).await;
    let _ = view_a.flush_all().await;
    for (view, k, value) in bystanders {
        let now = read(view, &k).await?;
        if now.as_deref() != Some(value.as_str()) {
            return Err(format!(
                "tenant {a:?} (pattern {pattern:?}, key {key:?}) changed {k:?} of {:?}: {now:?}",
                view.tenant()
            ));
        }
    }
    Ok(())
}

/// The value under `k`, read with `try_get`: `get` fails open, so a read that timed out on a
/// busy machine would look like a deleted key. A failed read is retried; only an answer counts.
async fn read(view: &Cache, k: &str) -> Result<Option<String>, String> {
    let mut last = String::new();
    for _ in 0..5 {
        match view.try_get::<String>(k).await {
            Ok(value) => return Ok(value),
            // A key the view refuses holds nothing (what `get` answers too).
            Err(nilecare_cache::Error::InvalidKey { .. }) => return Ok(None),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(format!("{k:?} could not be read five times: {last}"))
}

fn memory_cache() -> Cache {
    Cache::builder()
        .name("isolation")
        .build(AnyStore::from(
            MemoryStore::with_max_entries(1_000).unwrap(),
        ))
        .unwrap()
}

/// The same cache for every case (building a store per case would dominate the run).
static MEMORY: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(memory_cache);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Full keys of distinct tenants (and of the global view) never coincide.
    #[test]
    fn full_keys_of_different_views_never_coincide(a in hostile(), b in hostile(), k1 in hostile(), k2 in hostile()) {
        let cache = &*MEMORY;
        if let (Ok(va), Ok(vb)) = (cache.for_tenant(&a), cache.for_tenant(&b)) {
            if let (Ok(fa), Ok(fb), Ok(fg)) = (va.full_key(&k1), vb.full_key(&k2), cache.full_key(&k2)) {
                prop_assert_ne!(&fa, &fg, "tenant {:?} key {:?} = global key {:?}", a, k1, k2);
                if a != b {
                    prop_assert_ne!(&fa, &fb, "tenants {:?} {:?} keys {:?} {:?}", a, b, k1, k2);
                }
            }
        }
    }
}

/// Runs `cases` generated cases against `cache`, flushing it between cases.
fn run_isolation(rt: &tokio::runtime::Runtime, cache: &Cache, cases: u32) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(
            &(hostile(), hostile(), hostile(), hostile()),
            |(a, b, key, pattern)| {
                let outcome = rt.block_on(async {
                    let result = isolated(cache, &a, &b, &key, &pattern).await;
                    let _ = cache.flush_all().await;
                    result
                });
                prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn a_tenant_never_reaches_another_tenant_or_the_global_view_in_memory() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    run_isolation(&rt, &memory_cache(), 10_000);
}

#[test]
fn a_tenant_never_reaches_another_tenant_or_the_global_view_on_redis() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let store = rt.block_on(support::redis_store(&server));
    let cache: Cache = Cache::builder()
        .name("isolation")
        .build(AnyStore::from(store))
        .unwrap();
    run_isolation(&rt, &cache, 300);
}
