//! Sampling decided before the server span is built, against a real OTLP/HTTP receiver: a
//! request that is not sampled exports nothing (its child spans neither) yet keeps one trace id
//! in its logs, its response, its problem bodies and its outgoing calls; callers' decisions are
//! followed both ways; new roots are decided on their trace id exactly as the SDK's
//! `TraceIdRatioBased` sampler does.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use axum::routing::get;
use axum::{Extension, Router};
use http::HeaderMap;
use nilecare_error_handler::TraceId;
use nilecare_logger::RequestIdLayer;
use nilecare_test_support::http::{request, serve};
use nilecare_tracing::{
    ServerTraceLayer, TracingConfig, TracingGuard, client_span, current_span_id, current_trace_id,
    init, inject,
};
use tracing::Instrument;

/// Tracing at `ratio` to an in-test receiver, a JSON logger over it as this thread's default.
fn traced(
    ratio: f64,
) -> (
    TracingGuard,
    support::Spans,
    nilecare_test_support::logs::LogBuffer,
    (
        tracing::subscriber::DefaultGuard,
        nilecare_logger::LoggerGuard,
    ),
) {
    let (receiver, spans) = nilecare_test_support::otlp::collector_on_own_thread();
    let guard = init(
        &TracingConfig::new("sampling")
            .endpoint(format!("http://{receiver}"))
            .sample_ratio(ratio),
    )
    .unwrap();
    let (dispatch, log_guard, logs) = support::logged(&guard);
    let default = nilecare_test_support::logs::set_thread_default(dispatch);
    (guard, spans, logs, (default, log_guard))
}

/// A service whose handler logs, makes an "outgoing call" (a client span, headers injected)
/// and answers `<traceparent sent out>|<tracestate sent out>|<TraceId extension>|<trace id
/// seen by the handler>`.
fn app() -> Router {
    Router::new()
        .route(
            "/patients/{id}",
            get(|Extension(trace): Extension<TraceId>| async move {
                tracing::info!(handler_span = ?current_span_id(), "inside the handler");
                // The request's future returns `Pending` here and is polled again: the server
                // span (and the request id on it) must be current on every poll.
                tokio::task::yield_now().await;
                tracing::info!("after a yield");
                let mut headers = HeaderMap::new();
                async { inject(&mut headers) }
                    .instrument(client_span("GET", "http://billing.internal/invoices"))
                    .await;
                let sent = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                };
                format!(
                    "{}|{}|{}|{}",
                    sent("traceparent"),
                    sent("tracestate"),
                    trace.0,
                    current_trace_id().unwrap_or_default()
                )
            }),
        )
        .layer(RequestIdLayer::new())
        .layer(ServerTraceLayer::new().response_traceparent(true))
}

/// `(trace id, flags)` of a `traceparent` (flags: bit 0 sampled, bit 1 random).
fn ids(traceparent: &str) -> (String, u8) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (
        parts[1].to_owned(),
        u8::from_str_radix(parts[3], 16).unwrap(),
    )
}

