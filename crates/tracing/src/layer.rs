//! [`ServerTraceLayer`]: a server span per request, continuing the caller's trace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Request, Response};
use nilecare_error_handler::TraceId;
use opentelemetry::trace::TraceContextExt as _;
use tower::{Layer, Service};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::extract;
use crate::sampling::Plan;

/// The W3C `traceparent` header name (static: no copy per response).
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// Opens a server span named `METHOD /route/template` for every request, with the stable
/// OpenTelemetry HTTP server attributes: `http.request.method` (an unknown method as `_OTHER`
/// with `http.request.method_original`), `http.route` (the `MatchedPath`), `url.path`,
/// `url.scheme`, `server.address`, `server.port`, `network.protocol.version`,
/// `user_agent.original`, `client.address` (with axum's `ConnectInfo`),
/// `http.response.status_code`; a 5xx sets the span status to `Error` and `error.type` to the
/// status code. The parent comes from the request's `traceparent` (a malformed one starts a new
/// trace, no error). The trace id goes into the request extensions ([`TraceId`], read by
/// problem+json bodies) and, with [`response_traceparent`](Self::response_traceparent), back to
/// the caller.
///
/// Put it outermost, around `RequestIdLayer` and the access log: the request id is then
/// recorded on this span (`request_id`), the request is one span, and every log line of the
/// request (the access line included) carries this span's trace id.
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_tracing::ServerTraceLayer;
///
/// let app: Router = Router::new()
///     .route("/api/v1/patients/{id}", get(|| async { "patient" }))
///     .layer(ServerTraceLayer::new());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerTraceLayer {
    response_traceparent: bool,
}

impl ServerTraceLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also return `traceparent` on responses.
    #[must_use]
    pub fn response_traceparent(mut self, on: bool) -> Self {
        self.response_traceparent = on;
        self
    }
}

impl<S> Layer<S> for ServerTraceLayer {
    type Service = ServerTraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTraceService {
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

/// The methods `http.request.method` names as they are; any other is `_OTHER`.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// `network.protocol.version` of an HTTP version.
fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `server.address` and `server.port`: the request target's authority, else the `Host` header.
fn server_address<B>(req: &Request<B>) -> (Option<&str>, Option<u16>) {
    let authority = req
        .uri()
        .authority()
        .map(|a| (a.host(), a.port_u16()))
        .or_else(|| {
            let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
            let authority: http::uri::Authority = host.parse().ok()?;
            // `authority` is dropped here: take the parts as borrowed text of the header.
            let port = authority.port_u16();
            let name_len = authority.host().len();
            Some((&host[..name_len.min(host.len())], port))
        });
    match authority {
        Some((host, port)) => (Some(host), port),
        None => (None, None),
    }
}

/// The service made by [`ServerTraceLayer`].
#[derive(Clone, Debug)]
pub struct ServerTraceService<S> {
    inner: S,
    response_traceparent: bool,
}

impl<S> ServerTraceService<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServerTraceService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ServerTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let parent = extract(req.headers());
        let preset = match crate::sampling::plan(&parent) {
            Some(Plan::Unsampled(cx)) => return self.call_unsampled(req, cx),
            Some(Plan::Sampled(preset)) => preset,
            // Not this crate's exporter layer: build the span and let its layer decide.
            None => None,
        };
        let span = server_span(&req);
        let _ = span.set_parent(parent);
        // The span's context, read once (this starts the span: a new root takes the trace id
        // its sampling was decided on): its trace id for problem+json bodies now, its
        // `traceparent` for the response later.
        let cx = crate::sampling::with_trace_id(preset, || span.context());
        insert_trace_id(&mut req, &cx);
        let future = span.in_scope(|| self.inner.call(req));
        ServerTraceFuture {
            inner: Some(future),
            span,
            current: None,
            response_context: self.response_traceparent.then_some(cx),
        }
    }
}

