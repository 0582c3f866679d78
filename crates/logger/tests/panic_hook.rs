//! `Logger::log_panics`: a panic is one JSON log line (message, location, the request's id),
//! never Rust's plain-text message; a panic caught by `catch_panic_layer` is logged once.
//! Its own test binary: it installs the global subscriber and the panic hook.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use nilecare_error_handler::catch_panic_layer;
use nilecare_logger::{Format, Logger, RequestIdLayer, Writer};
use nilecare_test_support::http::{request, serve};
use nilecare_test_support::logs::LogBuffer;
use tower::ServiceBuilder;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_one_json_line_with_the_request_id() {
    let logs = LogBuffer::new();
    let _guard = Logger::builder()
        .format(Format::Json)
        .filter("info")
        .ignore_rust_log()
        .writer(Writer::Custom(BoxMakeWriter::new(logs.clone())))
        .log_panics(true)
        .init()
        .unwrap();

    // Outside any request: still one line.
    let joined = std::thread::spawn(|| panic!("background job exploded")).join();
    assert!(joined.is_err());

    let app = Router::new()
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("handler exploded");
                }
                "unreachable"
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer::new())
                .layer(catch_panic_layer()),
        );
    let addr = serve(app).await;
    let r = request(
        addr,
        "GET",
        "/boom",
        &[("x-request-id", "panic-req-1")],
        b"",
    )
    .await;
    assert_eq!(r.status, 500);

    let lines = logs.json_lines();
    let background: Vec<_> = lines
        .iter()
        .filter(|l| l["panic_message"] == "background job exploded")
        .collect();
    assert_eq!(background.len(), 1, "{lines:#?}");
    assert_eq!(background[0]["level"], "ERROR");
    assert!(
        background[0]["panic_location"]
            .as_str()
            .unwrap()
            .contains("panic_hook.rs:"),
        "{:?}",
        background[0]
    );
    // The handler's panic: one line, carrying the request id; the 500 does not log it again.
    let about_handler: Vec<_> = lines
        .iter()
        .filter(|l| l.to_string().contains("handler exploded"))
        .collect();
    assert_eq!(about_handler.len(), 1, "one line per panic: {lines:#?}");
    assert_eq!(about_handler[0]["request_id"], "panic-req-1");
    assert_eq!(about_handler[0]["target"], "nilecare::panic");
}
