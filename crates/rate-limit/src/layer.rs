//! [`RateLimitLayer`]: rate limiting for axum with per-route policies, IETF `RateLimit` headers
//! and problem+json 429s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, Request};
use nilecare_error_handler::ApiError;
use tower::{Layer, Service};

use crate::any::AnyLimiter;
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::forwarded::{ForwardedHeader, TrustedProxies, in_networks, parse_networks};
use crate::key::KeyExtractor;
use crate::metrics::LayerFailure;
use crate::quota::Policy;
use crate::store::RateLimiter;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10); static, so no copy per response.
const RATELIMIT_POLICY: http::HeaderName = http::HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
const RATELIMIT: http::HeaderName = http::HeaderName::from_static("ratelimit");

/// Policies for requests matching a route template and method.
#[derive(Clone, Debug)]
struct Rule {
    route: String,
    method: Option<Method>,
    policies: Vec<Policy>,
}

struct Config {
    limiter: AnyLimiter,
    default: Vec<Policy>,
    rules: Vec<Rule>,
    key: KeyExtractor,
    trusted: TrustedProxies,
    allow_keys: Vec<String>,
    allow_ips: Vec<ipnet::IpNet>,
    headers: bool,
    on_unavailable: OnUnavailable,
    /// `RateLimit-Policy` values, built once: the default set first, then one per rule.
    policy_headers: std::sync::OnceLock<Vec<Option<HeaderValue>>>,
}

/// What [`RateLimitLayer`] does when the limiter cannot decide because its backend is
/// unavailable (Redis down or too slow, and no local fallback decided instead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnUnavailable {
    /// Fail open (default): let the request through unchecked, with a warning and the
    /// `unavailable`/`allowed` failure counted. With a `ResilientLimiter` the local fallback
    /// decides first, so this is reached only by a limiter without one.
    #[default]
    Allow,
    /// Fail closed: answer 503 problem+json (`UPSTREAM_UNAVAILABLE`, `Retry-After: 1`).
    Deny,
}

