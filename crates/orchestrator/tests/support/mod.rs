//! Shared set-up of the orchestrator's end-to-end tests: settings for tests, one metrics
//! recorder and one tracing subscriber per test process, and an HTTP client.

#![allow(dead_code)] // each test binary uses a part

use std::sync::OnceLock;
use std::time::Duration;

use nilecare::metrics::Metrics;
use nilecare::tracing::{TracingConfig, TracingGuard, init};
use tracing_subscriber::layer::SubscriberExt;

use nilecare_orchestrator::{Running, Settings, start};

/// Settings for a test: a free port, fast timeouts, a short breaker wait, `redis_url` if any.
pub(crate) fn settings(redis_url: Option<String>) -> Settings {
    Settings {
        host: "127.0.0.1".to_owned(),
        port: 0,
        redis_url,
        redis_tls_ca_file: None,
        redis_pool_size: 4,
        redis_connect_timeout: Duration::from_secs(5),
        redis_command_timeout: Duration::from_millis(500),
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
        auth_issuer: None,
        auth_jwks_url: None,
        auth_audience: "orchestrator".to_owned(),
        auth_roles_claim: "roles".to_owned(),
        auth_tenant_claim: "clinic_id".to_owned(),
        metrics_max_tenants: 50,
        graphql_complexity_per_minute: 1_000_000,
        graphql_persisted_queries: "automatic".to_owned(),
    }
}

/// The process's metrics recorder and tracing (spans recorded, export to a closed port).
pub(crate) fn observability() -> &'static Metrics {
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
/// Two instances on the same `settings` (one Redis): A starts the demo services, B finds them
/// in the shared registry.
pub(crate) async fn two_instances(settings: Settings) -> (Running, Running) {
    let a = orchestrator(settings.clone()).await;
    let mut b = settings;
    b.demo_services = false;
    (a, orchestrator(b).await)
}

pub(crate) async fn orchestrator(settings: Settings) -> Running {
    start(settings, observability())
        .await
        .expect("the orchestrator starts")
}

/// A response, read whole (nilecare-test-support's HTTP client).
pub(crate) type Reply = nilecare_test_support::http::HttpResponse;

/// Requests to one orchestrator through nilecare-test-support's HTTP client, each bounded by
/// 10 s so a hung request fails the test instead of stalling it.
#[derive(Clone, Copy)]
pub(crate) struct Client {
    addr: std::net::SocketAddr,
}

impl Client {
    pub(crate) fn new(addr: std::net::SocketAddr) -> Self {
        Client { addr }
    }

    /// Sends `method path` with `headers` and a JSON `body` (none when empty).
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut all = headers.to_vec();
        if !body.is_empty() {
            all.push(("content-type", "application/json"));
        }
        let request =
            nilecare_test_support::http::request(self.addr, method, path, &all, body.as_bytes());
        tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("an answer within 10 s")
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], "").await
    }

    /// `Bearer <token>` from the development issuer (`POST /dev/token`) for `sub` with `roles`
    /// and an optional clinic.
    pub(crate) async fn bearer(&self, sub: &str, roles: &[&str], clinic: Option<&str>) -> String {
        let body = serde_json::json!({"sub": sub, "roles": roles, "clinic_id": clinic});
        let reply = self
            .send("POST", "/dev/token", &[], &body.to_string())
            .await;
        assert_eq!(
            reply.status,
            200,
            "minting a development token: {}",
            reply.text()
        );
        format!("Bearer {}", reply.json()["access_token"].as_str().unwrap())
    }
}
