//! ResponseCacheLayer over real HTTP: hit/miss and Cache-Status, HEAD from the GET entry,
//! query normalization, no-store, Set-Cookie, non-2xx, tenant separation, mutation
//! invalidation through tag routes, the stats handler; on MemoryStore and a real Redis server.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use nilecare_cache::http::{ResponseCacheLayer, stats_handler};
use nilecare_cache::{AnyStore, Cache, MemoryStore};
use nilecare_test_support::RedisServer;
use nilecare_test_support::http::{HttpResponse, request, serve};

#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

async fn patient(
    State(calls): State<Calls>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let tenant = headers
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let n = calls.next();
    (
        [("x-served-by", "handler")],
        format!("{{\"id\":{id},\"tenant\":\"{tenant}\",\"call\":{n}}}"),
    )
}

async fn app(cache: Cache) -> (SocketAddr, Calls) {
    let calls = Calls::default();
    let layer = ResponseCacheLayer::new(cache.clone())
        .tenant_header(http::HeaderName::from_static("x-tenant-id"))
        .tag_route("/api/v1/patients/{id}", &["patient:{id}"])
        .unwrap()
        .tag_route("/api/v1/patients", &["patients"])
        .unwrap();
    let router = Router::new()
        .route(
            "/api/v1/patients/{id}",
            get(patient).put(|State(c): State<Calls>| async move {
                c.next();
                "updated"
            }),
        )
        .route(
            "/api/v1/patients",
            get(|State(c): State<Calls>| async move { format!("list {}", c.next()) }).post(
                |State(c): State<Calls>| async move {
                    c.next();
                    (http::StatusCode::CREATED, "created")
                },
            ),
        )
        .route(
            "/nostore",
            get(|State(c): State<Calls>| async move {
                ([("cache-control", "no-store")], format!("{}", c.next()))
            }),
        )
        .route(
            "/cookie",
            get(|State(c): State<Calls>| async move {
                ([("set-cookie", "session=secret")], format!("{}", c.next()))
            }),
        )
        .route(
            "/missing",
            get(|State(c): State<Calls>| async move {
                (http::StatusCode::NOT_FOUND, format!("{}", c.next()))
            }),
        )
        .layer(layer)
        .route("/api/v1/cache/stats", stats_handler(cache))
        .with_state(calls.clone());
    (serve(router).await, calls)
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    request(addr, method, path, headers, b"").await
}

fn cache_status(r: &HttpResponse) -> &str {
    r.header("cache-status").unwrap_or("<none>")
}

