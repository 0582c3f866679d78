//! `https://` instances: `ServiceClient` calls them and health checks probe them over TLS,
//! trusting a CA made in the test; an untrusted certificate is a failed try / a failed probe,
//! never a plaintext fallback.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use nilecare_service_discovery::{
    Error, Health, HealthCheck, MemoryRegistry, Registry, Resolver, RetryPolicy, ServiceClient,
    ServiceInstance,
};
use nilecare_test_support::http::serve_tls;
use nilecare_test_support::{TestCa, eventually};

/// An HTTPS instance answering `GET /patients` and `GET /health` (503 once `healthy` is off).
async fn https_instance(ca: &TestCa, healthy: Arc<AtomicBool>) -> String {
    let app = Router::new()
        .route("/patients", get(|| async { "over tls" }))
        .route(
            "/health",
            get(move || {
                let healthy = healthy.clone();
                async move {
                    if healthy.load(Ordering::Relaxed) {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
    let addr = serve_tls(app, &ca.issue(&["localhost", "127.0.0.1"])).await;
    format!("https://localhost:{}", addr.port())
}

fn client(
    resolver: Resolver<MemoryRegistry>,
    ca: Option<&TestCa>,
) -> ServiceClient<MemoryRegistry> {
    let builder = ServiceClient::builder(Arc::new(resolver))
        .retry(RetryPolicy::default().max_attempts(1).unwrap())
        .per_try_timeout(Duration::from_secs(2));
    match ca {
        Some(ca) => builder.tls_ca_pem(ca.pem().as_bytes()).unwrap().build(),
        None => builder.build(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_client_calls_an_https_instance_whose_ca_it_trusts() {
    let ca = TestCa::new("discovery test CA");
    let address = https_instance(&ca, Arc::new(AtomicBool::new(true))).await;
    let registry = MemoryRegistry::default();
    let _r = registry
        .register(ServiceInstance::new("patients", "tls-1", address).unwrap())
        .await
        .unwrap();
    let trusting = client(
        Resolver::builder(registry.clone()).build().unwrap(),
        Some(&ca),
    );
    let response = trusting.get("patients", "/patients").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().as_ref(), b"over tls");

    let stranger = TestCa::new("another CA");
    for untrusting in [
        client(
            Resolver::builder(registry.clone()).build().unwrap(),
            Some(&stranger),
        ),
        client(Resolver::builder(registry.clone()).build().unwrap(), None),
    ] {
        let error = untrusting.get("patients", "/patients").await.unwrap_err();
        assert!(
            !matches!(error, Error::NoInstance { .. }),
            "the instance was tried: {error}"
        );
        assert!(
            error.to_string().contains("UnknownIssuer"),
            "the cause is named: {error}"
        );
    }
    let e = ServiceClient::builder(Arc::new(Resolver::builder(registry).build().unwrap()))
        .tls_ca_pem(b"not pem")
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidConfig {
                field: "tls_ca",
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_probe_https_instances() {
    let ca = TestCa::new("discovery test CA");
    let healthy = Arc::new(AtomicBool::new(true));
    let address = https_instance(&ca, healthy.clone()).await;
    let registry = MemoryRegistry::default();
    let _r = registry
        .register(ServiceInstance::new("patients", "tls-1", address).unwrap())
        .await
        .unwrap();
    let check = |ca: &TestCa| {
        HealthCheck::http("/health")
            .unwrap()
            .interval(Duration::from_millis(40))
            .unwrap()
            .jitter(Duration::from_millis(5))
            .unwrap()
            .thresholds(1, 2)
            .unwrap()
            .tls_ca_pem(ca.pem().as_bytes())
            .unwrap()
    };
    let resolver = Resolver::builder(registry.clone())
        .health_check(check(&ca))
        .build()
        .unwrap();
    let service = resolver.service("patients").await.unwrap();
    healthy.store(false, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("tls-1") == Some(Health::Unhealthy)
        })
        .await,
        "a 503 over TLS marks the instance unhealthy"
    );
    healthy.store(true, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("tls-1") == Some(Health::Healthy)
        })
        .await,
        "a 200 over TLS brings it back"
    );

    // Probes that do not trust the certificate fail: the healthy instance is marked down.
    let stranger = Resolver::builder(registry)
        .health_check(check(&TestCa::new("another CA")))
        .build()
        .unwrap();
    let service = stranger.service("patients").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("tls-1") == Some(Health::Unhealthy)
        })
        .await,
        "an untrusted certificate is a failed probe"
    );
}
