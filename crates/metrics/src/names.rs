//! Names of the HTTP metrics this crate records, and the default histogram buckets.

/// Histogram of server request durations (seconds), labels `method`, `route`, `status`.
pub const HTTP_SERVER_REQUEST_DURATION_SECONDS: &str = "http_server_request_duration_seconds";
/// Gauge of requests in flight, labels `method`, `route`.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";

/// The `route` label of requests that matched no route (404s of unknown paths): one series,
/// whatever the path, so scanners cannot explode cardinality.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// OpenTelemetry's recommended buckets for HTTP durations, in seconds.
pub const HTTP_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
