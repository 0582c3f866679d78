#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
mod client;
mod config;
mod context;
mod error;
mod hex;
mod init;
#[cfg(feature = "axum")]
mod layer;
mod propagation;
mod sampling;
mod tls;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[allow(deprecated)]
pub use client::{Inject, InjectLayer, InjectService, spawn};
pub use config::{Protocol, TracingConfig};
pub use context::{
    client_span, current_span_id, current_trace_id, extract, inject, record_client_error,
    record_client_response,
};
pub use error::{Error, Result};
pub use init::{OtelLayer, TracingGuard, init};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[allow(deprecated)]
pub use layer::{
    ServerTraceFuture, ServerTraceLayer, ServerTraceService, TraceLayer, TraceService,
};
pub use propagation::{
    MAX_TRACESTATE_MEMBERS, Traceparent, W3cTraceContext, parse_traceparent, parse_tracestate,
};
