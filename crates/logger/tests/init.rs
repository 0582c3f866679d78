//! Installing twice is an error, not a panic (alone in its binary: it sets the global subscriber).
#![allow(clippy::unwrap_used)]

use nilecare_logger::{Error, Format, Logger};

#[test]
fn a_second_init_is_an_error() {
    let first = Logger::builder()
        .format(Format::Json)
        .ignore_rust_log()
        .init();
    assert!(first.is_ok(), "{first:?}");
    let second = Logger::builder().init();
    assert!(
        matches!(second, Err(Error::AlreadyInitialized)),
        "{second:?}"
    );
}
