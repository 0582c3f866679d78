//! The catalogue of every metric the NileCare crates emit. The README table, the Grafana
//! dashboard and the alert rules are checked against it by tests.

use crate::names::{self, HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION_SECONDS};

/// A metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic counter (`_total`).
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Bucketed distribution (`_bucket`, `_sum`, `_count` series).
    Histogram,
}

/// One catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricInfo {
    /// The metric name as exposed.
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its labels (all bounded: no raw paths, keys or ids).
    pub labels: &'static [&'static str],
    /// The crate that emits it.
    pub emitted_by: &'static str,
    /// What it means.
    pub help: &'static str,
}

const fn m(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    emitted_by: &'static str,
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        labels,
        emitted_by,
        help,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric, grouped by crate.
pub const CATALOGUE: &[MetricInfo] = &[
    m(
        HTTP_SERVER_REQUEST_DURATION_SECONDS,
        Histogram,
        &["method", "route", "status", "tenant"],
        "nilecare-metrics",
        "Duration of HTTP server requests, by route template (and bounded tenant, when configured).",
    ),
    m(
        HTTP_SERVER_ACTIVE_REQUESTS,
        Gauge,
        &["method", "route"],
        "nilecare-metrics",
        "HTTP server requests in flight.",
    ),
    m(
        "process_cpu_seconds_total",
        Counter,
        &[],
        "nilecare-metrics",
        "CPU time used by the process.",
    ),
    m(
        "process_resident_memory_bytes",
        Gauge,
        &[],
        "nilecare-metrics",
        "Resident memory of the process.",
    ),
    m(
        "process_virtual_memory_bytes",
        Gauge,
        &[],
        "nilecare-metrics",
        "Virtual memory of the process.",
    ),
    m(
        "process_virtual_memory_max_bytes",
        Gauge,
        &[],
        "nilecare-metrics",
        "Virtual memory limit of the process (unlimited: not set).",
    ),
    m(
        "process_open_fds",
        Gauge,
        &[],
        "nilecare-metrics",
        "Open file descriptors.",
    ),
    m(
        "process_max_fds",
        Gauge,
        &[],
        "nilecare-metrics",
        "File descriptor limit.",
    ),
    m(
        "process_threads",
        Gauge,
        &[],
        "nilecare-metrics",
        "OS threads of the process.",
    ),
    m(
        "process_start_time_seconds",
        Gauge,
        &[],
        "nilecare-metrics",
        "Start time of the process (Unix seconds).",
    ),
    m(
        names::cache::REQUESTS_TOTAL,
        Counter,
        &["cache", "result"],
        "nilecare-cache",
        "Cache lookups by result (hit, miss).",
    ),
    m(
        names::cache::OPERATION_DURATION_SECONDS,
        Histogram,
        &["cache", "operation"],
        "nilecare-cache",
        "Duration of operations on remote (Redis) cache stores.",
    ),
    m(
        names::cache::ERRORS_TOTAL,
        Counter,
        &["cache", "operation", "kind"],
        "nilecare-cache",
        "Cache failures by kind (timeout, backend, decode, encode, input).",
    ),
    m(
        names::cache::EVICTIONS_TOTAL,
        Counter,
        &["cache"],
        "nilecare-cache",
        "Entries evicted from the memory store for size.",
    ),
    m(
        names::cache::TENANT_LOOKUPS_TOTAL,
        Counter,
        &["tenant", "result"],
        "nilecare-cache",
        "Response cache lookups per bounded tenant (hit, miss).",
    ),
    m(
        names::rate_limit::DECISIONS_TOTAL,
        Counter,
        &["policy", "result"],
        "nilecare-rate-limit",
        "Rate-limit decisions (allowed, limited, shadow_limited, fallback).",
    ),
    m(
        names::rate_limit::CHECK_DURATION_SECONDS,
        Histogram,
        &["policy", "backend"],
        "nilecare-rate-limit",
        "Duration of rate-limit checks.",
    ),
    m(
        names::rate_limit::LAYER_FAILURES_TOTAL,
        Counter,
        &["reason", "action"],
        "nilecare-rate-limit",
        "Requests the rate-limit layer could not check (unavailable, invalid_input, no_peer_address) and whether it allowed or denied them.",
    ),
    m(
        names::rate_limit::TENANT_DECISIONS_TOTAL,
        Counter,
        &["tenant", "result"],
        "nilecare-rate-limit",
        "Rate-limit layer decisions per bounded tenant (allowed, limited).",
    ),
    m(
        names::circuit_breaker::STATE,
        Gauge,
        &["name", "state"],
        "nilecare-circuit-breaker",
        "1 for the current state of each breaker (closed, open, half_open, disabled, forced_open, metrics_only), 0 otherwise.",
    ),
    m(
        names::circuit_breaker::CALLS_TOTAL,
        Counter,
        &["name", "result"],
        "nilecare-circuit-breaker",
        "Calls through a breaker (success, failure, slow, rejected, ignored).",
    ),
    m(
        names::circuit_breaker::SHARED_AVAILABLE,
        Gauge,
        &["name"],
        "nilecare-circuit-breaker",
        "1 while a shared breaker uses the Redis state, 0 while it decides locally.",
    ),
    m(
        names::circuit_breaker::TRANSITIONS_TOTAL,
        Counter,
        &["name", "from", "to"],
        "nilecare-circuit-breaker",
        "State transitions of each breaker.",
    ),
    m(
        names::service_discovery::INSTANCES,
        Gauge,
        &["service", "status"],
        "nilecare-service-discovery",
        "Known instances per service by status (up, draining, down, ejected).",
    ),
    m(
        names::service_discovery::HEALTH_CHECKS_TOTAL,
        Counter,
        &["service", "result"],
        "nilecare-service-discovery",
        "Active health probes (success, failure, timeout).",
    ),
    m(
        names::service_discovery::SELECTIONS_TOTAL,
        Counter,
        &["service"],
        "nilecare-service-discovery",
        "Instances handed out by a resolver.",
    ),
    m(
        names::service_discovery::EJECTIONS_TOTAL,
        Counter,
        &["service"],
        "nilecare-service-discovery",
        "Instances ejected by passive outlier detection.",
    ),
    m(
        names::messaging::PUBLISHED_TOTAL,
        Counter,
        &["topic", "result"],
        "nilecare-messaging",
        "Messages published (ok, duplicate: dropped by the publisher's dedup window, error).",
    ),
    m(
        names::messaging::SETTLED_TOTAL,
        Counter,
        &["topic", "group", "result"],
        "nilecare-messaging",
        "Deliveries settled by a consumer group (acked, retried, dead_lettered).",
    ),
    m(
        names::messaging::HANDLER_DURATION_SECONDS,
        Histogram,
        &["topic", "group"],
        "nilecare-messaging",
        "Message handler run time in seconds.",
    ),
    m(
        names::messaging::RECLAIMED_TOTAL,
        Counter,
        &["topic", "group"],
        "nilecare-messaging",
        "Messages taken over from a consumer that held them past the visibility timeout.",
    ),
    m(
        names::messaging::PENDING_MESSAGES,
        Gauge,
        &["topic", "group"],
        "nilecare-messaging",
        "Messages delivered to a consumer group and not yet settled (retries waiting included).",
    ),
    m(
        names::messaging::LAG_MESSAGES,
        Gauge,
        &["topic", "group"],
        "nilecare-messaging",
        "Messages not yet delivered to a consumer group.",
    ),
    m(
        names::messaging::DEAD_LETTERS,
        Gauge,
        &["topic", "group"],
        "nilecare-messaging",
        "Dead letters kept for a consumer group.",
    ),
    m(
        names::messaging::SAGAS_TOTAL,
        Counter,
        &["saga", "result"],
        "nilecare-messaging",
        "Sagas started and finished (started, completed, compensated, failed).",
    ),
    m(
        names::graphql::OPERATIONS_TOTAL,
        Counter,
        &["operation", "type", "result"],
        "nilecare-graphql",
        "GraphQL operations by name (the busiest named operations, the rest `other`), type (query, mutation, subscription, unknown) and result (ok, error, rejected).",
    ),
    m(
        names::graphql::OPERATION_DURATION_SECONDS,
        Histogram,
        &["operation", "type"],
        "nilecare-graphql",
        "GraphQL operation duration, from parsing to the response, in seconds.",
    ),
    m(
        names::graphql::COST_CHECKS_TOTAL,
        Counter,
        &["result"],
        "nilecare-graphql",
        "Complexity budget checks (allowed, limited, unavailable).",
    ),
    m(
        names::graphql::PERSISTED_QUERIES_TOTAL,
        Counter,
        &["result"],
        "nilecare-graphql",
        "Persisted query lookups and registrations (hit, miss, registered, mismatch, refused).",
    ),
    m(
        names::versioning::REQUESTS_TOTAL,
        Counter,
        &["version", "source"],
        "nilecare-versioning",
        "API requests by negotiated version (v1, v2, ..., unsupported) and its source (url, header, accept, default).",
    ),
    m(
        names::auth::VERIFICATIONS_TOTAL,
        Counter,
        &["result"],
        "nilecare-auth",
        "Token verifications (ok, expired, invalid_signature, unknown_key, key_mismatch, algorithm, malformed, too_large, not_yet_valid, wrong_issuer_or_audience, invalid_claims, revoked, unavailable).",
    ),
    m(
        names::auth::JWKS_FETCHES_TOTAL,
        Counter,
        &["result"],
        "nilecare-auth",
        "Loads of an issuer's key set (ok: from the provider, shared: another instance's fetch through the shared cache, error).",
    ),
    m(
        names::auth::JWKS_FETCHED_TIMESTAMP_SECONDS,
        Gauge,
        &["issuer"],
        "nilecare-auth",
        "When the provider was asked for each configured issuer's key set in use (Unix seconds); key age is time() minus this.",
    ),
    m(
        names::auth::REVOCATION_SYNCS_TOTAL,
        Counter,
        &["result"],
        "nilecare-auth",
        "Reads of the shared revocation log (ok, error).",
    ),
];

/// Looks a metric up by name (also accepts the `_bucket`, `_sum`, `_count` series of histograms).
pub fn lookup(series: &str) -> Option<&'static MetricInfo> {
    CATALOGUE.iter().find(|m| {
        m.name == series
            || (m.kind == Histogram
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| series.strip_suffix(suffix) == Some(m.name)))
    })
}

