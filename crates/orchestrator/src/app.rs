//! The router and its middleware, in the documented order (docs/architecture.md): tracing →
//! request id → access log → metrics → error rendering → panic catching → rate limit →
//! authentication (optional token; its clinic becomes the tenant) → routes, where mutations need
//! the `clinician` role.
//! Versioning runs before routing; the response cache sits right around the API routes.
//!
//! Error rendering (`ProblemLayer`) sits inside request id and tracing, so every problem+json
//! (404s, 429s, a panic's 500) carries `instance`, `request_id` and `trace_id`, and outside the
//! panic catcher and the rate limiter, whose answers it renders.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::Method;
use nilecare::auth::{AuthLayer, RequireLayer};
use nilecare::cache::http::{ResponseCacheLayer, stats_handler};
use nilecare::error_handler::{ProblemConfig, ProblemLayer, catch_panic_layer, not_found};
use nilecare::logger::{AccessLogLayer, RequestIdLayer};
use nilecare::metrics::{HttpMetricsLayer, Metrics, TenantFrom, TenantLabels};
use nilecare::rate_limit::{Policy, Quota, RateLimitLayer};
use nilecare::tracing::ServerTraceLayer;
use tower::ServiceBuilder;

use super::{AppState, routes};

/// The API routes of one version prefix.
fn api() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/patients",
            get(routes::list_patients).post(routes::create_patient),
        )
        .route(
            "/patients/{id}",
            get(routes::get_patient)
                .put(routes::update_patient)
                .delete(routes::delete_patient),
        )
        .route("/appointments", get(routes::appointments))
        .route("/billing/invoices", get(routes::invoices))
        .route("/registrations", post(super::registration::register))
        .route(
            "/registrations/{id}",
            get(super::registration::registration),
        )
        .route_layer(RequireLayer::role("clinician").for_methods(MUTATIONS))
}

/// Operating the dead-letter streams (`dead_letters`): every method needs the `operator` role;
/// mounted outside the response cache.
fn dead_letter_routes() -> Router<Arc<AppState>> {
    let base = "/api/v1/admin/messaging/{topic}/{group}/dead-letters";
    Router::new()
        .route(base, get(super::dead_letters::list))
        .route(
            &format!("{base}/{{entry}}"),
            axum::routing::delete(super::dead_letters::purge),
        )
        .route(
            &format!("{base}/{{entry}}/replay"),
            post(super::dead_letters::replay),
        )
        .route_layer(RequireLayer::role(super::dead_letters::ROLE))
}

/// The methods that change data: they need a token with the `clinician` role.
pub const MUTATIONS: [Method; 4] = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// The whole service.
pub fn router(
    state: Arc<AppState>,
    metrics: &Metrics,
    rate_limit_per_minute: u32,
    cache_ttl: Duration,
    graphql: &super::graphql::Options,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let mut cache_layer = ResponseCacheLayer::new(state.cache.clone())
        .default_ttl(cache_ttl)
        .tenant_header(http::HeaderName::from_static("x-clinic-id"))
        // Authenticated reads are cached too: in the caller's clinic view (the clinic claim
        // replaces any X-Clinic-Id the client sent), and the handlers answer the same to every
        // caller of a clinic.
        .cache_authorized(true);
    for version in ["v1", "v2"] {
        cache_layer = cache_layer
            .tag_route(
                &format!("/api/{version}/patients/{{id}}"),
                &["patient:{id}", "patients"],
            )?
            .tag_route(&format!("/api/{version}/patients"), &["patients"])?;
    }
    let policy = Policy::new("api", Quota::per_minute(u64::from(rate_limit_per_minute))?)?;
    // Operational answers are never cached: the stats route is mounted outside the cache layer,
    // excluded from it by name as well, and answers `Cache-Control: no-store`.
    let mut cache_layer = cache_layer.exclude_route("/api/v1/cache/stats")?;
    // A registration's state changes while its saga runs: never answered from the cache.
    for version in ["v1", "v2"] {
        cache_layer = cache_layer.exclude_route(&format!("/api/{version}/registrations/{{id}}"))?;
    }
    let api = Router::new()
        .nest("/api/v1", api())
        .nest("/api/v2", api())
        .layer(cache_layer)
        .route("/api/v1/cache/stats", stats_handler(state.cache.clone()))
        // Not cached: the benchmark's measure of the middleware stack alone.
        .route("/api/v1/hello", get(routes::hello))
        .route("/api/v1/auth/logout", post(super::auth::logout))
        .merge(dead_letter_routes())
        .merge(graphql_routes(&state, cache_ttl, graphql)?);
    let api = with_api_layers(
        api,
        RateLimitLayer::new(state.limiter.clone()).policy(policy),
        state.auth.verifier.clone().map(AuthLayer::optional),
    );
    let mut operations = Router::new();
    if state.auth.dev.is_some() {
        operations = operations
            .route("/.well-known/jwks.json", get(super::auth::jwks))
            .route("/dev/token", post(super::auth::mint));
    }
    let operations = operations
        .route("/health", get(routes::health))
        .route("/ready", get(routes::ready))
        .route(
            "/demo/{service}/failure",
            axum::routing::post(routes::demo_failure),
        )
        .merge(metrics.router())
        // Not cached, not rate limited: computed from the recorder on each call.
        .merge(metrics.summary_router("/api/v1/metrics/summary", 10));
    let tenants = state.tenants.clone();
    Ok(with_service_layers(
        api.merge(operations).fallback(not_found).with_state(state),
        &tenants,
    ))
}