impl<S> ServerTraceService<S> {
    /// A request that is not sampled: a span the exporter never sees (the logger still reads
    /// its `request_id`), and `cx`, the request's own context, current while it runs.
    fn call_unsampled<ReqBody, ResBody>(
        &mut self,
        mut req: Request<ReqBody>,
        cx: opentelemetry::Context,
    ) -> ServerTraceFuture<S::Future>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let span = tracing::info_span!(
            target: crate::sampling::UNSAMPLED_TARGET,
            "HTTP request",
            request_id = tracing::field::Empty,
        );
        insert_trace_id(&mut req, &cx);
        let future = {
            let _attached = cx.clone().attach();
            span.in_scope(|| self.inner.call(req))
        };
        ServerTraceFuture {
            inner: Some(future),
            span,
            response_context: self.response_traceparent.then(|| cx.clone()),
            current: Some(cx),
        }
    }
}

/// The request's trace id (problem+json bodies read it), when `cx` is in a trace.
fn insert_trace_id<B>(req: &mut Request<B>, cx: &opentelemetry::Context) {
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        req.extensions_mut()
            .insert(TraceId(crate::hex::hex(&sc.trace_id().to_bytes())));
    }
}

/// The server span of a request that is sampled (or decided by another exporter layer), with
/// every attribute.
fn server_span<B>(req: &Request<B>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let original = req.method().as_str();
    let known = KNOWN_METHODS.contains(&original);
    let method = if known { original } else { "_OTHER" };
    let (address, port) = server_address(req);
    let scheme = req.uri().scheme_str().unwrap_or("http");
    let port = port.or(match scheme {
        "https" => Some(443),
        _ => Some(80),
    });
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    tracing::info_span!(
        "HTTP request",
        otel.name = %SpanName(if known { original } else { "HTTP" }, route),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.request.method_original = (!known).then_some(original),
        http.route = route,
        url.path = req.uri().path(),
        url.scheme = scheme,
        server.address = address,
        server.port = port,
        network.protocol.version = protocol_version(req.version()),
        user_agent.original = user_agent,
        client.address = client.map(tracing::field::display),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        request_id = tracing::field::Empty,
    )
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerTraceService`]: the inner future polled in the server
    /// span, then the response status recorded on it (and its `traceparent` set, if asked).
    ///
    /// The inner future is dropped inside the span as soon as it is ready, during the poll that
    /// already entered it; only a request dropped before its response (cancelled) enters the
    /// span again to drop it. (`Instrumented` enters its span once more on drop in every case:
    /// an entry and an exit per request, each a lookup in every subscriber layer.)
    pub struct ServerTraceFuture<F> {
        #[pin]
        inner: Option<F>,
        span: tracing::Span,
        // The context made current while the inner future runs: a request not sampled, whose
        // span is not exported (no status recorded on it).
        current: Option<opentelemetry::Context>,
        response_context: Option<opentelemetry::Context>,
    }

    impl<F> PinnedDrop for ServerTraceFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.inner.as_ref().get_ref().is_some() {
                let _entered = this.span.enter();
                this.inner.set(None);
            }
        }
    }
}

impl<F, B, E> Future for ServerTraceFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut inner = this.inner;
        let polled = {
            let _attached = this.current.as_ref().map(|c| c.clone().attach());
            let _entered = this.span.enter();
            let Some(future) = inner.as_mut().as_pin_mut() else {
                // Polled again after its response: nothing more will come.
                return Poll::Pending;
            };
            let polled = future.poll(cx);
            if polled.is_ready() {
                inner.set(None);
            }
            polled
        };
        let mut response = std::task::ready!(polled)?;
        let status = response.status();
        if this.current.is_none() {
            let span = &*this.span;
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("error.type", status.as_str());
                span.record("otel.status_code", "ERROR");
            }
        }
        if let Some(cx) = this.response_context.take() {
            let value = crate::propagation::traceparent(&cx)
                // Built to its exact length: the text becomes the header value without a copy.
                .and_then(|v| http::HeaderValue::try_from(v).ok());
            if let Some(value) = value {
                response.headers_mut().insert(TRACEPARENT, value);
            }
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> std::fmt::Debug for ServerTraceFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTraceFuture").finish_non_exhaustive()
    }
}

/// The former name of [`ServerTraceLayer`] (it shared its name with tower-http's `TraceLayer`).
#[deprecated(since = "0.1.0", note = "renamed `ServerTraceLayer`")]
pub type TraceLayer = ServerTraceLayer;

/// The former name of [`ServerTraceService`].
#[deprecated(since = "0.1.0", note = "renamed `ServerTraceService`")]
pub type TraceService<S> = ServerTraceService<S>;
