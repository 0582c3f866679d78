//! [`RequestIdLayer`]: one id per request, in the span, the extensions and the response.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use nilecare_error_handler::{RequestId, sane_request_id};
use tower::{Layer, Service};
use tracing::Instrument;

/// The header carrying the id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

thread_local! {
    /// Requests numbered per thread: a process-wide counter would be a cache line both worker
    /// threads write on every request. Ids stay distinct across threads because every call
    /// hashes with fresh keys (`RandomState::new` steps this thread's randomly seeded keys, and
    /// each thread's seed is its own).
    static COUNTER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A fresh id: 32 lowercase hex digits from a randomly keyed hash of a counter.
pub fn new_request_id() -> String {
    let n = COUNTER.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    });
    let state = RandomState::new();
    let bytes = [state.hash_one(n), state.hash_one(!n)].map(u64::to_be_bytes);
    let mut id = String::with_capacity(32);
    crate::hex::push_hex(&mut id, bytes.as_flattened());
    id
}

/// Gives every request an id: the incoming `X-Request-Id` when it is sane (1..=128 visible ASCII
/// characters), a fresh 32-hex-digit id otherwise. The id is put in the request header and
/// extensions ([`RequestId`], which error bodies and access logs read), in the response header,
/// and in a span so that every log line of the request carries it: the enclosing server span
/// when it declares a `request_id` field (nilecare-tracing's `ServerTraceLayer`, placed outside this
/// layer), otherwise a `request` span of its own.
///
/// ```
/// use axum::{Router, routing::get};
/// use nilecare_logger::RequestIdLayer;
///
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(RequestIdLayer::new());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer;

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        RequestIdLayer
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service made by [`RequestIdLayer`].
#[derive(Clone, Debug)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S> RequestIdService<S> {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestIdService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let id = req
            .headers()
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| sane_request_id(v))
            .map_or_else(new_request_id, str::to_owned);
        // Sane ids and generated ids are visible ASCII: always a valid header value.
        let value = HeaderValue::from_str(&id).ok();
        if let Some(v) = &value {
            req.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
        }
        // Inside the server span of nilecare-tracing's ServerTraceLayer (it declares
        // `request_id`), the id goes on that span: one span per request, whose trace id every log
        // line carries. That layer enters its span around the inner call and on every poll, so
        // this layer does not enter it again (each entry costs every subscriber layer a lookup).
        let current = tracing::Span::current();
        let span = if is_server_span(&current) {
            current.record("request_id", id.as_str());
            None
        } else {
            Some(tracing::info_span!("request", request_id = %id))
        };
        req.extensions_mut().insert(RequestId(id));
        let inner = match span {
            Some(span) => Inner::OwnSpan {
                future: span.in_scope(|| self.inner.call(req)).instrument(span),
            },
            None => Inner::InServerSpan {
                future: self.inner.call(req),
            },
        };
        RequestIdFuture {
            inner,
            header: value,
        }
    }
}

/// Whether `span` is nilecare-tracing's server span (sampled or not): it declares
/// `request_id` and its layer keeps it entered while the request runs.
fn is_server_span(span: &tracing::Span) -> bool {
    span.metadata()
        .is_some_and(|m| m.target().starts_with("nilecare_tracing::"))
        && span.has_field("request_id")
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestIdService`]: the inner future, polled in the request's
    /// span (its own, or the enclosing server span), then the id set on the response.
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: Inner<F>,
        header: Option<HeaderValue>,
    }
}

pin_project_lite::pin_project! {
    /// The inner future: in a span this layer made (entered on every poll and on drop), or as
    /// it is inside the server span, which its own layer enters.
    #[project = InnerProjection]
    enum Inner<F> {
        OwnSpan { #[pin] future: tracing::instrument::Instrumented<F> },
        InServerSpan { #[pin] future: F },
    }
}

impl<F, B, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.inner.project() {
            InnerProjection::OwnSpan { future } => future.poll(cx),
            InnerProjection::InServerSpan { future } => future.poll(cx),
        };
        let mut response = std::task::ready!(polled)?;
        if let Some(value) = this.header.take() {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> std::fmt::Debug for RequestIdFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestIdFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_made_on_several_threads_at_once_all_differ() {
        // Each thread numbers its requests from 0: the ids differ by their keys alone.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..5000)
                        .map(|_| super::new_request_id())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap_or_default() {
                assert_eq!(id.len(), 32, "{id}");
                assert!(all.insert(id), "an id was made twice");
            }
        }
        assert_eq!(all.len(), 20_000);
    }

    #[test]
    fn fresh_ids_are_32_lowercase_hex_digits_and_differ() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| super::new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{id}"
            );
        }
        // Every digit value occurs (the halves are not left zero-padded or truncated).
        let all: std::collections::HashSet<u8> = ids.iter().flat_map(|i| i.bytes()).collect();
        assert_eq!(all.len(), 16);
    }
}
