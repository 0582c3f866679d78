//! The current trace context: ids, injection into outgoing headers, extraction from incoming ones.

use http::HeaderMap;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The trace id of the current span (32 hex digits), `None` outside a sampled trace.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The span id of the current span (16 hex digits).
pub fn current_span_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.span_id().to_string())
}

/// Writes the current span's context (`traceparent`, `tracestate`, `baggage`) into outgoing
/// request headers, so the callee continues the trace. Call it inside a client span.
pub fn inject(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// The parent context carried by incoming headers (an empty context when absent or malformed:
/// the request then starts a new trace).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// A client span for an outgoing call (`otel.kind = client`); enter it, then [`inject`].
pub fn client_span(method: &str, url: &str) -> tracing::Span {
    tracing::info_span!(
        "HTTP client request",
        otel.name = %format!("{method}"),
        otel.kind = "client",
        http.request.method = %method,
        url.full = %url,
        http.response.status_code = tracing::field::Empty,
    )
}

#[cfg(feature = "logger")]
pub(crate) fn logger_context() -> Option<nilecare_logger::TraceContext> {
    Some(nilecare_logger::TraceContext {
        trace_id: current_trace_id()?,
        span_id: current_span_id()?,
    })
}
