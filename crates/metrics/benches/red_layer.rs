//! Per-request cost of the RED layer: the same router with and without it, driven as a tower
//! service, with the Prometheus recorder installed (so registry lookups are included).
//!
//! `cargo bench -p nilecare-metrics --bench red_layer`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_metrics::{HttpMetricsLayer, Metrics};

fn router() -> Router {
    Router::new().route("/api/v1/patients/{id}", get(|| async { "patient" }))
}

fn red_layer(c: &mut Criterion) {
    let _metrics = Metrics::builder()
        .service("bench")
        .process_metrics(false)
        .install()
        .expect("install recorder");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("red_layer_per_request");
    let bare = router();
    let layered = router().layer(HttpMetricsLayer::new());
    for (label, app) in [("bare_router", bare), ("with_red_layer", layered)] {
        group.bench_function(label, |b| {
            b.to_async(&rt)
                .iter(|| nilecare_test_support::http::oneshot_get(&app, "/api/v1/patients/42"))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = red_layer
}
criterion_main!(benches);
