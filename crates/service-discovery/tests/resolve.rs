//! The resolver against real HTTP instances (axum on free ports): it follows registry
//! changes, marks instances down after failed health probes and up after recovery, ejects
//! outliers within the cap, enters panic mode, prefers its zone and spills over.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use nilecare_service_discovery::{
    Error, Health, HealthCheck, MemoryRegistry, OutlierDetection, Registration, Registry,
    ResolvedService, Resolver, ServiceInstance, Status, Strategy,
};
use nilecare_test_support::eventually;

/// An instance whose `/health` answers 200 or 503 as switched.
struct Instance {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
}

async fn instance_server() -> Instance {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let app = Router::new().route(
        "/health",
        get(move || {
            let flag = flag.clone();
            async move {
                if flag.load(Ordering::Relaxed) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let addr = nilecare_test_support::http::serve(app).await;
    Instance { addr, healthy }
}

fn describe(id: &str, addr: SocketAddr) -> ServiceInstance {
    ServiceInstance::new("patients", id, format!("http://{addr}")).unwrap()
}

/// How often each id was picked in `n` selections (guards dropped at once).
fn picks(service: &ResolvedService, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        if let Some(guard) = service.select() {
            *counts.entry(guard.id().to_owned()).or_default() += 1;
        }
    }
    counts
}

async fn register_all(
    registry: &MemoryRegistry,
    instances: &[(&str, &Instance)],
) -> Vec<Registration<MemoryRegistry>> {
    let mut registrations = Vec::new();
    for (id, instance) in instances {
        registrations.push(
            registry
                .register(describe(id, instance.addr))
                .await
                .unwrap(),
        );
    }
    registrations
}

fn fast_check() -> HealthCheck {
    HealthCheck::http("/health")
        .unwrap()
        .interval(Duration::from_millis(40))
        .unwrap()
        .jitter(Duration::from_millis(5))
        .unwrap()
        .timeout(Duration::from_millis(500))
        .unwrap()
        .thresholds(2, 2)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_copy_follows_registry_changes() {
    let registry = MemoryRegistry::default();
    let resolver = Resolver::builder(registry.clone())
        .strategy(Strategy::RoundRobin)
        .build()
        .unwrap();
    assert!(matches!(
        resolver.select("patients").await,
        Err(Error::NoInstance { service }) if service == "patients"
    ));
    let a = registry
        .register(ServiceInstance::new("patients", "a", "http://10.0.0.1:80").unwrap())
        .await
        .unwrap();
    let service = resolver.service("patients").await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            service.select().is_some()
        })
        .await
    );
    let _b = registry
        .register(ServiceInstance::new("patients", "b", "http://10.0.0.2:80").unwrap())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            picks(&service, 4).len() == 2
        })
        .await
    );
    a.deregister().await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            picks(&service, 4).keys().collect::<Vec<_>>() == ["b"]
        })
        .await
    );
    assert!(resolver.try_select("patients").is_some());
    assert!(resolver.try_select("billing").is_none(), "not followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_checks_take_an_instance_out_and_recovery_brings_it_back() {
    let (one, two, three) = (
        instance_server().await,
        instance_server().await,
        instance_server().await,
    );
    let registry = MemoryRegistry::default();
    let _r = register_all(
        &registry,
        &[("one", &one), ("two", &two), ("three", &three)],
    )
    .await;
    let resolver = Resolver::builder(registry)
        .health_check(fast_check())
        .build()
        .unwrap();
    let service = resolver.service("patients").await.unwrap();
    assert_eq!(picks(&service, 30).len(), 3);

    two.healthy.store(false, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("two") == Some(Health::Unhealthy)
        })
        .await,
        "marked unhealthy after two failed probes"
    );
    let counts = picks(&service, 30);
    assert_eq!(counts.get("two"), None, "{counts:?}");
    assert_eq!(counts.len(), 2);
    assert!(
        !service.is_panicking(),
        "2 of 3 healthy is above the 50 % threshold"
    );

    two.healthy.store(true, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("two") == Some(Health::Healthy)
        })
        .await,
        "healthy again after two good probes"
    );
    assert_eq!(picks(&service, 30).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_the_probe() {
    let up = instance_server().await;
    // A port nothing listens on: bind, note the port, close.
    let closed = nilecare_test_support::http::closed_port();
    let registry = MemoryRegistry::default();
    let _a = registry.register(describe("up", up.addr)).await.unwrap();
    let _b = registry.register(describe("gone", closed)).await.unwrap();
    let resolver = Resolver::builder(registry)
        .health_check(fast_check())
        .build()
        .unwrap();
    let service = resolver.service("patients").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("gone") == Some(Health::Unhealthy)
        })
        .await
    );
    assert_eq!(service.health("up"), Some(Health::Healthy));
    assert_eq!(picks(&service, 10).keys().collect::<Vec<_>>(), ["up"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_mode_balances_over_all_when_too_few_are_healthy() {
    let servers = [
        instance_server().await,
        instance_server().await,
        instance_server().await,
        instance_server().await,
    ];
    let registry = MemoryRegistry::default();
    let ids = ["a", "b", "c", "d"];
    let pairs: Vec<(&str, &Instance)> = ids.iter().copied().zip(servers.iter()).collect();
    let _r = register_all(&registry, &pairs).await;
    let resolver = Resolver::builder(registry)
        .health_check(fast_check())
        .panic_threshold(50)
        .build()
        .unwrap();
    let service = resolver.service("patients").await.unwrap();

    servers[0].healthy.store(false, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(5), || async {
            service.health("a") == Some(Health::Unhealthy)
        })
        .await
    );
    assert!(!service.is_panicking(), "3 of 4 healthy");
    assert_eq!(picks(&service, 40).len(), 3);

    servers[1].healthy.store(false, Ordering::Relaxed);
    servers[2].healthy.store(false, Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(5), || async { service.is_panicking() }).await,
        "1 of 4 healthy is below 50 %"
    );
    let counts = picks(&service, 400);
    assert_eq!(counts.len(), 4, "panic mode spreads over all: {counts:?}");
    assert!(counts.values().all(|n| *n >= 60), "{counts:?}");

    for server in &servers {
        server.healthy.store(true, Ordering::Relaxed);
    }
    assert!(eventually(Duration::from_secs(5), || async { !service.is_panicking() }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outliers_are_ejected_within_the_cap_and_come_back() {
    let registry = MemoryRegistry::default();
    let mut registrations = Vec::new();
    for id in ["a", "b", "c", "d"] {
        registrations.push(
            registry
                .register(
                    ServiceInstance::new("patients", id, format!("http://{id}.local:80")).unwrap(),
                )
                .await
                .unwrap(),
        );
    }
    let resolver = Resolver::builder(registry)
        .outlier_detection(
            OutlierDetection::default()
                .consecutive_failures(3)
                .unwrap()
                .base_ejection_time(Duration::from_millis(400))
                .unwrap()
                .max_ejection_percent(25)
                .unwrap(),
        )
        .build()
        .unwrap();
    let service = resolver.service("patients").await.unwrap();
    // Calls to `failing` fail, all others succeed.
    let drive = |failing: &'static [&'static str], n: usize| {
        let service = service.clone();
        move || {
            for _ in 0..n {
                let Some(guard) = service.select() else {
                    continue;
                };
                if failing.contains(&guard.id()) {
                    guard.failure();
                } else {
                    guard.success();
                }
            }
        }
    };
    drive(&["a"], 40)();
    assert!(
        eventually(Duration::from_secs(2), || async {
            service.health("a") == Some(Health::Ejected)
        })
        .await
    );
    assert_eq!(
        picks(&service, 30).get("a"),
        None,
        "an ejected instance is not picked"
    );

    // A second outlier would pass the cap (25 % of 4 = 1 instance): it stays in.
    drive(&["b"], 40)();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(service.health("b"), Some(Health::Healthy), "the cap holds");

    // The ejection ends after the base time.
    assert!(
        eventually(Duration::from_secs(2), || async {
            service.health("a") == Some(Health::Healthy)
        })
        .await
    );
    assert!(picks(&service, 40).contains_key("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_zone_is_preferred_until_it_has_no_healthy_instance() {
    let registry = MemoryRegistry::default();
    let mut local = Vec::new();
    let mut remote = Vec::new();
    for (id, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
        let r = registry
            .register(
                ServiceInstance::new("patients", id, format!("http://{id}.local:80"))
                    .unwrap()
                    .with_zone(zone),
            )
            .await
            .unwrap();
        if zone == "a" {
            local.push(r);
        } else {
            remote.push(r);
        }
    }
    let resolver = Resolver::builder(registry)
        .prefer_zone("a")
        .panic_threshold(0)
        .build()
        .unwrap();
    let service = resolver.service("patients").await.unwrap();
    let mut zone_a: Vec<&String> = Vec::new();
    let counts = picks(&service, 40);
    zone_a.extend(counts.keys());
    zone_a.sort();
    assert_eq!(zone_a, ["a1", "a2"]);

    local[0].set_status(Status::Down).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            picks(&service, 10).keys().collect::<Vec<_>>() == ["a2"]
        })
        .await,
        "one healthy local instance still takes the traffic"
    );
    local[1].set_status(Status::Draining).await.unwrap();
    assert!(
        eventually(Duration::from_secs(2), || async {
            let mut ids: Vec<String> = picks(&service, 20).into_keys().collect();
            ids.sort();
            ids == ["b1", "b2"]
        })
        .await,
        "spill-over to the other zone"
    );
}
