//! Fixed window: a counter per window of `w`; the count starts over at each window boundary.

use super::{AlgoState, Outcome};
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
    let w = quota.window_micros().max(1);
    let l = quota.limit();
    let index = now / w;
    let count = match state {
        Some(AlgoState::Window {
            index: i, count, ..
        }) if *i == index => *count,
        _ => 0,
    };
    let allowed = count.saturating_add(cost) <= l;
    let used = if allowed || force {
        count.saturating_add(cost)
    } else {
        count
    };
    let window_end = (index + 1).saturating_mul(w);
    let reset_after = window_end - now;
    Outcome {
        allowed,
        remaining: l.saturating_sub(used),
        reset_after,
        retry_after: (!allowed && cost <= l).then_some(reset_after),
        consumed: AlgoState::Window {
            index,
            count: used,
            prev: 0,
        },
        expires_at: window_end,
    }
}
