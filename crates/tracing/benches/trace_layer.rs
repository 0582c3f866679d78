//! Per-request cost of the server tracing layer (a router driven as a tower service), sampling
//! 0 % and 100 %, against the same router without it, same run; and, as the anchor for the
//! sampled case, tower-http's `TraceLayer` (its span at INFO) exported through the same
//! `tracing-opentelemetry` layer and provider.
//!
//! `cargo bench -p nilecare-tracing --bench trace_layer`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_tracing::{ServerTraceLayer, TracingConfig, init};
use tracing_subscriber::layer::SubscriberExt;

fn router() -> Router {
    Router::new().route("/api/v1/patients/{id}", get(|| async { "patient" }))
}

fn drive(c: &mut Criterion, label: &str, app: Router, dispatch: &tracing::Dispatch) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::dispatcher::with_default(dispatch, || {
        c.bench_function(label, |b| {
            b.to_async(&rt)
                .iter(|| nilecare_test_support::http::oneshot_get(&app, "/api/v1/patients/42"))
        });
    });
}

fn trace_layer(c: &mut Criterion) {
    let none = tracing::Dispatch::new(tracing_subscriber::registry());
    drive(c, "trace_layer/bare_router", router(), &none);
    // Spans go to a batch exporter pointed at a closed port: export cost stays off the request path.
    for (label, ratio) in [
        ("trace_layer/sampled_0", 0.0),
        ("trace_layer/sampled_100", 1.0),
    ] {
        let guard = init(
            &TracingConfig::new("bench")
                .endpoint("http://127.0.0.1:9")
                .sample_ratio(ratio),
        )
        .expect("tracing");
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(guard.layer()));
        drive(c, label, router().layer(ServerTraceLayer::new()), &dispatch);
        if ratio == 1.0 {
            let tower_http = router().layer(
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(
                        tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO),
                    )
                    .on_response(
                        tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                    ),
            );
            drive(
                c,
                "trace_layer/tower_http_sampled_100",
                tower_http,
                &dispatch,
            );
        }
        drop(guard);
    }
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = trace_layer
}
criterion_main!(benches);
