//! [`ApiVersion`]: the negotiated version, in the request's extensions and as an extractor.

use axum::extract::FromRequestParts;
use http::request::Parts;

/// An API version number (`v2` is `ApiVersion(2)`), as negotiated by
/// [`VersioningLayer`](crate::VersioningLayer). Handlers take it as an extractor (the
/// configured default when the layer did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u16);

impl ApiVersion {
    /// `v1`, `v2`, ... (the `X-API-Version` echo and the metrics label).
    pub fn label(self) -> String {
        format!("v{}", self.0)
    }

    /// Parses `v2`, `V2` or `2`.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.trim();
        let digits = digits.strip_prefix(['v', 'V']).unwrap_or(digits);
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|n| *n > 0).map(ApiVersion)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_or_without_v() {
        assert_eq!(ApiVersion::parse("v2"), Some(ApiVersion(2)));
        assert_eq!(ApiVersion::parse("V3"), Some(ApiVersion(3)));
        assert_eq!(ApiVersion::parse(" 1 "), Some(ApiVersion(1)));
        for bad in ["", "v", "0", "v0", "two", "2.0", "-1", "v99999", "vv2"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }
}
