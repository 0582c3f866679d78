//! [`CallGate`]: the client's circuit-breaker integration point.

use crate::instance::ServiceInstance;

/// Decides per call whether an instance may be called and learns each call's outcome: plug a
/// circuit breaker (per instance or per service) into the [`ServiceClient`](crate::ServiceClient).
/// A rejected instance is skipped and the client tries another.
pub trait CallGate: Send + Sync + 'static {
    /// A permit to call `instance`, or `None` when the gate is closed for it.
    fn admit(&self, instance: &ServiceInstance) -> Option<Box<dyn CallPermit>>;
}

/// One admitted call; report how it went.
pub trait CallPermit: Send {
    /// The call succeeded.
    fn success(self: Box<Self>);
    /// The call failed.
    fn failure(self: Box<Self>);
}

#[cfg(feature = "circuit-breaker")]
mod breaker {
    use nilecare_circuit_breaker::{BreakerRegistry, OwnedPermit};

    use super::{CallGate, CallPermit};
    use crate::instance::ServiceInstance;

    /// A nilecare-circuit-breaker [`BreakerRegistry`] as a gate: one breaker per instance,
    /// named `<service>/<id>` (configure names with `BreakerRegistry::with_config`), so a
    /// failing instance is skipped while its siblings keep serving.
    impl CallGate for BreakerRegistry {
        fn admit(&self, instance: &ServiceInstance) -> Option<Box<dyn CallPermit>> {
            let breaker = self
                .get(&format!("{}/{}", instance.service(), instance.id()))
                .ok()?;
            let permit = breaker.try_acquire_owned().ok()?;
            Some(Box::new(permit))
        }
    }

    impl CallPermit for OwnedPermit {
        fn success(self: Box<Self>) {
            OwnedPermit::success(*self);
        }

        fn failure(self: Box<Self>) {
            OwnedPermit::failure(*self);
        }
    }
}
