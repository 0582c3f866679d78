//! One JSON log event with 5 fields inside 2 spans, written to a sink: nilecare-logger's flat
//! JSON layer vs tracing-subscriber's JSON formatter, same run.
//!
//! `cargo bench -p nilecare-logger --bench json_event`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_logger::{Format, Logger, Writer};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

fn event_in_two_spans(c: &mut Criterion, label: &str, dispatch: &tracing::Dispatch) {
    tracing::dispatcher::with_default(dispatch, || {
        let outer = tracing::info_span!("request", request_id = "b19f3c", clinic = "clinic_7");
        let _o = outer.enter();
        let inner = tracing::info_span!("patient", patient_id = 123u64);
        let _i = inner.enter();
        c.bench_function(label, |b| {
            b.iter(|| {
                tracing::info!(
                    cache = "hit",
                    rows = 42u64,
                    latency_ms = 3.5,
                    fresh = true,
                    route = %"/api/v1/patients/{id}",
                    "patient loaded"
                )
            })
        });
    });
}

fn json_event(c: &mut Criterion) {
    let (ours, _guard) = Logger::builder()
        .service("bench")
        .ignore_rust_log()
        .filter("info")
        .format(Format::Json)
        .writer(Writer::Custom(BoxMakeWriter::new(std::io::sink)))
        .build()
        .expect("logger");
    let theirs = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::sink)
            .finish(),
    );
    event_in_two_spans(c, "json_event/tracing_subscriber_json", &theirs);
    event_in_two_spans(c, "json_event/nilecare_logger", &ours);
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = json_event
}
criterion_main!(benches);
