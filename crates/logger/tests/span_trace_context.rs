//! The span trace-context provider: asked with the event's own span and its subscriber (so it
//! works under a thread's default subscriber, where the current dispatcher is hidden while the
//! subscriber handles an event); events outside any span still ask the plain provider.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use nilecare_logger::{Format, TraceContext};
use support::{Buf, logger};
use tracing::dispatcher::WeakDispatch;
use tracing::span::Id;

/// Answers with the span's id in the span-id bytes and its name's length in the trace id, after
/// checking the subscriber it was handed is alive and knows the span.
fn from_span(
    dispatch: &WeakDispatch,
    id: &Id,
    meta: &'static tracing::Metadata<'static>,
) -> Option<TraceContext> {
    let dispatch = dispatch.upgrade()?;
    // The subscriber handed over is the one the span lives in: its registry knows the span.
    let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
    let known = tracing_subscriber::registry::LookupSpan::span_data(registry, id).is_some();
    let mut trace_id = [0u8; 16];
    trace_id[0] = u8::try_from(meta.name().len()).unwrap();
    trace_id[15] = u8::from(known);
    Some(TraceContext::new(trace_id, id.into_u64().to_be_bytes()))
}

fn outside() -> Option<TraceContext> {
    Some(TraceContext::new([0xee; 16], [0xee; 8]))
}

#[test]
fn events_in_a_span_ask_the_span_provider_with_that_span_and_others_the_plain_one() {
    nilecare_logger::set_span_trace_context_provider(from_span);
    nilecare_logger::set_trace_context_provider(outside);
    let buf = Buf::default();
    let mut ids = Vec::new();
    nilecare_test_support::logs::with_thread_default(logger(Format::Json, &buf), || {
        tracing::info!("outside");
        let outer = tracing::info_span!("request");
        let _o = outer.enter();
        tracing::info!("in the request");
        let inner = tracing::info_span!("db");
        let _i = inner.enter();
        tracing::info!("in the query");
        // An explicit parent wins over the current span.
        tracing::info!(parent: &outer, "in the request again");
        ids = vec![outer.id().unwrap(), inner.id().unwrap()];
    });
    let lines = buf.json_lines();
    let by = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("{lines:#?}"))
            .clone()
    };
    assert_eq!(by("outside")["trace_id"], "ee".repeat(16));
    let span_hex = |id: &Id| {
        id.into_u64()
            .to_be_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for (message, name_len, id) in [
        ("in the request", 7, &ids[0]),
        ("in the query", 2, &ids[1]),
        ("in the request again", 7, &ids[0]),
    ] {
        let line = by(message);
        assert_eq!(
            line["trace_id"],
            format!("{name_len:02x}{}01", "00".repeat(14)),
            "{line}"
        );
        assert_eq!(line["span_id"], span_hex(id), "{line}");
    }
}
