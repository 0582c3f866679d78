//! Names of the HTTP metrics this crate records, and the default histogram buckets.

/// Histogram of server request durations (seconds), labels `method`, `route`, `status`.
pub const HTTP_SERVER_REQUEST_DURATION_SECONDS: &str = "http_server_request_duration_seconds";
/// Gauge of requests in flight, labels `method`, `route`.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";

/// The label of a request's tenant on the RED histogram and the tenant families of the cache
/// and rate-limit layers (see [`tenant`](crate::tenant)).
pub const TENANT_LABEL: &str = "tenant";

/// The `route` label of requests that matched no route (404s of unknown paths): one series,
/// whatever the path, so scanners cannot explode cardinality.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// OpenTelemetry's recommended buckets for HTTP durations, in seconds.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The metrics of `nilecare-cache` (re-exported by its `metrics` module).
pub mod cache {
    /// Lookups by result.
    pub const REQUESTS_TOTAL: &str = "nilecare_cache_requests_total";
    /// Duration of each operation.
    pub const OPERATION_DURATION_SECONDS: &str = "nilecare_cache_operation_duration_seconds";
    /// Failures by operation and kind.
    pub const ERRORS_TOTAL: &str = "nilecare_cache_errors_total";
    /// Size evictions of the memory store.
    pub const EVICTIONS_TOTAL: &str = "nilecare_cache_evictions_total";
    /// Response cache lookups by tenant and result (the HTTP layer, with a request tenant).
    pub const TENANT_LOOKUPS_TOTAL: &str = "nilecare_cache_tenant_lookups_total";
}

/// The metrics of `nilecare-rate-limit` (re-exported by its `metrics` module).
pub mod rate_limit {
    /// Decisions by policy and result.
    pub const DECISIONS_TOTAL: &str = "nilecare_ratelimit_decisions_total";
    /// Duration of checks against a remote backend.
    pub const CHECK_DURATION_SECONDS: &str = "nilecare_ratelimit_check_duration_seconds";
    /// Requests the layer could not check, by reason and what it did with them.
    pub const LAYER_FAILURES_TOTAL: &str = "nilecare_ratelimit_layer_failures_total";
    /// The layer's decisions by tenant and result (with a request tenant).
    pub const TENANT_DECISIONS_TOTAL: &str = "nilecare_ratelimit_tenant_decisions_total";
}

/// The metrics of `nilecare-circuit-breaker` (re-exported by its `metrics` module).
pub mod circuit_breaker {
    /// Current state per breaker (one series per state, 1 for the current one).
    pub const STATE: &str = "nilecare_circuit_breaker_state";
    /// Calls by result.
    pub const CALLS_TOTAL: &str = "nilecare_circuit_breaker_calls_total";
    /// Transitions.
    pub const TRANSITIONS_TOTAL: &str = "nilecare_circuit_breaker_transitions_total";
    /// Whether a shared breaker is using the shared state (1) or deciding locally (0).
    pub const SHARED_AVAILABLE: &str = "nilecare_circuit_breaker_shared_available";
}

/// The metrics of `nilecare-service-discovery` (re-exported by its `metrics` module).
pub mod service_discovery {
    /// Instances a resolver knows per service, by status.
    pub const INSTANCES: &str = "nilecare_discovery_instances";
    /// Instances handed out by a resolver.
    pub const SELECTIONS_TOTAL: &str = "nilecare_discovery_selections_total";
    /// Outlier ejections.
    pub const EJECTIONS_TOTAL: &str = "nilecare_discovery_ejections_total";
    /// Active health probes by result.
    pub const HEALTH_CHECKS_TOTAL: &str = "nilecare_discovery_health_checks_total";
}

/// The metrics of `nilecare-auth` (re-exported by its `metrics` module).
pub mod auth {
    /// Token verifications by result.
    pub const VERIFICATIONS_TOTAL: &str = "nilecare_auth_verifications_total";
    /// Key set (JWKS) fetches by result.
    pub const JWKS_FETCHES_TOTAL: &str = "nilecare_auth_jwks_fetches_total";
    /// When an issuer's key set was last fetched (Unix seconds): key age is `time() - this`.
    pub const JWKS_FETCHED_TIMESTAMP_SECONDS: &str = "nilecare_auth_jwks_fetched_timestamp_seconds";
    /// Revocation state synchronisations with the shared store, by result.
    pub const REVOCATION_SYNCS_TOTAL: &str = "nilecare_auth_revocation_syncs_total";
}

/// The metrics of `nilecare-messaging` (re-exported by its `metrics` module).
pub mod messaging {
    /// Messages published, by topic and result.
    pub const PUBLISHED_TOTAL: &str = "nilecare_messaging_published_total";
    /// Deliveries settled, by topic, group and result (acked, retried, dead_lettered).
    pub const SETTLED_TOTAL: &str = "nilecare_messaging_settled_total";
    /// Handler run time, by topic and group.
    pub const HANDLER_DURATION_SECONDS: &str = "nilecare_messaging_handler_duration_seconds";
    /// Messages taken over from a consumer that held them past the visibility timeout.
    pub const RECLAIMED_TOTAL: &str = "nilecare_messaging_reclaimed_total";
    /// Messages delivered to a group and not yet settled (retries waiting included).
    pub const PENDING_MESSAGES: &str = "nilecare_messaging_pending_messages";
    /// Messages not yet delivered to a group.
    pub const LAG_MESSAGES: &str = "nilecare_messaging_lag_messages";
    /// Dead letters kept for a group.
    pub const DEAD_LETTERS: &str = "nilecare_messaging_dead_letters";
    /// Sagas started and finished, by saga and result (started, completed, compensated, failed).
    pub const SAGAS_TOTAL: &str = "nilecare_messaging_sagas_total";
}

/// The metrics of `nilecare-graphql` (re-exported by its `metrics` module).
pub mod graphql {
    /// GraphQL operations by operation name (bounded), type and result.
    pub const OPERATIONS_TOTAL: &str = "nilecare_graphql_operations_total";
    /// Time from receiving an operation to its response, by operation name and type.
    pub const OPERATION_DURATION_SECONDS: &str = "nilecare_graphql_operation_duration_seconds";
    /// Complexity charged to the rate limiter, by result (allowed, limited, unavailable).
    pub const COST_CHECKS_TOTAL: &str = "nilecare_graphql_cost_checks_total";
    /// Persisted query lookups and registrations by result.
    pub const PERSISTED_QUERIES_TOTAL: &str = "nilecare_graphql_persisted_queries_total";
}

/// The metrics of `nilecare-versioning` (re-exported by its `metrics` module).
pub mod versioning {
    /// Requests by negotiated version and where the version came from.
    pub const REQUESTS_TOTAL: &str = "nilecare_versioning_requests_total";
}
