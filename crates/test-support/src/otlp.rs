//! An OTLP/HTTP trace receiver on a free port: the spans an exporter sends, decoded, so tests
//! check what a collector would get (names, kinds, attributes, status) end to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

/// Span kind `SERVER` as OTLP encodes it.
pub const KIND_SERVER: i32 = 2;
/// Span kind `CLIENT` as OTLP encodes it.
pub const KIND_CLIENT: i32 = 3;
/// Status code `ERROR` as OTLP encodes it.
pub const STATUS_ERROR: i32 = 2;

/// A span as the in-test OTLP/HTTP receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The span name.
    pub name: String,
    /// The span kind ([`KIND_SERVER`], [`KIND_CLIENT`], ...).
    pub kind: i32,
    /// Trace id, lowercase hex.
    pub trace_id: String,
    /// Span id, lowercase hex.
    pub span_id: String,
    /// Parent span id, lowercase hex (empty for a root).
    pub parent: String,
    /// Attributes, values as text.
    pub attributes: HashMap<String, String>,
    /// Status code: 0 unset, 1 ok, 2 error ([`STATUS_ERROR`]).
    pub status: i32,
}

/// The spans received so far, shared with the receiver.
pub type Spans = Arc<Mutex<Vec<Received>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An in-test OTLP/HTTP receiver on a free port: its address and the spans it receives.
pub async fn collector() -> (std::net::SocketAddr, Spans) {
    let spans: Spans = Spans::default();
    let addr = crate::http::serve(
        axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state(spans.clone()),
    )
    .await;
    (addr, spans)
}

/// The same receiver on a thread and current-thread runtime of its own, for tests whose own
/// thread blocks on an export (a `TracingGuard::flush` on a current-thread runtime that also
/// serves the app): its address and the spans it receives. The thread lives as long as the
/// test process.
///
/// # Panics
/// When the thread's runtime cannot be built.
pub fn collector_on_own_thread() -> (std::net::SocketAddr, Spans) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the OTLP receiver");
        rt.block_on(async {
            let _ = tx.send(collector().await);
            std::future::pending::<()>().await
        });
    });
    rx.recv().expect("the OTLP receiver started")
}

/// The `/v1/traces` handler of the receiver: decodes and keeps every span.
///
/// # Panics
/// When the body is not an OTLP protobuf export request (the exporter under test is broken).
pub async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP/HTTP protobuf export");
    let mut out = spans
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
