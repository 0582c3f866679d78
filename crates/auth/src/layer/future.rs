//! The response futures of the auth layers (named, pin-projected; only the key-fetch path of
//! [`AuthFuture`] is boxed).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;

type Waiting<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`AuthService`](super::AuthService).
    pub struct AuthFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Inner { #[pin] future: F },
        Respond { response: Option<Response> },
        Waiting { future: Waiting<E> },
    }
}

impl<F, E> std::fmt::Debug for AuthFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFuture").finish_non_exhaustive()
    }
}

impl<F, E> AuthFuture<F, E> {
    pub(crate) fn inner(future: F) -> Self {
        AuthFuture {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn respond(response: Response) -> Self {
        AuthFuture {
            kind: Kind::Respond {
                response: Some(response),
            },
        }
    }

    pub(crate) fn waiting(future: Waiting<E>) -> Self {
        AuthFuture {
            kind: Kind::Waiting { future },
        }
    }
}

impl<F, E> Future for AuthFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Respond { response } => Poll::Ready(Ok(response.take().unwrap_or_default())),
            KindProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequireService`](super::RequireService).
    pub struct RequireFuture<F> {
        #[pin]
        kind: RequireKind<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = RequireKindProj]
    enum RequireKind<F> {
        Inner { #[pin] future: F },
        Respond { response: Option<Response> },
    }
}

impl<F> std::fmt::Debug for RequireFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireFuture").finish_non_exhaustive()
    }
}

impl<F> RequireFuture<F> {
    pub(crate) fn inner(future: F) -> Self {
        RequireFuture {
            kind: RequireKind::Inner { future },
        }
    }

    pub(crate) fn respond(response: Response) -> Self {
        RequireFuture {
            kind: RequireKind::Respond {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for RequireFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            RequireKindProj::Inner { future } => future.poll(cx),
            RequireKindProj::Respond { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
        }
    }
}
