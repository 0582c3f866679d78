//! [`ResponseCacheLayer`]: caches GET/HEAD responses, invalidates them on mutations.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::header::{AGE, HeaderName, HeaderValue};
use http::{Method, Request, Response, request};
use http_body::Body as _;
use tower::{Layer, Service};

use super::directives::{CacheControl, Seconds};
use super::entry::StoredResponse;
use super::freshness::{NotStored, Rules, storable};
use super::routes::{RoutePattern, TagRoute, tags_for};
use super::status::CacheStatus;
use crate::any::AnyStore;
use crate::cache::Cache;
use crate::error::Result;
use crate::store::Store;

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

type TenantFn = dyn Fn(&request::Parts) -> Option<String> + Send + Sync;

struct Config<S: Store> {
    cache: Cache<S>,
    default_ttl: Duration,
    statuses: Vec<u16>,
    tenant: Option<Arc<TenantFn>>,
    routes: Vec<TagRoute>,
    excluded: Vec<RoutePattern>,
    max_body_bytes: usize,
    cache_authorized: bool,
    serve_stale_for: Duration,
}

impl<S: Store> Clone for Config<S> {
    fn clone(&self) -> Self {
        Config {
            cache: self.cache.clone(),
            default_ttl: self.default_ttl,
            statuses: self.statuses.clone(),
            tenant: self.tenant.clone(),
            routes: self.routes.clone(),
            excluded: self.excluded.clone(),
            max_body_bytes: self.max_body_bytes,
            cache_authorized: self.cache_authorized,
            serve_stale_for: self.serve_stale_for,
        }
    }
}

/// Caches `GET` responses in a [`Cache`] and serves them to `GET` and `HEAD`; invalidates them
/// when a mutation (`POST`, `PUT`, `PATCH`, `DELETE`) of the same resource succeeds.
///
/// - **Key**: path + query with its parameters sorted (`?b=2&a=1` = `?a=1&b=2`), in the tenant's
///   view of the cache when a tenant extractor gives one.
/// - **Stored** only when the status is listed (default `[200]`), the response has no `Set-Cookie`, no
///   `Cache-Control: no-store / no-cache / private`, no `Vary` beyond `Accept-Encoding`, a
///   known body size within `max_body_bytes`, and the request carried no `Authorization` (unless
///   `public` or [`cache_authorized`](Self::cache_authorized)). TTL: `s-maxage`, else `max-age`
///   from the handler, else `default_ttl`.
/// - **Request** `Cache-Control: no-cache` skips the lookup (the fresh response is stored);
///   `no-store` skips both.
/// - **`Cache-Status`** (RFC 9211): `nilecare; hit`, `nilecare; fwd=miss; stored`,
///   `nilecare; fwd=miss; detail=<why not stored>`, `nilecare; fwd=request`, plus `Age` on hits.
/// - **Excluded routes** ([`exclude_route`](Self::exclude_route)) pass through untouched.
/// - **Invalidation**: a successful mutation deletes the entry of its own path and invalidates
///   the tags of every matching [`tag_route`](Self::tag_route).
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use nilecare_cache::{Cache, MemoryStore};
/// use nilecare_cache::http::{ResponseCacheLayer, stats_handler};
///
/// let cache: Cache = Cache::builder()
///     .name("http")
///     .build(MemoryStore::with_max_entries(10_000)?.into())?;
/// let app: Router = Router::new()
///     .route("/api/v1/patients/{id}", get(|| async { "patient" }))
///     .layer(
///         ResponseCacheLayer::new(cache.clone())
///             .default_ttl(Duration::from_secs(60))
///             .tenant_header(http::HeaderName::from_static("x-tenant-id"))
///             .tag_route("/api/v1/patients/{id}", &["patient:{id}", "patients"])?
///             .tag_route("/api/v1/patients", &["patients"])?,
///     )
///     .route("/api/v1/cache/stats", stats_handler(cache));
/// # Ok::<(), nilecare_cache::Error>(())
/// ```
pub struct ResponseCacheLayer<S: Store = AnyStore> {
    config: Config<S>,
}

impl<S: Store> Clone for ResponseCacheLayer<S> {
    fn clone(&self) -> Self {
        ResponseCacheLayer {
            config: self.config.clone(),
        }
    }
}

impl<S: Store> std::fmt::Debug for ResponseCacheLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCacheLayer")
            .field("cache", &self.config.cache)
            .field("default_ttl", &self.config.default_ttl)
            .field("statuses", &self.config.statuses)
            .field("routes", &self.config.routes.len())
            .finish_non_exhaustive()
    }
}

