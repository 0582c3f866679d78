//! Load balancing over a set of instances: [`Balancer`] with a [`Strategy`], handing out a
//! [`Guard`] that counts the call as in flight until dropped.

mod guard;
mod stats;
mod strategy;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use guard::Guard;
pub(crate) use stats::{OutlierSink, Stats};
pub use strategy::Strategy;

use crate::instance::ServiceInstance;

/// Round-robin cursors per balancer (threads are spread over them).
const STRIPES: usize = 8;

/// One cursor on its own cache line.
#[derive(Debug)]
#[repr(align(128))]
struct Cursor(AtomicUsize);

/// The calling thread's stripe, handed out in turn as threads first pick.
fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// Longest precomputed weighted schedule (entries); beyond it picks run the algorithm live.
const MAX_SCHEDULE: u64 = 1 << 16;

/// One instance and its live counters (shared with the instance's entries in later
/// balancers, so a rebuild keeps them).
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) instance: ServiceInstance,
    pub(crate) stats: Arc<Stats>,
    /// Whether guards time their calls (peak-EWMA needs it; the others skip the clock).
    pub(crate) timed: bool,
}

/// Picks an instance per call from a fixed set (rebuild it when membership changes; building
/// is cheap). Only instances with status Up are picked.
///
/// ```
/// use nilecare_service_discovery::{Balancer, ServiceInstance, Strategy};
/// let instances = (1..=3)
///     .map(|i| ServiceInstance::new("patients", format!("p-{i}"), format!("http://10.0.0.{i}:8080")))
///     .collect::<Result<Vec<_>, _>>()?;
/// let balancer = Balancer::new(Strategy::RoundRobin, instances);
/// let guard = balancer.select().expect("an instance is up");
/// assert_eq!(guard.address(), "http://10.0.0.1:8080");
/// assert_eq!(guard.in_flight(), 1); // until the guard is dropped
/// # Ok::<(), nilecare_service_discovery::Error>(())
/// ```
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    endpoints: Arc<[Arc<Endpoint>]>,
    /// Indexes of the Up endpoints (a balancer's set never changes).
    up: Box<[usize]>,
    /// Round-robin positions, one per stripe of threads, so threads picking at once do not
    /// fight over one cache line. Each stripe starts at a different offset and cycles through
    /// every instance in order.
    cursors: Box<[Cursor]>,
    /// Smooth weighted round robin's current weights (nginx's algorithm), used when the
    /// weights sum beyond [`MAX_SCHEDULE`].
    current: Mutex<Vec<i64>>,
    /// One full period of the smooth weighted sequence (as many picks as the weights sum),
    /// computed once: a pick is then one atomic increment.
    schedule: Box<[u32]>,
}

impl Balancer {
    /// A balancer over `instances`.
    pub fn new(strategy: Strategy, instances: impl IntoIterator<Item = ServiceInstance>) -> Self {
        Self::with_stats(
            strategy,
            instances
                .into_iter()
                .map(|instance| (instance, Arc::default())),
        )
    }

    /// A balancer over instances with the given counters (kept from an earlier balancer).
    pub(crate) fn with_stats(
        strategy: Strategy,
        instances: impl IntoIterator<Item = (ServiceInstance, Arc<Stats>)>,
    ) -> Self {
        let endpoints: Arc<[Arc<Endpoint>]> = instances
            .into_iter()
            .map(|(instance, stats)| {
                Arc::new(Endpoint {
                    instance,
                    stats,
                    timed: strategy == Strategy::PeakEwma,
                })
            })
            .collect();
        let up = (0..endpoints.len())
            .filter(|&i| endpoints[i].instance.is_up())
            .collect();
        let mut balancer = Balancer {
            strategy,
            current: Mutex::new(vec![0; endpoints.len()]),
            schedule: Box::default(),
            up,
            endpoints,
            cursors: (0..STRIPES).map(|_| Cursor(AtomicUsize::new(0))).collect(),
        };
        let total: u64 = balancer
            .up
            .iter()
            .map(|&i| u64::from(balancer.endpoints[i].instance.weight()))
            .sum();
        if strategy == Strategy::WeightedRoundRobin && total <= MAX_SCHEDULE {
            balancer.schedule = (0..total)
                .filter_map(|_| balancer.weighted_live())
                .map(|i| i as u32)
                .collect();
        }
        balancer
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Every instance, up or not.
    pub fn instances(&self) -> impl Iterator<Item = &ServiceInstance> {
        self.endpoints.iter().map(|e| &e.instance)
    }

    /// An instance to call, or `None` when none is up.
    pub fn select(&self) -> Option<Guard> {
        let index = match self.strategy {
            Strategy::RoundRobin => self.round_robin(),
            Strategy::WeightedRoundRobin => self.weighted(),
            Strategy::Random => self.random_up(),
            Strategy::LeastConnections => {
                self.power_of_two(|s| s.in_flight.load(Ordering::Relaxed) as f64)
            }
            Strategy::PeakEwma => self.power_of_two(|s| {
                s.latency_ns() * (s.in_flight.load(Ordering::Relaxed) + 1) as f64
            }),
        }?;
        Some(Guard::new(self.endpoints[index].clone()))
    }

    /// The calling thread's next position: its stripe's counter plus the stripe's offset (an
    /// even share of the cycle), so two threads start apart and stay apart.
    fn advance(&self) -> usize {
        let stripe = thread_stripe();
        let n = self.cursors[stripe].0.fetch_add(1, Ordering::Relaxed);
        let period = if self.schedule.is_empty() {
            self.up.len()
        } else {
            self.schedule.len()
        };
        n.wrapping_add(stripe * period / STRIPES)
    }

    fn round_robin(&self) -> Option<usize> {
        if self.up.is_empty() {
            return None;
        }
        let n = self.advance();
        Some(self.up[n % self.up.len()])
    }

    fn weighted(&self) -> Option<usize> {
        if self.schedule.is_empty() {
            return self.weighted_live();
        }
        let n = self.advance();
        Some(self.schedule[n % self.schedule.len()] as usize)
    }

    fn weighted_live(&self) -> Option<usize> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for &i in self.up.iter() {
            let weight = i64::from(self.endpoints[i].instance.weight());
            current[i] += weight;
            total += weight;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= total;
        Some(best)
    }

    /// Uniform over the up instances.
    fn random_up(&self) -> Option<usize> {
        if self.up.is_empty() {
            return None;
        }
        Some(self.up[(random_u64() % self.up.len() as u64) as usize])
    }

    /// Power of two choices: two random up instances, the one with the lower `cost`.
    fn power_of_two(&self, cost: impl Fn(&Stats) -> f64) -> Option<usize> {
        let a = self.random_up()?;
        let b = self.random_up()?;
        let load = |i: usize| cost(&self.endpoints[i].stats);
        Some(if load(b) < load(a) { b } else { a })
    }
}

/// xorshift64* on a per-thread state: no shared cache line written per pick.
pub(crate) fn random_u64() -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8) | 1,
        );
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}
