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

#[tokio::test]
async fn a_long_key_is_limited_like_any_other_never_let_through() {
    let layer = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 1))
        .key(KeyExtractor::header("x-api-key"));
    let addr = serve_with_connect_info(app(layer)).await;
    let long = "k".repeat(4_000);
    let first = fetch(addr, "/api/v1/patients", &[("x-api-key", &long)]).await;
    assert_eq!(first.status, 200);
    for _ in 0..3 {
        let again = fetch(addr, "/api/v1/patients", &[("x-api-key", &long)]).await;
        assert_eq!(
            again.status, 429,
            "a 4 000-byte key must not escape its limit"
        );
    }
    // Another long key (same length, one byte apart) has its own quota.
    let mut other = long.clone();
    other.replace_range(3_999.., "j");
    let r = fetch(addr, "/api/v1/patients", &[("x-api-key", &other)]).await;
    assert_eq!(r.status, 200);
    // A short key posing as the long key's digest does not share its bucket.
    let digest = nilecare_rate_limit::stored_key(&format!("h:{long}"))
        .unwrap()
        .into_owned();
    let posed = digest.trim_start_matches("h:");
    let r = fetch(addr, "/api/v1/patients", &[("x-api-key", posed)]).await;
    assert_eq!(r.status, 200);
}

/// A counter as (name, label values, value).
type Counted = (String, Vec<String>, u64);

/// Serves `router` as a tower service on this thread (no `ConnectInfo`), with a local metrics
/// recorder, and returns the response and the recorder's counters.
fn oneshot_with_metrics(
    router: Router,
    requests: usize,
) -> (Vec<axum::response::Response>, Vec<Counted>) {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tower::ServiceExt;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let responses = metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut out = Vec::new();
            for _ in 0..requests {
                let req = http::Request::get("/api/v1/patients")
                    .body(axum::body::Body::empty())
                    .unwrap();
                out.push(router.clone().oneshot(req).await.unwrap());
            }
            out
        })
    });
    let counters = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(k, _, _, v)| match v {
            DebugValue::Counter(n) => Some((
                k.key().name().to_owned(),
                k.key().labels().map(|l| l.value().to_owned()).collect(),
                n,
            )),
            _ => None,
        })
        .collect();
    (responses, counters)
}

#[test]
fn peer_ip_keys_without_connect_info_are_a_loud_500_not_one_shared_bucket() {
    let layer = RateLimitLayer::new(MemoryLimiter::new()).policy(policy("api", 100));
    let (responses, counters) = oneshot_with_metrics(app(layer), 3);
    for r in &responses {
        assert_eq!(r.status(), 500);
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{r:?}"
        );
    }
    let failures: Vec<_> = counters
        .iter()
        .filter(|(name, _, _)| name == "nilecare_ratelimit_layer_failures_total")
        .collect();
    assert_eq!(
        failures,
        [&(
            "nilecare_ratelimit_layer_failures_total".to_owned(),
            vec!["no_peer_address".to_owned(), "denied".to_owned()],
            3
        )]
    );
    // Keyed by something else, the same server needs no peer address.
    let layer = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 100))
        .key(KeyExtractor::global());
    let (responses, _) = oneshot_with_metrics(app(layer), 1);
    assert_eq!(responses[0].status(), 200);
}

#[tokio::test]
async fn forwarded_header_is_read_only_when_configured() {
    let behind_rfc7239_proxy = RateLimitLayer::new(MemoryLimiter::new())
        .policy(policy("api", 1))
        .trusted_proxies(["127.0.0.0/8"])
        .unwrap()
        .forwarded_header(nilecare_rate_limit::ForwardedHeader::Forwarded);
    let addr = serve_with_connect_info(app(behind_rfc7239_proxy)).await;
    for client in ["for=198.51.100.1", "for=\"[2001:db8::1]:4711\""] {
        let r = fetch(addr, "/api/v1/patients", &[("forwarded", client)]).await;
        assert_eq!(r.status, 200, "{client}");
    }
    let r = fetch(
        addr,
        "/api/v1/patients",
        &[("forwarded", "for=198.51.100.1;proto=https")],
    )
    .await;
    assert_eq!(r.status, 429);
    // X-Forwarded-For is ignored here: both requests are the proxy's own (127.0.0.1).
    let r = fetch(
        addr,
        "/api/v1/patients",
        &[("x-forwarded-for", "198.51.100.9")],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = fetch(
        addr,
        "/api/v1/patients",
        &[("x-forwarded-for", "198.51.100.10")],
    )
    .await;
    assert_eq!(r.status, 429);
}

#[test]
fn client_ip_is_the_address_the_layer_keys_by() {
    let layer = RateLimitLayer::new(MemoryLimiter::new())
        .trusted_proxies(["10.0.0.0/8"])
        .unwrap();
    let (mut parts, ()) = http::Request::get("/")
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.1")
        .body(())
        .unwrap()
        .into_parts();
    assert_eq!(layer.client_ip(&parts), None, "no peer address");
    let peer: std::net::SocketAddr = "10.0.0.2:80".parse().unwrap();
    parts.extensions.insert(axum::extract::ConnectInfo(peer));
    assert_eq!(
        layer.client_ip(&parts),
        Some("198.51.100.7".parse().unwrap())
    );
}
