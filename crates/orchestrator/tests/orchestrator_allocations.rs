//! Heap allocations the orchestrator's middleware stack adds to a request, counted by dhat's
//! allocator (alone in its binary) against a bare axum route served and called the same way.
//!
//! Each allocation is CPU time under load; the stack once added 98 per request because every
//! `Router::layer` call boxed each route again and axum clones those boxes per request.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use nilecare_orchestrator as service;
mod support;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Blocks allocated per request over `n` requests of `path` by `client`.
async fn blocks_per_request(client: &support::Client, path: &str, n: u64) -> f64 {
    for _ in 0..50 {
        assert_eq!(client.get(path).await.status, 200); // warm up: handles, buffers
    }
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..n {
        client.get(path).await;
    }
    (dhat::HeapStats::get().total_blocks - before) as f64 / n as f64
}

#[tokio::test(flavor = "current_thread")]
async fn the_middleware_stack_adds_few_allocations_per_request() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let metrics = nilecare::metrics::Metrics::builder()
        .service("orchestrator")
        .install()
        .unwrap();
    // As the benchmark runs it: JSON logs at `error`, no span exporter.
    let _log = nilecare::logger::Logger::builder()
        .service("orchestrator")
        .filter("error")
        .init()
        .unwrap();
    let mut settings = support::settings(None);
    settings.rate_limit_per_minute = 1_000_000;
    let app = service::start(settings, &metrics).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let bare =
            axum::Router::new().route("/api/v1/hello", axum::routing::get(|| async { "hello" }));
        axum::serve(listener, bare).await.unwrap();
    });

    let bare = blocks_per_request(&support::Client::new(bare_addr), "/api/v1/hello", 1000).await;
    let stack = blocks_per_request(&support::Client::new(app.addr), "/api/v1/hello", 1000).await;
    let added = stack - bare;
    eprintln!("bare {bare:.1}, stack {stack:.1}: the stack adds {added:.1} blocks per request");
    // Measured: 36 (request id, headers, extensions, the rate-limit check, one boxed stack per
    // route). One `Router::layer` call per middleware instead of one per stack adds 37 more;
    // versioning through `axum::middleware::from_fn` (a boxed stack and future per request) 10.
    assert!(
        added < 45.0,
        "the stack adds {added:.1} allocations per request"
    );
    app.shutdown().await;
}
