//! Incoming `X-Request-Id` values (one header line per input line).
#![no_main]
use axum::Router;
use axum::routing::get;
use libfuzzer_sys::fuzz_target;
use nilecare_logger::RequestIdLayer;
use std::sync::LazyLock;
use tower::ServiceExt;

static RT: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().unwrap());

fuzz_target!(|data: &[u8]| {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RequestIdLayer::new());
    let mut request = http::Request::get("/");
    for line in data.split(|&b| b == b'\n') {
        if let Ok(value) = http::HeaderValue::from_bytes(line) {
            request = request.header("x-request-id", value);
        }
    }
    let response = RT
        .block_on(app.oneshot(request.body(axum::body::Body::empty()).unwrap()))
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(nilecare_error_handler_sane(id));
});

fn nilecare_error_handler_sane(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}
