//! [`ServiceClient`] (feature `client`): call a service by name over HTTP: resolve, balance,
//! retry idempotent requests on another instance with backoff, time out each try, inject the
//! W3C trace context (feature `trace-context`), consult a [`CallGate`] (circuit breakers).

mod gate;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;

pub use gate::{CallGate, CallPermit};
pub use retry::RetryPolicy;

use crate::balance::Guard;
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::resolve::Resolver;

/// Calls services by name.
///
/// ```no_run
/// # async fn demo() -> nilecare_service_discovery::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use nilecare_service_discovery::{MemoryRegistry, Resolver, RetryPolicy, ServiceClient};
/// let resolver = Arc::new(Resolver::builder(MemoryRegistry::default()).build()?);
/// let client = ServiceClient::builder(resolver)
///     .retry(RetryPolicy::default().max_attempts(3)?)
///     .per_try_timeout(Duration::from_secs(1))
///     .build();
/// let response = client.get("patients", "/api/v1/patients/42").await?;
/// println!("{} {:?}", response.status(), response.body());
/// # Ok(()) }
/// ```
pub struct ServiceClient<R: Registry> {
    resolver: Arc<Resolver<R>>,
    http: Client<crate::health::Connector, Full<Bytes>>,
    retry: RetryPolicy,
    per_try_timeout: Duration,
    max_response_bytes: usize,
    gate: Option<Arc<dyn CallGate>>,
}

impl<R: Registry> std::fmt::Debug for ServiceClient<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("retry", &self.retry)
            .field("per_try_timeout", &self.per_try_timeout)
            .field("gate", &self.gate.is_some())
            .finish()
    }
}

