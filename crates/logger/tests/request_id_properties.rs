//! Property test (10 000 cases): whatever a client sends as `X-Request-Id` (any bytes a header
//! can hold, several lines), the request gets exactly one sane id, the client's own only when it
//! is sane, and nothing panics.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use nilecare_error_handler::{RequestId, sane_request_id};
use nilecare_logger::RequestIdLayer;
use proptest::prelude::*;
use tower::ServiceExt;

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|axum::Extension(id): axum::Extension<RequestId>| async move { id.0 }),
        )
        .layer(RequestIdLayer::new())
}

#[test]
fn any_incoming_request_id_gives_one_sane_id() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = app();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(10_000));
    let values = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..160), 0..3);
    runner
        .run(&values, |values| {
            let mut request = http::Request::get("/");
            let mut sent = Vec::new();
            for v in &values {
                if let Ok(v) = http::HeaderValue::from_bytes(v) {
                    sent.push(v.clone());
                    request = request.header("x-request-id", v);
                }
            }
            let request = request.body(axum::body::Body::empty()).unwrap();
            let response = rt.block_on(app.clone().oneshot(request)).unwrap();
            let echoed: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
            prop_assert_eq!(echoed.len(), 1);
            let id = echoed[0].to_str().unwrap().to_owned();
            prop_assert!(sane_request_id(&id), "{:?}", id);
            let seen = rt
                .block_on(axum::body::to_bytes(response.into_body(), 1024))
                .unwrap();
            prop_assert_eq!(seen.as_ref(), id.as_bytes(), "the handler saw another id");
            let first = sent
                .first()
                .and_then(|v| v.to_str().ok())
                .filter(|v| sane_request_id(v));
            match first {
                Some(client) => prop_assert_eq!(&id, client),
                None => prop_assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())),
            }
            Ok(())
        })
        .unwrap();
}
