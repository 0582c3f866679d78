//! `GET /api/v1/cache/stats`: a cache's counters as JSON.

use axum::Json;
use axum::routing::{MethodRouter, get};
use serde::Serialize;

use crate::cache::Cache;
use crate::store::Store;

#[derive(Serialize)]
struct StatsBody {
    cache: String,
    store: &'static str,
    hits: u64,
    misses: u64,
    hit_rate: f64,
    sets: u64,
    deletes: u64,
    errors: u64,
    evictions: u64,
    loads: u64,
    load_errors: u64,
    refreshes: u64,
}

/// A ready `GET` handler answering with the cache's counters:
/// `router.route("/api/v1/cache/stats", stats_handler(cache.clone()))`. The answer carries
/// `Cache-Control: no-store`: a response cache (this crate's included) never stores it.
pub fn stats_handler<S: Store, St: Clone + Send + Sync + 'static>(
    cache: Cache<S>,
) -> MethodRouter<St> {
    get(move || {
        let s = cache.stats();
        let body = StatsBody {
            cache: cache.name().to_owned(),
            store: cache.store().kind(),
            hits: s.hits,
            misses: s.misses,
            hit_rate: s.hit_rate(),
            sets: s.sets,
            deletes: s.deletes,
            errors: s.errors,
            evictions: s.evictions,
            loads: s.loads,
            load_errors: s.load_errors,
            refreshes: s.refreshes,
        };
        std::future::ready((
            [(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            )],
            Json(body),
        ))
    })
}
