//! GCRA without a lock: the theoretical arrival time is one atomic per key, updated by
//! compare-and-swap (the approach of `governor`), with the same formulas as every other path.

use std::sync::atomic::Ordering;

use super::Mode;
use super::decide::{blocked_until, commits, penalize, penalty_until, report};
use super::slot::Slot;
use crate::algorithm::GcraStep;
use crate::decision::Decision;
use crate::quota::{Policy, Quota};

/// Decides a GCRA check of `slot` at `now` and moves its TAT: the part that needs the key.
/// `Err(until)` while the key is in the penalty box.
#[inline]
pub(super) fn step(
    policy: &Policy,
    slot: &Slot,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<GcraStep, u64> {
    if let Some(until) = penalty_until(slot, now) {
        return Err(until);
    }
    let params = &policy.inner().gcra;
    loop {
        let bits = slot.load_tat();
        let tat = (bits != 0).then(|| f64::from_bits(bits));
        let step = params.step(tat, now, cost, mode == Mode::Consume);
        if commits(mode, step.allowed)
            && slot
                .tat
                .compare_exchange_weak(
                    bits,
                    step.stored.to_bits(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            continue; // another check moved the TAT: evaluate again
        }
        penalize(policy, slot, step.allowed, now, mode);
        return Ok(step);
    }
}

/// The decision of a [`step`] (built once the key is released).
#[inline]
pub(super) fn decision(
    policy: &Policy,
    step: Result<GcraStep, u64>,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Decision {
    match step {
        Ok(step) => report(
            policy,
            &step.outcome(&policy.inner().gcra, now, cost),
            cost,
            mode,
        ),
        Err(until) => blocked_until(policy, until, now),
    }
}

/// Moves the TAT back by `cost` emission intervals (never below zero: a fresh key).
pub(super) fn refund(quota: &Quota, slot: &Slot, cost: u64) {
    let interval = quota.window_micros() as f64 / quota.limit() as f64;
    loop {
        let bits = slot.load_tat();
        if bits == 0 {
            return;
        }
        let tat = (f64::from_bits(bits) - cost as f64 * interval).max(0.0);
        if slot
            .tat
            .compare_exchange_weak(bits, tat.to_bits(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}
