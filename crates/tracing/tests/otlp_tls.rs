//! OTLP/HTTP over TLS to a receiver with a certificate from a CA made in the test: exported
//! when the CA is trusted (`ca_certificate_pem`, or `OTEL_EXPORTER_OTLP_CERTIFICATE`), refused
//! (nothing arrives) when it is not; configuration mistakes are errors naming the field.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use nilecare_test_support::http::serve_tls;
use nilecare_test_support::{TestCa, eventually};
use nilecare_tracing::{Error, TracingConfig, init};
use support::{Spans, receive};
use tracing_subscriber::layer::SubscriberExt;

async fn tls_receiver(ca: &TestCa) -> (std::net::SocketAddr, Spans) {
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    (
        serve_tls(app, &ca.issue(&["127.0.0.1", "localhost"])).await,
        spans,
    )
}

fn export_one(config: &TracingConfig, name: &'static str) {
    let guard = init(config).unwrap();
    let subscriber = tracing_subscriber::registry().with(guard.layer());
    nilecare_test_support::logs::with_thread_default(subscriber, || {
        let _span = tracing::info_span!("probe", otel.name = name).entered();
    });
    guard.flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_https_collector_whose_ca_is_trusted() {
    let ca = TestCa::new("otlp test CA");
    let (addr, spans) = tls_receiver(&ca).await;
    let config = TracingConfig::new("tls-test")
        .endpoint(format!("https://localhost:{}", addr.port()))
        .ca_certificate_pem(ca.pem())
        .export_timeout(Duration::from_secs(2));
    tokio::task::spawn_blocking(move || export_one(&config, "sent over https"))
        .await
        .unwrap();
    let arrived = eventually(Duration::from_secs(10), || async {
        spans
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.name == "sent over https")
    })
    .await;
    assert!(arrived, "{:?}", spans.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_collector_certificate_gets_nothing() {
    let ca = TestCa::new("otlp test CA");
    let (addr, spans) = tls_receiver(&ca).await;
    let stranger = TestCa::new("another CA");
    for config in [
        TracingConfig::new("tls-test").ca_certificate_pem(stranger.pem()),
        // The system roots do not know the test CA either.
        TracingConfig::new("tls-test"),
    ] {
        let config = config
            .endpoint(format!("https://127.0.0.1:{}", addr.port()))
            .export_timeout(Duration::from_millis(500));
        tokio::task::spawn_blocking(move || export_one(&config, "must not arrive"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        spans.lock().unwrap().is_empty(),
        "{:?}",
        spans.lock().unwrap()
    );
}

#[test]
fn certificate_mistakes_are_errors_naming_the_field() {
    let ca = TestCa::new("otlp test CA");
    for (endpoint, pem) in [
        ("http://collector:4318", ca.pem()), // a CA for a plain endpoint
        ("https://collector:4318", "not a certificate".to_owned()),
    ] {
        let e = TracingConfig::new("x")
            .endpoint(endpoint)
            .ca_certificate_pem(pem)
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidConfig {
                    field: "certificate",
                    ..
                }
            ),
            "{e}"
        );
    }
}
