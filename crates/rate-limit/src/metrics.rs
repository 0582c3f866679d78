//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_ratelimit_decisions_total` | counter | `policy`, `result` = `allowed` / `limited` / `shadow_limited` / `fallback` |
//! | `nilecare_ratelimit_check_duration_seconds` | histogram | `policy`, `backend` (Redis checks only) |
//! | `nilecare_ratelimit_layer_failures_total` | counter | `reason` = `unavailable` / `invalid_input` / `no_peer_address`, `action` = `allowed` / `denied` |
//! | `nilecare_ratelimit_tenant_decisions_total` | counter | `tenant` (bounded by nilecare-metrics' `TenantLabels`), `result` = `allowed` / `limited` (the layer, requests carrying a `RequestTenant`) |

use crate::decision::Decision;
use crate::quota::Policy;

/// The names, defined once in nilecare-metrics' catalogue (with their type, labels and help).
pub use nilecare_metrics::names::rate_limit::{
    CHECK_DURATION_SECONDS, DECISIONS_TOTAL, LAYER_FAILURES_TOTAL, TENANT_DECISIONS_TOTAL,
};

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-rate-limit");
}

/// Why the layer could not check a request (the `reason` label).
#[cfg(feature = "axum")]
#[derive(Clone, Copy, Debug)]
pub(crate) enum LayerFailure {
    /// The backend was down or too slow.
    Unavailable,
    /// The limiter rejected the check's input.
    InvalidInput,
    /// Keyed by peer IP, but the server provides no peer address.
    NoPeerAddress,
}

#[cfg(feature = "axum")]
impl LayerFailure {
    /// Counts one request the layer `allowed` through or denied.
    pub(crate) fn record(self, allowed: bool) {
        let reason = match self {
            LayerFailure::Unavailable => "unavailable",
            LayerFailure::InvalidInput => "invalid_input",
            LayerFailure::NoPeerAddress => "no_peer_address",
        };
        let action = if allowed { "allowed" } else { "denied" };
        metrics::counter!(LAYER_FAILURES_TOTAL, "reason" => reason, "action" => action)
            .increment(1);
    }
}

/// The decision counters and the Redis check duration of one policy (handles cached per
/// recorder: a registry lookup costs about as much as a whole in-memory check).
#[derive(Debug)]
pub(crate) struct DecisionCounters {
    counters: nilecare_metrics::CachedCounters<4>,
    /// `backend="redis"`: only remote backends are timed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_durations: nilecare_metrics::CachedHistograms<1>,
}

/// The `result` labels, in counter order.
const RESULTS: [&str; 4] = ["allowed", "limited", "shadow_limited", "fallback"];

impl DecisionCounters {
    pub(crate) fn new(policy: &str) -> Self {
        let label =
            |result: &str| vec![("policy", policy.to_owned()), ("result", result.to_owned())];
        DecisionCounters {
            counters: nilecare_metrics::CachedCounters::new(DECISIONS_TOTAL, RESULTS.map(label)),
            redis_durations: nilecare_metrics::CachedHistograms::new(
                CHECK_DURATION_SECONDS,
                [vec![
                    ("policy", policy.to_owned()),
                    ("backend", "redis".to_owned()),
                ]],
            ),
        }
    }
}

/// The index in `RESULTS` of `decision.result_label()`, without comparing strings.
#[inline]
fn result_index(decision: &Decision) -> usize {
    if decision.fallback {
        3
    } else if decision.shadow_limited {
        2
    } else if decision.allowed {
        0
    } else {
        1
    }
}

#[inline]
pub(crate) fn record(policy: &Policy, decision: &Decision) {
    policy
        .inner()
        .metrics
        .counters
        .increment(result_index(decision), 1);
}

/// Records the duration of a check against Redis.
#[cfg(feature = "redis")]
pub(crate) fn redis_duration(policy: &Policy, elapsed: std::time::Duration) {
    policy
        .inner()
        .metrics
        .redis_durations
        .record(0, elapsed.as_secs_f64());
}

/// Counts one layer decision for a request with a tenant (its label bounded by the
/// `TenantLabels` of the request's `RequestTenant`).
#[cfg(feature = "axum")]
pub(crate) fn tenant_decision(tenant: &nilecare_metrics::RequestTenant, allowed: bool) {
    static DECISIONS: std::sync::LazyLock<nilecare_metrics::TenantCounters> =
        std::sync::LazyLock::new(|| {
            nilecare_metrics::TenantCounters::new(TENANT_DECISIONS_TOTAL, &["allowed", "limited"])
        });
    DECISIONS.increment(tenant, usize::from(!allowed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_index_names_the_result_label() {
        for bits in 0..8u8 {
            let d = Decision {
                allowed: bits & 1 != 0,
                limit: 1,
                remaining: 0,
                reset_after: std::time::Duration::ZERO,
                retry_after: None,
                shadow_limited: bits & 2 != 0,
                fallback: bits & 4 != 0,
            };
            assert_eq!(RESULTS[result_index(&d)], d.result_label(), "{d:?}");
        }
    }
}
