//! The server and client spans against the stable OpenTelemetry HTTP semantic conventions, and
//! one trace per request: with `ServerTraceLayer` outside `RequestIdLayer` and the access log, a
//! request exports exactly one span (no separate `request` span, no second root) and the access
//! line carries that span's trace id. Checked with a real OTLP/HTTP receiver.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use nilecare_logger::{AccessLogLayer, RequestIdLayer};
use nilecare_test_support::eventually;
use nilecare_test_support::http::{request, serve_with_connect_info};
use nilecare_tracing::{
    ServerTraceLayer, TracingConfig, client_span, init, record_client_error, record_client_response,
};
use support::Received;
use tower::ServiceBuilder;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_client_spans_follow_the_http_semantic_conventions() {
    let (receiver, spans) = support::collector().await;
    let guard = init(
        &TracingConfig::new("svc")
            .endpoint(format!("http://{receiver}"))
            .environment("test"),
    )
    .unwrap();
    let (dispatch, _log_guard, logs) = support::logged(&guard);
    tracing::dispatcher::set_global_default(dispatch).unwrap();

    let app = Router::new()
        .route(
            "/patients/{id}",
            any(|| async {
                tracing::info!("inside the handler");
                "patient"
            }),
        )
        .route(
            "/fail",
            get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "down") }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(ServerTraceLayer::new())
                .layer(RequestIdLayer::new())
                .layer(AccessLogLayer::new()),
        );
    let addr = serve_with_connect_info(app).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let with_parent = request(
        addr,
        "GET",
        "/patients/7",
        &[
            ("traceparent", parent),
            ("user-agent", "semconv-test/1.0"),
            ("x-request-id", "req-semconv-1"),
        ],
        b"",
    )
    .await;
    assert_eq!(with_parent.status, 200);
    assert_eq!(
        request(addr, "GET", "/patients/8", &[], b"").await.status,
        200
    );
    assert_eq!(
        request(addr, "PURGE", "/patients/9", &[], b"").await.status,
        200
    );
    assert_eq!(request(addr, "GET", "/fail", &[], b"").await.status, 500);
    {
        let ok = client_span("GET", "http://127.0.0.1:9/x?y=1");
        record_client_response(&ok, http::StatusCode::NOT_FOUND);
        let failed = client_span("POST", "https://billing.internal/invoices");
        record_client_error(&failed, "timeout");
    }
    guard.flush();
    let got = eventually(Duration::from_secs(10), || async {
        spans.lock().unwrap().len() >= 6
    })
    .await;
    let all = spans.lock().unwrap().clone();
    assert!(got, "spans received: {all:#?}");
    let attr = |s: &Received, key: &str| s.attributes.get(key).cloned();

    // One span for the request with a parent: the server span, under the remote parent.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let of_trace: Vec<&Received> = all.iter().filter(|s| s.trace_id == trace).collect();
    assert_eq!(of_trace.len(), 1, "one span per request: {of_trace:#?}");
    let server = of_trace[0];
    assert_eq!(server.kind, SERVER);
    assert_eq!(server.parent, "00f067aa0ba902b7");
    assert_eq!(server.name, "GET /patients/{id}");
    for (key, want) in [
        ("http.request.method", "GET".to_owned()),
        ("http.route", "/patients/{id}".to_owned()),
        ("url.path", "/patients/7".to_owned()),
        ("url.scheme", "http".to_owned()),
        ("server.address", "127.0.0.1".to_owned()),
        ("server.port", addr.port().to_string()),
        ("network.protocol.version", "1.1".to_owned()),
        ("user_agent.original", "semconv-test/1.0".to_owned()),
        ("client.address", "127.0.0.1".to_owned()),
        ("http.response.status_code", "200".to_owned()),
        ("request_id", "req-semconv-1".to_owned()),
    ] {
        assert_eq!(attr(server, key), Some(want), "{key}: {server:#?}");
    }
    assert_ne!(server.status, STATUS_ERROR);

    // Every request is exactly one span and one root: no `request` span of the request id layer.
    assert!(all.iter().all(|s| s.name != "request"), "{all:#?}");
    let roots = all
        .iter()
        .filter(|s| s.kind == SERVER && s.parent.is_empty())
        .count();
    assert_eq!(roots, 3, "one root per request without a parent: {all:#?}");

    // An unknown method is `_OTHER`, with the original kept.
    let other = all
        .iter()
        .find(|s| attr(s, "http.request.method_original").as_deref() == Some("PURGE"))
        .expect("the PURGE span");
    assert_eq!(
        attr(other, "http.request.method").as_deref(),
        Some("_OTHER")
    );
    assert_eq!(other.name, "HTTP /patients/{id}");

    // A 5xx: status Error with error.type.
    let failed = all
        .iter()
        .find(|s| attr(s, "http.route").as_deref() == Some("/fail"))
        .unwrap();
    assert_eq!(failed.status, STATUS_ERROR, "{failed:#?}");
    assert_eq!(attr(failed, "error.type").as_deref(), Some("500"));

    // Client spans: address and port from the URL; 4xx and transport errors are errors.
    let not_found = all
        .iter()
        .find(|s| s.kind == CLIENT && s.name == "GET")
        .unwrap();
    assert_eq!(
        attr(not_found, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(attr(not_found, "server.port").as_deref(), Some("9"));
    assert_eq!(
        attr(not_found, "url.full").as_deref(),
        Some("http://127.0.0.1:9/x?y=1")
    );
    assert_eq!(
        attr(not_found, "http.response.status_code").as_deref(),
        Some("404")
    );
    assert_eq!(not_found.status, STATUS_ERROR);
    let timed_out = all
        .iter()
        .find(|s| s.kind == CLIENT && s.name == "POST")
        .unwrap();
    assert_eq!(
        attr(timed_out, "server.address").as_deref(),
        Some("billing.internal")
    );
    assert_eq!(attr(timed_out, "server.port").as_deref(), Some("443"));
    assert_eq!(attr(timed_out, "error.type").as_deref(), Some("timeout"));
    assert_eq!(timed_out.status, STATUS_ERROR);

    // The access line and the handler's line carry the server span's trace id and the request
    // id, and none of the span's OpenTelemetry attributes.
    let lines = logs.json_lines();
    for message in ["request", "inside the handler"] {
        let line = lines
            .iter()
            .find(|l| l["message"] == message && l["request_id"] == "req-semconv-1")
            .unwrap_or_else(|| panic!("no {message:?} line of req-semconv-1: {lines:#?}"));
        assert_eq!(line["trace_id"], trace, "{line}");
        assert!(
            line.get("http.route").is_none() && line.get("otel.name").is_none(),
            "{line}"
        );
    }
}
