//! Shared by the tracing tests.
#![allow(dead_code, clippy::unwrap_used)]

use nilecare_logger::{Format, Logger, LoggerGuard, Writer};
use nilecare_test_support::logs::LogBuffer;
use nilecare_tracing::TracingGuard;
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

#[allow(unused_imports)] // each test binary uses what it needs
pub(crate) use nilecare_test_support::otlp::{Received, Spans, collector, receive};
