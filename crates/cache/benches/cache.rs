//! Cache throughput against its anchors, measured in the same run:
//! - memory `get` hit through `Cache` vs raw `moka::future::Cache::get` on the same bytes;
//! - Redis get/set through `Cache` vs raw fred GET/SET on the same pool, 64 concurrent tasks;
//! - a 4 KiB JSON value set+get with gzip vs without;
//! - a `TieredStore` get served from L1 vs a `MemoryStore` get, both through `Cache`.
//!
//! `cargo bench -p nilecare-cache --all-features --bench cache`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nilecare_cache::{Cache, Compression, MemoryStore, RedisStore, Store, TieredStore};
use nilecare_redis::fred::interfaces::KeysInterface;
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::RedisServer;
use nilecare_test_support::bench::{runtime, spread_over_tasks};

#[derive(serde::Serialize, serde::Deserialize)]
struct Patient {
    id: u32,
    name: String,
    clinic: String,
    active: bool,
}

/// The per-entry expiry shape of `MemoryStore` (a TTL decided at insert).
struct FixedTtl;

impl moka::Expiry<String, Bytes> for FixedTtl {
    fn expire_after_create(&self, _: &String, _: &Bytes, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(300))
    }
}

fn memory_get(c: &mut Criterion) {
    let rt = runtime(2);
    let mut group = c.benchmark_group("memory_get_hit");
    // Typed cache over the memory store.
    let store = MemoryStore::with_max_entries(10_000).expect("store");
    let cache = Cache::builder().jitter(0.0).build(store).expect("cache");
    // Raw moka holding the very bytes the cache stores: as built by default (no expiry), and
    // with the same per-entry expiry policy the memory store uses (which makes moka read its
    // clock on every access).
    let raw: moka::future::Cache<String, Bytes> = moka::future::Cache::new(10_000);
    let raw_ttl: moka::future::Cache<String, Bytes> = moka::future::Cache::builder()
        .max_capacity(10_000)
        .expire_after(FixedTtl)
        .build();
    rt.block_on(async {
        cache.set("patients:1", &7u32, None).await.expect("set");
        let stored = cache
            .store()
            .get(&cache.full_key("patients:1").expect("key"))
            .await;
        let stored = stored.expect("get").expect("hit");
        raw.insert("nilecare:cache:patients:1".to_owned(), stored.clone())
            .await;
        raw_ttl
            .insert("nilecare:cache:patients:1".to_owned(), stored)
            .await;
        let p = Patient {
            id: 1,
            name: "Amina Hassan".into(),
            clinic: "clinic_7".into(),
            active: true,
        };
        cache.set("patients:2", &p, None).await.expect("set");
    });
    group.bench_function("raw_moka", |b| {
        b.to_async(&rt)
            .iter(|| async { raw.get("nilecare:cache:patients:1").await })
    });
    group.bench_function("raw_moka_per_entry_ttl", |b| {
        b.to_async(&rt)
            .iter(|| async { raw_ttl.get("nilecare:cache:patients:1").await })
    });
    group.bench_function("cache_u32", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.get::<u32>("patients:1").await })
    });
    group.bench_function("cache_struct", |b| {
        b.to_async(&rt)
            .iter(|| async { cache.get::<Patient>("patients:2").await })
    });
    group.finish();
}

fn tiered_get(c: &mut Criterion) {
    let rt = runtime(2);
    let server = RedisServer::start();
    let (memory, tiered) = rt.block_on(async {
        let memory = Cache::builder()
            .jitter(0.0)
            .build(MemoryStore::with_max_entries(10_000).expect("store"))
            .expect("cache");
        let config = RedisConfig::from_url(&server.url()).expect("url");
        let l2 = RedisStore::new(connect(&config).await.expect("connect"));
        let store = TieredStore::builder(l2, &config)
            .l1_ttl(Duration::from_secs(3600))
            .build()
            .await
            .expect("tiered");
        let tiered = Cache::builder().jitter(0.0).build(store).expect("cache");
        memory.set("patients:1", &7u32, None).await.expect("set");
        tiered.set("patients:1", &7u32, None).await.expect("set");
        (memory, tiered)
    });
    let mut group = c.benchmark_group("tiered_get_l1_hit");
    group.bench_function("memory_store", |b| {
        b.to_async(&rt)
            .iter(|| async { memory.get::<u32>("patients:1").await })
    });
    group.bench_function("tiered_store", |b| {
        b.to_async(&rt)
            .iter(|| async { tiered.get::<u32>("patients:1").await })
    });
    group.finish();
    drop(server);
}

const TASKS: u64 = 64;

fn redis_get_set(c: &mut Criterion) {
    let server = RedisServer::start();
    redis_get_set_on(c, "redis_64_tasks", &server.url());
    drop(server);
}

