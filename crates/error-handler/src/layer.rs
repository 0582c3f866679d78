//! [`ProblemLayer`]: renders every error response of the wrapped service as problem+json with
//! the request's context and the configured production mode.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, StatusCode};
use tower::{Layer, Service};

use crate::code::ErrorCode;
use crate::context::RequestSnapshot;
use crate::problem::{ProblemConfig, ProblemContext, ProblemParts};
use crate::response::{RenderedError, problem_response};

/// Plain-text error bodies longer than this are not copied into `detail`.
const MAX_PLAIN_BODY: usize = 4 * 1024;

/// A tower layer that makes every error response of the service it wraps RFC 9457
/// problem+json:
///
/// - responses produced by [`ApiError`](crate::ApiError) are rendered again with `instance` (the
///   request path), `request_id` and `trace_id`, and with the layer's production mode (5xx
///   details hidden);
/// - other error responses (axum's empty 404/405, its plain-text extractor rejections, bare
///   statuses from other layers) are converted, keeping their headers (`Allow`, `Retry-After`),
///   unless [`ProblemConfig::convert_plain_errors`] is off. JSON error bodies pass untouched.
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_error_handler::{ApiError, ProblemConfig, ProblemLayer, catch_panic_layer};
///
/// async fn patient() -> Result<String, ApiError> {
///     Err(ApiError::not_found("patient 123"))
/// }
///
/// let app: Router = Router::new()
///     .route("/patients/123", get(patient))
///     .layer(catch_panic_layer())                                     // inner: panics → 500
///     .layer(ProblemLayer::new(ProblemConfig::default().production(true))); // outer: renders
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProblemLayer {
    config: Arc<ProblemConfig>,
}

impl ProblemLayer {
    /// A layer rendering with `config`.
    pub fn new(config: ProblemConfig) -> Self {
        ProblemLayer {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for ProblemLayer {
    type Service = ProblemService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProblemService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`ProblemLayer`].
#[derive(Clone, Debug)]
pub struct ProblemService<S> {
    inner: S,
    config: Arc<ProblemConfig>,
}

impl<S> ProblemService<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProblemService<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ProblemFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let request = RequestSnapshot::of(req.uri(), req.headers(), req.extensions());
        ProblemFuture {
            inner: self.inner.call(req),
            finishing: Some((self.config.clone(), request)),
            reading: None,
        }
    }
}

/// What an inner response needs: nothing more, or its plain-text body read first.
enum Finish {
    Done(Response),
    ReadPlainBody(Response, StatusCode),
}

/// Renders or converts an error response; passes everything else through. A plain-text error
/// body must be read first (the only asynchronous step, and a rare one).
fn finish(response: Response, config: &ProblemConfig, request: &RequestSnapshot) -> Finish {
    if let Some(RenderedError(parts)) = response.extensions().get::<RenderedError>().cloned() {
        return Finish::Done(replace_body(response, &parts, config, &request.context()));
    }
    let status = response.status();
    if !config.converts_plain_errors() || !(status.is_client_error() || status.is_server_error()) {
        return Finish::Done(response);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let detail = match content_type.as_deref() {
        None => default_detail(status).to_owned(),
        Some(ct) if ct.starts_with("text/plain") => return Finish::ReadPlainBody(response, status),
        Some(_) => return Finish::Done(response),
    };
    Finish::Done(convert(
        response,
        status,
        detail,
        config,
        &request.context(),
    ))
}

/// Converts a plain-text error response, its (bounded) text becoming the `detail`.
async fn convert_plain(
    response: Response,
    status: StatusCode,
    config: Arc<ProblemConfig>,
    request: RequestSnapshot,
) -> Response {
    let (head, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_BODY)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| default_detail(status).to_owned());
    let response = Response::from_parts(head, Body::empty());
    convert(response, status, text, &config, &request.context())
}

fn convert(
    response: Response,
    status: StatusCode,
    detail: String,
    config: &ProblemConfig,
    ctx: &ProblemContext,
) -> Response {
    let code = ErrorCode::from_status(status);
    if code.is_server_error() {
        tracing::error!(error.code = %code, http.status = status.as_u16(), error.chain = %detail, "request failed");
    }
    let parts = ProblemParts {
        code,
        detail,
        errors: Vec::new(),
        retry_after: None,
        extensions: serde_json::Map::new(),
    };
    replace_body(response, &parts, config, ctx)
}

/// The response's headers (minus content type/length) with a freshly rendered problem body.
fn replace_body(
    response: Response,
    parts: &ProblemParts,
    config: &ProblemConfig,
    ctx: &ProblemContext,
) -> Response {
    let (mut head, _old_body) = response.into_parts();
    let rendered = problem_response(&parts.render(config, ctx), parts.retry_after);
    let (new_head, body) = rendered.into_parts();
    head.headers.remove(CONTENT_LENGTH);
    for (name, value) in new_head.headers {
        if let Some(name) = name {
            head.headers.insert(name, value);
        }
    }
    head.status = new_head.status;
    Response::from_parts(head, body)
}

fn default_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "No route matches this path.",
        StatusCode::METHOD_NOT_ALLOWED => {
            "This path does not accept this method; see the Allow header."
        }
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large.",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The request body has an unsupported content type.",
        StatusCode::REQUEST_TIMEOUT => "The request took too long.",
        _ => status.canonical_reason().unwrap_or("The request failed."),
    }
}

/// A plain-text error body being read (boxed: it runs only for such error responses).
type Reading = Pin<Box<dyn Future<Output = Response> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`ProblemService`]: the inner future, then the response, converted
    /// to problem+json when it is an error.
    pub struct ProblemFuture<F> {
        #[pin]
        inner: F,
        finishing: Option<(Arc<ProblemConfig>, RequestSnapshot)>,
        reading: Option<Reading>,
    }
}

impl<F, B, E> Future for ProblemFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(reading) = this.reading.as_mut() {
            return reading.as_mut().poll(cx).map(Ok);
        }
        let response = std::task::ready!(this.inner.poll(cx))?.map(Body::new);
        let Some((config, request)) = this.finishing.take() else {
            return Poll::Ready(Ok(response));
        };
        match finish(response, &config, &request) {
            Finish::Done(response) => Poll::Ready(Ok(response)),
            Finish::ReadPlainBody(response, status) => {
                let mut reading: Reading =
                    Box::pin(convert_plain(response, status, config, request));
                let polled = reading.as_mut().poll(cx);
                *this.reading = Some(reading);
                polled.map(Ok)
            }
        }
    }
}

impl<F> std::fmt::Debug for ProblemFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProblemFuture").finish_non_exhaustive()
    }
}

/// The former home of [`ProblemService`]'s future.
pub mod future {
    /// The former name of [`ProblemFuture`](super::ProblemFuture).
    #[deprecated(since = "0.1.0", note = "renamed `ProblemFuture`")]
    pub type ResponseFuture<F> = super::ProblemFuture<F>;
}
