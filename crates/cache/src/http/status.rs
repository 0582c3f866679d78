//! The `Cache-Status` header (RFC 9211), one member for this cache, always a valid RFC 8941
//! list: `detail` values that are not tokens are quoted.

use http::HeaderValue;

/// What the cache did with one request.
#[derive(Debug, Default)]
pub(crate) struct CacheStatus {
    /// Served from the cache.
    pub(crate) hit: bool,
    /// Why it went to the origin: `miss`, `request`, `stale`, `vary-miss` (section 2.2).
    pub(crate) fwd: Option<&'static str>,
    /// The response was stored (section 2.5).
    pub(crate) stored: bool,
    /// Freshness left, seconds; negative when served stale (section 2.4).
    pub(crate) ttl: Option<i64>,
    /// Why it was not stored or not served (section 2.8).
    pub(crate) detail: Option<&'static str>,
}

/// RFC 8941 section 3.3.4: a token starts with a letter or `*` and continues with tchar, `:` or
/// `/`.
fn is_token(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'*')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
}

impl CacheStatus {
    pub(crate) fn render(&self) -> HeaderValue {
        // The common answers, without building a string per response.
        match (self.hit, self.fwd, self.stored, self.ttl, self.detail) {
            (true, None, false, None, None) => return HeaderValue::from_static("nilecare; hit"),
            (false, Some("miss"), true, None, None) => {
                return HeaderValue::from_static("nilecare; fwd=miss; stored");
            }
            _ => {}
        }
        let mut out = String::from("nilecare");
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd);
        }
        if let Some(ttl) = self.ttl {
            out.push_str("; ttl=");
            out.push_str(&ttl.to_string());
        }
        if self.stored {
            out.push_str("; stored");
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            if is_token(detail) {
                out.push_str(detail);
            } else {
                out.push('"');
                for c in detail.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
        // Only ASCII from constants and numbers: always a valid header value.
        HeaderValue::from_str(&out).unwrap_or(HeaderValue::from_static("nilecare"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9211_every_member_is_a_valid_structured_list_member() {
        let status = |s: CacheStatus| s.render().to_str().unwrap().to_owned();
        assert_eq!(
            status(CacheStatus {
                hit: true,
                ..Default::default()
            }),
            "nilecare; hit"
        );
        assert_eq!(
            status(CacheStatus {
                fwd: Some("miss"),
                stored: true,
                ..Default::default()
            }),
            "nilecare; fwd=miss; stored"
        );
        assert_eq!(
            status(CacheStatus {
                fwd: Some("miss"),
                detail: Some("no-store"),
                ..Default::default()
            }),
            "nilecare; fwd=miss; detail=no-store"
        );
        // Not a token: quoted (RFC 8941 section 3.3.3).
        assert_eq!(
            status(CacheStatus {
                fwd: Some("miss"),
                detail: Some("max-age=0"),
                ..Default::default()
            }),
            "nilecare; fwd=miss; detail=\"max-age=0\""
        );
        assert_eq!(
            status(CacheStatus {
                hit: true,
                ttl: Some(-3),
                ..Default::default()
            }),
            "nilecare; hit; ttl=-3"
        );
        assert!(is_token("invalid-freshness") && !is_token("1abc") && !is_token("a b"));
    }
}