/// The same on a real 3-primary cluster (the get key on one primary, the set keys spread
/// over all three), against raw fred on the same cluster pool.
fn redis_cluster_get_set(c: &mut Criterion) {
    let cluster = nilecare_test_support::RedisCluster::start(3);
    redis_get_set_on(c, "redis_cluster_64_tasks", &cluster.url());
    drop(cluster);
}

fn redis_get_set_on(c: &mut Criterion, group_name: &str, url: &str) {
    let rt = runtime(2);
    let pool = rt.block_on(async {
        connect(&RedisConfig::from_url(url).expect("url").with_pool_size(4))
            .await
            .expect("connect")
    });
    let cache = Cache::builder()
        .jitter(0.0)
        .build(
            RedisStore::builder(pool.clone())
                .read_timeout(Duration::from_secs(1))
                .build()
                .expect("store"),
        )
        .expect("cache");
    rt.block_on(async {
        cache.set("patients:1", &7u32, None).await.expect("set");
        let _: () = pool
            .set(
                "raw:patients:1",
                Bytes::from_static(b"\x01\x007"),
                None,
                None,
                false,
            )
            .await
            .expect("raw set");
    });
    let mut group = c.benchmark_group(group_name);
    group.throughput(criterion::Throughput::Elements(1));
    let p = pool.clone();
    group.bench_function("raw_fred_get", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let p = p.clone();
            async move {
                spread_over_tasks(TASKS, iters, false, move |_| {
                    let p = p.clone();
                    async move {
                        let _: Option<Bytes> = p.get("raw:patients:1").await.expect("get");
                    }
                })
                .await
                .elapsed
            }
        })
    });
    let c1 = cache.clone();
    group.bench_function("cache_get", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let c1 = c1.clone();
            async move {
                spread_over_tasks(TASKS, iters, false, move |_| {
                    let c1 = c1.clone();
                    async move {
                        assert_eq!(c1.get::<u32>("patients:1").await, Some(7));
                    }
                })
                .await
                .elapsed
            }
        })
    });
    let p = pool.clone();
    group.bench_function("raw_fred_set", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let p = p.clone();
            async move {
                spread_over_tasks(TASKS, iters, false, move |i| {
                    let p = p.clone();
                    async move {
                        let _: () = p
                            .set(
                                format!("raw:k:{}", i % 1000),
                                Bytes::from_static(b"\x01\x007"),
                                Some(nilecare_redis::fred::types::Expiration::PX(300_000)),
                                None,
                                false,
                            )
                            .await
                            .expect("set");
                    }
                })
                .await
                .elapsed
            }
        })
    });
    let c2 = cache.clone();
    group.bench_function("cache_set", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let c2 = c2.clone();
            async move {
                spread_over_tasks(TASKS, iters, false, move |i| {
                    let c2 = c2.clone();
                    async move {
                        c2.set(&format!("k:{}", i % 1000), &7u32, None)
                            .await
                            .expect("set");
                    }
                })
                .await
                .elapsed
            }
        })
    });
    group.finish();
}

fn gzip_threshold(c: &mut Criterion) {
    let rt = runtime(2);
    let value: Vec<Patient> = (0..58)
        .map(|i| Patient {
            id: i,
            name: format!("Patient number {i}"),
            clinic: "clinic_7".into(),
            active: i % 2 == 0,
        })
        .collect();
    let json_len = serde_json::to_vec(&value).expect("json").len();
    let mut group = c.benchmark_group(format!("set_get_{json_len}_byte_json"));
    for (label, compression) in [
        ("plain", Compression::disabled()),
        ("gzip_level_1", Compression::gzip().level(1)),
        ("gzip_level_6", Compression::gzip()),
    ] {
        let cache = Cache::builder()
            .jitter(0.0)
            .compression(compression)
            .build(MemoryStore::with_max_entries(1_000).expect("store"))
            .expect("cache");
        rt.block_on(async {
            cache.set("records:1", &value, None).await.expect("set");
            let stored = cache
                .store()
                .get(&cache.full_key("records:1").expect("key"))
                .await;
            let stored = stored.expect("get").expect("hit").len();
            eprintln!("{label}: {json_len} byte JSON stored as {stored} bytes");
        });
        group.bench_with_input(BenchmarkId::from_parameter(label), &cache, |b, cache| {
            b.to_async(&rt).iter(|| async {
                cache.set("records:1", &value, None).await.expect("set");
                cache.get::<Vec<Patient>>("records:1").await.expect("hit")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = memory_get, redis_get_set, redis_cluster_get_set, gzip_threshold, tiered_get
}
criterion_main!(benches);
