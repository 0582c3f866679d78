//! [`BreakerEvent`]: what a breaker reports to subscribers (and to `tracing`).

use std::time::Duration;

use crate::state::State;

/// Something that happened in a breaker. Transitions are emitted exactly once each.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerEvent {
    /// The state changed.
    Transition {
        /// The breaker.
        name: String,
        /// Before.
        from: State,
        /// After.
        to: State,
    },
    /// A call was rejected.
    Rejected {
        /// The breaker.
        name: String,
        /// The state that rejected it.
        state: State,
    },
    /// A call failed (error or timeout).
    Failure {
        /// The breaker.
        name: String,
        /// How long it ran.
        elapsed: Duration,
    },
    /// A call succeeded but took at least the slow-call duration.
    SlowCall {
        /// The breaker.
        name: String,
        /// How long it ran.
        elapsed: Duration,
    },
}
