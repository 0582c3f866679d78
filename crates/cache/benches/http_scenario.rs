//! The orchestrator scenario: an axum handler whose database call takes 20 ms, served over real
//! HTTP to 64 concurrent keep-alive clients (as wrk does), without a cache and behind
//! `ResponseCacheLayer` at a 90 % hit rate (9 of every 10 requests go to 10 hot patients, 1 to a
//! never-seen one), and the same handler without its database call as the machine's ceiling.
//! Criterion measures time per request (its inverse is the throughput); the
//! median latency of single requests of each variant is printed after the run.
//!
//! `cargo bench -p nilecare-cache --all-features --bench http_scenario`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_cache::http::ResponseCacheLayer;
use nilecare_cache::{AnyStore, Cache, MemoryStore};
use nilecare_test_support::http::{KeepAliveConnection, serve};

const CLIENTS: u64 = 64;
const DB_CALL: Duration = Duration::from_millis(20);

async fn patient(Path(id): Path<u64>) -> String {
    tokio::time::sleep(DB_CALL).await; // the database query
    format!("{{\"id\":{id},\"name\":\"patient {id}\",\"clinic\":\"clinic_7\"}}")
}

/// The same body without the database call: what this machine can serve at all (the load
/// generator shares its 2 cores).
async fn no_database(Path(id): Path<u64>) -> String {
    format!("{{\"id\":{id},\"name\":\"patient {id}\",\"clinic\":\"clinic_7\"}}")
}

fn router(variant: &str) -> Router {
    if variant == "no_database_ceiling" {
        return Router::new().route("/api/v1/patients/{id}", get(no_database));
    }
    let cached = variant != "uncached";
    let router = Router::new().route("/api/v1/patients/{id}", get(patient));
    if !cached {
        return router;
    }
    let cache: Cache = Cache::builder()
        .name("http")
        .build(AnyStore::from(
            MemoryStore::with_max_entries(1_000_000).expect("store"),
        ))
        .expect("cache");
    router.layer(ResponseCacheLayer::new(cache).default_ttl(Duration::from_secs(3600)))
}

/// Request `n` of a run: every 10th goes to a patient never asked for before.
fn path(n: u64, fresh: &AtomicU64) -> String {
    if n % 10 == 9 {
        format!(
            "/api/v1/patients/{}",
            1_000 + fresh.fetch_add(1, Ordering::Relaxed)
        )
    } else {
        format!("/api/v1/patients/{}", n % 10)
    }
}

/// Runs `iters` requests over 64 concurrent keep-alive clients; returns the wall time and records every
/// request's latency.
async fn load(
    addr: SocketAddr,
    iters: u64,
    fresh: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<Duration>>>,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS.min(iters))
        .map(|_| {
            let (next, fresh, latencies) = (next.clone(), fresh.clone(), latencies.clone());
            tokio::spawn(async move {
                let mut connection = KeepAliveConnection::connect(addr).await;
                let mut mine = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= iters {
                        break;
                    }
                    let t = Instant::now();
                    let (status, _) = connection.get(&path(n, &fresh)).await;
                    assert_eq!(status, 200);
                    mine.push(t.elapsed());
                }
                latencies.lock().expect("latencies").extend(mine);
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    started.elapsed()
}

fn median(latencies: &Mutex<Vec<Duration>>) -> Duration {
    let mut l = latencies.lock().expect("latencies").clone();
    l.sort_unstable();
    l.get(l.len() / 2).copied().unwrap_or_default()
}

fn scenario(c: &mut Criterion) {
    let rt = nilecare_test_support::bench::runtime(2);
    let mut group = c.benchmark_group("orchestrator_20ms_db_64_clients");
    let mut medians = Vec::new();
    for name in ["uncached", "cached_90pct_hits", "no_database_ceiling"] {
        let addr = rt.block_on(serve(router(name)));
        let fresh = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter_custom(|iters| load(addr, iters, fresh.clone(), latencies.clone()))
        });
        medians.push((name, median(&latencies), latencies.lock().expect("l").len()));
    }
    group.finish();
    for (name, median, n) in medians {
        println!("{name}: median latency {median:?} over {n} requests");
    }
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = scenario
}
criterion_main!(benches);
