//! [`Registration`]: a registered instance kept alive by background heartbeats.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::Result;
use crate::instance::{ServiceInstance, Status};
use crate::registry::Registry;

/// A registered instance. While it lives, a background task renews the registration every
/// heartbeat interval (and so re-creates it if the registry lost it, e.g. after a Redis
/// restart). [`deregister`](Registration::deregister) removes it at once,
/// [`drain`](Registration::drain) first marks it Draining so callers stop picking it; dropping
/// it only stops the heartbeats, and the TTL removes the instance, as for a crashed process.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> nilecare_service_discovery::Result<()> {
/// use std::time::Duration;
/// use nilecare_service_discovery::{MemoryRegistry, Registry, ServiceInstance};
/// let registry = MemoryRegistry::default();
/// let me = registry
///     .register(ServiceInstance::new("patients", "patients-1", "http://10.0.0.7:8080")?)
///     .await?;
/// assert_eq!(registry.healthy_instances("patients").await?.len(), 1);
/// me.drain(Duration::from_millis(10)).await?; // Draining, wait, then removed
/// assert!(registry.instances("patients").await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Registration<R: Registry> {
    registry: R,
    instance: ServiceInstance,
    heartbeat: JoinHandle<()>,
}

impl<R: Registry> Registration<R> {
    pub(crate) fn start(registry: R, instance: ServiceInstance) -> Self {
        let heartbeat = spawn_heartbeat(registry.clone(), instance.clone());
        Registration {
            registry,
            instance,
            heartbeat,
        }
    }

    /// The registered instance as last written.
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// Changes the status (e.g. Down while a dependency is unavailable) and writes it now;
    /// heartbeats carry the new status from then on.
    pub async fn set_status(&mut self, status: Status) -> Result<()> {
        self.update(self.instance.clone().with_status(status)).await
    }

    /// Replaces the description (same service and id; weight, metadata, tags, ...) and
    /// writes it now.
    pub async fn update(&mut self, instance: ServiceInstance) -> Result<()> {
        instance.validate()?;
        if instance.service() != self.instance.service() || instance.id() != self.instance.id() {
            return Err(crate::Error::InvalidInstance {
                field: "id",
                message: format!(
                    "an update must keep service and id ({}/{}), got {}/{}",
                    self.instance.service(),
                    self.instance.id(),
                    instance.service(),
                    instance.id()
                ),
            });
        }
        self.heartbeat.abort();
        self.instance = instance;
        let written = self.registry.put(&self.instance).await;
        self.heartbeat = spawn_heartbeat(self.registry.clone(), self.instance.clone());
        written
    }

    /// Removes the instance from the registry now.
    pub async fn deregister(self) -> Result<()> {
        self.heartbeat.abort();
        self.registry
            .remove(self.instance.service(), self.instance.id())
            .await
            .map(|_| ())
    }

    /// Graceful exit: marks the instance Draining (balancers stop picking it, calls in flight
    /// finish), waits `grace`, then removes it.
    pub async fn drain(mut self, grace: Duration) -> Result<()> {
        self.set_status(Status::Draining).await?;
        tokio::time::sleep(grace).await;
        self.deregister().await
    }
}

impl<R: Registry> Drop for Registration<R> {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Renews `instance` every heartbeat interval; a failed renewal is retried sooner (a quarter
/// interval) so one lost beat does not cost the registration.
fn spawn_heartbeat<R: Registry>(registry: R, instance: ServiceInstance) -> JoinHandle<()> {
    tokio::spawn(async move {
        let interval = registry.config().heartbeat_interval();
        let mut wait = interval;
        loop {
            tokio::time::sleep(wait).await;
            wait = match registry.put(&instance).await {
                Ok(()) => interval,
                Err(error) => {
                    tracing::warn!(
                        target: "nilecare_service_discovery",
                        service = instance.service(),
                        id = instance.id(),
                        %error,
                        "heartbeat failed; retrying"
                    );
                    interval / 4
                }
            };
        }
    })
}
