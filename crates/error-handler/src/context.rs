//! Request extensions through which the logger and tracing layers hand the request id and the
//! trace id to error bodies, and how they are read from a request.

// Reading a request is for the axum integration; the extension types are always public.
#![cfg_attr(not(feature = "axum"), allow(dead_code))]

use http::HeaderMap;

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
    headers: HeaderMap,
}

impl RequestSnapshot {
    pub(crate) fn of(uri: &http::Uri, headers: &HeaderMap, extensions: &http::Extensions) -> Self {
        let mut kept = HeaderMap::new();
        for name in ["x-request-id", "traceparent"] {
            if let Some(value) = headers.get(name) {
                kept.insert(name, value.clone());
            }
        }
        RequestSnapshot {
            uri: uri.clone(),
            request_id: extensions.get::<RequestId>().cloned(),
            trace_id: extensions.get::<TraceId>().cloned(),
            headers: kept,
        }
    }

    /// The context for an error body.
    pub(crate) fn context(&self) -> ProblemContext {
        let mut extensions = http::Extensions::new();
        if let Some(r) = &self.request_id {
            extensions.insert(r.clone());
        }
        if let Some(t) = &self.trace_id {
            extensions.insert(t.clone());
        }
        context_from_parts(self.uri.path(), &self.headers, &extensions)
    }
}

/// Collects what a request contributes to its error body.
pub(crate) fn context_from_parts(
    path: &str,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> ProblemContext {
    let request_id = extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .or_else(|| {
            headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| sane_request_id(v))
                .map(str::to_owned)
        });
    let trace_id = extensions
        .get::<TraceId>()
        .map(|t| t.0.clone())
        .or_else(|| {
            headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id_from_traceparent)
        });
    ProblemContext {
        instance: Some(path.to_owned()),
        request_id,
        trace_id,
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
