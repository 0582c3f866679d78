//! Client side: a tower layer injecting the trace context into outgoing requests, and a spawn
//! helper that keeps the current span.

use std::future::Future;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};
use tracing::Instrument;

/// Injects the current span's context (`traceparent`, `tracestate`, `baggage`) into every
/// outgoing request of the wrapped client service, so downstream services continue the trace.
///
/// ```
/// use nilecare_tracing::InjectLayer;
/// use tower::ServiceBuilder;
///
/// let client = ServiceBuilder::new().layer(InjectLayer).service(tower::service_fn(
///     |req: http::Request<()>| async move { Ok::<_, std::convert::Infallible>(req.headers().len()) },
/// ));
/// # let _ = client;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct InjectLayer;

impl<S> Layer<S> for InjectLayer {
    type Service = InjectService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectService { inner }
    }
}

/// The service made by [`InjectLayer`].
#[derive(Clone, Debug)]
pub struct InjectService<S> {
    inner: S,
}

impl<S> InjectService<S> {
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

impl<S, B> Service<Request<B>> for InjectService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        crate::context::inject(req.headers_mut());
        self.inner.call(req)
    }
}

/// `tokio::spawn` that keeps the current span (and so the trace) for the spawned task. A plain
/// `tokio::spawn` starts without a span: its logs and child spans would leave the trace.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use opentelemetry::context::FutureExt as _;
    // The OpenTelemetry context too: inside a request that is not sampled, the request's ids
    // live there rather than in the span.
    tokio::spawn(
        future
            .instrument(tracing::Span::current())
            .with_context(opentelemetry::Context::current()),
    )
}

/// The former name of [`InjectService`] (services are named after their layer).
#[deprecated(since = "0.1.0", note = "renamed `InjectService`")]
pub type Inject<S> = InjectService<S>;
