//! `ResponseCacheLayer` against RFC 9111 (HTTP caching, as a shared cache) and RFC 9211
//! (`Cache-Status`), over real HTTP: one test per rule, named after its section. Each handler
//! answers with the headers its query asks for and counts its calls, so "served from the cache"
//! is a call count, not a header.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use nilecare_cache::http::ResponseCacheLayer;
use nilecare_cache::{AnyStore, Cache, MemoryStore};
use nilecare_test_support::http::{HttpResponse, request, serve};

#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

/// `GET /r?cc=<Cache-Control>&vary=<Vary>&expires=<secs from now>&age=<Age>`: answers with those
/// headers, echoing `Accept-Language` and the call number in the body.
async fn resource(
    State(calls): State<Calls>,
    Query(q): Query<HashMap<String, String>>,
    request: HeaderMap,
) -> impl IntoResponse {
    let n = calls.0.fetch_add(1, Ordering::SeqCst) + 1;
    let mut headers = HeaderMap::new();
    if let Some(cc) = q.get("cc") {
        headers.insert("cache-control", cc.parse().unwrap());
    }
    if let Some(vary) = q.get("vary") {
        headers.insert("vary", vary.parse().unwrap());
    }
    if let Some(age) = q.get("age") {
        headers.insert("age", age.parse().unwrap());
    }
    if let Some(secs) = q.get("expires") {
        let now = std::time::SystemTime::now();
        let at = now + Duration::from_secs(secs.parse().unwrap());
        headers.insert("date", httpdate::fmt_http_date(now).parse().unwrap());
        headers.insert("expires", httpdate::fmt_http_date(at).parse().unwrap());
    }
    let lang = request
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    (headers, format!("{lang} #{n}"))
}

async fn app(layer: impl FnOnce(ResponseCacheLayer) -> ResponseCacheLayer) -> (SocketAddr, Calls) {
    let cache: Cache = Cache::builder()
        .name("rfc9111")
        .build(AnyStore::from(
            MemoryStore::with_max_entries(1_000).unwrap(),
        ))
        .unwrap();
    let calls = Calls::default();
    let router = Router::new()
        .route("/r", get(resource))
        .layer(layer(
            ResponseCacheLayer::new(cache).default_ttl(Duration::from_secs(60)),
        ))
        .with_state(calls.clone());
    (serve(router).await, calls)
}

async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    request(addr, "GET", path, headers, b"").await
}

fn status(r: &HttpResponse) -> &str {
    r.header("cache-status").unwrap_or("<none>")
}

