//! [`RequireLayer`]: a role or scope demanded of the verified claims, optionally only for some
//! methods (e.g. mutations).

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use http::{Method, Request};
use tower::Service;

use super::challenge;
use super::future::RequireFuture;
use crate::claims::{Claims, NoCustomClaims};

#[derive(Debug, Clone)]
enum Need {
    AnyRole(Vec<String>),
    Scope(String),
}

#[derive(Debug)]
struct Rule {
    need: Need,
    methods: Option<Vec<Method>>,
    realm: String,
}

/// Demands a role or a scope of the [`Claims`] an [`AuthLayer`](super::AuthLayer) (inside or
/// outside this layer's scope, but before it) put in the request: no claims → 401, claims
/// without it → 403 `insufficient_scope`. Put it on the routes that need it.
///
/// ```
/// use http::Method;
/// use nilecare_auth::RequireLayer;
///
/// // POST/PUT/PATCH/DELETE need the clinician role; reads pass.
/// let layer = RequireLayer::role("clinician")
///     .for_methods([Method::POST, Method::PUT, Method::PATCH, Method::DELETE]);
/// # let _ = layer;
/// ```
#[derive(Debug)]
#[must_use]
pub struct RequireLayer<T = NoCustomClaims> {
    rule: Arc<Rule>,
    claims: PhantomData<fn() -> Claims<T>>,
}

impl<T> Clone for RequireLayer<T> {
    fn clone(&self) -> Self {
        RequireLayer {
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

impl RequireLayer {
    fn with(need: Need) -> Self {
        RequireLayer {
            rule: Arc::new(Rule {
                need,
                methods: None,
                realm: "api".into(),
            }),
            claims: PhantomData,
        }
    }

    /// The caller needs `role`.
    pub fn role(role: impl Into<String>) -> Self {
        Self::with(Need::AnyRole(vec![role.into()]))
    }

    /// The caller needs one of `roles`.
    pub fn any_role(roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with(Need::AnyRole(roles.into_iter().map(Into::into).collect()))
    }

    /// The caller needs `scope`.
    pub fn scope(scope: impl Into<String>) -> Self {
        Self::with(Need::Scope(scope.into()))
    }
}

impl<T> RequireLayer<T> {
    /// Reads `Claims<U>` (the type given to [`AuthLayer::claims`](super::AuthLayer::claims)).
    pub fn claims<U>(self) -> RequireLayer<U> {
        RequireLayer {
            rule: self.rule,
            claims: PhantomData,
        }
    }

    /// Demand it only of requests with these methods (others pass untouched).
    pub fn for_methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let rule = Rule {
            need: self.rule.need.clone(),
            methods: Some(methods.into_iter().collect()),
            realm: self.rule.realm.clone(),
        };
        RequireLayer {
            rule: Arc::new(rule),
            claims: PhantomData,
        }
    }

    /// The `realm` of challenges (default `api`).
    pub fn realm(self, realm: &str) -> Self {
        let rule = Rule {
            need: self.rule.need.clone(),
            methods: self.rule.methods.clone(),
            realm: realm.to_owned(),
        };
        RequireLayer {
            rule: Arc::new(rule),
            claims: PhantomData,
        }
    }
}

impl<S, T> tower::Layer<S> for RequireLayer<T> {
    type Service = RequireService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            inner,
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

/// The service of [`RequireLayer`].
#[derive(Debug)]
pub struct RequireService<S, T> {
    inner: S,
    rule: Arc<Rule>,
    claims: PhantomData<fn() -> Claims<T>>,
}

impl<S: Clone, T> Clone for RequireService<S, T> {
    fn clone(&self) -> Self {
        RequireService {
            inner: self.inner.clone(),
            rule: self.rule.clone(),
            claims: PhantomData,
        }
    }
}

impl<S, T> RequireService<S, T> {
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

impl<S, T, B> Service<Request<B>> for RequireService<S, T>
where
    S: Service<Request<B>, Response = Response>,
    T: Send + Sync + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequireFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let rule = &self.rule;
        if rule
            .methods
            .as_ref()
            .is_some_and(|methods| !methods.contains(request.method()))
        {
            return RequireFuture::inner(self.inner.call(request));
        }
        let Some(claims) = request.extensions().get::<Claims<T>>() else {
            return RequireFuture::respond(challenge::missing(&rule.realm));
        };
        let denied = match &rule.need {
            Need::AnyRole(roles) if !roles.iter().any(|r| claims.has_role(r)) => Some((
                format!("This operation needs the role {}.", roles.join(" or ")),
                None,
            )),
            Need::Scope(scope) if !claims.has_scope(scope) => Some((
                format!("This operation needs the scope {scope}."),
                Some(scope.as_str()),
            )),
            _ => None,
        };
        match denied {
            Some((needed, scope)) => {
                RequireFuture::respond(challenge::forbidden(&rule.realm, &needed, scope))
            }
            None => RequireFuture::inner(self.inner.call(request)),
        }
    }
}
