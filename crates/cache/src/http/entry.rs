//! A stored response: status, the headers worth keeping, body, and when it was stored.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

/// Headers that describe one connection or one transfer, not the resource: never stored.
const NOT_KEPT: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "date",
    "age",
    "content-length",
    "cache-status",
];

/// Bytes stored as text when they are UTF-8 (bodies of JSON, HTML, text; header values): compact
/// and fast under every codec, where a JSON byte array would be a list of numbers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Blob {
    Text(String),
    Binary(Vec<u8>),
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Blob::Text(text),
            Err(e) => Blob::Binary(e.into_bytes()),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Blob::Text(text) => Bytes::from(text),
            Blob::Binary(bytes) => Bytes::from(bytes),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, Blob)>,
    pub(crate) body: Blob,
    /// Unix milliseconds.
    pub(crate) stored_at_ms: u64,
}

impl StoredResponse {
    pub(crate) fn new(status: StatusCode, headers: &HeaderMap, body: Bytes, now_ms: u64) -> Self {
        let headers = headers
            .iter()
            .filter(|(name, _)| !NOT_KEPT.contains(&name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    Blob::new(value.as_bytes().to_vec()),
                )
            })
            .collect();
        let body = Blob::new(body.to_vec());
        StoredResponse {
            status: status.as_u16(),
            headers,
            body,
            stored_at_ms: now_ms,
        }
    }

    /// The parts back, or `None` when the entry is malformed (treated as a miss).
    pub(crate) fn into_parts(self) -> Option<(StatusCode, HeaderMap, Bytes)> {
        let status = StatusCode::from_u16(self.status).ok()?;
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_maybe_shared(value.into_bytes()).ok()?,
            );
        }
        Some((status, headers, self.body.into_bytes()))
    }
}