/// Builds a [`ServiceClient`].
pub struct ServiceClientBuilder<R: Registry> {
    resolver: Arc<Resolver<R>>,
    retry: RetryPolicy,
    per_try_timeout: Duration,
    max_response_bytes: usize,
    gate: Option<Arc<dyn CallGate>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl<R: Registry> std::fmt::Debug for ServiceClientBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClientBuilder")
            .field("retry", &self.retry)
            .field("per_try_timeout", &self.per_try_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("gate", &self.gate.is_some())
            .field("custom_tls_ca", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Registry> ServiceClientBuilder<R> {
    /// Retries of idempotent requests (default: 3 tries, 25 ms..1 s full-jitter backoff).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The limit of each try, connection included (default 2 s).
    #[must_use]
    pub fn per_try_timeout(mut self, timeout: Duration) -> Self {
        self.per_try_timeout = timeout;
        self
    }

    /// The largest response body read (default 8 MiB); larger is an error.
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Consults `gate` before each try (e.g. a `BreakerRegistry` with feature
    /// `circuit-breaker`: one breaker per instance).
    #[must_use]
    pub fn gate(mut self, gate: Arc<dyn CallGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Trust only the CA certificates in `pem` for `https://` instances (default: the system's
    /// roots, Mozilla's where the system has none). Errors name `tls_ca`.
    pub fn tls_ca_pem(mut self, pem: &[u8]) -> Result<Self> {
        self.tls = Some(crate::tls::config_for_ca("tls_ca", pem)?);
        Ok(self)
    }

    /// The client.
    pub fn build(self) -> ServiceClient<R> {
        ServiceClient {
            resolver: self.resolver,
            http: crate::health::http_client(self.tls.unwrap_or_else(crate::tls::default_config)),
            retry: self.retry,
            per_try_timeout: self.per_try_timeout,
            max_response_bytes: self.max_response_bytes,
            gate: self.gate,
        }
    }
}

/// How one try ended.
enum Try {
    Done(Response<Bytes>),
    /// 502, 503, 504: worth another instance.
    RetryableStatus(Response<Bytes>),
    /// Refused, reset, timed out, unreadable: worth another instance.
    Failed(String),
}

/// Whether a request may be sent twice (RFC 9110 idempotent methods, or an `Idempotency-Key`).
fn idempotent<B>(request: &Request<B>) -> bool {
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || request.headers().contains_key("idempotency-key")
}

impl<R: Registry> ServiceClient<R> {
    /// A client over `resolver`.
    pub fn builder(resolver: Arc<Resolver<R>>) -> ServiceClientBuilder<R> {
        ServiceClientBuilder {
            resolver,
            retry: RetryPolicy::default(),
            per_try_timeout: Duration::from_secs(2),
            max_response_bytes: 8 << 20,
            gate: None,
            tls: None,
        }
    }

    /// `GET path` on an instance of `service`.
    pub async fn get(&self, service: &str, path: &str) -> Result<Response<Bytes>> {
        let request = Request::get(path)
            .body(Bytes::new())
            .map_err(|e| invalid_request(e.to_string()))?;
        self.request(service, request).await
    }

    /// Sends `request` (its URI holds only path and query) to an instance of `service`.
    /// Idempotent requests that meet a refused connection, a timeout or a 502/503/504 are
    /// retried on another instance; the last 502/503/504 response is returned when every try
    /// failed that way. Each try's outcome feeds the instance's outlier detection and the gate.
    pub async fn request(&self, service: &str, request: Request<Bytes>) -> Result<Response<Bytes>> {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        if request.uri().scheme().is_some() || !path.starts_with('/') {
            return Err(invalid_request(format!(
                "the URI must be a path and query only, got {}",
                request.uri()
            )));
        }
        let attempts = if idempotent(&request) {
            self.retry.max_attempts
        } else {
            1
        };
        let (parts, body) = request.into_parts();
        let resolved = self.resolver.service(service).await?;
        let mut tried: Vec<String> = Vec::new();
        let mut last_failure = String::new();
        let mut last_response = None;
        for attempt in 1..=attempts {
            let Some((guard, permit)) = self.pick(&resolved, &tried) else {
                break;
            };
            tried.push(guard.id().to_owned());
            let mut request = Request::from_parts(parts.clone(), Full::new(body.clone()));
            *request.uri_mut() = format!("{}{path}", guard.address())
                .parse::<Uri>()
                .map_err(|e| invalid_request(e.to_string()))?;
            let outcome = self.try_once(request).await;
            let failed = !matches!(&outcome, Try::Done(r) if !r.status().is_server_error());
            match permit {
                Some(p) if failed => p.failure(),
                Some(p) => p.success(),
                None => {}
            }
            if failed {
                guard.failure();
            } else {
                guard.success();
            }
            match outcome {
                Try::Done(response) => return Ok(response),
                Try::RetryableStatus(response) => last_response = Some(response),
                Try::Failed(reason) => last_failure = reason,
            }
            if attempt < attempts {
                tokio::time::sleep(self.retry.backoff_after(attempt)).await;
            }
        }
        if let Some(response) = last_response {
            return Ok(response);
        }
        if tried.is_empty() {
            return Err(Error::NoInstance {
                service: service.to_owned(),
            });
        }
        Err(Error::Call {
            service: service.to_owned(),
            attempts: tried.len() as u32,
            reason: last_failure,
        })
    }

    /// An instance not tried yet if there is one (else any), admitted by the gate.
    fn pick(
        &self,
        resolved: &crate::resolve::ResolvedService,
        tried: &[String],
    ) -> Option<(Guard, Option<Box<dyn CallPermit>>)> {
        let candidates = resolved.balancer().instances().count().max(1);
        let mut fallback = None;
        for _ in 0..candidates * 2 {
            let guard = resolved.select()?;
            let fresh = !tried.iter().any(|t| t == guard.id());
            let permit = match &self.gate {
                Some(gate) => match gate.admit(&guard) {
                    Some(permit) => Some(permit),
                    None => continue,
                },
                None => None,
            };
            if fresh {
                return Some((guard, permit));
            }
            if fallback.is_none() {
                fallback = Some((guard, permit));
            }
        }
        fallback
    }

    async fn try_once(&self, mut request: Request<Full<Bytes>>) -> Try {
        #[cfg(feature = "trace-context")]
        let span =
            nilecare_tracing::client_span(request.method().as_str(), &request.uri().to_string());
        #[cfg(feature = "trace-context")]
        {
            let _entered = span.enter();
            nilecare_tracing::inject(request.headers_mut());
        }
        #[cfg(not(feature = "trace-context"))]
        let _ = &mut request;
        let sent = tokio::time::timeout(self.per_try_timeout, async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| error_chain(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, self.max_response_bytes)
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            Ok::<_, String>(Response::from_parts(parts, body))
        })
        .await;
        let outcome = match sent {
            Err(_) => Try::Failed(format!("timed out after {:?}", self.per_try_timeout)),
            Ok(Err(reason)) => Try::Failed(reason),
            Ok(Ok(response))
                if matches!(
                    response.status(),
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                ) =>
            {
                Try::RetryableStatus(response)
            }
            Ok(Ok(response)) => Try::Done(response),
        };
        #[cfg(feature = "trace-context")]
        match &outcome {
            Try::Done(r) | Try::RetryableStatus(r) => {
                nilecare_tracing::record_client_response(&span, r.status());
            }
            Try::Failed(reason) => nilecare_tracing::record_client_error(
                &span,
                if reason.starts_with("timed out") {
                    "timeout"
                } else {
                    "transport"
                },
            ),
        }
        outcome
    }
}

/// An error with its causes (`client error (Connect): invalid peer certificate: UnknownIssuer`):
/// hyper's own text names only the stage that failed.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn invalid_request(message: String) -> Error {
    Error::InvalidConfig {
        field: "request.uri",
        message,
    }
}
