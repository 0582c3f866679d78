//! [`CircuitBreakerLayer`]: a breaker around a tower service (an HTTP client or a route).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use nilecare_error_handler::{ApiError, ErrorCode};
use tower::{Layer, Service};

use crate::breaker::{CircuitBreaker, Outcome};

type Classifier = Arc<dyn Fn(&Response) -> Outcome + Send + Sync>;

/// Wraps a service returning axum responses: 5xx responses and service errors count as
/// failures (configurable with [`classify`](Self::classify)); while the breaker is open the
/// service is not called and the answer is 503 problem+json (code `UPSTREAM_UNAVAILABLE`) with
/// `Retry-After`.
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_circuit_breaker::{BreakerConfig, CircuitBreaker, CircuitBreakerLayer};
///
/// let breaker = CircuitBreaker::new("billing", BreakerConfig::default())?;
/// let app: Router = Router::new()
///     .route("/api/v1/billing/invoices", get(|| async { "invoices" }))
///     .layer(CircuitBreakerLayer::new(breaker));
/// # Ok::<(), nilecare_circuit_breaker::Error>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    breaker: CircuitBreaker,
    classify: Classifier,
}

impl std::fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// A layer guarded by `breaker`, counting 5xx as failures.
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classify: Arc::new(|r: &Response| {
                if r.status().is_server_error() {
                    Outcome::Failure
                } else {
                    Outcome::Success
                }
            }),
        }
    }

    /// Your own classification of responses.
    #[must_use]
    pub fn classify(mut self, f: impl Fn(&Response) -> Outcome + Send + Sync + 'static) -> Self {
        self.classify = Arc::new(f);
        self
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

/// The service made by [`CircuitBreakerLayer`].
#[derive(Clone)]
pub struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
    classify: Classifier,
}

impl<S> std::fmt::Debug for CircuitBreakerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for CircuitBreakerService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let permit = match self.breaker.try_acquire_owned() {
            Ok(permit) => permit,
            Err(rejected) => {
                let mut error = ApiError::new(
                    ErrorCode::UPSTREAM_UNAVAILABLE,
                    format!(
                        "{} is unavailable (circuit breaker {})",
                        rejected.name, rejected.state
                    ),
                );
                if let Some(after) = rejected.retry_after {
                    error = error.with_retry_after(after);
                }
                let response = error.into_response();
                return Box::pin(async move { Ok(response) });
            }
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let classify = self.classify.clone();
        Box::pin(async move {
            match inner.call(req).await {
                Ok(response) => {
                    permit.record(classify(&response));
                    Ok(response)
                }
                Err(e) => {
                    permit.failure();
                    Err(e)
                }
            }
        })
    }
}
