//! [`AnyRegistry`]: a registry chosen at run time (memory, or Redis when configured).

use crate::config::RegistryConfig;
use crate::error::Result;
use crate::instance::ServiceInstance;
use crate::memory::MemoryRegistry;
use crate::registry::Registry;
use crate::watch::Watch;

/// One of the registries, picked at run time (e.g. Redis when `REDIS_URL` is set, else
/// memory), usable wherever a [`Registry`] is.
///
/// ```
/// use nilecare_service_discovery::{AnyRegistry, MemoryRegistry};
/// let registry: AnyRegistry = MemoryRegistry::default().into();
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyRegistry {
    /// In this process.
    Memory(MemoryRegistry),
    /// On Redis.
    #[cfg(feature = "redis")]
    Redis(crate::redis::RedisRegistry),
}

impl From<MemoryRegistry> for AnyRegistry {
    fn from(registry: MemoryRegistry) -> Self {
        AnyRegistry::Memory(registry)
    }
}

#[cfg(feature = "redis")]
impl From<crate::redis::RedisRegistry> for AnyRegistry {
    fn from(registry: crate::redis::RedisRegistry) -> Self {
        AnyRegistry::Redis(registry)
    }
}

macro_rules! dispatch {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            AnyRegistry::Memory($r) => $e,
            #[cfg(feature = "redis")]
            AnyRegistry::Redis($r) => $e,
        }
    };
}

impl Registry for AnyRegistry {
    fn config(&self) -> &RegistryConfig {
        dispatch!(self, r => r.config())
    }

    async fn put(&self, instance: &ServiceInstance) -> Result<()> {
        dispatch!(self, r => r.put(instance).await)
    }

    async fn remove(&self, service: &str, id: &str) -> Result<bool> {
        dispatch!(self, r => r.remove(service, id).await)
    }

    async fn instances(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        dispatch!(self, r => r.instances(service).await)
    }

    async fn services(&self) -> Result<Vec<String>> {
        dispatch!(self, r => r.services().await)
    }

    async fn watch(&self, service: &str) -> Result<Watch> {
        dispatch!(self, r => r.watch(service).await)
    }
}
