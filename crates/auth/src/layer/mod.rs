//! Tower layers for axum: [`AuthLayer`] verifies bearer tokens and puts the [`Claims`] in the
//! request's extensions; [`RequireLayer`] demands a role or scope of them. Handlers take
//! `Claims<T>` (401 without) or `Option<Claims<T>>`.

mod challenge;
mod extract;
mod future;
mod require;
mod service;

use std::marker::PhantomData;
use std::sync::Arc;

pub use future::{AuthFuture, RequireFuture};
pub use require::{RequireLayer, RequireService};
pub use service::AuthService;

use crate::claims::{Claims, NoCustomClaims};
use crate::verifier::Verifier;

/// Verifies `Authorization: Bearer` tokens with a [`Verifier`].
///
/// - [`required`](Self::required): a request without a token gets 401 with
///   `WWW-Authenticate: Bearer realm="..."`;
/// - [`optional`](Self::optional): a request without a token passes without claims.
///
/// Either way a token that fails verification gets 401 problem+json with
/// `WWW-Authenticate: Bearer error="invalid_token", error_description="..."`, a malformed
/// header 400 `invalid_request`, and a token that cannot be checked (keys or revocations
/// unavailable) 503 with `Retry-After`: never a pass.
///
/// With the keys cached, verification happens inside `call` and the response future is the
/// inner service's (no allocation); only a request that must wait for a key fetch boxes one
/// future.
#[derive(Debug)]
#[must_use]
pub struct AuthLayer<T = NoCustomClaims> {
    verifier: Verifier,
    required: bool,
    log_subject: bool,
    realm: Arc<str>,
    claims: PhantomData<fn() -> Claims<T>>,
}

impl<T> Clone for AuthLayer<T> {
    fn clone(&self) -> Self {
        AuthLayer {
            verifier: self.verifier.clone(),
            required: self.required,
            log_subject: self.log_subject,
            realm: self.realm.clone(),
            claims: PhantomData,
        }
    }
}

impl AuthLayer {
    /// Every request needs a valid token.
    pub fn required(verifier: Verifier) -> Self {
        Self::new(verifier, true)
    }

    /// Requests without a token pass without claims; a bad token is still refused.
    pub fn optional(verifier: Verifier) -> Self {
        Self::new(verifier, false)
    }

    fn new(verifier: Verifier, required: bool) -> Self {
        AuthLayer {
            verifier,
            required,
            log_subject: false,
            realm: Arc::from("api"),
            claims: PhantomData,
        }
    }
}

impl<T> AuthLayer<T> {
    /// Deserializes the application's claims type `U` (handlers then take `Claims<U>`).
    pub fn claims<U>(self) -> AuthLayer<U> {
        AuthLayer {
            verifier: self.verifier,
            required: self.required,
            log_subject: self.log_subject,
            realm: self.realm,
            claims: PhantomData,
        }
    }

    /// Logs one DEBUG event `caller authenticated` with the token's `subject` in the
    /// request's span (default off). The token itself is never logged, recorded or answered.
    pub fn log_subject(mut self, on: bool) -> Self {
        self.log_subject = on;
        self
    }

    /// The `realm` of challenges (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Arc::from(realm);
        self
    }
}

impl<S, T> tower::Layer<S> for AuthLayer<T> {
    type Service = AuthService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(
            inner,
            self.verifier.clone(),
            self.required,
            self.log_subject,
            self.realm.clone(),
        )
    }
}
