//! The memory limiter's decision steps around an algorithm's evaluation: the penalty box,
//! committing the state, the reported decision and shadow mode.

use std::sync::atomic::Ordering;

use super::Mode;
use super::slot::{KeyState, Slot};
use crate::algorithm::{Outcome, evaluate};
use crate::decision::Decision;
use crate::quota::Policy;

/// Applies the penalty box (in `slot`), the algorithm (on `state`) and shadow mode.
pub(super) fn decide(
    policy: &Policy,
    slot: &Slot,
    state: &mut KeyState,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Decision {
    if let Some(blocked) = blocked(policy, slot, now) {
        return blocked;
    }
    let out = evaluate(
        &policy.quota(),
        policy.algorithm_kind(),
        state.algo.as_ref(),
        now,
        cost,
        mode == Mode::Consume,
    );
    if commits(mode, out.allowed) {
        state.algo = Some(out.consumed.clone());
        state.expires_at = out.expires_at;
    }
    finish(policy, slot, &out, now, cost, mode)
}

/// Whether a check in `mode` stores the evaluated state.
#[inline]
pub(super) fn commits(mode: Mode, allowed: bool) -> bool {
    match mode {
        Mode::Check => allowed,
        Mode::Consume => true,
        Mode::Peek => false,
    }
}

/// The decision while the key is in the penalty box, if it is.
#[inline]
pub(super) fn blocked(policy: &Policy, slot: &Slot, now: u64) -> Option<Decision> {
    penalty_until(slot, now).map(|until| blocked_until(policy, until, now))
}

/// When the key's penalty box ends, if it is in one at `now`.
#[inline]
pub(super) fn penalty_until(slot: &Slot, now: u64) -> Option<u64> {
    let until = slot.blocked_until.load(Ordering::Relaxed);
    (until > now).then_some(until)
}

/// The decision of a key in the penalty box until `until` (> `now`).
#[inline]
pub(super) fn blocked_until(policy: &Policy, until: u64, now: u64) -> Decision {
    let wait = std::time::Duration::from_micros(until - now);
    shadowed(policy, Decision::blocked(policy.reported_limit(), wait))
}

/// The decision of an evaluation: sets the penalty box on a denial, applies shadow mode.
#[inline]
pub(super) fn finish(
    policy: &Policy,
    slot: &Slot,
    out: &Outcome,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Decision {
    penalize(policy, slot, out.allowed, now, mode);
    report(policy, out, cost, mode)
}

/// Puts the key in the policy's penalty box when a check was denied.
#[inline]
pub(super) fn penalize(policy: &Policy, slot: &Slot, allowed: bool, now: u64, mode: Mode) {
    if !allowed && mode == Mode::Check && !policy.is_shadow() {
        if let Some(block) = policy.block_duration() {
            let until = now.saturating_add(u64::try_from(block.as_micros()).unwrap_or(u64::MAX));
            slot.blocked_until.store(until, Ordering::Relaxed);
        }
    }
}

/// The decision reported for an evaluation, with shadow mode applied.
#[inline]
pub(super) fn report(policy: &Policy, out: &Outcome, cost: u64, mode: Mode) -> Decision {
    let limit = policy.reported_limit();
    // A peek reports what is left now, not after the hypothetical unit it evaluated.
    let remaining = if mode == Mode::Peek && out.allowed {
        out.remaining.saturating_add(cost).min(limit)
    } else {
        out.remaining
    };
    shadowed(
        policy,
        Decision {
            allowed: out.allowed,
            limit,
            remaining,
            reset_after: std::time::Duration::from_micros(out.reset_after),
            retry_after: out.retry_after.map(std::time::Duration::from_micros),
            shadow_limited: false,
            fallback: false,
        },
    )
}

/// Shadow mode: a denial is reported, not enforced.
#[inline]
fn shadowed(policy: &Policy, mut decision: Decision) -> Decision {
    if policy.is_shadow() && !decision.allowed {
        decision.allowed = true;
        decision.shadow_limited = true;
        decision.retry_after = None;
    }
    decision
}
