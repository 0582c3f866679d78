//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_circuit_breaker_state` | gauge | `name`, `state`: 1 for the current state, 0 otherwise |
//! | `nilecare_circuit_breaker_calls_total` | counter | `name`, `result` = `success` / `failure` / `slow` / `rejected` / `ignored` |
//! | `nilecare_circuit_breaker_transitions_total` | counter | `name`, `from`, `to` |
//! | `nilecare_circuit_breaker_shared_available` | gauge | `name`: 1 while a shared breaker uses Redis, 0 while it decides locally |

use crate::state::State;

/// The names, defined once in nilecare-metrics' catalogue (with their type, labels and help).
pub use nilecare_metrics::names::circuit_breaker::{
    CALLS_TOTAL, SHARED_AVAILABLE, STATE, TRANSITIONS_TOTAL,
};

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-circuit-breaker");
}

#[cfg(feature = "redis")]
pub(crate) fn shared_available(name: &str, available: bool) {
    metrics::gauge!(SHARED_AVAILABLE, "name" => name.to_owned()).set(if available {
        1.0
    } else {
        0.0
    });
}

const RESULTS: [&str; 5] = ["success", "failure", "slow", "rejected", "ignored"];

/// The counters of one breaker (handles cached per recorder: the closed path stays cheap).
#[derive(Debug)]
pub(crate) struct BreakerMetrics {
    name: String,
    calls: nilecare_metrics::CachedCounters<5>,
}

impl BreakerMetrics {
    pub(crate) fn new(name: &str) -> Self {
        BreakerMetrics {
            name: name.to_owned(),
            calls: nilecare_metrics::CachedCounters::new(
                CALLS_TOTAL,
                RESULTS.map(|r| vec![("name", name.to_owned()), ("result", r.to_owned())]),
            ),
        }
    }

    pub(crate) fn call(&self, result: &str) {
        if let Some(i) = RESULTS.iter().position(|r| *r == result) {
            self.calls.increment(i, 1);
        }
    }

    pub(crate) fn state_changed(&self, from: Option<State>, to: State) {
        if let Some(from) = from {
            metrics::gauge!(STATE, "name" => self.name.clone(), "state" => from.as_str()).set(0.0);
            metrics::counter!(
                TRANSITIONS_TOTAL,
                "name" => self.name.clone(),
                "from" => from.as_str(),
                "to" => to.as_str()
            )
            .increment(1);
        }
        metrics::gauge!(STATE, "name" => self.name.clone(), "state" => to.as_str()).set(1.0);
    }
}
