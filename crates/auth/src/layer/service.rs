//! [`AuthService`]: the service [`AuthLayer`](super::AuthLayer) wraps around routes.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use http::Request;
use serde::de::DeserializeOwned;
use tower::Service;

use super::challenge;
use super::future::AuthFuture;
use crate::claims::Claims;
use crate::verifier::Verifier;

/// Verifies the bearer token, then calls the inner service with the [`Claims`] in the
/// request's extensions.
#[derive(Debug)]
pub struct AuthService<S, T> {
    inner: S,
    verifier: Verifier,
    required: bool,
    log_subject: bool,
    realm: Arc<str>,
    claims: PhantomData<fn() -> Claims<T>>,
}

impl<S: Clone, T> Clone for AuthService<S, T> {
    fn clone(&self) -> Self {
        AuthService {
            inner: self.inner.clone(),
            verifier: self.verifier.clone(),
            required: self.required,
            log_subject: self.log_subject,
            realm: self.realm.clone(),
            claims: PhantomData,
        }
    }
}

impl<S, T> AuthService<S, T> {
    pub(crate) fn new(
        inner: S,
        verifier: Verifier,
        required: bool,
        log_subject: bool,
        realm: Arc<str>,
    ) -> Self {
        AuthService {
            inner,
            verifier,
            required,
            log_subject,
            realm,
            claims: PhantomData,
        }
    }

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

impl<S, T, B> Service<Request<B>> for AuthService<S, T>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let token = match challenge::bearer(request.headers()) {
            Ok(Some(token)) => token,
            Ok(None) if self.required => {
                return AuthFuture::respond(challenge::missing(&self.realm));
            }
            Ok(None) => return AuthFuture::inner(self.inner.call(request)),
            Err(why) => return AuthFuture::respond(challenge::invalid_request(&self.realm, why)),
        };
        match self.verifier.verify_cached::<T>(token) {
            Some(Ok(claims)) => {
                if self.log_subject {
                    log_subject(&claims);
                }
                request.extensions_mut().insert(claims);
                AuthFuture::inner(self.inner.call(request))
            }
            Some(Err(error)) => AuthFuture::respond(challenge::rejected(&self.realm, &error)),
            None => {
                // Keys must be fetched first: the one path that waits, boxed. The inner service
                // polled ready is the one called; a clone stays here for the next request.
                let token = token.to_owned();
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                let (verifier, realm) = (self.verifier.clone(), self.realm.clone());
                let log = self.log_subject;
                AuthFuture::waiting(Box::pin(async move {
                    match verifier.verify::<T>(&token).await {
                        Ok(claims) => {
                            if log {
                                log_subject(&claims);
                            }
                            request.extensions_mut().insert(claims);
                            ready.call(request).await
                        }
                        Err(error) => Ok(challenge::rejected(&realm, &error)),
                    }
                }))
            }
        }
    }
}

fn log_subject<T>(claims: &Claims<T>) {
    tracing::debug!(
        subject = claims.subject.as_deref().unwrap_or(""),
        "caller authenticated"
    );
}
