//! Shared by the logger tests.
#![allow(dead_code, clippy::unwrap_used)]

use nilecare_logger::{Format, Logger, Writer};
pub(crate) use nilecare_test_support::logs::LogBuffer as Buf;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

pub(crate) fn logger(format: Format, buf: &Buf) -> tracing::Dispatch {
    let (dispatch, _guard) = Logger::builder()
        .service("svc")
        .version("1.2.3")
        .environment("test")
        .filter("debug")
        .ignore_rust_log()
        .format(format)
        .redact(["ssn"])
        .writer(Writer::Custom(BoxMakeWriter::new(buf.clone())))
        .build()
        .unwrap();
    dispatch
}
