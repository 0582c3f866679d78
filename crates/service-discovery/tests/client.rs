//! `ServiceClient` against real HTTP instances (axum on free ports): retries of idempotent
//! requests move to another instance on 503, refused connections and timeouts; other requests
//! are tried once; a circuit breaker per instance (the `CallGate`) skips a failing instance.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use bytes::Bytes;
use nilecare_circuit_breaker::{BreakerConfig, BreakerRegistry, WaitStrategy, WindowType};
use nilecare_service_discovery::{
    Error, MemoryRegistry, Registration, Registry, Resolver, RetryPolicy, ServiceClient,
    ServiceInstance, Strategy,
};
use nilecare_test_support::http::closed_port;

/// A server answering every request with `status` and its name after `delay`; counts hits.
async fn server(
    name: &'static str,
    status: StatusCode,
    delay: Duration,
) -> (SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(any(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            (status, name)
        }
    }));
    (nilecare_test_support::http::serve(app).await, hits)
}

async fn register(
    registry: &MemoryRegistry,
    instances: &[(&str, SocketAddr)],
) -> Vec<Registration<MemoryRegistry>> {
    let mut out = Vec::new();
    for (id, addr) in instances {
        out.push(
            registry
                .register(ServiceInstance::new("patients", *id, format!("http://{addr}")).unwrap())
                .await
                .unwrap(),
        );
    }
    out
}

/// Round robin, `attempts` tries, near-zero backoff, 300 ms per try.
fn client_with_attempts(registry: MemoryRegistry, attempts: u32) -> ServiceClient<MemoryRegistry> {
    let resolver = Resolver::builder(registry)
        .strategy(Strategy::RoundRobin)
        .build()
        .unwrap();
    ServiceClient::builder(Arc::new(resolver))
        .retry(
            RetryPolicy::default()
                .max_attempts(attempts)
                .unwrap()
                .backoff(Duration::from_millis(1), Duration::from_millis(5))
                .unwrap(),
        )
        .per_try_timeout(Duration::from_millis(300))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_move_to_another_instance_on_503_refusal_and_timeout() {
    let (ok, ok_hits) = server("ok", StatusCode::OK, Duration::ZERO).await;
    let (busy, busy_hits) = server("busy", StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let (slow, slow_hits) = server("slow", StatusCode::OK, Duration::from_secs(5)).await;
    let registry = MemoryRegistry::default();
    let _r = register(
        &registry,
        &[
            ("a-ok", ok),
            ("b-busy", busy),
            ("c-gone", closed_port()),
            ("d-slow", slow),
        ],
    )
    .await;
    // Round robin: whatever instance a call starts on, the 4th try reaches "a-ok".
    let client = client_with_attempts(registry, 4);
    for _ in 0..12 {
        let response = client.get("patients", "/api/v1/patients/1").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), &Bytes::from_static(b"ok"));
    }
    assert_eq!(ok_hits.load(Ordering::Relaxed), 12);
    assert!(
        busy_hits.load(Ordering::Relaxed) > 0,
        "503s were met and retried"
    );
    assert!(
        slow_hits.load(Ordering::Relaxed) > 0,
        "timeouts were met and retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_tried_once() {
    let (ok, ok_hits) = server("ok", StatusCode::OK, Duration::ZERO).await;
    let (busy, busy_hits) = server("busy", StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let registry = MemoryRegistry::default();
    let _r = register(&registry, &[("a-ok", ok), ("b-busy", busy)]).await;
    let client = client(registry);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let request = http::Request::post("/api/v1/patients")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        statuses.push(client.request("patients", request).await.unwrap().status());
    }
    assert_eq!(
        ok_hits.load(Ordering::Relaxed) + busy_hits.load(Ordering::Relaxed),
        10,
        "one try each"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count(),
        5
    );

    // With an Idempotency-Key the same POST may be retried.
    let request = http::Request::post("/api/v1/patients")
        .header("idempotency-key", "k-1")
        .body(Bytes::new())
        .unwrap();
    for _ in 0..4 {
        let response = client.request("patients", request.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_try_fails_the_caller_learns_why() {
    let registry = MemoryRegistry::default();
    let _r = register(&registry, &[("a", closed_port()), ("b", closed_port())]).await;
    let client = client(registry.clone());
    match client.get("patients", "/x").await {
        Err(Error::Call {
            service, attempts, ..
        }) => {
            assert_eq!((service.as_str(), attempts), ("patients", 3));
        }
        other => panic!("expected a call error, got {other:?}"),
    }
    assert!(matches!(
        client.get("billing", "/x").await,
        Err(Error::NoInstance { .. })
    ));

    let (busy, busy_hits) = server("busy", StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let registry = MemoryRegistry::default();
    let _r = register(&registry, &[("busy", busy)]).await;
    let response = client_with_attempts(registry, 3)
        .get("patients", "/x")
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the last 503 is returned"
    );
    assert_eq!(busy_hits.load(Ordering::Relaxed), 3);
}

fn client(registry: MemoryRegistry) -> ServiceClient<MemoryRegistry> {
    client_with_attempts(registry, 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_skips_its_instance() {
    let (ok, _) = server("ok", StatusCode::OK, Duration::ZERO).await;
    let (busy, busy_hits) = server("busy", StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO).await;
    let registry = MemoryRegistry::default();
    let _r = register(&registry, &[("a-ok", ok), ("b-busy", busy)]).await;
    let breakers = BreakerRegistry::new(
        BreakerConfig::default()
            .window(WindowType::CountBased(4))
            .minimum_calls(4)
            .failure_rate_threshold(50.0)
            .wait(WaitStrategy::Fixed(Duration::from_secs(60))),
    )
    .unwrap();
    let breakers = Arc::new(breakers);
    let resolver = Resolver::builder(registry)
        .strategy(Strategy::RoundRobin)
        .build()
        .unwrap();
    let client = ServiceClient::builder(Arc::new(resolver))
        .retry(
            RetryPolicy::default()
                .backoff(Duration::ZERO, Duration::ZERO)
                .unwrap(),
        )
        .gate(breakers.clone())
        .build();
    for _ in 0..20 {
        assert_eq!(
            client.get("patients", "/").await.unwrap().status(),
            StatusCode::OK
        );
    }
    let hits_when_open = busy_hits.load(Ordering::Relaxed);
    assert_eq!(
        hits_when_open, 4,
        "the breaker opened after its window of 4 failures"
    );
    for _ in 0..20 {
        assert_eq!(
            client.get("patients", "/").await.unwrap().status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        busy_hits.load(Ordering::Relaxed),
        hits_when_open,
        "skipped while open"
    );
}
