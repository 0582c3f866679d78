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
use crate::permit::OwnedPermit;

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

impl<S> CircuitBreakerService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for CircuitBreakerService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CircuitBreakerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => CircuitBreakerFuture {
                inner: Some(self.inner.call(req)),
                permit: Some(permit),
                classify: self.classify.clone(),
                rejected: None,
            },
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
                CircuitBreakerFuture {
                    inner: None,
                    permit: None,
                    classify: self.classify.clone(),
                    rejected: Some(error.into_response()),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CircuitBreakerService`]: the 503 of a rejected call, or the
    /// inner future with its outcome recorded on the breaker (dropped unfinished: ignored).
    pub struct CircuitBreakerFuture<F> {
        #[pin]
        inner: Option<F>,
        permit: Option<OwnedPermit>,
        classify: Classifier,
        rejected: Option<Response>,
    }
}

impl<F, E> Future for CircuitBreakerFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            let response = this.rejected.take().unwrap_or_else(|| {
                ApiError::internal("circuit breaker future polled after completion").into_response()
            });
            return Poll::Ready(Ok(response));
        };
        let result = std::task::ready!(inner.poll(cx));
        if let Some(permit) = this.permit.take() {
            match &result {
                Ok(response) => permit.record((this.classify)(response)),
                Err(_) => permit.failure(),
            }
        }
        Poll::Ready(result)
    }
}

impl<F> std::fmt::Debug for CircuitBreakerFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerFuture")
            .finish_non_exhaustive()
    }
}