impl Calls {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn rfc9111_4_2_fresh_response_is_reused_with_age_rfc9211_hit() {
    let (addr, calls) = app(|l| l).await;
    let first = get_with(addr, "/r?cc=max-age%3D60", &[]).await;
    assert_eq!(status(&first), "nilecare; fwd=miss; stored");
    let second = get_with(addr, "/r?cc=max-age%3D60", &[]).await;
    assert_eq!(status(&second), "nilecare; hit");
    assert_eq!(
        second.header("age"),
        Some("0"),
        "section 5.1: Age on every reuse"
    );
    assert_eq!(calls.count(), 1);
}

#[tokio::test]
async fn rfc9111_4_2_3_an_upstream_age_carries_into_the_served_age() {
    let (addr, _) = app(|l| l).await;
    get_with(addr, "/r?cc=max-age%3D60&age=20", &[]).await;
    let hit = get_with(addr, "/r?cc=max-age%3D60&age=20", &[]).await;
    assert_eq!(status(&hit), "nilecare; hit");
    assert_eq!(hit.header("age"), Some("20"));
}

#[tokio::test]
async fn rfc9111_5_2_1_4_request_no_cache_is_forwarded_rfc9211_fwd_request() {
    let (addr, calls) = app(|l| l).await;
    get_with(addr, "/r", &[]).await;
    let forwarded = get_with(addr, "/r", &[("cache-control", "no-cache")]).await;
    assert_eq!(status(&forwarded), "nilecare; fwd=request; stored");
    let pragma = get_with(addr, "/r", &[("pragma", "no-cache")]).await;
    assert_eq!(
        status(&pragma),
        "nilecare; fwd=request; stored",
        "section 5.4"
    );
    assert_eq!(calls.count(), 3);
}

#[tokio::test]
async fn rfc9111_5_2_1_1_request_max_age_refuses_older_responses() {
    let (addr, calls) = app(|l| l).await;
    get_with(addr, "/r?age=30", &[]).await;
    let too_old = get_with(addr, "/r?age=30", &[("cache-control", "max-age=10")]).await;
    assert_eq!(status(&too_old), "nilecare; fwd=request; stored");
    let young_enough = get_with(addr, "/r?age=30", &[("cache-control", "max-age=100")]).await;
    assert_eq!(status(&young_enough), "nilecare; hit");
    assert_eq!(calls.count(), 2);
}

#[tokio::test]
async fn rfc9111_5_2_1_3_request_min_fresh_needs_that_much_freshness_left() {
    let (addr, calls) = app(|l| l).await;
    get_with(addr, "/r?cc=max-age%3D30", &[]).await;
    let r = get_with(
        addr,
        "/r?cc=max-age%3D30",
        &[("cache-control", "min-fresh=60")],
    )
    .await;
    assert_eq!(status(&r), "nilecare; fwd=request; stored");
    let r = get_with(
        addr,
        "/r?cc=max-age%3D30",
        &[("cache-control", "min-fresh=5")],
    )
    .await;
    assert_eq!(status(&r), "nilecare; hit");
    assert_eq!(calls.count(), 2);
}

#[tokio::test]
async fn rfc9111_5_2_1_2_max_stale_serves_a_stale_response_unless_must_revalidate() {
    let (addr, calls) = app(|l| l.serve_stale_for(Duration::from_secs(60))).await;
    get_with(addr, "/r?cc=max-age%3D1", &[]).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let refused = get_with(addr, "/r?cc=max-age%3D1", &[]).await;
    assert_eq!(
        status(&refused),
        "nilecare; fwd=stale; stored",
        "stale without max-stale"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let accepted = get_with(addr, "/r?cc=max-age%3D1", &[("cache-control", "max-stale")]).await;
    assert!(
        status(&accepted).starts_with("nilecare; hit; ttl=-"),
        "{}",
        status(&accepted)
    );
    let too_stale = get_with(
        addr,
        "/r?cc=max-age%3D1",
        &[("cache-control", "max-stale=0")],
    )
    .await;
    assert_eq!(status(&too_stale), "nilecare; fwd=stale; stored");
    assert_eq!(calls.count(), 3);

    // must-revalidate (5.2.2.2): never served stale, whatever the request accepts.
    let path = "/r?cc=max-age%3D1%2C%20must-revalidate";
    get_with(addr, path, &[]).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let r = get_with(addr, path, &[("cache-control", "max-stale")]).await;
    assert_eq!(status(&r), "nilecare; fwd=stale; stored");
}

#[tokio::test]
async fn rfc9111_5_2_1_7_only_if_cached_without_a_stored_response_is_504() {
    let (addr, calls) = app(|l| l).await;
    let r = get_with(addr, "/r", &[("cache-control", "only-if-cached")]).await;
    assert_eq!(r.status, 504);
    assert_eq!(status(&r), "nilecare; detail=only-if-cached");
    assert_eq!(calls.count(), 0, "the origin was not asked");
    get_with(addr, "/r", &[]).await;
    let r = get_with(addr, "/r", &[("cache-control", "only-if-cached")]).await;
    assert_eq!((r.status, status(&r)), (200, "nilecare; hit"));
}

#[tokio::test]
async fn rfc9111_4_1_vary_selects_by_the_listed_request_headers_rfc9211_vary_miss() {
    let (addr, calls) = app(|l| l).await;
    let path = "/r?vary=Accept-Language";
    let en = get_with(addr, path, &[("accept-language", "en")]).await;
    assert_eq!(en.text(), "en #1");
    let en_again = get_with(addr, path, &[("accept-language", "en")]).await;
    assert_eq!(
        (status(&en_again), en_again.text().as_str()),
        ("nilecare; hit", "en #1")
    );
    // Another language never gets the English response.
    let ar = get_with(addr, path, &[("accept-language", "ar")]).await;
    assert_eq!(status(&ar), "nilecare; fwd=vary-miss; stored");
    assert_eq!(ar.text(), "ar #2");
    let none = get_with(addr, path, &[]).await;
    assert_eq!(status(&none), "nilecare; fwd=vary-miss; stored");
    assert_eq!(calls.count(), 3);
    // Vary: Accept-Encoding is honoured the same way.
    let path = "/r?vary=accept-encoding";
    get_with(addr, path, &[("accept-encoding", "gzip")]).await;
    let other = get_with(addr, path, &[("accept-encoding", "br")]).await;
    assert_eq!(status(&other), "nilecare; fwd=vary-miss; stored");
}

#[tokio::test]
async fn rfc9111_4_1_vary_star_is_never_stored() {
    let (addr, calls) = app(|l| l).await;
    for _ in 0..2 {
        let r = get_with(addr, "/r?vary=*", &[]).await;
        assert_eq!(status(&r), "nilecare; fwd=miss; detail=vary");
    }
    assert_eq!(calls.count(), 2);
}

#[tokio::test]
async fn rfc9111_3_5_authorized_requests_are_stored_only_when_the_response_allows() {
    let (addr, calls) = app(|l| l).await;
    let auth = [("authorization", "Bearer t")];
    let r = get_with(addr, "/r?cc=max-age%3D60", &auth).await;
    assert_eq!(status(&r), "nilecare; fwd=miss; detail=authorization");
    for allowed in [
        "s-maxage%3D60",
        "public",
        "must-revalidate%2C%20max-age%3D60",
    ] {
        let path = format!("/r?cc={allowed}");
        let r = get_with(addr, &path, &auth).await;
        assert_eq!(status(&r), "nilecare; fwd=miss; stored", "{allowed}");
    }
    assert_eq!(calls.count(), 4);
}

#[tokio::test]
async fn rfc9111_5_3_expires_gives_freshness_and_a_malformed_max_age_is_not_the_default() {
    let (addr, calls) = app(|l| l).await;
    get_with(addr, "/r?expires=60", &[]).await;
    assert_eq!(
        status(&get_with(addr, "/r?expires=60", &[]).await),
        "nilecare; hit"
    );
    let malformed = get_with(addr, "/r?cc=max-age%3Dsoon", &[]).await;
    assert_eq!(
        status(&malformed),
        "nilecare; fwd=miss; detail=invalid-freshness"
    );
    assert_eq!(calls.count(), 2);
}

#[tokio::test]
async fn rfc9111_5_2_2_private_and_no_cache_responses_are_not_stored() {
    let (addr, _) = app(|l| l).await;
    let r = get_with(addr, "/r?cc=private", &[]).await;
    assert_eq!(status(&r), "nilecare; fwd=miss; detail=private");
    let r = get_with(addr, "/r?cc=no-cache", &[]).await;
    assert_eq!(status(&r), "nilecare; fwd=miss; detail=no-cache");
}
