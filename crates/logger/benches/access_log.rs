//! Per-request cost of the access line: a router with the request id and access log layers,
//! driven as a tower service, JSON logging at INFO to a file through the background writer (as
//! a service runs in production), against the same router and logger with the access target
//! filtered out, same run.
//!
//! `cargo bench -p nilecare-logger --bench access_log`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_logger::{AccessLogLayer, Format, Logger, RequestIdLayer, Rotation, Writer};

fn router() -> Router {
    Router::new()
        .route("/api/v1/patients/{id}", get(|| async { "patient" }))
        .layer(AccessLogLayer::new().quiet(["/health"]))
        .layer(RequestIdLayer::new())
}

fn access_log(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let directory =
        std::env::temp_dir().join(format!("nilecare-access-bench-{}", std::process::id()));
    let app = router();
    for (label, filter) in [
        ("access_log/filtered_out", "info,nilecare::access=off"),
        ("access_log/written", "info"),
    ] {
        let (dispatch, guard) = Logger::builder()
            .service("bench")
            .ignore_rust_log()
            .filter(filter)
            .format(Format::Json)
            .writer(Writer::File {
                directory: directory.clone(),
                prefix: label.replace('/', "-"),
                rotation: Rotation::Never,
            })
            .build()
            .expect("logger");
        tracing::dispatcher::with_default(&dispatch, || {
            c.bench_function(label, |b| {
                b.to_async(&rt)
                    .iter(|| nilecare_test_support::http::oneshot_get(&app, "/api/v1/patients/42"))
            });
        });
        drop(guard);
    }
    let _ = std::fs::remove_dir_all(&directory);
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = access_log
}
criterion_main!(benches);
