//! `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link` headers of a deprecated version.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The headers every response of one version carries (`X-API-Version`, deprecation), rendered
/// once and shared.
pub(crate) type ResponseHeaders = std::sync::Arc<[(HeaderName, HeaderValue)]>;

/// One deprecated version's dates and migration document.
#[derive(Debug, Clone)]
pub(crate) struct Deprecation {
    pub(crate) since: SystemTime,
    pub(crate) sunset: Option<SystemTime>,
    pub(crate) link: Option<String>,
}

impl Deprecation {
    /// The headers, rendered once.
    pub(crate) fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        // RFC 9745: an RFC 8941 Date, `@` and Unix seconds.
        let since = self
            .since
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Ok(v) = HeaderValue::from_str(&format!("@{since}")) {
            headers.push((HeaderName::from_static("deprecation"), v));
        }
        if let Some(sunset) = self.sunset {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(sunset)) {
                headers.push((HeaderName::from_static("sunset"), v));
            }
        }
        if let Some(link) = &self.link {
            let mut value = format!("<{link}>; rel=\"deprecation\"; type=\"text/html\"");
            if self.sunset.is_some() {
                value.push_str(&format!(", <{link}>; rel=\"sunset\"; type=\"text/html\""));
            }
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.push((http::header::LINK, v));
            }
        }
        headers
    }
}

/// Adds `headers` to a response's.
pub(crate) fn apply(headers: &[(HeaderName, HeaderValue)], to: &mut HeaderMap) {
    // Names parsed once, when the layer was built: no header-name parsing per response.
    for (name, value) in headers {
        to.append(name.clone(), value.clone());
    }
}
