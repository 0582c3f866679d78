//! Metric names and recording helpers (through the `metrics` facade: the application installs
//! the recorder, e.g. with nilecare-metrics).
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `nilecare_cache_requests_total` | counter | `cache`, `result` = `hit` / `miss` | lookups |
//! | `nilecare_cache_operation_duration_seconds` | histogram | `cache`, `operation` | time per operation of remote (Redis) stores |
//! | `nilecare_cache_errors_total` | counter | `cache`, `operation`, `kind` = `timeout` / `backend` / `decode` / `encode` / `input` | failures |
//! | `nilecare_cache_evictions_total` | counter | `cache` | entries evicted for size (memory store) |
//! | `nilecare_cache_tenant_lookups_total` | counter | `tenant` (bounded by nilecare-metrics' `TenantLabels`), `result` = `hit` / `miss` | response cache lookups of requests carrying a `RequestTenant` |
//!
//! `cache` is the name given to the builder (bounded by the application); keys never appear.

use std::time::Duration;

use metrics::SharedString;

/// The names, defined once in nilecare-metrics' catalogue (with their type, labels and help).
pub use nilecare_metrics::names::cache::{
    ERRORS_TOTAL, EVICTIONS_TOTAL, OPERATION_DURATION_SECONDS, REQUESTS_TOTAL, TENANT_LOOKUPS_TOTAL,
};

/// Registers the descriptions of every cache metric with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-cache");
}

/// Hit/miss counters of one cache, with handles cached per recorder (a registry lookup costs
/// more than the rest of a memory-store hit).
#[derive(Debug)]
pub(crate) struct LookupCounters(nilecare_metrics::CachedCounters<2>);

impl LookupCounters {
    pub(crate) fn new(cache: SharedString) -> Self {
        let label =
            |result: &str| vec![("cache", cache.to_string()), ("result", result.to_owned())];
        LookupCounters(nilecare_metrics::CachedCounters::new(
            REQUESTS_TOTAL,
            [label("hit"), label("miss")],
        ))
    }

    pub(crate) fn record(&self, hits: u64, misses: u64) {
        if hits > 0 {
            self.0.increment(0, hits);
        }
        if misses > 0 {
            self.0.increment(1, misses);
        }
    }
}

/// The `operation` labels timed on remote stores, in histogram order.
const OPERATIONS: [&str; 10] = [
    "get",
    "get_many",
    "set",
    "set_many",
    "del",
    "exists",
    "ttl",
    "invalidate_pattern",
    "set_with_tags",
    "invalidate_tag",
];

/// Operation durations of one cache, with handles cached per recorder (a registry lookup costs
/// about 4x a cached sample).
#[derive(Debug)]
pub(crate) struct OperationDurations {
    cache: SharedString,
    histograms: nilecare_metrics::CachedHistograms<10>,
}

impl OperationDurations {
    pub(crate) fn new(cache: SharedString) -> Self {
        let label = |operation: &str| {
            vec![
                ("cache", cache.to_string()),
                ("operation", operation.to_owned()),
            ]
        };
        OperationDurations {
            histograms: nilecare_metrics::CachedHistograms::new(
                OPERATION_DURATION_SECONDS,
                OPERATIONS.map(label),
            ),
            cache,
        }
    }

    pub(crate) fn record(&self, operation: &'static str, elapsed: Duration) {
        match OPERATIONS.iter().position(|o| *o == operation) {
            Some(i) => self.histograms.record(i, elapsed.as_secs_f64()),
            // An operation added without a slot is still recorded, through the registry.
            None => metrics::histogram!(OPERATION_DURATION_SECONDS, "cache" => self.cache.clone(), "operation" => operation)
                .record(elapsed.as_secs_f64()),
        }
    }
}

pub(crate) fn error(cache: &SharedString, operation: &'static str, kind: &'static str) {
    metrics::counter!(ERRORS_TOTAL, "cache" => cache.clone(), "operation" => operation, "kind" => kind)
        .increment(1);
}

pub(crate) fn evictions(cache: &SharedString, n: u64) {
    metrics::counter!(EVICTIONS_TOTAL, "cache" => cache.clone()).increment(n);
}

/// Counts one response-cache lookup of a request with a tenant (its label is bounded by the
/// `TenantLabels` of the request's `RequestTenant`).
#[cfg(feature = "axum")]
pub(crate) fn tenant_lookup(tenant: &nilecare_metrics::RequestTenant, hit: bool) {
    static LOOKUPS: std::sync::LazyLock<nilecare_metrics::TenantCounters> =
        std::sync::LazyLock::new(|| {
            nilecare_metrics::TenantCounters::new(TENANT_LOOKUPS_TOTAL, &["hit", "miss"])
        });
    LOOKUPS.increment(tenant, usize::from(!hit));
}
