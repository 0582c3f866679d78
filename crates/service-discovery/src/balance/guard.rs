//! [`Guard`]: the picked instance, counted as in flight until dropped.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Endpoint;
use crate::instance::ServiceInstance;

/// The instance a [`Balancer`](crate::Balancer) picked. The call counts as in flight (for
/// least-connections) until the guard is dropped; it derefs to the [`ServiceInstance`].
#[derive(Debug)]
pub struct Guard {
    endpoint: Arc<Endpoint>,
}

impl Guard {
    pub(crate) fn new(endpoint: Arc<Endpoint>) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Guard { endpoint }
    }

    /// Calls in flight to this instance, this one included.
    pub fn in_flight(&self) -> u64 {
        self.endpoint.in_flight.load(Ordering::Relaxed)
    }
}

impl Deref for Guard {
    type Target = ServiceInstance;

    fn deref(&self) -> &ServiceInstance {
        &self.endpoint.instance
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
