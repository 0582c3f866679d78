//! The current trace context: ids, injection into outgoing headers, extraction from incoming ones.

use http::HeaderMap;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderInjector;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The OpenTelemetry context of the current span; inside a request that is not sampled (whose
/// server span the exporter never sees), the request's own context, current while it runs.
pub(crate) fn current_context() -> opentelemetry::Context {
    // The server span of a request that is not sampled is known by its target: its context is
    // the current OpenTelemetry one (read without looking the span up or cloning it).
    let unsampled = tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .current_span()
            .metadata()
            .is_some_and(|meta| meta.target() == crate::sampling::UNSAMPLED_TARGET)
    });
    if unsampled {
        return opentelemetry::Context::current();
    }
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        cx
    } else {
        opentelemetry::Context::current()
    }
}

/// The trace id of the current span (32 hex digits), `None` outside a trace. Inside a request
/// that is not sampled it is still the request's trace id (the one propagated to callees).
pub fn current_trace_id() -> Option<String> {
    let cx = current_context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| crate::hex::hex(&sc.trace_id().to_bytes()))
}

/// The span id of the current span (16 hex digits).
pub fn current_span_id() -> Option<String> {
    let cx = current_context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| crate::hex::hex(&sc.span_id().to_bytes()))
}

/// Writes the current span's context (`traceparent`, `tracestate`, `baggage`) into outgoing
/// request headers, so the callee continues the trace. Call it inside a client span.
pub fn inject(headers: &mut HeaderMap) {
    let cx = current_context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// The parent context carried by incoming headers (an empty context when absent or malformed:
/// the request then starts a new trace).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&RequestHeaders(headers)))
}

/// The headers the W3C propagators read, their names parsed once.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");
const BAGGAGE: http::HeaderName = http::HeaderName::from_static("baggage");

/// An [`Extractor`](opentelemetry::propagation::Extractor) over request headers, answering
/// exactly as `opentelemetry_http::HeaderExtractor`, without parsing the names the W3C
/// propagators ask for on every request (a `&str` name is parsed and validated per lookup).
struct RequestHeaders<'a>(&'a HeaderMap);

impl RequestHeaders<'_> {
    fn all(&self, key: &str) -> http::header::GetAll<'_, http::HeaderValue> {
        match key {
            "traceparent" => self.0.get_all(&TRACEPARENT),
            "tracestate" => self.0.get_all(&TRACESTATE),
            "baggage" => self.0.get_all(&BAGGAGE),
            other => self.0.get_all(other),
        }
    }
}

impl opentelemetry::propagation::Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.all(key).iter().next()?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let mut values = self.all(key).iter().peekable();
        values.peek()?;
        Some(values.filter_map(|value| value.to_str().ok()).collect())
    }
}

/// A client span for an outgoing call (`otel.kind = client`) with the stable OpenTelemetry HTTP
/// client attributes `http.request.method`, `url.full`, `server.address` and `server.port`
/// (from the URL); enter it, then [`inject`]. Record the outcome with
/// [`record_client_response`] or [`record_client_error`].
pub fn client_span(method: &str, url: &str) -> tracing::Span {
    let parsed: Option<http::Uri> = url.parse().ok();
    let host = parsed.as_ref().and_then(http::Uri::host);
    let port = parsed.as_ref().and_then(|u| {
        u.port_u16().or(match u.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })
    });
    tracing::info_span!(
        "HTTP client request",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.full = %url,
        server.address = host,
        server.port = port,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    )
}

/// Records a client call's response on its [`client_span`]: the status code, and for 4xx and
/// 5xx the span status `Error` with `error.type` set to the status code.
pub fn record_client_response(span: &tracing::Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "ERROR");
    }
}

/// Records a client call that got no response (`error_type`: a short, bounded name such as
/// `timeout` or `connect`) on its [`client_span`]: span status `Error`.
pub fn record_client_error(span: &tracing::Span, error_type: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "ERROR");
}

#[cfg(feature = "logger")]
pub(crate) fn logger_context() -> Option<nilecare_logger::TraceContext> {
    logger_trace_context(&current_context())
}

/// The logger's trace context of an event in the span `id` of `dispatch`: read from the span
/// itself (no current dispatcher needed, so it also works under a thread's own default
/// subscriber). The server span of a request that is not sampled, and a span the exporter did
/// not build, answer with the request's context, current while it runs.
#[cfg(feature = "logger")]
pub(crate) fn logger_span_context(
    dispatch: &tracing::dispatcher::WeakDispatch,
    id: &tracing::span::Id,
    meta: &'static tracing::Metadata<'static>,
) -> Option<nilecare_logger::TraceContext> {
    let own = (meta.target() != crate::sampling::UNSAMPLED_TARGET)
        .then(|| dispatch.upgrade())
        .flatten()
        .and_then(|dispatch| tracing_opentelemetry::get_otel_context(id, &dispatch))
        .filter(|cx| cx.span().span_context().is_valid());
    logger_trace_context(&own.unwrap_or_else(opentelemetry::Context::current))
}

#[cfg(feature = "logger")]
fn logger_trace_context(cx: &opentelemetry::Context) -> Option<nilecare_logger::TraceContext> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        nilecare_logger::TraceContext::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes())
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry::propagation::Extractor;
    use opentelemetry_http::HeaderExtractor;

    use super::*;

    #[test]
    fn request_headers_answer_as_the_http_header_extractor_does() {
        let mut headers = HeaderMap::new();
        headers.append(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        headers.append("tracestate", "a=1".parse().unwrap());
        headers.append("tracestate", "b=2".parse().unwrap());
        headers.append(
            "baggage",
            http::HeaderValue::from_bytes(b"k=\xffv").unwrap(),
        );
        headers.append("baggage", "user=7".parse().unwrap());
        headers.append("x-b3-traceid", "80f198ee56343ba8".parse().unwrap());
        let empty = HeaderMap::new();
        for map in [&headers, &empty] {
            let ours = RequestHeaders(map);
            let theirs = HeaderExtractor(map);
            for key in [
                "traceparent",
                "tracestate",
                "baggage",
                "x-b3-traceid",
                "absent",
                "Traceparent",
            ] {
                assert_eq!(ours.get(key), theirs.get(key), "get {key}");
                assert_eq!(ours.get_all(key), theirs.get_all(key), "get_all {key}");
            }
            assert_eq!(ours.keys(), theirs.keys());
        }
    }
}
