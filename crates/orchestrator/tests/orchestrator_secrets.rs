//! The orchestrator on a TLS Redis with an ACL password, every log line captured at TRACE (the
//! crates', fred's and rustls' included): the password appears in no log line, no `Debug` of
//! the settings, no response body and no start-up error, while the redacted URL does appear.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use nilecare_orchestrator as service;
mod support;

use std::time::Duration;

use nilecare::metrics::Metrics;
use nilecare_test_support::logs::LogBuffer;
use nilecare_test_support::{RedisServer, TestCa};
use support::{Client, settings};

const PASSWORD: &str = "Orch-Secret-Pa55-8c1f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redis_password_in_logs_debug_errors_or_bodies() {
    let logs = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let metrics = Metrics::builder()
        .service("orchestrator")
        .install()
        .unwrap();

    let ca = TestCa::new("orchestrator test CA");
    let server = RedisServer::builder()
        .tls(&ca)
        .acl_user("app", PASSWORD)
        .start();
    let ca_file = server.dir().join("client-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let mut s = settings(Some(server.url()));
    s.redis_tls_ca_file = Some(ca_file.display().to_string());
    s.log_level = "trace".to_owned();
    let debug = format!("{s:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("rediss://app:***@127.0.0.1"), "{debug}");

    let app = service::start(s.clone(), &metrics).await.unwrap();
    let client = Client::new(app.addr);
    let mut bodies = String::new();
    for path in [
        "/api/v1/patients/1",
        "/api/v1/patients/1",
        "/ready",
        "/api/v1/cache/stats",
    ] {
        let r = client.get(path).await;
        assert!(r.status < 500, "{path}: {} {}", r.status, r.text());
        bodies.push_str(&r.text());
    }
    // Redis stops answering: errors are logged and answered, still without the password.
    server.pause();
    for path in ["/api/v1/patients/3", "/ready", "/api/v1/appointments"] {
        bodies.push_str(&client.get(path).await.text());
    }
    server.resume();
    bodies.push_str(&client.get("/metrics").await.text());
    app.shutdown().await;

    // A wrong password at start-up: the error names the redacted URL only.
    let mut wrong = s.clone();
    let wrong_password = "Wrong-Pa55-d41d";
    wrong.redis_url = Some(server.url().replace(PASSWORD, wrong_password));
    wrong.redis_connect_timeout = Duration::from_secs(2);
    let error = service::start(wrong, &metrics)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("rediss://app:***@127.0.0.1"), "{error}");
    assert!(
        !error.contains(wrong_password) && !error.contains(PASSWORD),
        "{error}"
    );

    let text = logs.text();
    assert!(
        text.lines().count() > 20,
        "too few log lines captured:\n{text}"
    );
    assert!(
        text.contains("rediss://app:***@127.0.0.1"),
        "the URL was never logged"
    );
    for line in text.lines() {
        assert!(!line.contains(PASSWORD), "password in a log line: {line}");
        assert!(
            !line.contains(wrong_password),
            "password in a log line: {line}"
        );
    }
    assert!(!bodies.contains(PASSWORD), "password in a response body");
}