/// A tower layer that rate-limits requests per client key.
///
/// - **Policies**: a default set for every route, and per route template / method rules (first
///   match wins). All policies of a request are checked with one atomic `check_many`.
/// - **Keys**: [`KeyExtractor`] (client IP by default; `X-Forwarded-For` or `Forwarded` honoured
///   only from [trusted proxies](Self::trusted_proxies)); requests without a key share the key
///   `-`. Keys longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) count under their digest.
/// - **Responses**: `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers-10)
///   on every limited route; a denied request gets 429 problem+json (code `RATE_LIMITED`) with
///   `Retry-After`. Shadow policies report in metrics and never deny.
/// - **Failures**: a backend that is unavailable (a Redis limiter without fallback) lets the
///   request through ([`OnUnavailable::Allow`], default) or answers 503
///   ([`OnUnavailable::Deny`]); a check rejected as bad input is never let through (400); keying by
///   peer IP on a server without `ConnectInfo` answers 500 and logs how to fix it. Each case is
///   counted in `nilecare_ratelimit_layer_failures_total`.
///
/// Add it with `Router::layer` so the route template (`MatchedPath`) is known.
///
/// ```
/// use axum::{Router, routing::{get, post}};
/// use http::Method;
/// use nilecare_rate_limit::{KeyExtractor, MemoryLimiter, Policy, Quota, RateLimitLayer};
///
/// # fn main() -> Result<(), nilecare_rate_limit::Error> {
/// let layer = RateLimitLayer::new(MemoryLimiter::new())
///     .policy(Policy::new("api", Quota::per_minute(600)?)?)
///     .route_policy("/api/v1/patients", Some(Method::POST), Policy::new("writes", Quota::per_minute(60)?)?)
///     .key(KeyExtractor::peer_ip())
///     .trusted_proxies(["10.0.0.0/8"])?;
/// let app: Router = Router::new()
///     .route("/api/v1/patients", get(|| async { "list" }).post(|| async { "created" }))
///     .layer(layer);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.config.limiter.backend())
            .field("default", &self.config.default)
            .field("rules", &self.config.rules)
            .field("key", &self.config.key)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// A layer deciding with `limiter` (anything convertible into [`AnyLimiter`]).
    pub fn new(limiter: impl Into<AnyLimiter>) -> Self {
        RateLimitLayer {
            config: Arc::new(Config {
                limiter: limiter.into(),
                default: Vec::new(),
                rules: Vec::new(),
                key: KeyExtractor::peer_ip(),
                trusted: TrustedProxies::default(),
                allow_keys: Vec::new(),
                allow_ips: Vec::new(),
                headers: true,
                on_unavailable: OnUnavailable::default(),
                policy_headers: std::sync::OnceLock::new(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        match Arc::get_mut(&mut self.config) {
            Some(config) => {
                f(config);
                config.policy_headers = std::sync::OnceLock::new();
            }
            None => {
                let c = &self.config;
                let mut copy = Config {
                    limiter: c.limiter.clone(),
                    default: c.default.clone(),
                    rules: c.rules.clone(),
                    key: c.key.clone(),
                    trusted: c.trusted.clone(),
                    allow_keys: c.allow_keys.clone(),
                    allow_ips: c.allow_ips.clone(),
                    headers: c.headers,
                    on_unavailable: c.on_unavailable,
                    policy_headers: std::sync::OnceLock::new(),
                };
                f(&mut copy);
                self.config = Arc::new(copy);
            }
        }
        self
    }

    /// Adds a policy applied to every route without a matching rule.
    #[must_use]
    pub fn policy(self, policy: Policy) -> Self {
        self.edit(|c| c.default.push(policy))
    }

    /// Adds a policy for a route template (as written in the router, e.g. `/patients/{id}`) and
    /// optionally one method. Rules replace the default policies for the requests they match.
    #[must_use]
    pub fn route_policy(
        self,
        route: impl Into<String>,
        method: Option<Method>,
        policy: Policy,
    ) -> Self {
        let route = route.into();
        self.edit(|c| {
            match c
                .rules
                .iter_mut()
                .find(|r| r.route == route && r.method == method)
            {
                Some(rule) => rule.policies.push(policy),
                None => c.rules.push(Rule {
                    route,
                    method,
                    policies: vec![policy],
                }),
            }
        })
    }

    /// How requests are keyed (default: client IP).
    #[must_use]
    pub fn key(self, key: KeyExtractor) -> Self {
        self.edit(|c| c.key = key)
    }

    /// Proxies whose forwarding header is believed (CIDR or address); the client is the
    /// rightmost hop that is not one of them. Invalid networks are errors naming
    /// `trusted_proxies` and the text.
    pub fn trusted_proxies<I, S>(self, networks: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = parse_networks("trusted_proxies", networks)?;
        Ok(self.edit(|c| c.trusted.networks = nets))
    }

    /// The header the trusted proxies write (default [`ForwardedHeader::XForwardedFor`]); the
    /// other one is ignored, since a proxy passes a client's copy of it through.
    #[must_use]
    pub fn forwarded_header(self, header: ForwardedHeader) -> Self {
        self.edit(|c| c.trusted.header = header)
    }

    /// The client address this layer keys a request by: the peer, or behind the configured
    /// trusted proxies the first hop of the forwarding header that is not one of them. `None`
    /// when the server provides no peer address (`ConnectInfo`). Use it to log or audit the
    /// same address the limiter counts.
    pub fn client_ip(&self, parts: &http::request::Parts) -> Option<std::net::IpAddr> {
        crate::forwarded::client_ip(parts, &self.config.trusted)
    }

    /// Fail open or closed when the limiter's backend is unavailable (default open).
    #[must_use]
    pub fn on_unavailable(self, action: OnUnavailable) -> Self {
        self.edit(|c| c.on_unavailable = action)
    }

    /// Client networks that are never limited (monitoring, internal callers).
    pub fn allow_ips<I, S>(self, networks: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = parse_networks("allow_ips", networks)?;
        Ok(self.edit(|c| c.allow_ips = nets))
    }

    /// Keys (as produced by the extractor without its prefix, e.g. an API key) never limited.
    #[must_use]
    pub fn allow_keys<I, S>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        self.edit(|c| c.allow_keys = keys)
    }

    /// Whether to send `RateLimit-Policy` / `RateLimit` headers (default on).
    #[must_use]
    pub fn headers(self, on: bool) -> Self {
        self.edit(|c| c.headers = on)
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for RateLimitService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitService").finish_non_exhaustive()
    }
}

/// Whole seconds, rounded up, at least 1 for a non-zero duration.
fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `"name";q=limit;w=window` items.
fn policy_header(policies: &[Policy]) -> String {
    policies
        .iter()
        .map(|p| {
            format!(
                "\"{}\";q={};w={}",
                p.name(),
                p.quota().limit(),
                secs(p.quota().window()).max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"name";r=remaining;t=reset` items, in a string of exactly their length (so it becomes a
/// header value without a copy).
fn state_header(policies: &[Policy], decisions: &[Decision]) -> String {
    let len: usize = policies
        .iter()
        .zip(decisions)
        .map(|(p, d)| {
            p.name().len()
                + "\"\";r=;t=".len()
                + decimal_len(d.remaining)
                + decimal_len(secs(d.reset_after))
        })
        .sum::<usize>()
        + ", ".len() * policies.len().min(decisions.len()).saturating_sub(1);
    let mut out = String::with_capacity(len);
    for (i, (p, d)) in policies.iter().zip(decisions).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(p.name());
        out.push_str("\";r=");
        crate::text::push_decimal(&mut out, d.remaining);
        out.push_str(";t=");
        crate::text::push_decimal(&mut out, secs(d.reset_after));
    }
    out
}

/// The number of decimal digits of `n`.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |digits| digits as usize + 1)
}

impl Config {
    /// The policies for a request and their set's index (0 = default, i + 1 = rule i).
    fn policies_for(&self, route: Option<&str>, method: &Method) -> (usize, &[Policy]) {
        route
            .and_then(|route| {
                self.rules
                    .iter()
                    .position(|r| r.route == route && r.method.as_ref().is_none_or(|m| m == method))
            })
            .map_or((0, &self.default[..]), |i| {
                (i + 1, &self.rules[i].policies[..])
            })
    }

    fn policies_at(&self, index: usize) -> &[Policy] {
        match index {
            0 => &self.default,
            i => &self.rules[i - 1].policies,
        }
    }

    fn policy_header(&self, index: usize) -> Option<HeaderValue> {
        self.policy_headers
            .get_or_init(|| {
                std::iter::once(&self.default)
                    .chain(self.rules.iter().map(|r| &r.policies))
                    .map(|p| HeaderValue::from_str(&policy_header(p)).ok())
                    .collect()
            })
            .get(index)
            .cloned()
            .flatten()
    }

    fn allowed_without_check(&self, parts: &http::request::Parts, key: &str) -> bool {
        if !self.allow_keys.is_empty()
            && self
                .allow_keys
                .iter()
                .any(|k| key.split_once(':').is_some_and(|(_, v)| v == k))
        {
            return true;
        }
        !self.allow_ips.is_empty()
            && crate::forwarded::client_ip(parts, &self.trusted)
                .is_some_and(|ip| in_networks(&self.allow_ips, ip))
    }

    /// The answer when the limiter could not decide: through (fail open) or an error response.
    fn on_error(&self, error: &Error) -> Option<Response> {
        if error.is_unavailable() {
            return match self.on_unavailable {
                OnUnavailable::Allow => {
                    LayerFailure::Unavailable.record(true);
                    tracing::warn!(%error, "rate limiter unavailable; letting the request through (fail open)");
                    None
                }
                OnUnavailable::Deny => {
                    LayerFailure::Unavailable.record(false);
                    tracing::warn!(%error, "rate limiter unavailable; refusing the request (fail closed)");
                    Some(
                        ApiError::new(
                            nilecare_error_handler::ErrorCode::UPSTREAM_UNAVAILABLE,
                            "Rate limiting is unavailable; try again shortly.",
                        )
                        .with_retry_after(Duration::from_secs(1))
                        .into_response(),
                    )
                }
            };
        }
        LayerFailure::InvalidInput.record(false);
        tracing::warn!(%error, "rate-limit check rejected; refusing the request");
        Some(match error {
            Error::InvalidInput { .. } => ApiError::bad_request(error.to_string()).into_response(),
            _ => ApiError::internal("The rate-limit check failed.")
                .with_source(ErrorText(error.to_string()))
                .into_response(),
        })
    }
}

/// An error's text, as an error source for the log (the limiter's error stays with the caller).
#[derive(Debug)]
struct ErrorText(String);

impl std::fmt::Display for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorText {}

/// Keying by peer IP on a server that gives no peer address: answered 500, logged once per
/// process (with the fix), counted every time.
fn missing_peer_address() -> Response {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::error!(
            "RateLimitLayer keys by client IP but the request has no peer address: serve the \
             router with `into_make_service_with_connect_info::<SocketAddr>()`, or key by \
             something else (KeyExtractor::header, ::extension, ::global)"
        );
    });
    LayerFailure::NoPeerAddress.record(false);
    ApiError::internal("Rate limiting by client IP is misconfigured: no peer address.")
        .into_response()
}

impl<S> RateLimitService<S> {
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

impl<S> Service<Request<Body>> for RateLimitService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RateLimitFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let config = &self.config;
        let (parts, body) = req.into_parts();
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let (set, policies) = config.policies_for(route, &parts.method);
        let key = match config.key.key(&parts, &config.trusted) {
            Some(key) => Some(key),
            None if config.key.needs_peer() && crate::forwarded::peer_ip(&parts).is_none() => None,
            None => Some("-".to_owned()),
        };
        let skip = policies.is_empty()
            || key
                .as_ref()
                .is_some_and(|key| config.allowed_without_check(&parts, key));
        let tenant = if skip {
            None
        } else {
            parts
                .extensions
                .get::<nilecare_metrics::RequestTenant>()
                .cloned()
        };
        let req = Request::from_parts(parts, body);
        if skip {
            // Not limited: the inner future as it is, nothing boxed.
            return RateLimitFuture {
                state: State::Passthrough {
                    future: self.inner.call(req),
                },
            };
        }
        // The memory limiter never waits: decide now, then call the ready inner service (or
        // answer) without a boxed check or a second service.
        if let AnyLimiter::Memory(memory) = &config.limiter {
            let verdict = match key {
                None => Verdict::Respond(missing_peer_address()),
                Some(key) => {
                    let policies = config.policies_at(set);
                    let decided = match policies {
                        [policy] => memory.check_now(policy, &key, 1).map(Decisions::One),
                        _ => {
                            let checks: Vec<_> =
                                policies.iter().map(|p| (p, key.as_str(), 1)).collect();
                            memory.check_many_now(&checks).map(Decisions::Many)
                        }
                    };
                    config.verdict(set, decided, tenant.as_ref())
                }
            };
            return RateLimitFuture {
                state: match verdict {
                    Verdict::Call(headers) => State::Calling {
                        future: self.inner.call(req),
                        headers: Some(headers),
                        tenant,
                    },
                    Verdict::Respond(response) => State::Answered {
                        response: Some(response),
                    },
                },
            };
        }
        // The ready inner service goes with this request; a fresh clone serves the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        // Only the limiter's check is boxed (its future cannot be named): the inner service's
        // future stays inline in `RateLimitFuture`, never moved into a heap generator.
        let limited_tenant = tenant.clone();
        let check: Check = Box::pin(async move {
            let Some(key) = key else {
                return Verdict::Respond(missing_peer_address());
            };
            let policies = config.policies_at(set);
            // One policy (the common case) is a plain check: on Redis it can share a script call
            // with concurrent requests; several policies are all-or-nothing.
            let decided = if let [policy] = policies {
                config
                    .limiter
                    .check(policy, &key, 1)
                    .await
                    .map(Decisions::One)
            } else {
                let checks: Vec<_> = policies.iter().map(|p| (p, key.as_str(), 1)).collect();
                config
                    .limiter
                    .check_many(&checks)
                    .await
                    .map(Decisions::Many)
            };
            config.verdict(set, decided, limited_tenant.as_ref())
        });
        RateLimitFuture {
            state: State::Checking {
                check,
                call: Some((inner, req)),
                tenant,
            },
        }
    }
}

impl Config {
    /// What the limiter's decisions (or its failure) for the policies at `set` mean for the
    /// request: call the inner service with these headers, or answer (429, or the refusal of a
    /// limiter that failed closed).
    fn verdict(
        &self,
        set: usize,
        decided: Result<Decisions>,
        tenant: Option<&nilecare_metrics::RequestTenant>,
    ) -> Verdict {
        let decided = match decided {
            Ok(d) => d,
            Err(e) => {
                return match self.on_error(&e) {
                    None => Verdict::Call(RateLimitHeaders::default()),
                    Some(refused) => Verdict::Respond(refused),
                };
            }
        };
        let decisions = decided.as_slice();
        let policies = self.policies_at(set);
        let headers = if self.headers {
            RateLimitHeaders {
                policy: self.policy_header(set),
                // Built to its exact length, the text becomes the header value as it is.
                state: HeaderValue::try_from(state_header(policies, decisions)).ok(),
            }
        } else {
            RateLimitHeaders::default()
        };
        if decisions.iter().all(|d| d.allowed) {
            return Verdict::Call(headers);
        }
        let retry = decisions
            .iter()
            .filter_map(|d| d.retry_after)
            .max()
            .unwrap_or(Duration::from_secs(1));
        let limited: Vec<&str> = policies
            .iter()
            .zip(decisions)
            .filter(|(_, d)| d.retry_after.is_some())
            .map(|(p, _)| p.name())
            .collect();
        let mut response = ApiError::rate_limited(retry)
            .with_extension("policies", limited)
            .into_response();
        headers.apply(&mut response);
        if let Some(tenant) = tenant {
            crate::metrics::tenant_decision(tenant, false);
        }
        Verdict::Respond(response)
    }
}

/// The limiter's decisions for one request: one policy (the common case, no vector) or several.
enum Decisions {
    One(Decision),
    Many(Vec<Decision>),
}

impl Decisions {
    fn as_slice(&self) -> &[Decision] {
        match self {
            Decisions::One(decision) => std::slice::from_ref(decision),
            Decisions::Many(decisions) => decisions,
        }
    }
}

/// The limiter's answer for one request.
enum Verdict {
    /// Call the inner service and add these headers to its response.
    Call(RateLimitHeaders),
    /// Answer without calling it: 429, or the refusal of a limiter that failed closed.
    Respond(Response),
}

/// `RateLimit-Policy` and `RateLimit` of a checked request (none when headers are off or the
/// limiter failed open).
#[derive(Default)]
struct RateLimitHeaders {
    policy: Option<HeaderValue>,
    state: Option<HeaderValue>,
}

impl RateLimitHeaders {
    fn apply(self, response: &mut Response) {
        let headers = response.headers_mut();
        if let Some(v) = self.policy {
            headers.insert(RATELIMIT_POLICY, v);
        }
        if let Some(v) = self.state {
            headers.insert(RATELIMIT, v);
        }
    }
}

/// The limiter's check of a limited request (the `RateLimiter` trait's `impl Future`, which
/// cannot be named), boxed; it holds no inner future, so it stays small.
type Check = Pin<Box<dyn Future<Output = Verdict> + Send>>;

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<S, F> {
        // Not limited (or allowed without a check): the inner future as it is.
        Passthrough { #[pin] future: F },
        // The limiter decides; the ready service and the request wait for its verdict.
        Checking {
            check: Check,
            call: Option<(S, Request<Body>)>,
            tenant: Option<nilecare_metrics::RequestTenant>,
        },
        // Answered without calling the inner service (decided at once by the memory limiter).
        Answered { response: Option<Response> },
        // Allowed: the inner future, then the rate-limit headers on its response (and the
        // tenant's decision counted, once inner layers may have refined the tenant).
        Calling {
            #[pin] future: F,
            headers: Option<RateLimitHeaders>,
            tenant: Option<nilecare_metrics::RequestTenant>,
        },
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RateLimitService`]: requests no policy applies to (or allowed
    /// without a check) run the inner future as it is; limited ones wait for the limiter's
    /// check (boxed), then run the inner future inline or answer 429.
    pub struct RateLimitFuture<S>
    where
        S: Service<Request<Body>>,
    {
        #[pin]
        state: State<S, S::Future>,
    }
}

impl<S> Future for RateLimitFuture<S>
where
    S: Service<Request<Body>, Response = Response>,
{
    type Output = std::result::Result<Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProjection::Passthrough { future } => return future.poll(cx),
                StateProjection::Answered { response } => match response.take() {
                    Some(response) => return Poll::Ready(Ok(response)),
                    None => return Poll::Pending, // polled after completion
                },
                StateProjection::Calling {
                    future,
                    headers,
                    tenant,
                } => {
                    let mut response = std::task::ready!(future.poll(cx))?;
                    if let Some(headers) = headers.take() {
                        headers.apply(&mut response);
                    }
                    if let Some(tenant) = tenant.take() {
                        crate::metrics::tenant_decision(&tenant, true);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProjection::Checking {
                    check,
                    call,
                    tenant,
                } => {
                    let verdict = std::task::ready!(check.as_mut().poll(cx));
                    let headers = match verdict {
                        Verdict::Respond(response) => return Poll::Ready(Ok(response)),
                        Verdict::Call(headers) => headers,
                    };
                    // Taken once: the state leaves `Checking` right below.
                    let Some((mut service, req)) = call.take() else {
                        return Poll::Pending;
                    };
                    let future = service.call(req);
                    let tenant = tenant.take();
                    state.set(State::Calling {
                        future,
                        headers: Some(headers),
                        tenant,
                    });
                }
            }
        }
    }
}

impl<S> std::fmt::Debug for RateLimitFuture<S>
where
    S: Service<Request<Body>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Passthrough { .. } => "passthrough",
            State::Answered { .. } => "answered",
            State::Checking { .. } => "checking",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("RateLimitFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Quota;

    fn decision(remaining: u64, reset_after: Duration) -> Decision {
        Decision {
            allowed: true,
            limit: 100,
            remaining,
            reset_after,
            retry_after: None,
            shadow_limited: false,
            fallback: false,
        }
    }

    #[test]
    fn the_state_header_is_built_to_its_exact_length() {
        let api = Policy::new("api", Quota::per_minute(100).unwrap()).unwrap();
        let burst = Policy::new("burst-x", Quota::per_second(5).unwrap()).unwrap();
        for remaining in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            for reset in [
                Duration::ZERO,
                Duration::from_millis(1),
                Duration::from_secs(9),
                Duration::from_secs(10),
                Duration::from_secs(86_400),
            ] {
                let one = state_header(std::slice::from_ref(&api), &[decision(remaining, reset)]);
                assert_eq!(one, format!("\"api\";r={remaining};t={}", secs(reset)));
                assert_eq!(one.len(), one.capacity(), "{one}");
                let two = state_header(
                    &[api.clone(), burst.clone()],
                    &[
                        decision(remaining, reset),
                        decision(3, Duration::from_secs(1)),
                    ],
                );
                assert_eq!(
                    two,
                    format!(
                        "\"api\";r={remaining};t={}, \"burst-x\";r=3;t=1",
                        secs(reset)
                    )
                );
                assert_eq!(two.len(), two.capacity(), "{two}");
                assert!(HeaderValue::try_from(two).is_ok());
            }
        }
    }
}
