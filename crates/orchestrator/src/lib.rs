//! The NileCare orchestrator: every nilecare crate in one axum service. A library, so the
//! example's `main` (`cargo run --example orchestrator` from the workspace root) and the
//! end-to-end tests in `tests/` share it.
//!
//! | module | concern |
//! |---|---|
//! | `config` | startup settings, validated all at once |
//! | `backends` | memory or Redis for cache, rate limit, breakers, registry |
//! | `downstream` | the demo patients / appointments / billing services |
//! | `upstream` | calling them by name: discovery, balancing, retries, breakers, trace context |
//! | `versioning` | nilecare-versioning: URL > `X-API-Version` > `Accept` > v1; v2 → v1 patient transforms |
//! | `routes` | the handlers, `/health`, `/ready` |
//! | `auth` | token verification, the development issuer, revocation |
//! | `graphql` | the GraphQL gateway over the demo services (DataLoader batching, limits) |
//! | `events` | `patient.updated` events from every instance to every instance's cache |
//! | `registration` | patient registration as a saga across the demo services (nilecare-messaging) |
//! | `app` | the router and the middleware order |

pub mod app;
pub mod auth;
pub mod backends;
pub mod config;
pub mod dead_letters;
pub mod downstream;
pub mod events;
pub mod graphql;
pub mod registration;
pub mod routes;
pub mod upstream;
pub mod versioning;

use std::net::SocketAddr;
use std::sync::Arc;

use nilecare::cache::Cache;
use nilecare::metrics::Metrics;
use nilecare::rate_limit::AnyLimiter;
use nilecare::service_discovery::{
    AnyRegistry, OutlierDetection, Registration, Registry, Resolver, RetryPolicy, ServiceClient,
    ServiceInstance, Strategy,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Settings;
pub use downstream::Demo;
use upstream::Upstream;

/// What the handlers share.
pub struct AppState {
    /// The response cache.
    pub cache: Cache,
    /// The rate limiter.
    pub limiter: AnyLimiter,
    /// The service registry.
    pub registry: AnyRegistry,
    /// Downstream calls.
    pub upstream: Upstream,
    /// The Redis pool, when configured.
    pub redis: Option<nilecare::redis::fred::clients::Pool>,
    /// The demo services started by this process (their error-injection switches).
    pub demo: Vec<downstream::DemoService>,
    /// Token verification and revocation.
    pub auth: auth::Auth,
    /// The bounded set of clinics with their own metrics label.
    pub tenants: nilecare::metrics::TenantLabels,
    /// Patient registrations (a saga; on Redis when configured).
    pub registrations:
        nilecare::messaging::saga::SagaRunner<nilecare::messaging::saga::AnySagaStore>,
    /// Publishes events (`patient.updated`) to every instance.
    pub events: nilecare::messaging::Publisher<nilecare::messaging::AnyBroker>,
    /// Patient events this instance applied to its cache.
    pub events_applied: std::sync::atomic::AtomicU64,
    /// This instance's name (its saga owner and event group).
    pub instance: String,
}

/// A running orchestrator.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The demo services it started (when `DEMO_SERVICES` is on).
    pub demo: Option<Demo>,
    /// The shared state.
    pub state: Arc<AppState>,
    registration: Registration<AnyRegistry>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    recovery: JoinHandle<()>,
    patient_events: nilecare::messaging::ConsumerHandle,
    instance: String,
    grace: std::time::Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Starts the orchestrator: backends, demo services, its own registration, the HTTP server.
pub async fn start(settings: Settings, metrics: &Metrics) -> Result<Running, BoxError> {
    let backends = backends::connect_all(&settings).await?;
    let demo = if settings.demo_services {
        Some(downstream::spawn(&backends.registry, settings.demo_latency).await?)
    } else {
        None
    };
    let resolver = Resolver::builder(backends.registry.clone())
        .strategy(Strategy::PeakEwma)
        .outlier_detection(OutlierDetection::default())
        .build()?;
    let client = ServiceClient::builder(Arc::new(resolver))
        .retry(RetryPolicy::default().max_attempts(settings.downstream_attempts)?)
        .per_try_timeout(settings.downstream_timeout)
        .build();
    let auth = auth::build(&settings, backends.redis.as_ref(), &backends.cache).await?;
    let instance_name = registration::instance_name();
    let registrations = registration::runner(backends.redis.as_ref(), &instance_name)?;
    let events = nilecare::messaging::Publisher::new(events::broker(backends.redis.as_ref()));
    let state = Arc::new(AppState {
        cache: backends.cache,
        limiter: backends.limiter,
        registry: backends.registry.clone(),
        upstream: Upstream::new(client, Arc::new(backends.breakers)),
        redis: backends.redis,
        demo: demo
            .as_ref()
            .map(|d| d.services.clone())
            .unwrap_or_default(),
        auth,
        tenants: nilecare::metrics::TenantLabels::new(settings.metrics_max_tenants),
        registrations,
        events,
        events_applied: std::sync::atomic::AtomicU64::new(0),
        instance: instance_name.clone(),
    });
    let patient_events = events::start(state.clone(), &instance_name).await?;
    let recovery = registration::spawn_recovery(state.clone());
    let app = app::router(
        state.clone(),
        metrics,
        settings.rate_limit_per_minute,
        settings.cache_ttl,
        &graphql::Options {
            complexity_per_minute: settings.graphql_complexity_per_minute,
            persisted_queries: settings.graphql_persisted_queries == "automatic",
            max_operations: 50,
        },
    )?;
    // Versioning rewrites the path, so it runs before the router.
    let service = tower::ServiceBuilder::new()
        .layer(versioning::layer()?)
        .service(app);
    let listener = tokio::net::TcpListener::bind((settings.host.as_str(), settings.port)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(service),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    let instance = ServiceInstance::new(
        "orchestrator",
        format!("orchestrator-{}", addr.port()),
        format!("http://{addr}"),
    )?
    .with_version(env!("CARGO_PKG_VERSION"));
    let registration = backends.registry.register(instance).await?;
    tracing::info!(%addr, redis = settings.redis_url.is_some(), "orchestrator listening");
    Ok(Running {
        addr,
        demo,
        state,
        registration,
        stop,
        server,
        recovery,
        patient_events,
        instance: instance_name,
        grace: settings.shutdown_grace,
    })
}

impl Running {
    /// Graceful shutdown: deregister (callers stop picking this instance), stop accepting,
    /// let in-flight requests finish within the grace period, deregister the demo services.
    pub async fn shutdown(self) {
        if let Err(error) = self.registration.deregister().await {
            tracing::warn!(%error, "deregistering the orchestrator failed");
        }
        let _ = self.stop.send(());
        self.recovery.abort();
        events::stop(&self.state, &self.instance, self.patient_events).await;
        match tokio::time::timeout(self.grace, self.server).await {
            Ok(_) => tracing::info!("all in-flight requests finished"),
            Err(_) => {
                tracing::warn!(grace = ?self.grace, "in-flight requests cut off after the grace period")
            }
        }
        if let Some(demo) = self.demo {
            demo.deregister().await;
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("cache", &self.cache)
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}
