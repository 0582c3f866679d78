//! [`TraceLayer`]: a server span per request, continuing the caller's trace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Request, Response};
use nilecare_error_handler::TraceId;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::{current_trace_id, extract};

/// The W3C `traceparent` header name (static: no copy per response).
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// Opens a server span named `METHOD /route/template` for every request, with the OpenTelemetry
/// HTTP attributes `http.request.method`, `http.route` (the `MatchedPath`), `url.path`,
/// `http.response.status_code` and, on 5xx, `error.type`. The parent comes from the request's
/// `traceparent` (a malformed one starts a new trace, no error). The trace id goes into the
/// request extensions ([`TraceId`], read by problem+json bodies) and, with
/// [`response_traceparent`](Self::response_traceparent), back to the caller.
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_tracing::TraceLayer;
///
/// let app: Router = Router::new()
///     .route("/api/v1/patients/{id}", get(|| async { "patient" }))
///     .layer(TraceLayer::new());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer {
    response_traceparent: bool,
}

impl TraceLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also return `traceparent` on responses.
    pub fn response_traceparent(mut self, on: bool) -> Self {
        self.response_traceparent = on;
        self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            response_traceparent: self.response_traceparent,
        }
    }
}

/// `METHOD /route` (or the method alone), formatted only if a subscriber records it.
struct SpanName<'a>(&'a str, Option<&'a str>);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(route) => write!(f, "{} {route}", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// The service made by [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct TraceService<S> {
    inner: S,
    response_traceparent: bool,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TraceService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let span = {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str);
            let method = req.method().as_str();
            tracing::info_span!(
                "HTTP request",
                otel.name = %SpanName(method, route),
                otel.kind = "server",
                http.request.method = method,
                http.route = route,
                url.path = req.uri().path(),
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
            )
        };
        let _ = span.set_parent(extract(req.headers()));
        if let Some(id) = span.in_scope(current_trace_id) {
            req.extensions_mut().insert(TraceId(id));
        }
        let future = span.in_scope(|| self.inner.call(req));
        let response_traceparent = self.response_traceparent;
        let record = span.clone();
        Box::pin(
            async move {
                let mut response = future.await?;
                let status = response.status();
                record.record("http.response.status_code", status.as_u16());
                if status.is_server_error() {
                    record.record("error.type", status.as_str());
                }
                if response_traceparent {
                    let mut headers = http::HeaderMap::new();
                    crate::context::inject(&mut headers);
                    if let Some(v) = headers.remove(&TRACEPARENT) {
                        response.headers_mut().insert(TRACEPARENT, v);
                    }
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
