//! Producer and consumer spans (OpenTelemetry messaging conventions), linked through the
//! message's `traceparent` header: the consumer's span continues the publisher's trace.

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::message::{Message, headers};

/// The span of one publish (`send <topic>`, kind producer).
pub(crate) fn producer_span(topic: &str, message: &Message, system: &'static str) -> tracing::Span {
    tracing::info_span!(
        "send",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        messaging.system = system,
        messaging.operation.type = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %topic,
        messaging.message.id = %message.id(),
    )
}

/// `message` with the current span's trace context in its headers (unless it carries one).
pub(crate) fn with_context(message: &Message) -> Option<Message> {
    if message.header(headers::TRACEPARENT).is_some() {
        return None;
    }
    let mut carrier = http::HeaderMap::new();
    nilecare_tracing::inject(&mut carrier);
    let mut out = message.clone();
    for name in [headers::TRACEPARENT, headers::TRACESTATE] {
        if let Some(value) = carrier.get(name).and_then(|v| v.to_str().ok()) {
            out = out.with_header(name, value).ok()?;
        }
    }
    (out.header(headers::TRACEPARENT).is_some()).then_some(out)
}

/// The span of one handling (`process <topic>`, kind consumer), a child of the publisher's
/// span when the message carries its context.
pub(crate) fn consumer_span(
    topic: &str,
    group: &str,
    message: &Message,
    system: &'static str,
) -> tracing::Span {
    let span = tracing::info_span!(
        "process",
        otel.name = %format_args!("process {topic}"),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        messaging.system = system,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %topic,
        messaging.consumer.group.name = %group,
        messaging.message.id = %message.id(),
        messaging.message.delivery_count = message.attempt(),
        error.type = tracing::field::Empty,
    );
    let mut carrier = http::HeaderMap::new();
    for name in [headers::TRACEPARENT, headers::TRACESTATE] {
        if let Some(value) = message
            .header(name)
            .and_then(|v| http::HeaderValue::from_str(v).ok())
        {
            carrier.insert(name, value);
        }
    }
    let parent = nilecare_tracing::extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}
