//! `Cache-Control` (and `Vary`) on requests and responses through the response cache: the input
//! is response header lines, an empty line, then request header lines.
#![no_main]
use axum::Router;
use axum::routing::get;
use libfuzzer_sys::fuzz_target;
use nilecare_cache::http::ResponseCacheLayer;
use nilecare_cache::{AnyStore, Cache, MemoryStore};
use std::sync::LazyLock;
use tower::ServiceExt;

static RT: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().unwrap());

fn lines(bytes: &[u8]) -> Vec<http::HeaderValue> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| http::HeaderValue::from_bytes(l).ok())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == b"\n\n").unwrap_or(data.len());
    let response_lines = lines(&data[..split]);
    let request_lines = lines(data.get(split + 2..).unwrap_or_default());
    let cache: Cache = Cache::builder()
        .name("fuzz")
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap();
    let handler = move || {
        let response_lines = response_lines.clone();
        async move {
            let mut response = axum::response::Response::new(axum::body::Body::from("body"));
            for (i, value) in response_lines.into_iter().enumerate() {
                let name = if i % 3 == 2 { http::header::VARY } else { http::header::CACHE_CONTROL };
                response.headers_mut().append(name, value);
            }
            response
        }
    };
    let app = Router::new()
        .route("/r", get(handler))
        .layer(ResponseCacheLayer::new(cache));
    RT.block_on(async {
        for _ in 0..2 {
            let mut request = http::Request::get("/r");
            for value in &request_lines {
                request = request.header(http::header::CACHE_CONTROL, value.clone());
            }
            let response = app
                .clone()
                .oneshot(request.body(axum::body::Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(response.status().is_success());
        }
    });
});
