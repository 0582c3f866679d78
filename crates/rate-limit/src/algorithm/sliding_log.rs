//! Sliding log: one timestamp per consumed unit; exact, memory proportional to the limit.

use std::collections::VecDeque;

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
    let mut events = match state {
        Some(AlgoState::Log { events }) => events.clone(),
        _ => VecDeque::new(),
    };
    while events.front().is_some_and(|&t| t + w <= now) {
        events.pop_front();
    }
    let used = events.len() as u64;
    let allowed = used.saturating_add(cost) <= l;
    let retry_after = if allowed || cost > l {
        None
    } else {
        // The oldest `used + cost - l` units must expire first.
        let k = (used + cost - l) as usize;
        events.get(k - 1).map(|&t| (t + w - now).max(1))
    };
    if allowed || force {
        for _ in 0..cost.min(l.saturating_mul(2)) {
            events.push_back(now);
        }
    }
    let remaining = l.saturating_sub(events.len() as u64);
    let newest = events.back().copied();
    Outcome {
        allowed,
        remaining,
        reset_after: newest.map_or(0, |t| t + w - now),
        retry_after,
        consumed: AlgoState::Log { events },
        expires_at: newest.map_or(now, |t| t + w),
    }
}
