//! The balancing strategies.

/// How a [`Balancer`](crate::Balancer) picks an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Each up instance in turn.
    #[default]
    RoundRobin,
    /// In proportion to the weights, spread evenly (nginx's smooth weighted round robin:
    /// weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`).
    WeightedRoundRobin,
    /// Uniformly at random.
    Random,
    /// Power of two choices over the calls in flight: two random instances, the less loaded.
    LeastConnections,
    /// Power of two choices over a peak-EWMA latency estimate times the calls in flight
    /// (Finagle's and tower's peak-EWMA): slow instances get less traffic as soon as they slow.
    /// Latency is measured by the [`Guard`](crate::Guard), from select to drop.
    PeakEwma,
}
