//! GCRA (generic cell rate algorithm): one theoretical arrival time per key; the formulas the
//! memory limiter's lock-free path and `redis/limiter.lua` share.

use super::{AlgoState, GCRA_TOLERANCE, Outcome, ceil_u64, floor_u64};
use crate::quota::Quota;

/// Evaluates `cost` units at `now` on `state`; with `force`, `consumed` includes the cost
/// even when denied.
pub(super) fn evaluate(
    quota: &Quota,
    state: Option<&AlgoState>,
    now: u64,
    cost: u64,
    force: bool,
) -> Outcome {
    let tat = match state {
        Some(AlgoState::Gcra { tat }) => Some(*tat),
        _ => None,
    };
    gcra(&GcraParams::new(quota), tat, now, cost, force)
}

/// GCRA's constants for one quota (µs): the emission interval T and the tolerance τ.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GcraParams {
    interval: f64,
    tolerance: f64,
    burst: u64,
}

impl GcraParams {
    pub(crate) fn new(quota: &Quota) -> Self {
        let interval = quota.window_micros().max(1) as f64 / quota.limit() as f64;
        GcraParams {
            interval,
            tolerance: quota.burst() as f64 * interval,
            burst: quota.burst(),
        }
    }
}

/// One GCRA evaluation from the stored TAT (`None` for a fresh key).
#[inline]
pub(crate) fn gcra(p: &GcraParams, tat: Option<f64>, now: u64, cost: u64, force: bool) -> Outcome {
    p.step(tat, now, cost, force).outcome(p, now, cost)
}

/// The part of a GCRA evaluation that decides and moves the TAT; the rest of the
/// [`Outcome`] follows from it ([`GcraStep::outcome`]), so the in-memory limiter computes it
/// after releasing the key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GcraStep {
    pub(crate) allowed: bool,
    /// The TAT to store (`new_tat` when consumed, else the current one).
    pub(crate) stored: f64,
    /// The TAT this request would move to.
    pub(crate) new_tat: f64,
}

impl GcraParams {
    /// Decides a request of `cost` at `now` on the stored TAT (`None` for a fresh key).
    #[inline]
    pub(crate) fn step(&self, tat: Option<f64>, now: u64, cost: u64, force: bool) -> GcraStep {
        let nowf = now as f64;
        let tat = tat.map_or(nowf, |t| t.max(nowf));
        let new_tat = tat + cost as f64 * self.interval;
        let allowed = new_tat - nowf <= self.tolerance + GCRA_TOLERANCE;
        GcraStep {
            allowed,
            stored: if allowed || force { new_tat } else { tat },
            new_tat,
        }
    }
}

impl GcraStep {
    /// The full outcome of this step at `now`.
    #[inline]
    pub(crate) fn outcome(self, p: &GcraParams, now: u64, cost: u64) -> Outcome {
        let nowf = now as f64;
        let GcraStep {
            allowed,
            stored,
            new_tat,
        } = self;
        Outcome {
            allowed,
            remaining: floor_u64((p.tolerance - (stored - nowf) + GCRA_TOLERANCE) / p.interval),
            reset_after: ceil_u64(stored - nowf),
            retry_after: (!allowed && cost <= p.burst)
                .then(|| ceil_u64(new_tat - p.tolerance - nowf).max(1)),
            consumed: AlgoState::Gcra { tat: stored },
            expires_at: ceil_u64(stored),
        }
    }
}
