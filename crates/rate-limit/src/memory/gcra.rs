//! GCRA without a lock: the theoretical arrival time is one atomic per key, updated by
//! compare-and-swap (the approach of `governor`), with the same formulas as every other path.

use std::sync::atomic::Ordering;

use super::slot::Slot;
use super::{Mode, blocked, commits, finish};
use crate::algorithm::{AlgoState, gcra};
use crate::decision::Decision;
use crate::quota::{Policy, Quota};

/// One GCRA check of `slot` at `now`.
#[inline]
pub(super) fn decide(policy: &Policy, slot: &Slot, now: u64, cost: u64, mode: Mode) -> Decision {
    if let Some(blocked) = blocked(policy, slot, now) {
        return blocked;
    }
    let params = &policy.inner().gcra;
    loop {
        let bits = slot.load_tat();
        let tat = (bits != 0).then(|| f64::from_bits(bits));
        let out = gcra(params, tat, now, cost, mode == Mode::Consume);
        if commits(mode, out.allowed) {
            let new = match out.consumed {
                AlgoState::Gcra { tat } => tat.to_bits(),
                _ => bits, // GCRA always evaluates to a GCRA state
            };
            if slot
                .tat
                .compare_exchange_weak(bits, new, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue; // another check moved the TAT: evaluate again
            }
        }
        return finish(policy, slot, &out, now, cost, mode);
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
