//! [`HttpMetricsLayer`]: RED metrics (rate, errors, duration) per route template.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Method, Request, Response, StatusCode};
use metrics::SharedString;
use tower::{Layer, Service};

use crate::names::UNMATCHED_ROUTE;
use crate::route_handles::{HandleCache, RouteHandles};
use crate::tenant::{RequestTenant, TenantLabels};

/// Where [`HttpMetricsLayer::tenant`] reads the tenant a request names. An inner layer that
/// knows better (the auth layer with the caller's clinic claim) refines it through the
/// [`RequestTenant`] in the request's extensions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TenantFrom {
    /// A request header (e.g. `X-Clinic-Id`).
    Header(http::HeaderName),
    /// The path segment at this index (`/clinics/{clinic}/...`: 1), counted from 0 after the
    /// leading `/`.
    PathSegment(usize),
}

impl TenantFrom {
    fn read<'r, B>(&self, request: &'r Request<B>) -> Option<&'r str> {
        match self {
            TenantFrom::Header(name) => request.headers().get(name)?.to_str().ok(),
            TenantFrom::PathSegment(index) => request
                .uri()
                .path()
                .trim_start_matches('/')
                .split('/')
                .nth(*index),
        }
    }
}

/// How the `status` label is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusLabel {
    /// The code: `200`, `404`, `503` (default).
    #[default]
    Code,
    /// The class: `2xx`, `4xx`, `5xx` (fewer series).
    Class,
}

#[derive(Clone, Debug, Default)]
struct Config {
    /// Excluded paths, sorted: a binary search of a few string comparisons per request instead
    /// of hashing the path and the route (two SipHash runs) on every request.
    excluded: Vec<String>,
    status: StatusLabel,
    tenant: Option<(TenantLabels, TenantFrom)>,
}

impl Config {
    fn is_excluded(&self, path: &str) -> bool {
        self.excluded
            .binary_search_by(|excluded| excluded.as_str().cmp(path))
            .is_ok()
    }
}

/// A tower layer recording, for every request:
///
/// - `http_server_request_duration_seconds{method, route, status}` (histogram; its `_count`
///   series counts the requests, so there is no separate request counter),
/// - `http_server_active_requests{method, route}` (gauge, decremented also when a request is
///   cancelled).
///
/// `route` is the axum route template (`/api/v1/patients/{id}`), or `unmatched` for requests no
/// route matched, so random paths cannot create series; `method` is one of the standard methods
/// or `_OTHER`. Add it with `Router::layer` (it reads axum's `MatchedPath`, which the router sets
/// before calling the layered routes):
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_metrics::{HttpMetricsLayer, StatusLabel};
///
/// let app: Router = Router::new()
///     .route("/api/v1/patients/{id}", get(|| async { "patient" }))
///     .layer(
///         HttpMetricsLayer::new()
///             .exclude_path("/metrics")
///             .exclude_path("/health")
///             .status_label(StatusLabel::Code),
///     );
/// ```
#[derive(Clone, Debug, Default)]
pub struct HttpMetricsLayer {
    config: Arc<Config>,
    handles: Arc<HandleCache>,
}

impl HttpMetricsLayer {
    /// A layer with no exclusions and status codes as labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Do not record requests to this path (matched against the route template and the raw
    /// path), e.g. `/metrics` and `/health`.
    #[must_use]
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        let excluded = &mut Arc::make_mut(&mut self.config).excluded;
        let path = path.into();
        if let Err(at) = excluded.binary_search(&path) {
            excluded.insert(at, path);
        }
        self
    }

    /// Status codes or classes as the `status` label.
    #[must_use]
    pub fn status_label(mut self, label: StatusLabel) -> Self {
        Arc::make_mut(&mut self.config).status = label;
        self
    }

    /// Adds a bounded `tenant` label to the duration histogram: the tenant the request names
    /// (`from`), unless an inner layer refines it through the [`RequestTenant`] this layer puts
    /// in the request's extensions; at most `labels.max_tracked()` tenants by traffic, the rest
    /// `other`, none `none`. The cache and rate-limit layers read the same [`RequestTenant`]
    /// for their tenant metrics.
    ///
    /// ```
    /// use nilecare_metrics::{HttpMetricsLayer, TenantFrom, TenantLabels};
    ///
    /// let layer = HttpMetricsLayer::new().tenant(
    ///     TenantLabels::new(50),
    ///     TenantFrom::Header(http::HeaderName::from_static("x-clinic-id")),
    /// );
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn tenant(mut self, labels: TenantLabels, from: TenantFrom) -> Self {
        Arc::make_mut(&mut self.config).tenant = Some((labels, from));
        self
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetricsService {
            inner,
            config: self.config.clone(),
            handles: self.handles.clone(),
        }
    }
}

/// The service made by [`HttpMetricsLayer`].
#[derive(Clone, Debug)]
pub struct HttpMetricsService<S> {
    inner: S,
    config: Arc<Config>,
    handles: Arc<HandleCache>,
}