/// Registers the help text (and the unit, for durations) of every catalogued metric, the other
/// crates' included, with the current recorder: a scrape then has `# HELP` for every family.
#[cfg(feature = "exporter")]
#[cfg(feature = "exporter")]
pub(crate) fn describe_all() {
    CATALOGUE.iter().for_each(describe_one);
}

/// Registers, with the current recorder, the description (help text, and the unit of
/// histograms) of every catalogued metric emitted by the crate named `emitted_by` (e.g.
/// `"nilecare-cache"`): each crate's `metrics::describe()` is this call.
pub fn describe_emitted_by(emitted_by: &str) {
    CATALOGUE
        .iter()
        .filter(|m| m.emitted_by == emitted_by)
        .for_each(describe_one);
}

fn describe_one(m: &MetricInfo) {
    match m.kind {
        Counter => metrics::describe_counter!(m.name, m.help),
        Gauge => metrics::describe_gauge!(m.name, m.help),
        Histogram => metrics::describe_histogram!(m.name, metrics::Unit::Seconds, m.help),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for m in CATALOGUE {
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            match m.kind {
                Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
            if m.emitted_by != "nilecare-metrics" {
                assert!(m.name.starts_with("nilecare_"), "{}", m.name);
            }
        }
        assert!(lookup("http_server_request_duration_seconds_bucket").is_some());
        assert!(
            lookup("http_server_requests_total").is_none(),
            "the histogram's _count counts requests"
        );
    }
}
