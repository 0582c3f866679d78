//! [`Resolver`]: callers' side of discovery. Each resolved service is followed through the
//! registry's watch and held locally as a [`Balancer`], so picking an instance never waits on
//! the registry; active health checks, passive outlier detection, panic mode and zone
//! preference decide which instances the balancer may pick.

mod service;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use service::{Health, ResolvedService};

use crate::balance::{Guard, Strategy};
use crate::error::{Error, Result};
use crate::health::HealthCheck;
use crate::instance::check_service_name;
use crate::outlier::OutlierDetection;
use crate::registry::Registry;

/// How a [`Resolver`] picks.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) strategy: Strategy,
    pub(crate) zone: Option<String>,
    pub(crate) health_check: Option<HealthCheck>,
    pub(crate) outliers: Option<OutlierDetection>,
    pub(crate) panic_threshold: u32,
}

/// Finds instances of services by name and balances calls over them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> nilecare_service_discovery::Result<()> {
/// use nilecare_service_discovery::{MemoryRegistry, Registry, Resolver, ServiceInstance, Strategy};
/// let registry = MemoryRegistry::default();
/// let _a = registry.register(ServiceInstance::new("patients", "a", "http://10.0.0.1:80")?).await?;
/// let _b = registry.register(ServiceInstance::new("patients", "b", "http://10.0.0.2:80")?).await?;
/// let resolver = Resolver::builder(registry).strategy(Strategy::RoundRobin).build()?;
/// let first = resolver.select("patients").await?; // follows "patients" from now on
/// let second = resolver.select("patients").await?; // answered from the local copy
/// assert_ne!(first.id(), second.id());
/// second.success(); // feeds outlier detection when enabled
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Resolver<R: Registry> {
    registry: R,
    options: Arc<Options>,
    services: RwLock<HashMap<String, ResolvedService>>,
    creating: tokio::sync::Mutex<()>,
}

/// Builds a [`Resolver`].
#[derive(Debug)]
pub struct ResolverBuilder<R: Registry> {
    registry: R,
    options: Options,
}

impl<R: Registry> ResolverBuilder<R> {
    /// The balancing strategy (default round robin).
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.options.strategy = strategy;
        self
    }

    /// The caller's zone: instances in it are preferred while at least one of them is
    /// healthy; otherwise calls spill over to every zone.
    #[must_use]
    pub fn prefer_zone(mut self, zone: impl Into<String>) -> Self {
        self.options.zone = Some(zone.into());
        self
    }

    /// Probes every instance actively.
    #[must_use]
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.options.health_check = Some(check);
        self
    }

    /// Ejects instances whose calls keep failing.
    #[must_use]
    pub fn outlier_detection(mut self, outliers: OutlierDetection) -> Self {
        self.options.outliers = Some(outliers);
        self
    }

    /// Panic mode: when fewer than `percent` of a service's registered instances are healthy,
    /// balance over all of them instead of overloading the few (Envoy's panic threshold;
    /// default 50, 0 turns it off).
    #[must_use]
    pub fn panic_threshold(mut self, percent: u32) -> Self {
        self.options.panic_threshold = percent;
        self
    }

    /// The resolver.
    pub fn build(self) -> Result<Resolver<R>> {
        if self.options.panic_threshold > 100 {
            return Err(Error::InvalidConfig {
                field: "panic_threshold",
                message: format!("must be 0 to 100, got {}", self.options.panic_threshold),
            });
        }
        Ok(Resolver {
            registry: self.registry,
            options: Arc::new(self.options),
            services: RwLock::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
        })
    }
}

impl<R: Registry> Resolver<R> {
    /// A resolver on `registry`, round robin, no health checks, panic threshold 50 %.
    pub fn builder(registry: R) -> ResolverBuilder<R> {
        ResolverBuilder {
            registry,
            options: Options {
                strategy: Strategy::default(),
                zone: None,
                health_check: None,
                outliers: None,
                panic_threshold: 50,
            },
        }
    }

    /// The registry.
    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// The followed service `name`; the first call starts following it (one registry read),
    /// later ones return the same handle.
    pub async fn service(&self, name: &str) -> Result<ResolvedService> {
        if let Some(service) = self.cached(name) {
            return Ok(service);
        }
        check_service_name(name)?;
        let _creating = self.creating.lock().await;
        if let Some(service) = self.cached(name) {
            return Ok(service);
        }
        let watch = self.registry.watch(name).await?;
        let service = ResolvedService::follow(name, watch, self.options.clone());
        self.services
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), service.clone());
        Ok(service)
    }

    fn cached(&self, name: &str) -> Option<ResolvedService> {
        self.services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// An instance of `name` to call; [`Error::NoInstance`] when none may be picked.
    pub async fn select(&self, name: &str) -> Result<Guard> {
        if let Some(guard) = self.try_select(name) {
            return Ok(guard);
        }
        self.service(name)
            .await?
            .select()
            .ok_or_else(|| Error::NoInstance {
                service: name.to_owned(),
            })
    }

    /// An instance of an already followed service, without waiting; `None` when the service is
    /// not followed yet or has no instance to pick.
    pub fn try_select(&self, name: &str) -> Option<Guard> {
        self.services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)?
            .select()
    }
}