/// The bounded `method` label, as its index in [`METHODS`].
fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// The `status` label; built only when a route first sees a status (the handles are kept).
fn status_label(status: StatusCode, style: StatusLabel) -> SharedString {
    match style {
        StatusLabel::Code => SharedString::from_owned(status.as_str().to_owned()),
        StatusLabel::Class => SharedString::const_str(match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        }),
    }
}

/// One request's handles, and the in-flight gauge decrement when it ends (or is dropped).
struct InFlight {
    handles: Arc<RouteHandles>,
    started: Instant,
    tenant: Option<RequestTenant>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.handles.active.decrement(1.0);
    }
}

impl InFlight {
    fn start(handles: Arc<RouteHandles>, tenant: Option<RequestTenant>) -> Self {
        handles.active.increment(1.0);
        InFlight {
            handles,
            started: Instant::now(),
            tenant,
        }
    }

    /// Records the request with `status` (`None`: the service failed) labelled per `style`.
    fn finish(&self, status: Option<StatusCode>, style: StatusLabel) {
        let seconds = self.started.elapsed().as_secs_f64();
        let key = status.map_or(0, |s| match style {
            StatusLabel::Code => s.as_u16(),
            StatusLabel::Class => s.as_u16() / 100,
        });
        let label = || status.map_or(SharedString::const_str("error"), |s| status_label(s, style));
        match &self.tenant {
            None => self.handles.record(key, label, seconds),
            Some(tenant) => self
                .handles
                .record_tenant(key, label, tenant.label(), seconds),
        }
    }
}

impl<S> HttpMetricsService<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HttpMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let matched = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let excluded = !self.config.excluded.is_empty()
            && (self.config.is_excluded(req.uri().path())
                || matched.is_some_and(|m| self.config.is_excluded(m)));
        let handles = (!excluded).then(|| {
            let route = matched.unwrap_or(UNMATCHED_ROUTE);
            self.handles.route(route, method_index(req.method()))
        });
        let in_flight = handles.map(|handles| {
            let tenant = self.config.tenant.as_ref().map(|(labels, from)| {
                let tenant = RequestTenant::new(labels.clone(), from.read(&req));
                req.extensions_mut().insert(tenant.clone());
                tenant
            });
            InFlight::start(handles, tenant)
        });
        HttpMetricsFuture {
            inner: self.inner.call(req),
            in_flight,
            status: self.config.status,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`HttpMetricsService`]: records the request's metrics when the
    /// inner response is ready.
    pub struct HttpMetricsFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
        status: StatusLabel,
    }
}

impl<F, B, E> Future for HttpMetricsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(in_flight) = this.in_flight.take() {
            let status = output.as_ref().ok().map(Response::status);
            in_flight.finish(status, *this.status);
        }
        Poll::Ready(output)
    }
}

impl<F> std::fmt::Debug for HttpMetricsFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetricsFuture").finish_non_exhaustive()
    }
}

/// The former home of [`HttpMetricsService`]'s future.
pub mod future {
    /// The former name of [`HttpMetricsFuture`](super::HttpMetricsFuture).
    #[deprecated(since = "0.1.0", note = "renamed `HttpMetricsFuture`")]
    pub type ResponseFuture<F> = super::HttpMetricsFuture<F>;
}

/// The former name of [`HttpMetricsService`] (services are named after their layer).
#[deprecated(since = "0.1.0", note = "renamed `HttpMetricsService`")]
pub type HttpMetrics<S> = HttpMetricsService<S>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route_handles::METHODS;

    #[test]
    fn excluded_paths_are_found_whatever_their_order() {
        let layer = HttpMetricsLayer::new()
            .exclude_path("/ready")
            .exclude_path("/metrics")
            .exclude_path("/health")
            .exclude_path("/metrics")
            .exclude_path("/api/v1/internal/{id}");
        let config = &layer.config;
        assert_eq!(
            config.excluded.len(),
            4,
            "a path excluded twice is kept once"
        );
        for path in ["/ready", "/metrics", "/health", "/api/v1/internal/{id}"] {
            assert!(config.is_excluded(path), "{path} must be excluded");
        }
        for path in ["/", "/api", "/healthz", "/metric", "/api/v1/internal/1", ""] {
            assert!(!config.is_excluded(path), "{path} must be recorded");
        }
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(METHODS[method_index(&Method::GET)], "GET");
        assert_eq!(METHODS[method_index(&Method::DELETE)], "DELETE");
        assert_eq!(
            METHODS[method_index(&Method::from_bytes(b"BREW").unwrap())],
            "_OTHER"
        );
        assert_eq!(
            &*status_label(StatusCode::NOT_FOUND, StatusLabel::Code),
            "404"
        );
        assert_eq!(
            &*status_label(StatusCode::BAD_GATEWAY, StatusLabel::Class),
            "5xx"
        );
    }
}
