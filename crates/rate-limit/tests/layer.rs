//! The axum layer over real HTTP: headers, 429 problem+json, per-route policies, keys.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use http::Method;
use nilecare_rate_limit::{KeyExtractor, MemoryLimiter, Policy, Quota, RateLimitLayer};
use nilecare_test_support::http::{HttpResponse, request, serve_with_connect_info};

fn app(layer: RateLimitLayer) -> Router {
    Router::new()
        .route(
            "/api/v1/patients",
            get(|| async { "list" }).post(|| async { "created" }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(layer)
}

fn policy(name: &str, per_minute: u64) -> Policy {
    Policy::new(name, Quota::per_minute(per_minute).unwrap()).unwrap()
}

async fn fetch(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    request(addr, "GET", path, headers, b"").await
}

#[tokio::test]
async fn headers_then_a_problem_json_429() {
    let layer = RateLimitLayer::new(MemoryLimiter::new()).policy(policy("api", 3));
    let addr = serve_with_connect_info(app(layer)).await;
    for remaining in [2, 1, 0] {
        let r = fetch(addr, "/api/v1/patients", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-policy"), Some("\"api\";q=3;w=60"));
        let state = r.header("ratelimit").unwrap();
        assert!(
            state.starts_with(&format!("\"api\";r={remaining};t=")),
            "{state}"
        );
    }
    let r = fetch(addr, "/api/v1/patients", &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body = r.json();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["policies"][0], "api");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}"); // a sliding window frees units within two windows
    assert!(r.header("ratelimit").unwrap().contains("r=0"));
}

#[tokio::test]
async fn per_route_and_method_policies() {
    let layer = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 100))
        .route_policy("/api/v1/patients", Some(Method::POST), policy("writes", 1));
    let addr = serve_with_connect_info(app(layer)).await;
    assert_eq!(
        request(addr, "POST", "/api/v1/patients", &[], b"")
            .await
            .status,
        200
    );
    let r = request(addr, "POST", "/api/v1/patients", &[], b"").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("ratelimit-policy"), Some("\"writes\";q=1;w=60"));
    // GET on the same route uses the default policy and is still allowed
    let r = fetch(addr, "/api/v1/patients", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("ratelimit-policy").unwrap().contains("\"api\""));
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_trusted_proxies() {
    // Trusted: the test client (127.0.0.1) acts as a proxy; each forwarded client has its own quota.
    let trusted = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 1))
        .trusted_proxies(["127.0.0.0/8"])
        .unwrap();
    let addr = serve_with_connect_info(app(trusted)).await;
    for client in ["198.51.100.1", "198.51.100.2", "2001:db8::1"] {
        let r = fetch(addr, "/api/v1/patients", &[("x-forwarded-for", client)]).await;
        assert_eq!(r.status, 200, "{client}");
    }
    // Same /64 as 2001:db8::1: the same client.
    let r = fetch(
        addr,
        "/api/v1/patients",
        &[("x-forwarded-for", "2001:db8::ffff")],
    )
    .await;
    assert_eq!(r.status, 429);

    // Untrusted: spoofed headers are ignored, everyone is the peer 127.0.0.1.
    let untrusted = RateLimitLayer::new(MemoryLimiter::new()).policy(policy("api", 1));
    let addr = serve_with_connect_info(app(untrusted)).await;
    assert_eq!(
        fetch(
            addr,
            "/api/v1/patients",
            &[("x-forwarded-for", "198.51.100.1")]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        fetch(
            addr,
            "/api/v1/patients",
            &[("x-forwarded-for", "198.51.100.2")]
        )
        .await
        .status,
        429
    );
}

#[tokio::test]
async fn allow_lists_shadow_mode_and_garbage_headers() {
    let layer = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 1))
        .key(KeyExtractor::header("x-api-key"))
        .allow_keys(["monitoring"]);
    let addr = serve_with_connect_info(app(layer)).await;
    for _ in 0..5 {
        let r = fetch(addr, "/api/v1/patients", &[("x-api-key", "monitoring")]).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("ratelimit"),
            None,
            "allow-listed keys are not limited"
        );
    }
    assert_eq!(
        fetch(addr, "/api/v1/patients", &[("x-api-key", "k1")])
            .await
            .status,
        200
    );
    assert_eq!(
        fetch(addr, "/api/v1/patients", &[("x-api-key", "k1")])
            .await
            .status,
        429
    );
    assert_eq!(
        fetch(addr, "/api/v1/patients", &[("x-api-key", "k2")])
            .await
            .status,
        200
    );
    let long = "x".repeat(4_000);
    assert_eq!(
        fetch(addr, "/api/v1/patients", &[("x-api-key", &long)])
            .await
            .status,
        200
    );

    let shadow = RateLimitLayer::new(MemoryLimiter::new()).policy(policy("api", 1).shadow(true));
    let addr = serve_with_connect_info(app(shadow)).await;
    for _ in 0..3 {
        assert_eq!(fetch(addr, "/api/v1/patients", &[]).await.status, 200);
    }

    let trusted = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 10))
        .trusted_proxies(["127.0.0.1"])
        .unwrap();
    let addr = serve_with_connect_info(app(trusted)).await;
    for garbage in ["not-an-ip", "999.1.1.1, ::zz", "", "[::1", "for=\"[\""] {
        let r = fetch(
            addr,
            "/api/v1/patients",
            &[("x-forwarded-for", garbage), ("forwarded", garbage)],
        )
        .await;
        assert_eq!(r.status, 200, "{garbage:?}");
    }
    assert!(
        RateLimitLayer::new(MemoryLimiter::new())
            .trusted_proxies(["10.0.0.0/99"])
            .is_err()
    );
}
