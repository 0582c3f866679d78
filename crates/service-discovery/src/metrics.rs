//! Metric names and recording (through the `metrics` facade; the application installs the
//! exporter, e.g. nilecare-metrics).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_discovery_instances` | gauge | `service`, `status` = `up` / `draining` / `down` / `ejected` |
//! | `nilecare_discovery_selections_total` | counter | `service` |
//! | `nilecare_discovery_ejections_total` | counter | `service` |
//! | `nilecare_discovery_health_checks_total` | counter | `service`, `result` = `success` / `failure` / `timeout` |

/// The names, defined once in nilecare-metrics' catalogue (with their type, labels and help).
pub use nilecare_metrics::names::service_discovery::{
    EJECTIONS_TOTAL, HEALTH_CHECKS_TOTAL, INSTANCES, SELECTIONS_TOTAL,
};

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-service-discovery");
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
