#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
mod access;
mod background;
mod config;
mod error;
mod filter;
mod hex;
mod json;
mod number;
mod redact;
#[cfg(feature = "axum")]
mod request_id;
mod sink;
mod time;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use access::{AccessLogFuture, AccessLogLayer, AccessLogService};
pub use config::{ExtraLayer, Format, Logger, LoggerGuard, Rotation, Writer};
pub use error::{Error, Result};
pub use json::{
    JsonLayer, SpanTraceContextProvider, TraceContext, set_span_trace_context_provider,
    set_trace_context_provider,
};
pub use redact::{DEFAULT_SENSITIVE, REDACTED};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use request_id::{
    REQUEST_ID_HEADER, RequestIdFuture, RequestIdLayer, RequestIdService, new_request_id,
};
