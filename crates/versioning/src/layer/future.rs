//! [`VersioningFuture`]: named and pin-projected; only the transform path is boxed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;

type Transforming<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;
type Headers = crate::deprecation::ResponseHeaders;

pin_project_lite::pin_project! {
    /// The response future of [`VersioningService`](super::VersioningService).
    pub struct VersioningFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Passthrough { #[pin] future: F },
        WithHeaders { #[pin] future: F, headers: Option<Headers> },
        Respond { response: Option<Response> },
        Transforming { future: Transforming<E> },
    }
}

impl<F, E> VersioningFuture<F, E> {
    pub(crate) fn passthrough(future: F) -> Self {
        VersioningFuture {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn with_headers(future: F, headers: Headers) -> Self {
        VersioningFuture {
            kind: Kind::WithHeaders {
                future,
                headers: Some(headers),
            },
        }
    }

    pub(crate) fn respond(response: Response) -> Self {
        VersioningFuture {
            kind: Kind::Respond {
                response: Some(response),
            },
        }
    }

    pub(crate) fn transforming(future: Transforming<E>) -> Self {
        VersioningFuture {
            kind: Kind::Transforming { future },
        }
    }
}

impl<F, E> std::fmt::Debug for VersioningFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersioningFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for VersioningFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => future.poll(cx),
            KindProj::WithHeaders { future, headers } => {
                let mut response = std::task::ready!(future.poll(cx))?;
                if let Some(headers) = headers.take() {
                    crate::deprecation::apply(&headers, response.headers_mut());
                }
                Poll::Ready(Ok(response))
            }
            KindProj::Respond { response } => Poll::Ready(Ok(response.take().unwrap_or_default())),
            KindProj::Transforming { future } => future.as_mut().poll(cx),
        }
    }
}
