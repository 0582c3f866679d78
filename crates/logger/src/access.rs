//! [`AccessLogLayer`]: one INFO line per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Request, Response};
use http_body::Body;
use nilecare_error_handler::RequestId;
use tower::{Layer, Service};

/// Logs one line per request at INFO with target `nilecare::access`: `method`, `route` (the
/// route template, `unmatched` for unknown paths), `status`, `latency_ms`, `bytes` (response
/// size when known) and `request_id`. Quiet paths (e.g. `/health`, `/metrics`) are not logged.
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_logger::{AccessLogLayer, RequestIdLayer};
///
/// let app: Router = Router::new()
///     .route("/api/v1/patients", get(|| async { "[]" }))
///     .layer(AccessLogLayer::new().quiet(["/health", "/metrics"]))
///     .layer(RequestIdLayer::new());
/// ```
#[derive(Clone, Debug, Default)]
pub struct AccessLogLayer {
    quiet: Arc<QuietPaths>,
}

/// The paths not logged: a short list, compared directly (no hashing per request).
#[derive(Clone, Debug, Default)]
struct QuietPaths(Vec<String>);

impl QuietPaths {
    fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|p| p == path)
    }
}

impl AccessLogLayer {
    /// A layer logging every request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Paths (route templates or raw paths) not logged.
    #[must_use]
    pub fn quiet<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let quiet = Arc::make_mut(&mut self.quiet);
        for path in paths {
            let path = path.into();
            if !quiet.contains(&path) {
                quiet.0.push(path);
            }
        }
        self
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService {
            inner,
            quiet: self.quiet.clone(),
        }
    }
}

/// The service made by [`AccessLogLayer`].
#[derive(Clone, Debug)]
pub struct AccessLogService<S> {
    inner: S,
    quiet: Arc<QuietPaths>,
}

impl<S> AccessLogService<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AccessLogService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // Filtered out (e.g. a `warn` level): nothing to gather.
        if !tracing::enabled!(target: "nilecare::access", tracing::Level::INFO) {
            return AccessLogFuture {
                inner: self.inner.call(req),
                line: None,
            };
        }
        // The route template is shared (`MatchedPath` holds an `Arc<str>`): no copy per request.
        let route = req.extensions().get::<MatchedPath>().cloned();
        let quiet = self.quiet.contains(req.uri().path())
            || self
                .quiet
                .contains(route.as_ref().map_or(UNMATCHED, MatchedPath::as_str));
        let line = (!quiet).then(|| AccessLine {
            method: req.method().clone(),
            route,
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
            started: Instant::now(),
        });
        AccessLogFuture {
            inner: self.inner.call(req),
            line,
        }
    }
}

/// The `route` of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// What the access line needs from the request.
struct AccessLine {
    method: http::Method,
    /// `None`: no route matched (logged as `unmatched`).
    route: Option<MatchedPath>,
    request_id: Option<String>,
    started: Instant,
}

impl AccessLine {
    fn log<B: Body>(self, response: &Response<B>) {
        let bytes = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .or_else(|| response.body().size_hint().exact());
        tracing::info!(
            target: "nilecare::access",
            method = self.method.as_str(),
            route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
            status = response.status().as_u16(),
            // Whole microseconds, so the number prints without float noise (11.903754).
            latency_ms = self.started.elapsed().as_micros() as f64 / 1000.0,
            bytes,
            request_id = self.request_id.as_deref(),
            "request"
        );
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`AccessLogService`]: the inner future, then the access line.
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        line: Option<AccessLine>,
    }
}

impl<F, B, E> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(line) = this.line.take() {
            line.log(&response);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> std::fmt::Debug for AccessLogFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogFuture").finish_non_exhaustive()
    }
}
