//! The router and its middleware, in the documented order (docs/architecture.md): request id →
//! access log → tracing → metrics → rate limit → error handling → routes. Versioning runs
//! before routing; the response cache sits right around the API routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use nilecare::cache::http::{ResponseCacheLayer, stats_handler};
use nilecare::error_handler::{ProblemConfig, ProblemLayer, catch_panic_layer, not_found};
use nilecare::logger::{AccessLogLayer, RequestIdLayer};
use nilecare::metrics::{HttpMetricsLayer, Metrics};
use nilecare::rate_limit::{Policy, Quota, RateLimitLayer};
use nilecare::tracing::TraceLayer;
use tower::ServiceBuilder;

use super::{AppState, routes};

/// The API routes of one version prefix.
fn api() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/patients",
            get(routes::list_patients).post(routes::create_patient),
        )
        .route(
            "/patients/{id}",
            get(routes::get_patient)
                .put(routes::update_patient)
                .delete(routes::delete_patient),
        )
        .route("/appointments", get(routes::appointments))
        .route("/billing/invoices", get(routes::invoices))
}

/// The whole service.
pub fn router(
    state: Arc<AppState>,
    metrics: &Metrics,
    rate_limit_per_minute: u32,
    cache_ttl: Duration,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let mut cache_layer = ResponseCacheLayer::new(state.cache.clone())
        .default_ttl(cache_ttl)
        .tenant_header(http::HeaderName::from_static("x-clinic-id"));
    for version in ["v1", "v2"] {
        cache_layer = cache_layer
            .tag_route(
                &format!("/api/{version}/patients/{{id}}"),
                &["patient:{id}", "patients"],
            )?
            .tag_route(&format!("/api/{version}/patients"), &["patients"])?;
    }
    let policy = Policy::new("api", Quota::per_minute(u64::from(rate_limit_per_minute))?)?;
    // Each stack goes on with one `layer` call: axum boxes a route's service once per call and
    // clones the boxes on every request, so one call per stack keeps that to one box.
    let api_stack = ServiceBuilder::new()
        .layer(catch_panic_layer())
        .layer(RateLimitLayer::new(state.limiter.clone()).policy(policy))
        .layer(ProblemLayer::new(ProblemConfig::default()));
    let api = Router::new()
        .nest("/api/v1", api())
        .nest("/api/v2", api())
        .route("/api/v1/cache/stats", stats_handler(state.cache.clone()))
        .layer(cache_layer)
        // Not cached: the benchmark's measure of the middleware stack alone.
        .route("/api/v1/hello", get(routes::hello))
        .route_layer(api_stack);
    let operations = Router::new()
        .route("/health", get(routes::health))
        .route("/ready", get(routes::ready))
        .route(
            "/demo/{service}/failure",
            axum::routing::post(routes::demo_failure),
        )
        .merge(metrics.router());
    let outer_stack = ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        .layer(AccessLogLayer::new().quiet(["/health", "/ready", "/metrics"]))
        .layer(TraceLayer::new().response_traceparent(true))
        .layer(
            HttpMetricsLayer::new()
                .exclude_path("/metrics")
                .exclude_path("/health"),
        );
    Ok(api
        .merge(operations)
        .fallback(not_found)
        .with_state(state)
        .layer(outer_stack))
}
