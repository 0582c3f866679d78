//! Shared by the tracing tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use nilecare_logger::{Format, Logger, LoggerGuard, Writer};
use nilecare_test_support::logs::LogBuffer;
use nilecare_tracing::TracingGuard;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// A JSON logger at INFO writing into a buffer, with the guard's OpenTelemetry layer under it.
pub(crate) fn logged(guard: &TracingGuard) -> (tracing::Dispatch, LoggerGuard, LogBuffer) {
    logged_at(guard, "info")
}

/// The same logger with another filter (`RUST_LOG` syntax).
pub(crate) fn logged_at(
    guard: &TracingGuard,
    filter: &str,
) -> (tracing::Dispatch, LoggerGuard, LogBuffer) {
    let logs = LogBuffer::new();
    let (dispatch, log_guard) = Logger::builder()
        .with_layer(guard.layer())
        .format(Format::Json)
        .filter(filter)
        .ignore_rust_log()
        .writer(Writer::Custom(BoxMakeWriter::new(logs.clone())))
        .build()
        .unwrap();
    (dispatch, log_guard, logs)
}

/// A span as the in-test OTLP/HTTP receiver got it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) name: String,
    pub(crate) kind: i32,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent: String,
    pub(crate) attributes: HashMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub(crate) status: i32,
}

pub(crate) type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An in-test OTLP/HTTP receiver on a free port: its address and the spans it receives.
pub(crate) async fn collector() -> (std::net::SocketAddr, Spans) {
    let spans: Spans = Spans::default();
    let addr = nilecare_test_support::http::serve(
        axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state(spans.clone()),
    )
    .await;
    (addr, spans)
}

/// The `/v1/traces` handler of the receiver: decodes and keeps every span.
pub(crate) async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let mut out = spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for s in scope.spans {
                let attributes = s
                    .attributes
                    .iter()
                    .map(|kv| {
                        let v = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                            Some(AnyValue::StringValue(s)) => s,
                            Some(AnyValue::IntValue(i)) => i.to_string(),
                            Some(other) => format!("{other:?}"),
                            None => String::new(),
                        };
                        (kv.key.clone(), v)
                    })
                    .collect();
                out.push(Received {
                    name: s.name,
                    kind: s.kind,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    attributes,
                    status: s.status.map_or(0, |st| st.code),
                });
            }
        }
    }
    ""
}
