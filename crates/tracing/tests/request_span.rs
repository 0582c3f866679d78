//! With the exporter on and the logger above INFO (nothing records the server span of a request
//! that is not sampled), the request-id layer makes its own span; inside a request that is not
//! sampled the exporter does not build it (its parent is never sampled): the span carries no
//! OpenTelemetry context of its own. A sampled request runs in its exported server span. The
//! subscriber is the global one, as `init` and the orchestrator install it.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use axum::Router;
use axum::routing::get;
use nilecare_logger::RequestIdLayer;
use nilecare_test_support::http::{request, serve};
use nilecare_tracing::{ServerTraceLayer, TracingConfig, init};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[tokio::test(flavor = "current_thread")]
async fn the_exporter_builds_no_request_id_span_inside_a_request_not_sampled() {
    let (receiver, _spans) = nilecare_test_support::otlp::collector_on_own_thread();
    let guard = init(
        &TracingConfig::new("request-span")
            .endpoint(format!("http://{receiver}"))
            .sample_ratio(0.0),
    )
    .unwrap();
    let (dispatch, _log_guard, _logs) = support::logged_at(&guard, "error");
    tracing::dispatcher::set_global_default(dispatch).unwrap();
    let app: Router = Router::new()
        .route(
            "/where",
            get(|| async {
                // The current span's name, and whether the exporter built it (it then has a
                // span context of its own).
                let span = tracing::Span::current();
                let name = span.metadata().map_or("none", |m| m.name());
                let built = span.context().span().span_context().is_valid();
                format!("{name} built={built}")
            }),
        )
        .layer(RequestIdLayer::new())
        .layer(ServerTraceLayer::new());
    let addr = serve(app).await;
    // Not sampled (ratio 0, no caller): the request-id layer's span, not built for export.
    let unsampled = request(addr, "GET", "/where", &[], b"").await;
    assert_eq!(unsampled.text(), "request built=false");
    // A sampled caller is followed: the handler runs in the server span.
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let sampled = request(addr, "GET", "/where", &[("traceparent", parent)], b"").await;
    assert_eq!(sampled.text(), "HTTP request built=true");
    // An unsampled caller is followed too: nothing built.
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let unsampled = request(addr, "GET", "/where", &[("traceparent", parent)], b"").await;
    assert_eq!(unsampled.text(), "request built=false");
}
