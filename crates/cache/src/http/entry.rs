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
    fn as_bytes(&self) -> &[u8] {
        match self {
            Blob::Text(text) => text.as_bytes(),
            Blob::Binary(bytes) => bytes,
        }
    }

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
    /// Unix milliseconds until which the response is fresh (0 in entries of older versions:
    /// stale, so never served without `max-stale`).
    #[serde(default)]
    pub(crate) fresh_until_ms: u64,
    /// The response's age when stored (an upstream `Age`), seconds.
    #[serde(default)]
    pub(crate) initial_age_s: u64,
    /// `must-revalidate` / `proxy-revalidate`: never served stale.
    #[serde(default)]
    pub(crate) must_revalidate: bool,
    /// The request's values of the headers named by `Vary`.
    #[serde(default)]
    pub(crate) vary: Vec<(String, Blob)>,
}

impl StoredResponse {
    pub(crate) fn new(
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        now_ms: u64,
        freshness: &super::freshness::Freshness,
        request: &HeaderMap,
    ) -> Self {
        // The age it arrived with (section 4.2.3); the header itself is not kept.
        let initial_age_s = headers
            .get(http::header::AGE)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .unwrap_or(0);
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
        let fresh_ms = u64::try_from(freshness.fresh_for.as_millis()).unwrap_or(u64::MAX);
        StoredResponse {
            status: status.as_u16(),
            headers,
            body,
            stored_at_ms: now_ms,
            fresh_until_ms: now_ms.saturating_add(fresh_ms),
            initial_age_s,
            must_revalidate: freshness.must_revalidate,
            vary: freshness
                .vary
                .values(request)
                .into_iter()
                .map(|(name, value)| (name, Blob::new(value)))
                .collect(),
        }
    }

    /// Whether `request` presents the `Vary` headers this response was stored for.
    pub(crate) fn vary_matches(&self, request: &HeaderMap) -> bool {
        super::vary::matches(
            self.vary
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
            request,
        )
    }

    /// The response's age at `now_ms`, seconds (section 4.2.3).
    pub(crate) fn age_s(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms) / 1000 + self.initial_age_s
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
