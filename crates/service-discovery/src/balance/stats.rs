//! [`Stats`]: what a balancer knows about one instance from its own calls (in flight, peak
//! EWMA latency, consecutive failures). Kept across balancer rebuilds by instance id.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// Latency assumed for an instance before its first measured call (as tower's PeakEwma
/// `default_rtt`): new instances are neither flooded nor starved.
pub(crate) const DEFAULT_RTT: Duration = Duration::from_millis(10);

/// How fast the latency estimate forgets a peak (time constant).
const DECAY: Duration = Duration::from_secs(10);

/// Live counters of one instance, on cache lines of their own: every pick writes `in_flight`,
/// and instances picked by different threads must not share a line (two threads picking at
/// once over 100 instances).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Stats {
    pub(crate) in_flight: AtomicU64,
    /// Peak-EWMA latency estimate in nanoseconds (f64 bits).
    ewma_ns: AtomicU64,
    /// When the estimate was last updated (the guard's clock, ns; 0 = never).
    updated_ns: AtomicU64,
    consecutive_failures: AtomicU32,
    /// Where to report an instance that reached the failure threshold (outlier detection).
    outliers: Option<OutlierSink>,
}

/// The outlier detector's inbox: the instance id, sent once each time its consecutive
/// failures reach `threshold`.
#[derive(Clone, Debug)]
pub(crate) struct OutlierSink {
    pub(crate) id: std::sync::Arc<str>,
    pub(crate) threshold: u32,
    pub(crate) tx: mpsc::UnboundedSender<std::sync::Arc<str>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new(None)
    }
}

impl Stats {
    pub(crate) fn new(outliers: Option<OutlierSink>) -> Self {
        let initial = DEFAULT_RTT.as_nanos() as f64;
        Stats {
            in_flight: AtomicU64::new(0),
            ewma_ns: AtomicU64::new(initial.to_bits()),
            updated_ns: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            outliers,
        }
    }

    /// The latency estimate (ns).
    pub(crate) fn latency_ns(&self) -> f64 {
        f64::from_bits(self.ewma_ns.load(Ordering::Relaxed))
    }

    /// Peak-EWMA: a slower call than the estimate replaces it at once (react to trouble fast),
    /// a faster one pulls it down exponentially with the time since the last update. Lock-free:
    /// two calls finishing at once may each compute from the same old estimate and the last
    /// store wins, which an estimate tolerates.
    pub(crate) fn record_latency(&self, latency: Duration, now_ns: u64) {
        let rtt = latency.as_nanos() as f64;
        let estimate = f64::from_bits(self.ewma_ns.load(Ordering::Relaxed));
        let last = self.updated_ns.swap(now_ns, Ordering::Relaxed);
        let next = if rtt > estimate || last == 0 {
            rtt
        } else {
            let elapsed = now_ns.saturating_sub(last) as f64 / 1e9;
            let w = (-elapsed / DECAY.as_secs_f64()).exp();
            estimate * w + rtt * (1.0 - w)
        };
        self.ewma_ns.store(next.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn record_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    pub(crate) fn record_failure(&self) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(sink) = &self.outliers
            && failures == sink.threshold
        {
            let _ = sink.tx.send(sink.id.clone());
        }
    }

    pub(crate) fn reset_failures(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }
}
