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

use crate::decision::Decision;
use crate::error::Result;
use crate::key::{IpNet, KeyExtractor};
use crate::quota::Policy;
use crate::store::{AnyLimiter, RateLimiter};

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
    trusted: Vec<IpNet>,
    allow_keys: Vec<String>,
    allow_ips: Vec<IpNet>,
    headers: bool,
    /// `RateLimit-Policy` values, built once: the default set first, then one per rule.
    policy_headers: std::sync::OnceLock<Vec<Option<HeaderValue>>>,
}

/// A tower layer that rate-limits requests per client key.
///
/// - **Policies**: a default set for every route, and per route template / method rules (first
///   match wins). All policies of a request are checked with one atomic `check_many`.
/// - **Keys**: [`KeyExtractor`] (client IP by default; `X-Forwarded-For` / `Forwarded` honoured
///   only from [trusted proxies](Self::trusted_proxies)); requests without a key share the key `-`.
/// - **Responses**: `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers-10)
///   on every limited route; a denied request gets 429 problem+json (code `RATE_LIMITED`) with
///   `Retry-After`. Shadow policies report in metrics and never deny.
/// - **Failures**: if the limiter errors (a Redis limiter without fallback), the request is let
///   through and a warning logged (use `ResilientLimiter` to decide locally instead).
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
                trusted: Vec::new(),
                allow_keys: Vec::new(),
                allow_ips: Vec::new(),
                headers: true,
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
                    policy_headers: std::sync::OnceLock::new(),
                };
                f(&mut copy);
                self.config = Arc::new(copy);
            }
        }
        self
    }

    /// Adds a policy applied to every route without a matching rule.
    pub fn policy(self, policy: Policy) -> Self {
        self.edit(|c| c.default.push(policy))
    }

    /// Adds a policy for a route template (as written in the router, e.g. `/patients/{id}`) and
    /// optionally one method. Rules replace the default policies for the requests they match.
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
    pub fn key(self, key: KeyExtractor) -> Self {
        self.edit(|c| c.key = key)
    }

    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed (CIDR or address);
    /// the client is the rightmost hop that is not one of them. Invalid networks are errors.
    pub fn trusted_proxies<I, S>(self, networks: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = parse_networks(networks)?;
        Ok(self.edit(|c| c.trusted = nets))
    }

    /// Client networks that are never limited (monitoring, internal callers).
    pub fn allow_ips<I, S>(self, networks: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = parse_networks(networks)?;
        Ok(self.edit(|c| c.allow_ips = nets))
    }

    /// Keys (as produced by the extractor without its prefix, e.g. an API key) never limited.
    pub fn allow_keys<I, S>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        self.edit(|c| c.allow_keys = keys)
    }

    /// Whether to send `RateLimit-Policy` / `RateLimit` headers (default on).
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

fn parse_networks<I, S>(networks: I) -> Result<Vec<IpNet>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    networks
        .into_iter()
        .map(|n| IpNet::parse(n.as_ref()))
        .collect()
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

/// `"name";r=remaining;t=reset` items.
fn state_header(policies: &[Policy], decisions: &[Decision]) -> String {
    let mut out = String::with_capacity(32 * policies.len());
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
            && crate::key::client_ip(parts, &self.trusted)
                .is_some_and(|ip| self.allow_ips.iter().any(|n| n.contains(ip)))
    }
}

impl<S> Service<Request<Body>> for RateLimitService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The ready inner service goes with this request; a fresh clone serves the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        let (parts, body) = req.into_parts();
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let (set, policies) = config.policies_for(route, &parts.method);
        let key = config
            .key
            .key(&parts, &config.trusted)
            .unwrap_or_else(|| "-".to_owned());
        let skip = policies.is_empty() || config.allowed_without_check(&parts, &key);
        let req = Request::from_parts(parts, body);
        Box::pin(async move {
            if skip {
                return inner.call(req).await;
            }
            let policies = config.policies_at(set);
            // One policy (the common case) is a plain check: on Redis it can share a script call
            // with concurrent requests; several policies are all-or-nothing.
            let decided = if let [policy] = policies {
                config.limiter.check(policy, &key, 1).await.map(|d| vec![d])
            } else {
                let checks: Vec<_> = policies.iter().map(|p| (p, key.as_str(), 1)).collect();
                config.limiter.check_many(&checks).await
            };
            let decisions = match decided {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "rate limiter failed; letting the request through");
                    return inner.call(req).await;
                }
            };
            let headers = config.headers.then(|| {
                (
                    config.policy_header(set),
                    HeaderValue::from_str(&state_header(policies, &decisions)).ok(),
                )
            });
            let mut response = if decisions.iter().all(|d| d.allowed) {
                inner.call(req).await?
            } else {
                let retry = decisions
                    .iter()
                    .filter_map(|d| d.retry_after)
                    .max()
                    .unwrap_or(Duration::from_secs(1));
                let limited: Vec<&str> = policies
                    .iter()
                    .zip(&decisions)
                    .filter(|(_, d)| d.retry_after.is_some())
                    .map(|(p, _)| p.name())
                    .collect();
                ApiError::rate_limited(retry)
                    .with_extension("policies", limited)
                    .into_response()
            };
            if let Some((policy, state)) = headers {
                let h = response.headers_mut();
                if let Some(v) = policy {
                    h.insert(RATELIMIT_POLICY, v);
                }
                if let Some(v) = state {
                    h.insert(RATELIMIT, v);
                }
            }
            Ok(response)
        })
    }
}
