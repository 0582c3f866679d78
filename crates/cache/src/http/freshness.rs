//! Whether a response may be stored (RFC 9111 section 3) and for how long it is fresh
//! (section 4.2), from a shared cache's point of view.

use std::time::{Duration, SystemTime};

use http::header::{AGE, AUTHORIZATION, DATE, EXPIRES, SET_COOKIE};
use http::{HeaderMap, StatusCode};

use super::directives::{CacheControl, Seconds};
use super::vary::Vary;

/// Why a response was not stored (the `Cache-Status` `detail`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// The status is not one the layer stores.
    Status,
    /// `no-store` in the request or the response (section 3, 5.2.1.5, 5.2.2.5).
    NoStore,
    /// `private`: a shared cache must not store it (section 5.2.2.7).
    Private,
    /// `no-cache` on the response: it could only be reused after revalidation, which this cache
    /// does not do (section 5.2.2.4).
    NoCache,
    /// `Set-Cookie`: per-user content.
    SetCookie,
    /// `Vary: *` never matches a later request (section 4.1).
    VaryStar,
    /// The request carried `Authorization` and the response allows no shared storage (section
    /// 3.5).
    Authorization,
    /// `max-age` / `s-maxage` that is not delta-seconds: treated as stale (section 1.2.2).
    InvalidFreshness,
    /// No freshness left (`max-age=0`, an `Expires` in the past, an `Age` beyond the lifetime).
    Stale,
    /// Larger than the layer stores, or of unknown size.
    TooLarge,
}

impl NotStored {
    pub(crate) fn detail(&self) -> &'static str {
        match self {
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::NoCache => "no-cache",
            NotStored::SetCookie => "set-cookie",
            NotStored::VaryStar => "vary",
            NotStored::Authorization => "authorization",
            NotStored::InvalidFreshness => "invalid-freshness",
            NotStored::Stale => "stale",
            NotStored::TooLarge => "size",
        }
    }
}

/// How a storable response is kept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Freshness {
    /// Freshness lifetime left when stored: lifetime minus the response's current age.
    pub(crate) fresh_for: Duration,
    /// `must-revalidate` / `proxy-revalidate`: never served stale.
    pub(crate) must_revalidate: bool,
    /// The request headers the response varies on (section 4.1).
    pub(crate) vary: Vary,
}

/// The layer's storage settings that the rules consult.
pub(crate) struct Rules<'a> {
    pub(crate) statuses: &'a [u16],
    pub(crate) cache_authorized: bool,
    /// Freshness of a response without explicit expiration (the layer's heuristic, section
    /// 4.2.2).
    pub(crate) default_ttl: Duration,
}

fn http_date(headers: &HeaderMap, name: http::HeaderName) -> Option<Option<SystemTime>> {
    let value = headers.get(name)?;
    // An invalid date (e.g. `Expires: 0`) is present but unreadable: `Some(None)`.
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok()),
    )
}

