//! Shared set-up of the orchestrator's end-to-end tests: settings for tests, one metrics
//! recorder and one tracing subscriber per test process, and an HTTP client.

#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::sync::OnceLock;
use std::time::Duration;

use nilecare::metrics::Metrics;
use nilecare::tracing::{TracingConfig, TracingGuard, init};
use tracing_subscriber::layer::SubscriberExt;

use crate::service::{Running, Settings, start};

/// Settings for a test: a free port, fast timeouts, a short breaker wait, `redis_url` if any.
pub fn settings(redis_url: Option<String>) -> Settings {
    Settings {
        host: "127.0.0.1".to_owned(),
        port: 0,
        redis_url,
        rate_limit_per_minute: 10_000,
        cache_ttl: Duration::from_secs(60),
        demo_services: true,
        demo_latency: Duration::from_millis(20),
        downstream_timeout: Duration::from_millis(500),
        downstream_attempts: 2,
        breaker_wait: Duration::from_millis(500),
        registry_ttl: Duration::from_secs(3),
        shutdown_grace: Duration::from_secs(2),
        environment: "test".to_owned(),
        log_level: "warn".to_owned(),
        log_format: None,
    }
}

/// The process's metrics recorder and tracing (spans recorded, export to a closed port).
pub fn observability() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    static TRACING: OnceLock<TracingGuard> = OnceLock::new();
    TRACING.get_or_init(|| {
        let guard = init(
            &TracingConfig::new("orchestrator-test")
                .endpoint("http://127.0.0.1:9")
                .export_timeout(Duration::from_millis(200)),
        )
        .expect("tracing");
        let subscriber = tracing_subscriber::registry().with(guard.layer());
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per process");
        guard
    });
    METRICS.get_or_init(|| {
        Metrics::builder()
            .service("orchestrator")
            .install()
            .expect("one recorder per process")
    })
}

/// An orchestrator started with `settings`.
pub async fn orchestrator(settings: Settings) -> Running {
    start(settings, observability())
        .await
        .expect("the orchestrator starts")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// A keep-alive HTTP/1.1 client (hyper) for the tests.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    base: String,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Client {
            inner:
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http(),
            base: format!("http://{addr}"),
        }
    }

    /// Sends `method path` with `headers` and `body`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        use http_body_util::BodyExt;
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_owned(),
            )))
            .expect("request");
        let response = tokio::time::timeout(Duration::from_secs(10), self.inner.request(request))
            .await
            .expect("an answer within 10 s")
            .expect("a response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], "").await
    }
}
