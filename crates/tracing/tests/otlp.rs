//! Two axum services and a real OTLP/HTTP receiver: one trace across both, attributes, fresh
//! roots for malformed parents, log lines carrying the exported trace id, flush on drop.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use nilecare_test_support::eventually;
use nilecare_test_support::http::{request, serve};
use nilecare_tracing::{ServerTraceLayer, TracingConfig, client_span, init, inject};
use tracing::Instrument;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_two_services() {
    let (receiver, spans) = support::collector().await;
    let guard = init(&TracingConfig::new("svc").endpoint(format!("http://{receiver}"))).unwrap();
    let (dispatch, _log_guard, logs) = support::logged(&guard);
    tracing::dispatcher::set_global_default(dispatch).unwrap();

    let b = serve(
        Router::new()
            .route(
                "/b",
                get(|| async {
                    tracing::info!("handled in b");
                    "b"
                }),
            )
            .layer(ServerTraceLayer::new()),
    )
    .await;
    let a = serve(
        Router::new()
            .route(
                "/a",
                get(move || async move {
                    let url = format!("http://{b}/b");
                    async {
                        let mut headers = HeaderMap::new();
                        inject(&mut headers);
                        let pairs: Vec<(String, String)> = headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                            .collect();
                        let refs: Vec<(&str, &str)> = pairs
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        request(b, "GET", "/b", &refs, b"").await.status
                    }
                    .instrument(client_span("GET", &url))
                    .await
                    .to_string()
                }),
            )
            .layer(ServerTraceLayer::new()),
    )
    .await;

    assert_eq!(request(a, "GET", "/a", &[], b"").await.text(), "200");
    assert_eq!(
        request(
            b,
            "GET",
            "/b",
            &[("traceparent", "00-not-a-valid-parent-01")],
            b""
        )
        .await
        .status,
        200
    );
    guard.flush();
    let got = eventually(Duration::from_secs(10), || async {
        spans.lock().unwrap().len() >= 4
    })
    .await;
    let all = spans.lock().unwrap().clone();
    assert!(got, "spans received: {all:#?}");

    let find = |name: &str, kind: i32| {
        all.iter()
            .filter(|s| s.name == name && s.kind == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let a_server = find("GET /a", SERVER).pop().expect("server span of a");
    let a_client = find("GET", CLIENT).pop().expect("client span of a");
    let b_servers = find("GET /b", SERVER);
    assert_eq!(b_servers.len(), 2, "{all:#?}");
    let b_child = b_servers
        .iter()
        .find(|s| s.parent == a_client.span_id)
        .expect("b's span under a's client span");
    assert_eq!(a_client.parent, a_server.span_id);
    assert_eq!(b_child.trace_id, a_server.trace_id);
    assert_eq!(a_client.trace_id, a_server.trace_id);
    for (key, want) in [
        ("http.request.method", "GET"),
        ("http.route", "/b"),
        ("url.path", "/b"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            b_child.attributes.get(key).map(String::as_str),
            Some(want),
            "{key}: {b_child:?}"
        );
    }
    // The malformed traceparent started a fresh root.
    let fresh = b_servers
        .iter()
        .find(|s| s.span_id != b_child.span_id)
        .unwrap();
    assert!(
        fresh.parent.is_empty() || fresh.parent == "0000000000000000",
        "{fresh:?}"
    );
    assert_ne!(fresh.trace_id, a_server.trace_id);

    // The log line written inside b's request carries the exported trace id.
    let lines = logs.json_lines();
    let in_b: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "handled in b")
        .collect();
    assert!(
        in_b.iter()
            .any(|l| l["trace_id"] == b_child.trace_id.as_str()),
        "{lines:#?}"
    );

    // Dropping the guard exports what is still buffered.
    let before = spans.lock().unwrap().len();
    assert_eq!(request(b, "GET", "/b", &[], b"").await.status, 200);
    drop(guard);
    let flushed = eventually(Duration::from_secs(5), || async {
        spans.lock().unwrap().len() > before
    })
    .await;
    assert!(flushed, "the last span was not exported on shutdown");
}