/// Whether the response to `request` may be stored, and how fresh it is (now = `now`).
pub(crate) fn storable(
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
    rules: &Rules<'_>,
    now: SystemTime,
) -> Result<Freshness, NotStored> {
    if !rules.statuses.contains(&status.as_u16()) {
        return Err(NotStored::Status);
    }
    let cc = CacheControl::of(response);
    if cc.no_store || CacheControl::of(request).no_store {
        return Err(NotStored::NoStore);
    }
    if cc.private {
        return Err(NotStored::Private);
    }
    if cc.no_cache {
        return Err(NotStored::NoCache);
    }
    if response.contains_key(SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    let vary = Vary::of(response).ok_or(NotStored::VaryStar)?;
    // Section 3.5: a shared cache stores a response to an authorized request only when
    // must-revalidate, public or s-maxage allows it.
    if request.contains_key(AUTHORIZATION)
        && !rules.cache_authorized
        && !(cc.public || cc.must_revalidate || cc.s_maxage.is_some())
    {
        return Err(NotStored::Authorization);
    }
    // Section 4.2.1: s-maxage (shared cache), then max-age, then Expires - Date.
    let lifetime = match (cc.s_maxage, cc.max_age) {
        (Some(Seconds::Invalid), _) | (None, Some(Seconds::Invalid)) => {
            return Err(NotStored::InvalidFreshness);
        }
        (Some(Seconds::Valid(s)), _) | (None, Some(Seconds::Valid(s))) => Duration::from_secs(s),
        (None, None) => match http_date(response, EXPIRES) {
            // Section 5.3: an invalid Expires (e.g. "0") means already expired.
            Some(None) => return Err(NotStored::Stale),
            Some(Some(expires)) => {
                let date = http_date(response, DATE).flatten().unwrap_or(now);
                expires.duration_since(date).unwrap_or(Duration::ZERO)
            }
            None => rules.default_ttl,
        },
    };
    // Section 4.2.3: the age the response already has (an `Age` from an upstream cache).
    let age = response
        .get(AGE)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let fresh_for = lifetime.saturating_sub(age);
    if fresh_for.is_zero() {
        return Err(NotStored::Stale);
    }
    Ok(Freshness {
        fresh_for,
        must_revalidate: cc.must_revalidate,
        vary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const DEFAULT: Duration = Duration::from_secs(5);

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn check(
        request: &[(&'static str, &str)],
        response: &[(&'static str, &str)],
    ) -> Result<Duration, NotStored> {
        let rules = Rules {
            statuses: &[200],
            cache_authorized: false,
            default_ttl: DEFAULT,
        };
        storable(
            &headers(request),
            StatusCode::OK,
            &headers(response),
            &rules,
            SystemTime::now(),
        )
        .map(|f| f.fresh_for)
    }

    #[test]
    fn rfc9111_3_stored_only_when_allowed() {
        assert_eq!(
            check(&[], &[]),
            Ok(DEFAULT),
            "heuristic freshness (4.2.2): the layer's default"
        );
        assert_eq!(
            check(&[("cache-control", "no-store")], &[]),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(&[], &[("cache-control", "no-store")]),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            check(&[], &[("set-cookie", "a=b")]),
            Err(NotStored::SetCookie)
        );
        let rules = Rules {
            statuses: &[200],
            cache_authorized: false,
            default_ttl: DEFAULT,
        };
        assert_eq!(
            storable(
                &HeaderMap::new(),
                StatusCode::NOT_FOUND,
                &HeaderMap::new(),
                &rules,
                SystemTime::now()
            ),
            Err(NotStored::Status)
        );
    }

    #[test]
    fn rfc9111_5_2_2_7_private_is_not_stored_by_a_shared_cache() {
        assert_eq!(
            check(&[], &[("cache-control", "private, max-age=60")]),
            Err(NotStored::Private)
        );
    }

    #[test]
    fn rfc9111_5_2_2_4_response_no_cache_is_not_stored_without_revalidation() {
        assert_eq!(
            check(&[], &[("cache-control", "no-cache")]),
            Err(NotStored::NoCache)
        );
    }

    #[test]
    fn rfc9111_4_2_1_s_maxage_wins_over_max_age_in_a_shared_cache() {
        assert_eq!(
            check(&[], &[("cache-control", "max-age=60, s-maxage=30")]),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            check(&[], &[("cache-control", "max-age=9")]),
            Ok(Duration::from_secs(9))
        );
    }

    #[test]
    fn rfc9111_5_3_expires_minus_date_gives_the_lifetime() {
        let date = SystemTime::now();
        let expires = date + Duration::from_secs(120);
        let (d, e) = (
            httpdate::fmt_http_date(date),
            httpdate::fmt_http_date(expires),
        );
        let got = check(&[], &[("date", &d), ("expires", &e)]).unwrap();
        assert_eq!(got, Duration::from_secs(120));
        // max-age wins over Expires (5.3).
        assert_eq!(
            check(
                &[],
                &[
                    ("date", &d),
                    ("expires", &e),
                    ("cache-control", "max-age=7")
                ]
            ),
            Ok(Duration::from_secs(7))
        );
        // An Expires in the past, or an invalid one ("0"), is already stale.
        let past = httpdate::fmt_http_date(date - Duration::from_secs(10));
        assert_eq!(
            check(&[], &[("date", &d), ("expires", &past)]),
            Err(NotStored::Stale)
        );
        assert_eq!(check(&[], &[("expires", "0")]), Err(NotStored::Stale));
    }

    #[test]
    fn rfc9111_1_2_2_malformed_max_age_is_stale_not_the_default() {
        for bad in [
            "max-age=abc",
            "max-age=-5",
            "s-maxage=soon, max-age=60",
            "max-age=\"\"",
        ] {
            assert_eq!(
                check(&[], &[("cache-control", bad)]),
                Err(NotStored::InvalidFreshness),
                "{bad}"
            );
        }
        assert_eq!(
            check(&[], &[("cache-control", "max-age=0")]),
            Err(NotStored::Stale)
        );
    }

    #[test]
    fn rfc9111_4_2_3_the_age_a_response_arrives_with_counts() {
        assert_eq!(
            check(&[], &[("cache-control", "max-age=60"), ("age", "50")]),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            check(&[], &[("cache-control", "max-age=60"), ("age", "60")]),
            Err(NotStored::Stale)
        );
    }

    #[test]
    fn rfc9111_3_5_authorization_needs_public_s_maxage_or_must_revalidate() {
        let auth = [("authorization", "Bearer x")];
        assert_eq!(check(&auth, &[]), Err(NotStored::Authorization));
        assert_eq!(
            check(&auth, &[("cache-control", "max-age=9")]),
            Err(NotStored::Authorization)
        );
        for allowed in ["public", "s-maxage=9", "must-revalidate, max-age=9"] {
            assert!(
                check(&auth, &[("cache-control", allowed)]).is_ok(),
                "{allowed}"
            );
        }
    }

    #[test]
    fn rfc9111_4_1_vary_star_is_never_stored_other_vary_is_keyed() {
        assert_eq!(check(&[], &[("vary", "*")]), Err(NotStored::VaryStar));
        assert_eq!(
            check(&[], &[("vary", "accept-language, Accept-Encoding")]),
            Ok(DEFAULT)
        );
    }

    #[test]
    fn rfc9111_5_2_2_2_must_revalidate_and_proxy_revalidate_are_kept() {
        let rules = Rules {
            statuses: &[200],
            cache_authorized: false,
            default_ttl: DEFAULT,
        };
        for directive in ["must-revalidate", "proxy-revalidate"] {
            let f = storable(
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[("cache-control", directive)]),
                &rules,
                SystemTime::now(),
            )
            .unwrap();
            assert!(f.must_revalidate, "{directive}");
        }
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
                lines in proptest::collection::vec("[ -~\\t]{0,40}", 0..3),
                forbid in prop_oneof![Just("no-store"), Just("NO-STORE"), Just("private"), Just(" no-store ")],
                at in 0usize..3,
            ) {
                let rules = Rules { statuses: &[200], cache_authorized: false, default_ttl: DEFAULT };
                let mut h = HeaderMap::new();
                for line in &lines {
                    if let Ok(v) = HeaderValue::from_str(line) {
                        h.append(http::header::CACHE_CONTROL, v);
                    }
                }
                let _ = CacheControl::of(&h);
                let _ = storable(&h, StatusCode::OK, &h, &rules, SystemTime::now());
                let mut lines = lines;
                lines.insert(at.min(lines.len()), forbid.to_owned());
                let mut response = HeaderMap::new();
                for line in &lines {
                    if let Ok(v) = HeaderValue::from_str(line) {
                        response.append(http::header::CACHE_CONTROL, v);
                    }
                }
                let verdict = storable(&HeaderMap::new(), StatusCode::OK, &response, &rules, SystemTime::now());
                prop_assert!(verdict.is_err(), "{:?} stored", lines);
            }
        }
    }
}