/// The layers of the API routes, outermost first: panic catching, rate limiting (floods are
/// turned away before any signature is checked), token verification (`None`: no issuer, so no
/// caller is authenticated), then the clinic claim as the tenant.
///
/// Each stack goes on with one `layer` call: axum boxes a route's service once per call and
/// clones the boxes on every request, so one call per stack keeps that to one box.
pub fn with_api_layers<S>(
    api: Router<S>,
    rate_limit: RateLimitLayer,
    auth: Option<AuthLayer>,
) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    api.route_layer(
        ServiceBuilder::new()
            .layer(catch_panic_layer())
            .layer(rate_limit)
            .option_layer(auth)
            .map_request(super::auth::tenant_from_claims::<axum::body::Body>),
    )
}

/// The layers around every route, outermost first: tracing (so the request is one span and its
/// log lines carry that span's trace id), request id (recorded on that span), access log, RED
/// metrics (with the clinic as a bounded `tenant` label: `X-Clinic-Id`, refined by the
/// authenticated clinic claim), problem+json rendering.
pub fn with_service_layers(router: Router, tenants: &TenantLabels) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(ServerTraceLayer::new().response_traceparent(true))
            .layer(RequestIdLayer::new())
            .layer(AccessLogLayer::new().quiet(["/health", "/ready", "/metrics"]))
            .layer(
                HttpMetricsLayer::new()
                    .exclude_path("/metrics")
                    .exclude_path("/health")
                    .tenant(
                        tenants.clone(),
                        TenantFrom::Header(http::HeaderName::from_static("x-clinic-id")),
                    ),
            )
            .layer(ProblemLayer::new(ProblemConfig::default())),
    )
}

/// `POST /graphql`, `GET /graphql` (queries only) and, in development, the GraphiQL page at
/// `GET /graphiql`; the body is limited to `graphql::MAX_DOCUMENT_BYTES`.
fn graphql_routes(
    state: &Arc<AppState>,
    cache_ttl: Duration,
    options: &super::graphql::Options,
) -> Result<Router<Arc<AppState>>, Box<dyn std::error::Error + Send + Sync>> {
    use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
    use nilecare::auth::Claims;
    use nilecare::graphql::http::GraphQLRequest;
    let development = state.auth.dev.is_some();
    let schema = super::graphql::schema(development, state, options)?;
    let handler = move |State(state): State<Arc<AppState>>,
                        peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
                        method: http::Method,
                        axum::extract::RawQuery(query): axum::extract::RawQuery,
                        headers: http::HeaderMap,
                        claims: Option<Claims>,
                        body: bytes::Bytes| {
        let schema = schema.clone();
        async move {
            match GraphQLRequest::parse(&method, &headers, query.as_deref(), &body) {
                Ok(request) => {
                    let peer = peer.map(|axum::Extension(ConnectInfo(addr))| addr);
                    super::graphql::serve(state, &schema, headers, claims, peer, request, cache_ttl)
                        .await
                }
                Err(rejection) => rejection.into_response(),
            }
        }
    };
    let mut routes = Router::new().route(
        "/graphql",
        get(handler.clone())
            .post(handler)
            .layer(DefaultBodyLimit::max(super::graphql::MAX_DOCUMENT_BYTES)),
    );
    if development {
        routes = routes.route("/graphiql", get(super::graphql::graphiql));
    }
    Ok(routes)
}
