//! With feature `trace-context`, `ServiceClient` sends the W3C trace context of the calling
//! span: the instance receives a `traceparent` carrying the caller's trace id.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use nilecare_service_discovery::{
    MemoryRegistry, Registry, Resolver, ServiceClient, ServiceInstance,
};
use nilecare_tracing::{TracingConfig, current_trace_id, init};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "current_thread")]
async fn the_callee_receives_the_callers_trace() {
    // Spans are recorded; export goes to a closed port and is irrelevant here.
    let guard = init(
        &TracingConfig::new("client-trace-test")
            .endpoint("http://127.0.0.1:9")
            .export_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let _default = nilecare_test_support::logs::set_thread_default(
        tracing_subscriber::registry().with(guard.layer()),
    );

    let app = Router::new().route(
        "/echo",
        get(|headers: HeaderMap| async move {
            headers
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        }),
    );
    let addr = nilecare_test_support::http::serve(app).await;
    let registry = MemoryRegistry::default();
    let _r = registry
        .register(ServiceInstance::new("echo", "e-1", format!("http://{addr}")).unwrap())
        .await
        .unwrap();
    let client =
        ServiceClient::builder(Arc::new(Resolver::builder(registry).build().unwrap())).build();

    let span = tracing::info_span!("handler");
    let (trace_id, traceparent) = async {
        let trace_id = current_trace_id().expect("inside a sampled span");
        let response = client.get("echo", "/echo").await.unwrap();
        (
            trace_id,
            String::from_utf8(response.body().to_vec()).unwrap(),
        )
    }
    .instrument(span)
    .await;
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent:?} should carry {trace_id}"
    );
}
