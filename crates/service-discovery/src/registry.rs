//! The [`Registry`] trait every backend implements, and what it provides on top:
//! [`register`](Registry::register) with background heartbeats and
//! [`healthy_instances`](Registry::healthy_instances).

use std::future::Future;

use crate::config::RegistryConfig;
use crate::error::Result;
use crate::instance::ServiceInstance;
use crate::registration::Registration;
use crate::watch::Watch;

/// Where instances announce themselves and callers find them. Implemented by
/// [`MemoryRegistry`](crate::MemoryRegistry) and `RedisRegistry` (feature `redis`); handles are
/// cheap to clone and share one backend.
pub trait Registry: Clone + Send + Sync + 'static {
    /// The registry's timing.
    fn config(&self) -> &RegistryConfig;

    /// Writes `instance` (insert, or replace the one with its service and id), alive for the
    /// configured TTL from now, and tells watchers when it is new or changed. A heartbeat is
    /// a `put` of the unchanged instance.
    fn put(&self, instance: &ServiceInstance) -> impl Future<Output = Result<()>> + Send;

    /// Removes an instance now; `true` when it was registered.
    fn remove(&self, service: &str, id: &str) -> impl Future<Output = Result<bool>> + Send;

    /// The live instances of `service` (any status), ordered by id.
    fn instances(&self, service: &str)
    -> impl Future<Output = Result<Vec<ServiceInstance>>> + Send;

    /// The services with at least one live instance, sorted.
    fn services(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Follows `service`: the current instances and every change from now on.
    fn watch(&self, service: &str) -> impl Future<Output = Result<Watch>> + Send;

    /// The instances of `service` with status Up.
    fn healthy_instances(
        &self,
        service: &str,
    ) -> impl Future<Output = Result<Vec<ServiceInstance>>> + Send {
        async move {
            let mut all = self.instances(service).await?;
            all.retain(ServiceInstance::is_up);
            Ok(all)
        }
    }

    /// Registers `instance` and keeps it alive with heartbeats in the background until the
    /// returned [`Registration`] is deregistered, drained or dropped (dropping stops the
    /// heartbeats, so the TTL removes the instance, as for a crashed process).
    fn register(
        &self,
        instance: ServiceInstance,
    ) -> impl Future<Output = Result<Registration<Self>>> + Send {
        async move {
            instance.validate()?;
            self.put(&instance).await?;
            Ok(Registration::start(self.clone(), instance))
        }
    }
}
