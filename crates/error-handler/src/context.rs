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
/// response then costs next to nothing. The ids the layers recorded are kept without a heap
/// copy where they can be: a request id equal to the request's own `X-Request-Id` (what the
/// logger's request-id layer sets) is read from that header, a trace id of 32 ASCII characters
/// is kept inline.
#[derive(Debug)]
pub(crate) struct RequestSnapshot {
    uri: http::Uri,
    request_id: KeptRequestId,
    trace_id: Option<KeptTraceId>,
    request_id_header: Option<HeaderValue>,
    traceparent: Option<HeaderValue>,
}

/// The [`RequestId`] extension of a request, as kept by its snapshot.
#[derive(Debug)]
enum KeptRequestId {
    /// No extension.
    None,
    /// The extension holds the request's `X-Request-Id` value, byte for byte.
    InHeader,
    /// The extension differs from the header (or there is none): its own copy.
    Own(String),
}

/// The [`TraceId`] extension of a request, as kept by its snapshot.
#[derive(Debug)]
enum KeptTraceId {
    /// 32 ASCII characters (what the tracing layer inserts), inline.
    Hex([u8; 32]),
    /// Anything else, as it was.
    Other(String),
}

/// Header names parsed once (a `&str` name is parsed on every lookup).
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

impl RequestSnapshot {
    pub(crate) fn of(uri: &http::Uri, headers: &HeaderMap, extensions: &http::Extensions) -> Self {
        let request_id_header = headers.get(&X_REQUEST_ID).cloned();
        let request_id = match extensions.get::<RequestId>() {
            None => KeptRequestId::None,
            Some(id)
                if request_id_header
                    .as_ref()
                    .is_some_and(|h| h.as_bytes() == id.0.as_bytes()) =>
            {
                KeptRequestId::InHeader
            }
            Some(id) => KeptRequestId::Own(id.0.clone()),
        };
        let trace_id =
            extensions
                .get::<TraceId>()
                .map(|t| match <[u8; 32]>::try_from(t.0.as_bytes()) {
                    Ok(hex) if hex.is_ascii() => KeptTraceId::Hex(hex),
                    _ => KeptTraceId::Other(t.0.clone()),
                });
        RequestSnapshot {
            uri: uri.clone(),
            request_id,
            trace_id,
            request_id_header,
            traceparent: headers.get(&TRACEPARENT).cloned(),
        }
    }

    /// The context for an error body: the ids the logger and tracing layers recorded, else the
    /// request's own `X-Request-Id` (when sane) and `traceparent` (when valid).
    pub(crate) fn context(&self) -> ProblemContext {
        let text =
            |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok().map(str::to_owned));
        let request_id = match &self.request_id {
            KeptRequestId::Own(id) => Some(id.clone()),
            // The recorded id, whatever the header's sanity (it is the id the layer chose).
            KeptRequestId::InHeader => self
                .request_id_header
                .as_ref()
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()),
            KeptRequestId::None => text(&self.request_id_header).filter(|v| sane_request_id(v)),
        };
        let trace_id = match &self.trace_id {
            // ASCII, so UTF-8: the lossy conversion never replaces anything.
            Some(KeptTraceId::Hex(hex)) => Some(String::from_utf8_lossy(hex).into_owned()),
            Some(KeptTraceId::Other(id)) => Some(id.clone()),
            None => text(&self.traceparent).and_then(|v| trace_id_from_traceparent(&v)),
        };
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

    fn snapshot(
        headers: &[(&str, &str)],
        request_id: Option<&str>,
        trace_id: Option<&str>,
    ) -> ProblemContext {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        let mut extensions = http::Extensions::new();
        if let Some(id) = request_id {
            extensions.insert(RequestId(id.to_owned()));
        }
        if let Some(id) = trace_id {
            extensions.insert(TraceId(id.to_owned()));
        }
        let uri: http::Uri = "/api/v1/patients/7?x=1".parse().unwrap();
        RequestSnapshot::of(&uri, &map, &extensions).context()
    }

    #[test]
    fn a_snapshot_gives_back_the_recorded_ids_however_they_are_kept() {
        let trace = "0af7651916cd43dd8448eb211c80319c";
        // The request id equal to the header (kept as the header), and a 32-character trace id
        // (kept inline).
        let cx = snapshot(&[("x-request-id", "req-1")], Some("req-1"), Some(trace));
        assert_eq!(cx.instance.as_deref(), Some("/api/v1/patients/7"));
        assert_eq!(cx.request_id.as_deref(), Some("req-1"));
        assert_eq!(cx.trace_id.as_deref(), Some(trace));
        // An id equal to an insane header is still the recorded id.
        let cx = snapshot(&[("x-request-id", "has space")], Some("has space"), None);
        assert_eq!(cx.request_id.as_deref(), Some("has space"));
        // A recorded id other than the header's wins over it; trace ids of other shapes as they
        // are.
        let cx = snapshot(&[("x-request-id", "client")], Some("layer"), Some("short"));
        assert_eq!(cx.request_id.as_deref(), Some("layer"));
        assert_eq!(cx.trace_id.as_deref(), Some("short"));
        let odd = "é".repeat(16);
        let cx = snapshot(&[], Some("no-header"), Some(&odd));
        assert_eq!(cx.request_id.as_deref(), Some("no-header"));
        assert_eq!(cx.trace_id.as_deref(), Some(odd.as_str()));
        // No extensions: the sane header and a valid traceparent.
        let cx = snapshot(
            &[
                ("x-request-id", "client-9"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
            None,
            None,
        );
        assert_eq!(cx.request_id.as_deref(), Some("client-9"));
        assert_eq!(cx.trace_id.as_deref(), Some(trace));
        let cx = snapshot(&[("x-request-id", "has space")], None, None);
        assert_eq!(cx.request_id, None);
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
