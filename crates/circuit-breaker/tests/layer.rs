//! The tower layer over real HTTP, and the registry.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use nilecare_circuit_breaker::{
    BreakerConfig, BreakerRegistry, CircuitBreaker, CircuitBreakerLayer, Clock, State,
    WaitStrategy, WindowType,
};
use nilecare_test_support::http::{get as http_get, serve};

#[tokio::test]
async fn open_breaker_answers_503_problem_json_and_recovers_through_half_open() {
    let (clock, mock) = Clock::mock();
    let breaker = CircuitBreaker::with_clock(
        "billing",
        BreakerConfig::default()
            .window(WindowType::CountBased(4))
            .minimum_calls(4)
            .wait(WaitStrategy::Fixed(Duration::from_secs(30)))
            .half_open_permits(1),
        clock,
    )
    .unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let app = Router::new()
        .route(
            "/invoices",
            get(move || {
                let flag = flag.clone();
                async move {
                    if flag.load(Ordering::SeqCst) {
                        StatusCode::BAD_GATEWAY
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .layer(CircuitBreakerLayer::new(breaker.clone()));
    let addr = serve(app).await;

    for _ in 0..4 {
        assert_eq!(http_get(addr, "/invoices").await.status, 502);
    }
    assert_eq!(breaker.state(), State::Open);
    let r = http_get(addr, "/invoices").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("30"));

    failing.store(false, Ordering::SeqCst);
    mock.increment(Duration::from_secs(31));
    assert_eq!(
        http_get(addr, "/invoices").await.status,
        200,
        "the probe goes through"
    );
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(http_get(addr, "/invoices").await.status, 200);
}

#[test]
fn the_registry_reuses_configures_lists_and_retires() {
    let registry = BreakerRegistry::new(BreakerConfig::default())
        .unwrap()
        .with_config(
            "billing",
            BreakerConfig::default()
                .minimum_calls(1)
                .failure_rate_threshold(10.0),
        )
        .unwrap()
        .idle_after(Duration::ZERO);
    let billing = registry.get("billing").unwrap();
    let again = registry.get("billing").unwrap();
    billing.try_acquire().unwrap().failure();
    assert_eq!(again.state(), State::Open, "one breaker per name");
    let _patients = registry.get("patients").unwrap();
    assert_eq!(registry.snapshots().len(), 2);
    assert_eq!(registry.unhealthy(), vec!["billing".to_owned()]);
    drop((billing, again, _patients));
    // idle: the closed one is retired, the open one stays
    assert_eq!(registry.retire_idle(), 1);
    assert_eq!(registry.snapshots()[0].name, "billing");
    assert!(BreakerRegistry::new(BreakerConfig::default().minimum_calls(0)).is_err());
}