/// Everything exported: a flush returns once the receiver has answered.
fn exported(guard: &TracingGuard, spans: &support::Spans) -> Vec<support::Received> {
    guard.flush();
    spans.lock().unwrap().clone()
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_not_sampled_exports_nothing_yet_keeps_one_trace_id_everywhere() {
    let (guard, spans, logs, _default) = traced(0.0);
    let addr = serve(app()).await;
    let r = request(addr, "GET", "/patients/7", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (trace_id, flags) = ids(r.header("traceparent").expect("response traceparent"));
    assert_eq!(
        flags, 0x02,
        "the response says: not sampled (a trace started here: random id)"
    );
    assert_ne!(trace_id, "0".repeat(32));
    let body = r.text();
    let parts: Vec<&str> = body.split('|').collect();
    let (sent_trace, sent_flags) = ids(parts[0]);
    assert_eq!(
        sent_trace, trace_id,
        "the outgoing call continues the trace"
    );
    assert_eq!(sent_flags, 0x02, "and tells the callee not to sample");
    assert_eq!(
        parts[2], trace_id,
        "TraceId extension (problem+json bodies)"
    );
    assert_eq!(parts[3], trace_id, "current_trace_id() in the handler");

    let lines = logs.json_lines();
    let line = lines
        .iter()
        .find(|l| l["message"] == "inside the handler")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
    assert!(
        line["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "the request id is still recorded on the (unexported) server span: {line}"
    );
    let later = lines
        .iter()
        .find(|l| l["message"] == "after a yield")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(
        (&later["trace_id"], &later["request_id"]),
        (&line["trace_id"], &line["request_id"]),
        "the next poll runs in the same request span: {later}"
    );
    let span_id = line["span_id"].as_str().unwrap();
    assert_eq!(span_id.len(), 16, "{line}");
    assert_ne!(
        span_id,
        ids_span(parts[0]),
        "the outgoing call names its own (client) span"
    );

    let got = exported(&guard, &spans);
    assert!(got.is_empty(), "nothing is exported at ratio 0: {got:#?}");
}

/// The parent-id part of a `traceparent`.
fn ids_span(traceparent: &str) -> &str {
    traceparent.split('-').nth(2).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_sampled_caller_is_followed_at_ratio_zero_with_every_attribute() {
    let (guard, spans, logs, _default) = traced(0.0);
    let addr = serve(app()).await;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = request(addr, "GET", "/patients/7", &[("traceparent", parent)], b"").await;
    let (trace_id, flags) = ids(r.header("traceparent").unwrap());
    assert_eq!(
        (trace_id.as_str(), flags),
        ("0af7651916cd43dd8448eb211c80319c", 0x01)
    );

    let got = exported(&guard, &spans);
    let server = got
        .iter()
        .find(|s| s.kind == nilecare_test_support::otlp::KIND_SERVER)
        .unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(server.name, "GET /patients/{id}");
    assert_eq!(server.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(server.parent, "b7ad6b7169203331");
    for (key, want) in [
        ("http.request.method", "GET"),
        ("http.route", "/patients/{id}"),
        ("url.path", "/patients/7"),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            server.attributes.get(key).map(String::as_str),
            Some(want),
            "{key}: {server:?}"
        );
    }
    let client = got
        .iter()
        .find(|s| s.kind == nilecare_test_support::otlp::KIND_CLIENT)
        .unwrap_or_else(|| panic!("the client span is exported too: {got:#?}"));
    assert_eq!(client.parent, server.span_id);
    // Log lines before and after the handler yields carry the request id recorded on the
    // server span (the span is current on every poll) and the exported server span's trace and
    // span ids, read from the span itself: this test's subscriber is the thread's default, not
    // the global one.
    let lines = logs.json_lines();
    let logged: Vec<_> = ["inside the handler", "after a yield"]
        .iter()
        .map(|message| {
            lines
                .iter()
                .find(|l| l["message"] == *message)
                .unwrap_or_else(|| panic!("{lines:#?}"))
        })
        .collect();
    assert!(
        logged[0]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 32),
        "{lines:#?}"
    );
    assert_eq!(
        logged[0]["request_id"], logged[1]["request_id"],
        "{lines:#?}"
    );
    for line in logged {
        assert_eq!(
            line["trace_id"], "0af7651916cd43dd8448eb211c80319c",
            "{line}"
        );
        assert_eq!(line["span_id"], server.span_id.as_str(), "{line}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_unsampled_caller_is_followed_at_ratio_one_and_its_tracestate_passed_on() {
    let (guard, spans, _logs, _default) = traced(1.0);
    let addr = serve(app()).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let r = request(
        addr,
        "GET",
        "/patients/7",
        &[("traceparent", parent), ("tracestate", "vendor=abc")],
        b"",
    )
    .await;
    let (trace_id, flags) = ids(r.header("traceparent").unwrap());
    assert_eq!(
        (trace_id.as_str(), flags),
        ("4bf92f3577b34da6a3ce929d0e0e4736", 0x00)
    );
    assert!(
        !r.header("traceparent")
            .unwrap()
            .contains("00f067aa0ba902b7"),
        "the response names this server's span, not the caller's"
    );
    let body = r.text();
    let parts: Vec<&str> = body.split('|').collect();
    assert_eq!(ids(parts[0]), (trace_id.clone(), 0x00));
    assert_eq!(parts[1], "vendor=abc", "tracestate travels on");

    let got = exported(&guard, &spans);
    assert!(got.is_empty(), "the caller said: not sampled: {got:#?}");
}

/// The SDK's `TraceIdRatioBased` rule: the trace id's low 64 bits, shifted right once, below
/// `ratio * 2^63`.
fn ratio_samples(trace_id: &str, ratio: f64) -> bool {
    let low = u64::from_str_radix(&trace_id[16..], 16).unwrap();
    (low >> 1) < (ratio * (1u64 << 63) as f64) as u64
}

#[tokio::test(flavor = "current_thread")]
async fn new_roots_are_decided_on_their_own_trace_id_as_the_sdk_decides() {
    let (guard, spans, _logs, _default) = traced(0.5);
    let addr = serve(app()).await;
    let mut sampled = Vec::new();
    let mut unsampled = Vec::new();
    for _ in 0..400 {
        let r = request(addr, "GET", "/patients/7", &[], b"").await;
        let (trace_id, flags) = ids(r.header("traceparent").unwrap());
        let is_sampled = flags & 0x01 != 0;
        assert_eq!(
            is_sampled,
            ratio_samples(&trace_id, 0.5),
            "the decision follows the trace id's bits: {trace_id} {flags:02x}"
        );
        if is_sampled {
            sampled.push(trace_id);
        } else {
            unsampled.push(trace_id);
        }
    }
    // Binomial(400, 0.5): 200 ± 10. Deciding twice (once here, again in the SDK on a trace id
    // of its own) would sample a quarter: 100 ± 9.
    assert!(
        (150..=250).contains(&sampled.len()),
        "400 roots at ratio 0.5: {} sampled",
        sampled.len()
    );
    let got = exported(&guard, &spans);
    let mut exported_servers: Vec<String> = got
        .iter()
        .filter(|s| s.kind == nilecare_test_support::otlp::KIND_SERVER)
        .map(|s| s.trace_id.clone())
        .collect();
    exported_servers.sort();
    sampled.sort();
    assert_eq!(
        exported_servers, sampled,
        "exactly the sampled requests are exported, under the trace id they answered with"
    );
    for s in &got {
        assert!(
            !unsampled.contains(&s.trace_id),
            "a span of an unsampled request was exported: {s:?}"
        );
    }
}

/// Logs `message` when dropped: where a handler's future is dropped.
struct LogOnDrop(&'static str);

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        tracing::info!(dropped = self.0, "handler future dropped");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_handler_future_is_dropped_inside_the_server_span_whether_it_answered_or_was_cancelled() {
    use tower::ServiceExt;
    let (_guard, _spans, logs, _default) = traced(1.0);
    let app: Router = Router::new()
        .route(
            "/answers",
            get(|| async {
                let _guard = LogOnDrop("answered");
                tokio::task::yield_now().await;
                "ok"
            }),
        )
        .route(
            "/never",
            get(|| async {
                let _guard = LogOnDrop("cancelled");
                std::future::pending::<&str>().await
            }),
        )
        .layer(RequestIdLayer::new())
        .layer(ServerTraceLayer::new());
    let get = |path: &str| {
        http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let answered = app.clone().oneshot(get("/answers")).await.unwrap();
    assert_eq!(answered.status(), 200);
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_millis(20),
        app.oneshot(get("/never")),
    )
    .await;
    assert!(cancelled.is_err(), "the pending handler was cancelled");
    let lines = logs.json_lines();
    let mut request_ids = Vec::new();
    for dropped in ["answered", "cancelled"] {
        let line = lines
            .iter()
            .find(|l| l["dropped"] == dropped)
            .unwrap_or_else(|| panic!("no drop line for {dropped}: {lines:#?}"));
        let id = line["request_id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(id.len(), 32, "dropped outside the server span: {line}");
        assert!(
            line["trace_id"].as_str().is_some_and(|t| t.len() == 32),
            "{line}"
        );
        request_ids.push(id);
    }
    assert_ne!(request_ids[0], request_ids[1], "two requests, two spans");
}
