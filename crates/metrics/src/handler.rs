//! The `/metrics` endpoint.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::recorder::Metrics;

/// Content type of the Prometheus text exposition format 0.0.4.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Handler rendering the exposition: `.route("/metrics", get(metrics_handler)).with_state(metrics)`,
/// or use [`Metrics::router`].
pub async fn metrics_handler(State(metrics): State<Metrics>) -> Response {
    ([(CONTENT_TYPE, TEXT_FORMAT)], metrics.render()).into_response()
}

impl Metrics {
    /// A router serving `GET /metrics`; merge it into your app: `app.merge(metrics.router())`.
    pub fn router<S>(&self) -> Router<S> {
        self.router_at("/metrics")
    }

    /// Like [`router`](Metrics::router) at another path.
    pub fn router_at<S>(&self, path: &str) -> Router<S> {
        Router::new()
            .route(path, get(metrics_handler))
            .with_state(self.clone())
    }

    /// A router serving the JSON [`Summary`](crate::Summary) at `path` (e.g.
    /// `/api/v1/metrics/summary`) with the `top` busiest tenants, `Cache-Control: no-store`.
    pub fn summary_router<S>(&self, path: &str, top: usize) -> Router<S> {
        Router::new()
            .route(path, get(summary_handler))
            .with_state((self.clone(), top))
    }
}

async fn summary_handler(State((metrics, top)): State<(Metrics, usize)>) -> Response {
    let body = serde_json::to_vec(&metrics.summary(top)).unwrap_or_default();
    (
        [
            (CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