async fn suite(label: &str, cache: Cache) {
    let (addr, calls) = app(cache).await;
    let get = |path: &'static str| send(addr, "GET", path, &[]);

    // miss, then hit with the same body and kept headers, and an Age
    let first = get("/api/v1/patients/1").await;
    assert_eq!(
        cache_status(&first),
        "nilecare; fwd=miss; stored",
        "{label}"
    );
    let second = get("/api/v1/patients/1").await;
    assert_eq!(cache_status(&second), "nilecare; hit", "{label}");
    assert_eq!(second.text(), first.text(), "{label}");
    assert_eq!(second.header("x-served-by"), Some("handler"), "{label}");
    assert!(second.header("age").is_some(), "{label}");
    assert_eq!(calls.count(), 1, "{label}");

    // HEAD is served from the GET entry, without a body
    let head = send(addr, "HEAD", "/api/v1/patients/1", &[]).await;
    assert_eq!(
        (cache_status(&head), head.body.len()),
        ("nilecare; hit", 0),
        "{label}"
    );
    assert_eq!(calls.count(), 1, "{label}");

    // query parameters in another order are the same resource
    get("/api/v1/patients/2?b=2&a=1").await;
    let reordered = get("/api/v1/patients/2?a=1&b=2").await;
    assert_eq!(cache_status(&reordered), "nilecare; hit", "{label}");

    // request no-cache skips the lookup and refreshes the entry (RFC 9211: fwd=request)
    let before = calls.count();
    let refreshed = send(
        addr,
        "GET",
        "/api/v1/patients/1",
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(
        cache_status(&refreshed),
        "nilecare; fwd=request; stored",
        "{label}"
    );
    assert_eq!(calls.count(), before + 1, "{label}");

    // not stored: no-store, Set-Cookie, non-2xx
    for (path, detail) in [
        ("/nostore", "no-store"),
        ("/cookie", "set-cookie"),
        ("/missing", "status"),
    ] {
        let before = calls.count();
        let a = get(path).await;
        let b = get(path).await;
        let want = format!("nilecare; fwd=miss; detail={detail}");
        assert_eq!(
            (cache_status(&a), cache_status(&b)),
            (want.as_str(), want.as_str()),
            "{label}: {path}"
        );
        assert_eq!(
            calls.count(),
            before + 2,
            "{label}: {path} served from cache"
        );
    }

    // tenants are kept apart
    let a = send(
        addr,
        "GET",
        "/api/v1/patients/5",
        &[("x-tenant-id", "clinic_a")],
    )
    .await;
    let b = send(
        addr,
        "GET",
        "/api/v1/patients/5",
        &[("x-tenant-id", "clinic_b")],
    )
    .await;
    assert_eq!(cache_status(&b), "nilecare; fwd=miss; stored", "{label}");
    assert!(
        a.text().contains("clinic_a") && b.text().contains("clinic_b"),
        "{label}"
    );
    let a2 = send(
        addr,
        "GET",
        "/api/v1/patients/5",
        &[("x-tenant-id", "clinic_a")],
    )
    .await;
    assert_eq!(
        (cache_status(&a2), a2.text()),
        ("nilecare; hit", a.text()),
        "{label}"
    );

    // a mutation invalidates its resource (and only it); POST to the list invalidates the list
    get("/api/v1/patients/7").await;
    get("/api/v1/patients/8").await;
    get("/api/v1/patients").await;
    let put = send(addr, "PUT", "/api/v1/patients/7", &[]).await;
    assert_eq!(put.status, 200, "{label}");
    assert_eq!(
        cache_status(&get("/api/v1/patients/7").await),
        "nilecare; fwd=miss; stored",
        "{label}"
    );
    assert_eq!(
        cache_status(&get("/api/v1/patients/8").await),
        "nilecare; hit",
        "{label}"
    );
    assert_eq!(
        cache_status(&get("/api/v1/patients").await),
        "nilecare; hit",
        "{label}"
    );
    let post = send(addr, "POST", "/api/v1/patients", &[]).await;
    assert_eq!(post.status, 201, "{label}");
    assert_eq!(
        cache_status(&get("/api/v1/patients").await),
        "nilecare; fwd=miss; stored",
        "{label}"
    );
    assert_eq!(
        cache_status(&get("/api/v1/patients/8").await),
        "nilecare; hit",
        "{label}"
    );

    // a tenant's mutation does not touch the global entry of the same path
    send(
        addr,
        "PUT",
        "/api/v1/patients/8",
        &[("x-tenant-id", "clinic_a")],
    )
    .await;
    assert_eq!(
        cache_status(&get("/api/v1/patients/8").await),
        "nilecare; hit",
        "{label}"
    );

    // the stats handler
    let stats = get("/api/v1/cache/stats").await.json();
    assert!(stats["hits"].as_u64().unwrap() >= 8, "{label}: {stats}");
    assert!(
        stats["hit_rate"].as_f64().unwrap() > 0.0,
        "{label}: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store() {
    let cache = Cache::builder()
        .name("http")
        .build(AnyStore::from(
            MemoryStore::with_max_entries(10_000).unwrap(),
        ))
        .unwrap();
    suite("memory", cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .name("http")
        .build(AnyStore::from(support::redis_store(&server).await))
        .unwrap();
    suite("redis", cache).await;
}

/// Operational answers are never frozen: the stats handler says `no-store` (so even mounted
/// inside the cache layer it is never stored), and `exclude_route` keeps a route out entirely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_excluded_routes_are_never_cached() {
    let cache: Cache = Cache::builder()
        .name("ops")
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap();
    let calls = Calls::default();
    let layer = ResponseCacheLayer::new(cache.clone())
        .exclude_route("/admin/{page}")
        .unwrap();
    let router = Router::new()
        .route("/api/v1/cache/stats", stats_handler(cache.clone()))
        .route(
            "/admin/{page}",
            get(|State(c): State<Calls>| async move { format!("{}", c.next()) }),
        )
        .route(
            "/api/v1/patients/{id}",
            get(|State(c): State<Calls>| async move { format!("{}", c.next()) }),
        )
        .layer(layer)
        .with_state(calls.clone());
    let addr = serve(router).await;
    let first = send(addr, "GET", "/api/v1/cache/stats", &[]).await;
    assert_eq!(first.header("cache-control"), Some("no-store"));
    // A cached route in between changes the counters the next stats call must show.
    send(addr, "GET", "/api/v1/patients/1", &[]).await;
    send(addr, "GET", "/api/v1/patients/1", &[]).await;
    let second = send(addr, "GET", "/api/v1/cache/stats", &[]).await;
    assert_ne!(
        cache_status(&second),
        "nilecare; hit",
        "stats were served from the cache"
    );
    assert!(
        second.json()["hits"].as_u64().unwrap() > first.json()["hits"].as_u64().unwrap(),
        "frozen stats: {} then {}",
        first.text(),
        second.text()
    );
    for _ in 0..3 {
        let r = send(addr, "GET", "/admin/overview", &[]).await;
        assert_eq!(
            r.header("cache-status"),
            None,
            "excluded routes pass untouched"
        );
    }
    assert_eq!(
        calls.count(),
        2 + 3 - 1,
        "patients once (then a hit), admin three times"
    );
    let bad = ResponseCacheLayer::new(cache)
        .exclude_route("admin")
        .unwrap_err();
    assert!(bad.to_string().contains("exclude_route"), "{bad}");
}
