//! Per-request cost of the RED layer: the same router with and without it, driven as a tower
//! service, with the Prometheus recorder installed (so registry lookups are included); and the
//! cost of its bounded tenant label (requests from 20 clinics by `X-Clinic-Id`, same run).
//!
//! `cargo bench -p nilecare-metrics --bench red_layer`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_metrics::{HttpMetricsLayer, Metrics, TenantFrom, TenantLabels};
use tower::ServiceExt;

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

    let mut group = c.benchmark_group("red_layer_tenant");
    let plain = router().layer(HttpMetricsLayer::new());
    let tenants = router().layer(HttpMetricsLayer::new().tenant(
        TenantLabels::new(50),
        TenantFrom::Header(http::HeaderName::from_static("x-clinic-id")),
    ));
    let clinics: Vec<String> = (0..20).map(|i| format!("clinic-{i}")).collect();
    for (label, app) in [
        ("with_red_layer", plain),
        ("with_red_layer_and_tenant", tenants),
    ] {
        let mut next = 0usize;
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| {
                next = (next + 1) % clinics.len();
                let request = http::Request::get("/api/v1/patients/42")
                    .header("x-clinic-id", clinics[next].as_str())
                    .body(axum::body::Body::empty())
                    .expect("request");
                app.clone().oneshot(request)
            })
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
