//! [`MemoryRegistry`]: the registry of one process (tests, single-node deployments, the
//! embedded default).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::RegistryConfig;
use crate::error::Result;
use crate::instance::ServiceInstance;
use crate::registry::Registry;
use crate::watch::{Snapshot, Watch};

/// A registry in this process's memory. Instances expire after the TTL without a heartbeat,
/// swept by a background task that ends with the last handle.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> nilecare_service_discovery::Result<()> {
/// use nilecare_service_discovery::{MemoryRegistry, Registry, ServiceInstance};
/// let registry = MemoryRegistry::default();
/// let _me = registry.register(ServiceInstance::new("billing", "billing-1", "http://127.0.0.1:9001")?).await?;
/// assert_eq!(registry.services().await?, vec!["billing".to_owned()]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    config: RegistryConfig,
    services: Mutex<HashMap<String, Service>>,
    sweeper: std::sync::OnceLock<()>,
}

#[derive(Debug)]
struct Service {
    instances: BTreeMap<String, (ServiceInstance, Instant)>,
    tx: watch::Sender<Snapshot>,
}

impl Service {
    fn new() -> Self {
        Service {
            instances: BTreeMap::new(),
            tx: watch::Sender::new(Snapshot::from(Vec::new())),
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.instances.values().map(|(i, _)| i.clone()).collect()
    }

    /// Tells watchers the current set (they ignore an unchanged one).
    fn announce(&self) {
        self.tx.send_replace(self.snapshot());
    }

    /// Drops expired instances; whether any went.
    fn expire(&mut self, now: Instant) -> bool {
        let before = self.instances.len();
        self.instances.retain(|_, (_, deadline)| *deadline > now);
        self.instances.len() != before
    }
}

impl MemoryRegistry {
    /// A registry with `config`'s timing.
    pub fn new(config: RegistryConfig) -> Self {
        MemoryRegistry {
            inner: Arc::new(Inner {
                config,
                ..Inner::default()
            }),
        }
    }

    fn services(&self) -> MutexGuard<'_, HashMap<String, Service>> {
        self.inner
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the expiry sweeper once (needs a runtime, which every async method has).
    fn ensure_sweeper(&self) {
        self.inner.sweeper.get_or_init(|| {
            let weak = Arc::downgrade(&self.inner);
            let every = (self.inner.config.ttl() / 10)
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            tokio::spawn(sweep(weak, every));
        });
    }
}

/// Removes expired instances every `every` and tells their watchers, until the registry is
/// dropped.
async fn sweep(registry: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = registry.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut services = inner
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for service in services.values_mut() {
            if service.expire(now) {
                service.announce();
            }
        }
        // Forget services nobody registers in or watches.
        services.retain(|_, s| !s.instances.is_empty() || s.tx.receiver_count() > 0);
    }
}

impl Registry for MemoryRegistry {
    fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    async fn put(&self, instance: &ServiceInstance) -> Result<()> {
        instance.validate()?;
        self.ensure_sweeper();
        let deadline = Instant::now() + self.inner.config.ttl();
        let mut services = self.services();
        let service = services
            .entry(instance.service().to_owned())
            .or_insert_with(Service::new);
        let previous = service
            .instances
            .insert(instance.id().to_owned(), (instance.clone(), deadline));
        if previous.is_none_or(|(p, _)| p != *instance) {
            service.announce();
        }
        Ok(())
    }

    async fn remove(&self, service: &str, id: &str) -> Result<bool> {
        crate::instance::check_service_name(service)?;
        let mut services = self.services();
        let Some(s) = services.get_mut(service) else {
            return Ok(false);
        };
        let removed = s.instances.remove(id).is_some();
        if removed {
            s.announce();
        }
        Ok(removed)
    }

    async fn instances(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        crate::instance::check_service_name(service)?;
        let now = Instant::now();
        let services = self.services();
        Ok(services
            .get(service)
            .map(|s| {
                s.instances
                    .values()
                    .filter(|(_, deadline)| *deadline > now)
                    .map(|(i, _)| i.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn services(&self) -> Result<Vec<String>> {
        let now = Instant::now();
        let services = self.services();
        let mut names: Vec<String> = services
            .iter()
            .filter(|(_, s)| s.instances.values().any(|(_, d)| *d > now))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn watch(&self, service: &str) -> Result<Watch> {
        crate::instance::check_service_name(service)?;
        self.ensure_sweeper();
        let mut services = self.services();
        let s = services
            .entry(service.to_owned())
            .or_insert_with(Service::new);
        let now = Instant::now();
        if s.expire(now) {
            s.announce();
        }
        Ok(Watch::new(s.tx.subscribe(), None))
    }
}
