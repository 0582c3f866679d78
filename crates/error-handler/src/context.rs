//! Request extensions through which the logger and tracing layers hand the request id and the
//! trace id to error bodies, and how they are read from a request.

// Reading a request is for the axum integration; the extension types are always public.
#![cfg_attr(not(feature = "axum"), allow(dead_code))]

use http::{HeaderMap, HeaderValue};

use crate::problem::ProblemContext;

/// Request extension holding the request id. The request-id layer (nilecare-logger) inserts it;
/// without it the `X-Request-Id` request header is used when it is sane.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

/// Request extension holding the trace id (32 lowercase hex digits). The tracing layer
/// (nilecare-tracing) inserts it; without it the trace id of a valid incoming `traceparent`
/// header is used.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub String);

/// `X-Request-Id` values longer than this are ignored.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client-supplied request id may be used: 1..=128 visible ASCII characters (no
/// spaces or control characters, so it cannot break log lines or headers).
pub fn sane_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value.bytes().all(|b| b.is_ascii_graphic())
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if valid and not zero.
pub(crate) fn trace_id_from_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace.to_ascii_lowercase())
}

/// What an error body may need from its request, kept without formatting anything (the URI and
/// header values share their bytes) until an error is actually rendered: the common, successful
/// response then costs next to nothing.
#[derive(Debug)]
pub(crate) struct RequestSnapshot {
    uri: http::Uri,
    request_id: Option<RequestId>,
    trace_id: Option<TraceId>,
    request_id_header: Option<HeaderValue>,
    traceparent: Option<HeaderValue>,
}

/// Header names parsed once (a `&str` name is parsed on every lookup).
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

impl RequestSnapshot {
    pub(crate) fn of(uri: &http::Uri, headers: &HeaderMap, extensions: &http::Extensions) -> Self {
        RequestSnapshot {
            uri: uri.clone(),
            request_id: extensions.get::<RequestId>().cloned(),
            trace_id: extensions.get::<TraceId>().cloned(),
            request_id_header: headers.get(&X_REQUEST_ID).cloned(),
            traceparent: headers.get(&TRACEPARENT).cloned(),
        }
    }

    /// The context for an error body: the ids the logger and tracing layers recorded, else the
    /// request's own `X-Request-Id` (when sane) and `traceparent` (when valid).
    pub(crate) fn context(&self) -> ProblemContext {
        let text =
            |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok().map(str::to_owned));
        let request_id = self
            .request_id
            .as_ref()
            .map(|r| r.0.clone())
            .or_else(|| text(&self.request_id_header).filter(|v| sane_request_id(v)));
        let trace_id = self
            .trace_id
            .as_ref()
            .map(|t| t.0.clone())
            .or_else(|| text(&self.traceparent).and_then(|v| trace_id_from_traceparent(&v)));
        ProblemContext {
            instance: Some(self.uri.path().to_owned()),
            request_id,
            trace_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing_rejects_malformed_values() {
        assert_eq!(
            trace_id_from_traceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01")
                .as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        for bad in [
            "",
            "00",
            "00-xyz-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",
        ] {
            assert_eq!(trace_id_from_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_ids_must_be_short_visible_ascii() {
        assert!(sane_request_id("req-123"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("has space"));
        assert!(!sane_request_id("newline\n"));
        assert!(!sane_request_id(&"x".repeat(129)));
    }
}
