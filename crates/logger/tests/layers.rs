//! Request ids and access logs over real HTTP.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use axum::Router;
use axum::routing::get;
use nilecare_error_handler::{ApiError, ProblemConfig, ProblemLayer};
use nilecare_logger::{AccessLogLayer, Format, RequestIdLayer};
use nilecare_test_support::http::{request, serve};
use support::{Buf, logger};

fn app() -> Router {
    Router::new()
        .route(
            "/api/v1/patients/{id}",
            get(|| async {
                tracing::info!(patient_id = 7, "loading patient");
                "patient"
            }),
        )
        .route(
            "/missing",
            get(|| async { ApiError::not_found("patient 9") }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(ProblemLayer::new(ProblemConfig::default()))
        .layer(AccessLogLayer::new().quiet(["/health"]))
        .layer(RequestIdLayer::new())
}

#[tokio::test(flavor = "current_thread")]
async fn request_ids_are_accepted_replaced_and_propagated() {
    let buf = Buf::default();
    let _default = nilecare_test_support::logs::set_thread_default(logger(Format::Json, &buf));
    let addr = serve(app()).await;

    let r = request(
        addr,
        "GET",
        "/api/v1/patients/7",
        &[("x-request-id", "client-id-42")],
        b"",
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("client-id-42"));
    let long = "x".repeat(200);
    for bad in ["has space", long.as_str(), "na\u{ef}ve-id"] {
        let r = request(
            addr,
            "GET",
            "/api/v1/patients/7",
            &[("x-request-id", bad)],
            b"",
        )
        .await;
        let id = r.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    // The id reaches the handler's log lines and the error body.
    let r = request(
        addr,
        "GET",
        "/missing",
        &[("x-request-id", "trace-me-1")],
        b"",
    )
    .await;
    assert_eq!(r.json()["request_id"], "trace-me-1");
    let lines = buf.json_lines();
    let handler_line = lines
        .iter()
        .find(|l| l["message"] == "loading patient")
        .expect("handler log line");
    assert_eq!(handler_line["request_id"], "client-id-42");
    assert_eq!(handler_line["patient_id"], 7);
}

#[tokio::test(flavor = "current_thread")]
async fn one_access_line_per_request_and_quiet_paths_stay_quiet() {
    let buf = Buf::default();
    let _default = nilecare_test_support::logs::set_thread_default(logger(Format::Json, &buf));
    let addr = serve(app()).await;
    request(
        addr,
        "GET",
        "/api/v1/patients/3",
        &[("x-request-id", "acc-1")],
        b"",
    )
    .await;
    request(addr, "GET", "/health", &[], b"").await;
    request(addr, "GET", "/no/such/path", &[], b"").await;
    let access: Vec<_> = buf
        .json_lines()
        .into_iter()
        .filter(|l| l["target"] == "nilecare::access")
        .collect();
    assert_eq!(access.len(), 2, "{access:#?}");
    let a = &access[0];
    assert_eq!(a["level"], "INFO");
    assert_eq!(a["method"], "GET");
    assert_eq!(a["route"], "/api/v1/patients/{id}");
    assert_eq!(a["status"], 200);
    assert_eq!(a["bytes"], 7);
    assert_eq!(a["request_id"], "acc-1");
    assert!(a["latency_ms"].as_f64().unwrap() >= 0.0);
    // Microsecond precision: at most three decimals, never float noise like 11.903754000000001.
    let shown = a["latency_ms"].to_string();
    let decimals = shown.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= 3, "latency_ms = {shown}");
    assert_eq!(access[1]["route"], "unmatched");
    assert_eq!(access[1]["status"], 404);
}
