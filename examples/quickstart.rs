//! A first NileCare service: cached patient lookups with problem+json errors, a per-client rate
//! limit, JSON logs with a request id on every line, and Prometheus metrics.
//!
//! ```text
//! cargo run --example quickstart        # PORT (default 8080), RATE_LIMIT_PER_MINUTE (60)
//! curl -i localhost:8080/patients/1     # twice: Cache-Status miss, then hit
//! curl -i localhost:8080/patients/9     # 404 problem+json with request_id
//! curl localhost:8080/metrics
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use nilecare::cache::http::ResponseCacheLayer;
use nilecare::cache::{AnyStore, Cache, MemoryStore};
use nilecare::error_handler::{
    ApiError, ProblemConfig, ProblemLayer, catch_panic_layer, not_found,
};
use nilecare::logger::{AccessLogLayer, Format, Logger, RequestIdLayer};
use nilecare::metrics::{HttpMetricsLayer, Metrics};
use nilecare::rate_limit::{MemoryLimiter, Policy, Quota, RateLimitLayer};
use tower::ServiceBuilder;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What handlers share: one `Cache` type, whatever the store behind it.
#[derive(Clone)]
struct AppState {
    names: Cache,
}

/// `?` turns a failed load into the error-handler's `ApiError` (a 404 stays a 404).
async fn patient(State(state): State<AppState>, Path(id): Path<u32>) -> Result<String, ApiError> {
    let ttl = Some(Duration::from_secs(300));
    let name: String = state
        .names
        .get_or_set_with(&format!("patient:{id}"), ttl, move || async move {
            tracing::info!(id, "loading the patient from the database"); // carries the request id
            match id {
                1 => Ok("Amina Salah".to_owned()),
                _ => Err(ApiError::not_found(format!("patient {id}"))),
            }
        })
        .await?;
    Ok(name)
}

/// The routes and the layers, outermost first: request id (a span per request), access log,
/// RED metrics, problem+json rendering; on the API routes, panics, the rate limit, the response
/// cache.
fn app(
    state: AppState,
    responses: Cache,
    metrics: &Metrics,
    per_minute: u64,
) -> Result<Router, BoxError> {
    let api = Router::new()
        .route("/patients/{id}", get(patient))
        .layer(ResponseCacheLayer::new(responses).default_ttl(Duration::from_secs(30)))
        .route_layer(
            ServiceBuilder::new().layer(catch_panic_layer()).layer(
                RateLimitLayer::new(MemoryLimiter::new())
                    .policy(Policy::new("api", Quota::per_minute(per_minute)?)?),
            ),
        )
        .with_state(state);
    Ok(api.merge(metrics.router()).fallback(not_found).layer(
        ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(AccessLogLayer::new().quiet(["/metrics"]))
            .layer(HttpMetricsLayer::new().exclude_path("/metrics"))
            .layer(ProblemLayer::new(ProblemConfig::default())),
    ))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, BoxError> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}: not a number: {v:?}").into()),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let _logs = Logger::builder()
        .service("quickstart")
        .format(Format::Json)
        .log_panics(true)
        .init()?;
    let metrics = Metrics::builder().service("quickstart").install()?; // once, in main
    let store = || MemoryStore::with_max_entries(10_000).map(AnyStore::from);
    let names: Cache = Cache::builder().name("names").build(store()?)?;
    let responses: Cache = Cache::builder().name("responses").build(store()?)?;
    let router = app(
        AppState { names },
        responses,
        &metrics,
        env_or("RATE_LIMIT_PER_MINUTE", 60)?,
    )?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", env_or("PORT", 8080u16)?)).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    // The rate limit keys by client IP: serve with the peer address.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
