//! Active health checking: [`HealthCheck`] settings and the HTTP probe.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{Error, Result};
use crate::instance::ServiceInstance;

/// Active HTTP health checks, as Consul and Envoy do them: every `interval` (± `jitter`) each
/// instance gets `GET <address><path>`; a 2xx within `timeout` is a success. An instance is
/// marked unhealthy after `unhealthy_threshold` consecutive failures and healthy again after
/// `healthy_threshold` consecutive successes. New instances start healthy (they registered as
/// Up). Probes speak plain HTTP/1.1: `http://` instances are probed, others are left to their
/// registered status and passive outlier detection.
///
/// ```
/// use std::time::Duration;
/// use nilecare_service_discovery::HealthCheck;
/// let check = HealthCheck::http("/health")?
///     .interval(Duration::from_secs(5))?
///     .timeout(Duration::from_secs(1))?
///     .thresholds(2, 3)?; // 2 successes to recover, 3 failures to mark down
/// # Ok::<(), nilecare_service_discovery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub(crate) path: String,
    /// The CA trusted for `https://` instances (none: the system's roots).
    pub(crate) tls_ca: Option<Vec<u8>>,
    pub(crate) interval: Duration,
    pub(crate) jitter: Duration,
    pub(crate) timeout: Duration,
    pub(crate) healthy_threshold: u32,
    pub(crate) unhealthy_threshold: u32,
}

fn invalid(field: &'static str, message: String) -> Error {
    Error::InvalidConfig { field, message }
}

impl HealthCheck {
    /// Probes `path` (starting with `/`) every 10 s ± 1 s with a 2 s timeout, 2 successes to
    /// recover, 3 failures to mark down.
    pub fn http(path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "health_check.path",
                format!("must start with / and hold no whitespace, got {path:?}"),
            ));
        }
        Ok(HealthCheck {
            path,
            tls_ca: None,
            interval: Duration::from_secs(10),
            jitter: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        })
    }

    /// Trust only the CA certificates in `pem` when probing `https://` instances (default: the
    /// system's roots). Errors name `health_check.tls_ca`.
    pub fn tls_ca_pem(mut self, pem: &[u8]) -> Result<Self> {
        crate::tls::config_for_ca("health_check.tls_ca", pem)?;
        self.tls_ca = Some(pem.to_vec());
        Ok(self)
    }

    /// The TLS configuration of the probe client.
    pub(crate) fn tls_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        self.tls_ca
            .as_deref()
            .and_then(|pem| crate::tls::config_for_ca("health_check.tls_ca", pem).ok())
            .unwrap_or_else(crate::tls::default_config)
    }

    /// Time between probes of one instance (at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Result<Self> {
        if interval < Duration::from_millis(10) {
            return Err(invalid(
                "health_check.interval",
                format!("must be at least 10ms, got {interval:?}"),
            ));
        }
        self.interval = interval;
        self.jitter = self.jitter.min(interval / 2);
        Ok(self)
    }

    /// Random spread added to each interval, at most half of it, so probes of many callers do
    /// not arrive together.
    pub fn jitter(mut self, jitter: Duration) -> Result<Self> {
        if jitter > self.interval / 2 {
            return Err(invalid(
                "health_check.jitter",
                format!(
                    "must be at most half the interval ({:?}), got {jitter:?}",
                    self.interval
                ),
            ));
        }
        self.jitter = jitter;
        Ok(self)
    }

    /// How long a probe may take before it counts as failed (above zero).
    pub fn timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() {
            return Err(invalid(
                "health_check.timeout",
                "must be above zero".to_owned(),
            ));
        }
        self.timeout = timeout;
        Ok(self)
    }

    /// Consecutive successes to mark an instance healthy again, consecutive failures to mark it
    /// unhealthy (each at least 1).
    pub fn thresholds(mut self, healthy: u32, unhealthy: u32) -> Result<Self> {
        if healthy == 0 {
            return Err(invalid(
                "health_check.healthy_threshold",
                "must be at least 1".to_owned(),
            ));
        }
        if unhealthy == 0 {
            return Err(invalid(
                "health_check.unhealthy_threshold",
                "must be at least 1".to_owned(),
            ));
        }
        self.healthy_threshold = healthy;
        self.unhealthy_threshold = unhealthy;
        Ok(self)
    }

    /// The next wait: the interval plus a random share of the jitter.
    pub(crate) fn next_wait(&self) -> Duration {
        let jitter = self.jitter.as_nanos() as u64;
        let spread = if jitter == 0 {
            0
        } else {
            crate::balance::random_u64() % (2 * jitter)
        };
        (self.interval + Duration::from_nanos(spread)).saturating_sub(self.jitter)
    }
}

/// The result of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    Success,
    Failure,
    Timeout,
}

impl ProbeResult {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ProbeResult::Success => "success",
            ProbeResult::Failure => "failure",
            ProbeResult::Timeout => "timeout",
        }
    }
}

/// The connector of probes and `ServiceClient`: plain HTTP, or TLS for `https://` instances.
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP/1.1 client for probes (connections kept alive between probes).
pub(crate) type ProbeClient = Client<Connector, Empty<Bytes>>;

/// A keep-alive HTTP/1.1 client with `TCP_NODELAY` for `http://` and `https://` (trusting
/// `tls`), for probes and for `ServiceClient`.
pub(crate) fn http_client<B>(tls: std::sync::Arc<rustls::ClientConfig>) -> Client<Connector, B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Whether `instance` can be probed over HTTP(S).
pub(crate) fn probeable(instance: &ServiceInstance) -> bool {
    instance.address().starts_with("http://") || instance.address().starts_with("https://")
}

/// Probes one instance.
pub(crate) async fn probe(
    client: &ProbeClient,
    check: &HealthCheck,
    instance: &ServiceInstance,
) -> ProbeResult {
    let Ok(uri) = format!("{}{}", instance.address(), check.path).parse::<http::Uri>() else {
        return ProbeResult::Failure;
    };
    match tokio::time::timeout(check.timeout, client.get(uri)).await {
        Err(_) => ProbeResult::Timeout,
        Ok(Err(_)) => ProbeResult::Failure,
        Ok(Ok(response)) if response.status().is_success() => ProbeResult::Success,
        Ok(Ok(_)) => ProbeResult::Failure,
    }
}
