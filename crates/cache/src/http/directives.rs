//! `Cache-Control` directives (RFC 9111 section 5.2), as requests and responses carry them.

use http::HeaderMap;
use http::header::{CACHE_CONTROL, PRAGMA};

/// A delta-seconds argument: a valid number of seconds, or text that is not one (RFC 9111
/// section 1.2.2: such a response is treated as stale, here not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seconds {
    Valid(u64),
    Invalid,
}

/// The largest delta-seconds kept (RFC 9111 section 1.2.2: 2^31).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

fn seconds(arg: Option<&str>) -> Seconds {
    match arg {
        Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
            Seconds::Valid(a.parse::<u64>().unwrap_or(u64::MAX).min(MAX_DELTA_SECONDS))
        }
        _ => Seconds::Invalid,
    }
}

/// The directives of one message's `Cache-Control` lines (unknown ones are ignored, section
/// 5.2.3).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    pub(crate) public: bool,
    /// `must-revalidate` or `proxy-revalidate` (section 5.2.2.2, 5.2.2.8): never served stale.
    pub(crate) must_revalidate: bool,
    pub(crate) only_if_cached: bool,
    pub(crate) max_age: Option<Seconds>,
    pub(crate) s_maxage: Option<Seconds>,
    /// `max-stale` without a value accepts any staleness (`Some(None)`).
    pub(crate) max_stale: Option<Option<u64>>,
    pub(crate) min_fresh: Option<u64>,
}

impl CacheControl {
    /// Parses every `Cache-Control` line; a request with none but `Pragma: no-cache` counts as
    /// `no-cache` (section 5.4).
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut cc = CacheControl::default();
        let mut any = false;
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in split_outside_quotes(value) {
                any = true;
                let (name, arg) = match directive.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                    None => (directive.trim(), None),
                };
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => cc.no_store = true,
                    "no-cache" => cc.no_cache = true,
                    "private" => cc.private = true,
                    "public" => cc.public = true,
                    "must-revalidate" | "proxy-revalidate" => cc.must_revalidate = true,
                    "only-if-cached" => cc.only_if_cached = true,
                    // A repeated directive keeps its first value (section 4.2.1).
                    "max-age" => cc.max_age = cc.max_age.or(Some(seconds(arg))),
                    "s-maxage" => cc.s_maxage = cc.s_maxage.or(Some(seconds(arg))),
                    "max-stale" => {
                        cc.max_stale = Some(match seconds(arg) {
                            Seconds::Valid(s) if arg.is_some() => Some(s),
                            _ => None,
                        });
                    }
                    "min-fresh" => {
                        if let Seconds::Valid(s) = seconds(arg) {
                            cc.min_fresh = Some(s);
                        }
                    }
                    _ => {}
                }
            }
        }
        if !any
            && headers
                .get_all(PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("no-cache"))
        {
            cc.no_cache = true;
        }
        cc
    }
}

/// The comma-separated directives of one line; commas inside quoted strings do not split.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, b) in value.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect()
}

fn unquote(arg: &str) -> &str {
    arg.strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(arg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cc(lines: &[&'static str]) -> CacheControl {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(CACHE_CONTROL, HeaderValue::from_static(l));
        }
        CacheControl::of(&h)
    }

    #[test]
    fn directives_parse_with_quotes_case_and_several_lines() {
        let c = cc(&["public, max-age=60, s-maxage=\"30\"", "Must-Revalidate"]);
        assert!(c.public && c.must_revalidate);
        assert_eq!(c.max_age, Some(Seconds::Valid(60)));
        assert_eq!(c.s_maxage, Some(Seconds::Valid(30)));
        assert!(cc(&["No-Store"]).no_store);
        assert!(cc(&["private=\"set-cookie, x\", max-age=5"]).private);
        assert_eq!(
            cc(&["private=\"a,b\", max-age=5"]).max_age,
            Some(Seconds::Valid(5))
        );
    }

    #[test]
    fn rfc9111_1_2_2_invalid_delta_seconds_are_recognised() {
        for bad in [
            "max-age=abc",
            "max-age=-1",
            "max-age=",
            "max-age=1.5",
            "max-age",
        ] {
            assert_eq!(cc(&[bad]).max_age, Some(Seconds::Invalid), "{bad}");
        }
        assert_eq!(
            cc(&["max-age=99999999999999999999"]).max_age,
            Some(Seconds::Valid(MAX_DELTA_SECONDS))
        );
    }

    #[test]
    fn rfc9111_5_2_1_request_directives() {
        let c = cc(&["max-stale, min-fresh=10, only-if-cached, max-age=5"]);
        assert_eq!(c.max_stale, Some(None));
        assert_eq!(c.min_fresh, Some(10));
        assert!(c.only_if_cached);
        assert_eq!(cc(&["max-stale=30"]).max_stale, Some(Some(30)));
    }

    #[test]
    fn rfc9111_5_4_pragma_no_cache_only_without_cache_control() {
        let mut h = HeaderMap::new();
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        assert!(CacheControl::of(&h).no_cache);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert!(!CacheControl::of(&h).no_cache);
    }
}
