//! The log level filters log lines, never traces: with the logger at `error`, every request is
//! still traced and exported, and the INFO lines stay out of the log.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use nilecare_test_support::eventually;
use nilecare_test_support::http::{get as http_get, serve};
use nilecare_tracing::{ServerTraceLayer, TracingConfig, init};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_traced_when_the_log_level_is_error() {
    let (receiver, spans) = support::collector().await;
    let guard =
        init(&TracingConfig::new("quiet-svc").endpoint(format!("http://{receiver}"))).unwrap();
    let (dispatch, _log_guard, logs) = support::logged_at(&guard, "error");
    tracing::dispatcher::set_global_default(dispatch).unwrap();

    let app = serve(
        Router::new()
            .route(
                "/patients/{id}",
                get(|| async {
                    tracing::info!("patient loaded");
                    tracing::error!("chart store slow");
                    "patient"
                }),
            )
            .layer(ServerTraceLayer::new().response_traceparent(true)),
    )
    .await;
    let response = http_get(app, "/patients/7").await;
    let traceparent = response.header("traceparent").expect("a traced response");
    guard.flush();

    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();
    let exported = eventually(Duration::from_secs(10), || {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.name == "GET /patients/{id}" && s.trace_id == trace_id);
        async move { found }
    })
    .await;
    assert!(
        exported,
        "no server span exported: {:?}",
        spans.lock().unwrap()
    );
    let text = logs.text();
    assert!(
        !text.contains("patient loaded"),
        "an INFO line at level error: {text}"
    );
    assert!(text.contains("chart store slow"), "{text}");
    assert!(
        text.contains(&trace_id),
        "the ERROR line carries the trace id: {text}"
    );
}
