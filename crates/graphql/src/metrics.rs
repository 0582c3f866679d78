//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_graphql_operations_total` | counter | `operation` = a tracked operation name or `other`, `type` = `query` / `mutation` / `subscription` / `unknown`, `result` = `ok` / `error` / `rejected` |
//! | `nilecare_graphql_operation_duration_seconds` | histogram | `operation`, `type` |
//! | `nilecare_graphql_cost_checks_total` | counter | `result` = `allowed` / `limited` / `unavailable` |
//! | `nilecare_graphql_persisted_queries_total` | counter | `result` = `hit` / `miss` / `registered` / `mismatch` / `refused` |
//!
//! `ok`: no error; `error`: executed with field errors (partial data); `rejected`: refused
//! before execution (parse, validation, limits, rate limit, unknown persisted query).

/// The names, defined once in nilecare-metrics' catalogue (with their types, labels and help).
pub use nilecare_metrics::names::graphql::{
    COST_CHECKS_TOTAL, OPERATION_DURATION_SECONDS, OPERATIONS_TOTAL, PERSISTED_QUERIES_TOTAL,
};

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-graphql");
}

#[cfg(any(feature = "rate-limit", feature = "persisted-queries"))]
pub(crate) fn count(name: &'static str, result: &'static str) {
    metrics::counter!(name, "result" => result).increment(1);
}
