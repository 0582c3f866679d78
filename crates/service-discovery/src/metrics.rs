//! Metric names and recording (through the `metrics` facade; the application installs the
//! exporter, e.g. nilecare-metrics).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_discovery_instances` | gauge | `service`, `status` = `up` / `draining` / `down` / `ejected` |
//! | `nilecare_discovery_selections_total` | counter | `service` |
//! | `nilecare_discovery_ejections_total` | counter | `service` |
//! | `nilecare_discovery_health_checks_total` | counter | `service`, `result` = `success` / `failure` / `timeout` |

/// Instances a resolver knows per service, by status.
pub const INSTANCES: &str = "nilecare_discovery_instances";
/// Instances handed out by a resolver.
pub const SELECTIONS_TOTAL: &str = "nilecare_discovery_selections_total";
/// Outlier ejections.
pub const EJECTIONS_TOTAL: &str = "nilecare_discovery_ejections_total";
/// Active health probes by result.
pub const HEALTH_CHECKS_TOTAL: &str = "nilecare_discovery_health_checks_total";

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(INSTANCES, "Known instances per service by status.");
    metrics::describe_counter!(SELECTIONS_TOTAL, "Instances handed out by a resolver.");
    metrics::describe_counter!(EJECTIONS_TOTAL, "Instances ejected by outlier detection.");
    metrics::describe_counter!(HEALTH_CHECKS_TOTAL, "Active health probes by result.");
}

/// The selections counter of `service`, its handle kept per recorder (a pick is a few tens of
/// nanoseconds; a registry lookup would cost more than the pick).
pub(crate) fn selections(service: &str) -> nilecare_metrics::CachedCounters<1> {
    nilecare_metrics::CachedCounters::new(SELECTIONS_TOTAL, [vec![("service", service.to_owned())]])
}

pub(crate) fn ejection(service: &str) {
    metrics::counter!(EJECTIONS_TOTAL, "service" => service.to_owned()).increment(1);
}

pub(crate) fn health_check(service: &str, result: &'static str) {
    metrics::counter!(HEALTH_CHECKS_TOTAL, "service" => service.to_owned(), "result" => result)
        .increment(1);
}

/// Sets the per-status instance counts of `service`.
pub(crate) fn instances(service: &str, up: usize, draining: usize, down: usize, ejected: usize) {
    for (status, n) in [
        ("up", up),
        ("draining", draining),
        ("down", down),
        ("ejected", ejected),
    ] {
        metrics::gauge!(INSTANCES, "service" => service.to_owned(), "status" => status)
            .set(n as f64);
    }
}
