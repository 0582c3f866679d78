//! Context propagation helpers, response traceparent, baggage, and shutdown behaviour.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use http::{HeaderMap, Request};
use nilecare_test_support::http::{request, serve};
use nilecare_tracing::{
    InjectLayer, ServerTraceLayer, TracingConfig, TracingGuard, current_trace_id, extract, init,
    spawn,
};
use opentelemetry::baggage::BaggageExt;
use tower::{Service, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Tracing to a closed port, with the OpenTelemetry layer as this thread's subscriber.
fn traced() -> (TracingGuard, tracing::subscriber::DefaultGuard) {
    let guard = init(
        &TracingConfig::new("ctx-test")
            .endpoint("http://127.0.0.1:9")
            .export_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    let default = nilecare_test_support::logs::set_thread_default(subscriber);
    (guard, default)
}

#[tokio::test(flavor = "current_thread")]
async fn the_client_layer_injects_the_current_trace() {
    let (_guard, _default) = traced();
    let span = tracing::info_span!("outgoing");
    let _e = span.enter();
    let trace_id = current_trace_id().expect("inside a sampled span");
    let mut client = tower::ServiceBuilder::new()
        .layer(InjectLayer)
        .service(tower::service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.headers().clone())
        }));
    let headers: HeaderMap = client
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();
    let traceparent = headers.get("traceparent").unwrap().to_str().unwrap();
    assert!(
        traceparent.contains(&trace_id),
        "{traceparent} vs {trace_id}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn spawn_keeps_the_trace_and_plain_spawn_loses_it() {
    let (_guard, _default) = traced();
    let (outer, kept, lost) = async {
        let outer = current_trace_id();
        let kept = spawn(async { current_trace_id() }).await.unwrap();
        let lost = tokio::spawn(async { current_trace_id() }).await.unwrap();
        (outer, kept, lost)
    }
    .instrument(tracing::info_span!("parent"))
    .await;
    assert!(outer.is_some());
    assert_eq!(kept, outer, "spawn lost the trace");
    assert_eq!(lost, None, "a plain tokio::spawn runs outside the span");
}

#[tokio::test(flavor = "current_thread")]
async fn responses_can_carry_traceparent_and_baggage_is_extracted() {
    let (_guard, _default) = traced();
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(ServerTraceLayer::new().response_traceparent(true));
    let addr = serve(app).await;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = request(addr, "GET", "/x", &[("traceparent", parent)], b"").await;
    let back = r
        .header("traceparent")
        .expect("traceparent on the response");
    assert!(
        back.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{back}"
    );
    assert!(
        !back.contains("b7ad6b7169203331"),
        "the response names the server span, not the caller's"
    );

    let mut headers = HeaderMap::new();
    headers.insert("baggage", "clinic=clinic_7,tier=gold".parse().unwrap());
    let cx = extract(&headers);
    assert_eq!(
        cx.baggage().get("clinic").map(|v| v.to_string()).as_deref(),
        Some("clinic_7")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_on_a_current_thread_runtime_does_not_deadlock() {
    // The collector runs on this very runtime: while `drop(guard)` blocks the thread, it cannot
    // answer, so shutdown must give up after the export timeout instead of hanging.
    let collector = serve(Router::new().route("/v1/traces", post(|| async { "" }))).await;
    let guard = init(
        &TracingConfig::new("ct")
            .endpoint(format!("http://{collector}"))
            .export_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    nilecare_test_support::logs::with_thread_default(subscriber, || {
        let _s = tracing::info_span!("work").entered();
    });
    let started = Instant::now();
    drop(guard);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_unreachable_collector_does_not_affect_the_service() {
    let guard = init(
        &TracingConfig::new("dead")
            .endpoint("http://127.0.0.1:9")
            .export_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    let started = Instant::now();
    nilecare_test_support::logs::with_thread_default(subscriber, || {
        for i in 0..1_000 {
            let _s = tracing::info_span!("request", i).entered();
        }
    });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "spans waited for the exporter"
    );
    guard.flush();
    drop(guard);
    assert!(matches!(
        TracingConfig::new("x").sample_ratio(1.5).validate(),
        Err(nilecare_tracing::Error::InvalidConfig {
            field: "sample_ratio",
            ..
        })
    ));
    assert!(
        TracingConfig::new("x")
            .endpoint("collector:4318")
            .validate()
            .is_err()
    );
    assert!(TracingConfig::new(" ").validate().is_err());
}
