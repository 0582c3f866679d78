//! What `Cache-Control` (and friends) allow: whether a response may be stored and for how long.

use std::time::Duration;

use http::header::{AUTHORIZATION, CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, StatusCode};

/// The `Cache-Control` directives that matter to a server-side cache.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    pub(crate) public: bool,
    /// `s-maxage` if given, else `max-age`.
    pub(crate) max_age: Option<Duration>,
}

impl CacheControl {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut cc = CacheControl::default();
        let mut s_maxage = None;
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',') {
                let (name, arg) = match directive.trim().split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (directive.trim(), None),
                };
                let secs = || {
                    arg.and_then(|a| a.parse::<u64>().ok())
                        .map(Duration::from_secs)
                };
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => cc.no_store = true,
                    "no-cache" => cc.no_cache = true,
                    "private" => cc.private = true,
                    "public" => cc.public = true,
                    "max-age" => cc.max_age = cc.max_age.or_else(secs),
                    "s-maxage" => s_maxage = s_maxage.or_else(secs),
                    _ => {}
                }
            }
        }
        cc.max_age = s_maxage.or(cc.max_age);
        cc
    }
}

/// Why a response was not stored (for the `Cache-Status` `detail`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotStored {
    Status,
    NoStore,
    SetCookie,
    Vary,
    Authorization,
    ZeroAge,
    TooLarge,
}

impl NotStored {
    pub(crate) fn detail(&self) -> &'static str {
        match self {
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::SetCookie => "set-cookie",
            NotStored::Vary => "vary",
            NotStored::Authorization => "authorization",
            NotStored::ZeroAge => "max-age=0",
            NotStored::TooLarge => "size",
        }
    }
}

/// The TTL to store a response with, or why it must not be stored.
pub(crate) fn storable(
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
    statuses: &[u16],
    cache_authorized: bool,
    default_ttl: Duration,
) -> Result<Duration, NotStored> {
    if !statuses.contains(&status.as_u16()) {
        return Err(NotStored::Status);
    }
    let cc = CacheControl::of(response);
    if cc.no_store || cc.no_cache || cc.private || CacheControl::of(request).no_store {
        return Err(NotStored::NoStore);
    }
    if response.contains_key(SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    let varies = response
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| !v.trim().eq_ignore_ascii_case("accept-encoding") && !v.trim().is_empty());
    if varies {
        return Err(NotStored::Vary);
    }
    if request.contains_key(AUTHORIZATION) && !cache_authorized && !cc.public {
        return Err(NotStored::Authorization);
    }
    match cc.max_age {
        Some(age) if age.is_zero() => Err(NotStored::ZeroAge),
        Some(age) => Ok(age),
        None => Ok(default_ttl),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn directives_parse() {
        let cc = CacheControl::of(&headers(&[(
            "cache-control",
            "public, max-age=60, s-maxage=\"30\"",
        )]));
        assert!(cc.public);
        assert_eq!(cc.max_age, Some(Duration::from_secs(30)));
        assert!(CacheControl::of(&headers(&[("cache-control", "No-Store")])).no_store);
    }

    #[test]
    fn storability() {
        let ok = StatusCode::OK;
        let d = Duration::from_secs(5);
        let none = HeaderMap::new();
        let check = |req: &HeaderMap, status, resp: &HeaderMap| {
            storable(req, status, resp, &[200], false, d)
        };
        assert_eq!(check(&none, ok, &none), Ok(d));
        assert_eq!(
            check(&none, ok, &headers(&[("cache-control", "max-age=9")])),
            Ok(Duration::from_secs(9))
        );
        assert_eq!(
            check(&none, StatusCode::NOT_FOUND, &none),
            Err(NotStored::Status)
        );
        assert_eq!(
            check(&none, ok, &headers(&[("cache-control", "private")])),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(&none, ok, &headers(&[("set-cookie", "a=b")])),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            check(&none, ok, &headers(&[("vary", "Accept-Encoding")])),
            Ok(d)
        );
        assert_eq!(
            check(&none, ok, &headers(&[("vary", "accept-language")])),
            Err(NotStored::Vary)
        );
        assert_eq!(
            check(&none, ok, &headers(&[("cache-control", "max-age=0")])),
            Err(NotStored::ZeroAge)
        );
        let auth = headers(&[("authorization", "Bearer x")]);
        assert_eq!(check(&auth, ok, &none), Err(NotStored::Authorization));
        assert_eq!(
            check(&auth, ok, &headers(&[("cache-control", "public")])),
            Ok(d)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            /// Any `Cache-Control` text (several lines) never panics; `no-store` and `private`
            /// anywhere in it always keep the response out of the cache.
            #[test]
            fn any_cache_control_never_panics_and_no_store_wins(
                lines in proptest::collection::vec("[ -~\t]{0,40}", 0..3),
                forbid in prop_oneof![Just("no-store"), Just("NO-STORE"), Just("private"), Just(" no-store ")],
                at in 0usize..3,
            ) {
                let mut h = HeaderMap::new();
                for line in &lines {
                    if let Ok(v) = http::HeaderValue::from_str(line) {
                        h.append(CACHE_CONTROL, v);
                    }
                }
                let _ = CacheControl::of(&h);
                let _ = storable(&h, StatusCode::OK, &h, &[200], false, Duration::from_secs(60));
                let mut lines = lines;
                lines.insert(at.min(lines.len()), forbid.to_owned());
                let mut response = HeaderMap::new();
                for line in &lines {
                    if let Ok(v) = http::HeaderValue::from_str(line) {
                        response.append(CACHE_CONTROL, v);
                    }
                }
                let verdict = storable(&HeaderMap::new(), StatusCode::OK, &response, &[200], false, Duration::from_secs(60));
                prop_assert!(verdict.is_err(), "{:?} stored", lines);
            }
        }
    }
}
