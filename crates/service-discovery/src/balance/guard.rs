//! [`Guard`]: the picked instance, counted as in flight until dropped, recording the call's
//! latency and (when told) its outcome.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use quanta::Instant;

use super::Endpoint;
use crate::instance::ServiceInstance;

/// The instance a [`Balancer`](crate::Balancer) picked. The call counts as in flight (for
/// least-connections and peak-EWMA) until the guard is dropped; with
/// [`Strategy::PeakEwma`](crate::Strategy::PeakEwma) its latency (select to drop) feeds the
/// instance's estimate. Tell it the outcome with [`success`](Guard::success) or
/// [`failure`](Guard::failure) to drive passive outlier detection; a guard dropped without
/// either counts as neither. It derefs to the [`ServiceInstance`].
#[derive(Debug)]
pub struct Guard {
    endpoint: Arc<Endpoint>,
    started: Option<Instant>,
}

impl Guard {
    pub(crate) fn new(endpoint: Arc<Endpoint>) -> Self {
        endpoint.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let started = endpoint.timed.then(Instant::now);
        Guard { endpoint, started }
    }

    /// Calls in flight to this instance, this one included.
    pub fn in_flight(&self) -> u64 {
        self.endpoint.stats.in_flight.load(Ordering::Relaxed)
    }

    /// The call succeeded: resets the instance's consecutive failures.
    pub fn success(self) {
        self.endpoint.stats.record_success();
    }

    /// The call failed (connection refused, timeout, 5xx): counts toward ejecting the
    /// instance when outlier detection is on.
    pub fn failure(self) {
        self.endpoint.stats.record_failure();
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
        let stats = &self.endpoint.stats;
        if let Some(started) = self.started {
            let now = Instant::now();
            let since_start = now.duration_since(*clock_origin());
            stats.record_latency(
                now.duration_since(started),
                u64::try_from(since_start.as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        }
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A fixed point for the peak-EWMA timestamps.
fn clock_origin() -> &'static Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now)
}