impl<S: Store> ResponseCacheLayer<S> {
    /// A layer over `cache`: 60 s default TTL, status 200 only, 1 MiB bodies, no tenant.
    pub fn new(cache: Cache<S>) -> Self {
        ResponseCacheLayer {
            config: Config {
                cache,
                default_ttl: Duration::from_secs(60),
                statuses: vec![200],
                tenant: None,
                routes: Vec::new(),
                excluded: Vec::new(),
                max_body_bytes: 1 << 20,
                cache_authorized: false,
                serve_stale_for: Duration::ZERO,
            },
        }
    }

    /// TTL when the handler sets no `max-age`.
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }

    /// The statuses that may be stored (default `[200]`).
    #[must_use]
    pub fn statuses(mut self, statuses: &[u16]) -> Self {
        self.config.statuses = statuses.to_vec();
        self
    }

    /// Largest body stored (default 1 MiB); larger or unknown-size bodies pass through.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// Keep entries this long past their freshness, for requests that accept stale responses
    /// (`Cache-Control: max-stale`) and responses that allow it (no `must-revalidate`). Default
    /// zero: an entry goes when it stops being fresh.
    #[must_use]
    pub fn serve_stale_for(mut self, window: Duration) -> Self {
        self.config.serve_stale_for = window;
        self
    }

    /// Store responses to requests carrying `Authorization` (default: only when the handler
    /// says `Cache-Control: public`). Use it with a tenant or user extractor.
    #[must_use]
    pub fn cache_authorized(mut self, on: bool) -> Self {
        self.config.cache_authorized = on;
        self
    }

    /// Keep each tenant's responses apart, the tenant taken from this request header. A
    /// request without it uses the global view; one with an invalid tenant id is not cached.
    #[must_use]
    pub fn tenant_header(self, name: HeaderName) -> Self {
        self.tenant_from(move |parts| {
            parts
                .headers
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
    }

    /// Keep each tenant's responses apart, the tenant computed from the request (e.g. from
    /// an extension set by the auth layer).
    #[must_use]
    pub fn tenant_from(
        mut self,
        tenant: impl Fn(&request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.config.tenant = Some(Arc::new(tenant));
        self
    }

    /// Never caches (nor looks up, nor invalidates on) paths matching `pattern`
    /// (`/api/v1/cache/stats`, `/admin/{page}`): for operational answers that must always be
    /// current. Handlers can also opt out per response with `Cache-Control: no-store`. Errors
    /// name `exclude_route` and the pattern.
    pub fn exclude_route(mut self, pattern: &str) -> Result<Self> {
        self.config
            .excluded
            .push(RoutePattern::new("exclude_route", pattern)?);
        Ok(self)
    }

    /// Tags cached GETs of paths matching `pattern` (`/api/v1/patients/{id}`) with `tags`
    /// (`patient:{id}`), and invalidates those tags when a mutation of a matching path
    /// succeeds. Errors name the problem (a tag using an uncaptured parameter, no tags).
    pub fn tag_route(mut self, pattern: &str, tags: &[&str]) -> Result<Self> {
        self.config.routes.push(TagRoute::new(pattern, tags)?);
        Ok(self)
    }
}

impl<S: Store, I> Layer<I> for ResponseCacheLayer<S> {
    type Service = ResponseCacheService<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        ResponseCacheService {
            inner,
            config: Arc::new(self.config.clone()),
        }
    }
}

/// The service made by [`ResponseCacheLayer`].
pub struct ResponseCacheService<S: Store, I> {
    inner: I,
    config: Arc<Config<S>>,
}

impl<S: Store, I: Clone> Clone for ResponseCacheService<S, I> {
    fn clone(&self) -> Self {
        ResponseCacheService {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: Store, I> std::fmt::Debug for ResponseCacheService<S, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCacheService")
            .finish_non_exhaustive()
    }
}

/// `http:<path>[?<sorted query>]`.
fn cache_key(uri: &http::Uri) -> String {
    let mut key = format!("http:{}", uri.path());
    if let Some(query) = uri.query().filter(|q| !q.is_empty()) {
        let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        pairs.sort_unstable();
        key.push('?');
        key.push_str(&pairs.join("&"));
    }
    key
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn with_status(mut response: Response<Body>, status: &CacheStatus) -> Response<Body> {
    response.headers_mut().insert(CACHE_STATUS, status.render());
    response
}

/// What a lookup found.
enum Lookup {
    /// A stored response this request may be given.
    Hit(Response<Body>),
    /// Nothing usable; `fwd` says why (RFC 9211 section 2.2).
    Forward(&'static str),
}

impl<S: Store> Config<S> {
    /// The view for this request's tenant; `None` when the tenant id is invalid.
    fn view(&self, parts: &request::Parts) -> Option<Cache<S>> {
        match self.tenant.as_ref().and_then(|f| f(parts)) {
            None => Some(self.cache.clone()),
            Some(tenant) => self.cache.for_tenant(&tenant).ok(),
        }
    }

    /// Finds a stored response and decides whether this request may be given it (RFC 9111
    /// section 4): its `Vary` headers, freshness, and the request's `max-age`, `min-fresh` and
    /// `max-stale`.
    async fn lookup(
        &self,
        view: &Cache<S>,
        key: &str,
        request: &http::HeaderMap,
        request_cc: &CacheControl,
        head: bool,
    ) -> Lookup {
        let Some(stored) = view.get::<StoredResponse>(key).await else {
            return Lookup::Forward("miss");
        };
        if !stored.vary_matches(request) {
            return Lookup::Forward("vary-miss");
        }
        let now = now_ms();
        let age = stored.age_s(now);
        let ttl_ms = i128::from(stored.fresh_until_ms) - i128::from(now);
        let ttl_s = i64::try_from(ttl_ms.div_euclid(1000)).unwrap_or(i64::MAX);
        let age_ok = request_cc
            .max_age
            .is_none_or(|m| matches!(m, Seconds::Valid(max) if age <= max));
        let usable = if ttl_ms > 0 {
            // Section 5.2.1.1 (max-age) and 5.2.1.3 (min-fresh).
            age_ok
                && request_cc
                    .min_fresh
                    .is_none_or(|min| ttl_s >= i64::try_from(min).unwrap_or(i64::MAX))
        } else {
            // Section 4.2.4 and 5.2.1.2: stale only where the request allows it and the
            // response does not forbid it.
            let stale_s = u64::try_from(-ttl_ms).unwrap_or(u64::MAX).div_ceil(1000);
            age_ok
                && !stored.must_revalidate
                && request_cc
                    .max_stale
                    .is_some_and(|limit| limit.is_none_or(|max| stale_s <= max))
        };
        if !usable {
            return Lookup::Forward(if ttl_ms > 0 { "request" } else { "stale" });
        }
        let Some((status, headers, body)) = stored.into_parts() else {
            return Lookup::Forward("miss");
        };
        let mut response = Response::new(if head {
            Body::empty()
        } else {
            Body::from(body)
        });
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        // Section 5.1: the age of the response as served.
        response.headers_mut().insert(AGE, HeaderValue::from(age));
        let status = CacheStatus {
            hit: true,
            ttl: (ttl_ms <= 0).then_some(ttl_s),
            ..Default::default()
        };
        Lookup::Hit(with_status(response, &status))
    }

    /// Stores a GET response when allowed; returns it (rebuilt) with its `Cache-Status`
    /// (`fwd` says why it was forwarded).
    async fn store(
        &self,
        view: &Cache<S>,
        key: &str,
        path: &str,
        request_headers: &http::HeaderMap,
        response: Response<Body>,
        fwd: &'static str,
    ) -> Response<Body> {
        let (parts, body) = response.into_parts();
        let rules = Rules {
            statuses: &self.statuses,
            cache_authorized: self.cache_authorized,
            default_ttl: self.default_ttl,
        };
        let mut verdict = storable(
            request_headers,
            parts.status,
            &parts.headers,
            &rules,
            SystemTime::now(),
        );
        if verdict.is_ok()
            && body
                .size_hint()
                .upper()
                .is_none_or(|n| n > self.max_body_bytes as u64)
        {
            verdict = Err(NotStored::TooLarge);
        }
        let freshness = match verdict {
            Ok(freshness) => freshness,
            Err(why) => {
                let status = CacheStatus {
                    fwd: Some(fwd),
                    detail: Some(why.detail()),
                    ..Default::default()
                };
                return with_status(Response::from_parts(parts, body), &status);
            }
        };
        let bytes = match axum::body::to_bytes(body, self.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "response body failed while being cached");
                let mut failed = Response::new(Body::empty());
                *failed.status_mut() = http::StatusCode::BAD_GATEWAY;
                let status = CacheStatus {
                    fwd: Some(fwd),
                    detail: Some("body"),
                    ..Default::default()
                };
                return with_status(failed, &status);
            }
        };
        let entry = StoredResponse::new(
            parts.status,
            &parts.headers,
            bytes.clone(),
            now_ms(),
            &freshness,
            request_headers,
        );
        // Kept past freshness only as long as stale responses may be served.
        let ttl = freshness.fresh_for + self.serve_stale_for;
        let tags = tags_for(&self.routes, path);
        let stored = if tags.is_empty() {
            view.set(key, &entry, Some(ttl)).await
        } else {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            view.set_with_tags(key, &entry, Some(ttl), &tags).await
        };
        let status = CacheStatus {
            fwd: Some(fwd),
            stored: stored.is_ok(),
            detail: stored.is_err().then_some("store"),
            ..Default::default()
        };
        with_status(Response::from_parts(parts, Body::from(bytes)), &status)
    }

    /// After a successful mutation: drop the path's own entry and the tags of its routes.
    async fn invalidate(&self, view: &Cache<S>, key: &str, path: &str) {
        let _ = view.del(key).await;
        for tag in tags_for(&self.routes, path) {
            let _ = view.invalidate_tag(&tag).await;
        }
    }
}

impl<S: Store, I> ResponseCacheService<S, I> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut I {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<S, I> Service<Request<Body>> for ResponseCacheService<S, I>
where
    S: Store,
    I: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = I::Error;
    type Future = ResponseCacheFuture<I::Future, I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), I::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let method = parts.method.clone();
        let readable = method == Method::GET || method == Method::HEAD;
        let mutation = matches!(
            method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        let config = &self.config;
        let handled =
            (readable || mutation) && !config.excluded.iter().any(|p| p.matches(parts.uri.path()));
        let found = handled
            .then(|| {
                let key = cache_key(&parts.uri);
                let view = config.view(&parts).filter(|v| v.full_key(&key).is_ok())?;
                Some((key, view))
            })
            .flatten();
        let Some((key, view)) = found else {
            // Not for the cache: the inner future as it is, nothing boxed.
            return ResponseCacheFuture {
                passthrough: Some(self.inner.call(Request::from_parts(parts, body))),
                cached: None,
            };
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        let cached = Box::pin(async move {
            let path = parts.uri.path().to_owned();
            if mutation {
                let response = inner.call(Request::from_parts(parts, body)).await?;
                if response.status().is_success() {
                    config.invalidate(&view, &key, &path).await;
                }
                return Ok(response);
            }
            let request_cc = CacheControl::of(&parts.headers);
            let head = method == Method::HEAD;
            let tenant = parts
                .extensions
                .get::<nilecare_metrics::RequestTenant>()
                .cloned();
            // Request no-store: neither served from nor stored in the cache (RFC 9111 5.2.1.5);
            // no-cache: not served from it without revalidation, which this cache does not do
            // (5.2.1.4), so the request goes to the origin and its response is stored.
            let fwd = if request_cc.no_store || request_cc.no_cache {
                "request"
            } else {
                let lookup = config
                    .lookup(&view, &key, &parts.headers, &request_cc, head)
                    .await;
                if let Some(tenant) = &tenant {
                    crate::metrics::tenant_lookup(tenant, matches!(lookup, Lookup::Hit(_)));
                }
                match lookup {
                    Lookup::Hit(hit) => return Ok(hit),
                    Lookup::Forward(fwd) => fwd,
                }
            };
            if request_cc.only_if_cached {
                // Section 5.2.1.7: nothing usable stored, and the origin must not be asked.
                let mut timeout = Response::new(Body::empty());
                *timeout.status_mut() = http::StatusCode::GATEWAY_TIMEOUT;
                let status = CacheStatus {
                    detail: Some("only-if-cached"),
                    ..Default::default()
                };
                return Ok(with_status(timeout, &status));
            }
            let request_headers = parts.headers.clone();
            let response = inner.call(Request::from_parts(parts, body)).await?;
            if head || request_cc.no_store {
                // HEAD has no body to store; no-store forbids it
                let status = CacheStatus {
                    fwd: Some(fwd),
                    ..Default::default()
                };
                return Ok(with_status(response, &status));
            }
            Ok(config
                .store(&view, &key, &path, &request_headers, response, fwd)
                .await)
        });
        ResponseCacheFuture {
            passthrough: None,
            cached: Some(cached),
        }
    }
}

/// The cache path of a request: store lookups and writes, whose futures (the store trait's
/// `impl Future`) cannot be named, so this part is boxed.
type Cached<E> = Pin<Box<dyn Future<Output = std::result::Result<Response<Body>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`ResponseCacheService`]: requests the cache does not handle
    /// (excluded routes, methods other than GET/HEAD and mutations, no tenant view) run the
    /// inner future as it is; the others run the boxed cache path.
    pub struct ResponseCacheFuture<F, E> {
        #[pin]
        passthrough: Option<F>,
        cached: Option<Cached<E>>,
    }
}

impl<F, E> Future for ResponseCacheFuture<F, E>
where
    F: Future<Output = std::result::Result<Response<Body>, E>>,
{
    type Output = std::result::Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(passthrough) = this.passthrough.as_pin_mut() {
            return passthrough.poll(cx);
        }
        match this.cached.as_mut() {
            Some(cached) => cached.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<F, E> std::fmt::Debug for ResponseCacheFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCacheFuture")
            .field("cached", &self.cached.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_the_query() {
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        assert_eq!(cache_key(&uri("/p?b=2&a=1")), cache_key(&uri("/p?a=1&b=2")));
        assert_eq!(cache_key(&uri("/p?")), "http:/p");
        assert_ne!(cache_key(&uri("/p?a=1")), cache_key(&uri("/p?a=2")));
    }
}
