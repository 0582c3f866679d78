//! Sliding window: this window's count plus the previous window's, weighted by how much of it
//! still overlaps the last `w`.

use super::{AlgoState, Outcome, ceil_u64, floor_u64};
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
    let (curr, prev) = match state {
        Some(AlgoState::Window {
            index: i,
            count,
            prev,
        }) if *i == index => (*count, *prev),
        Some(AlgoState::Window {
            index: i, count, ..
        }) if i + 1 == index => (0, *count),
        _ => (0, 0),
    };
    let elapsed = now - index * w;
    let wf = w as f64;
    let estimate = prev as f64 * ((w - elapsed) as f64 / wf) + curr as f64;
    let allowed = estimate + cost as f64 <= l as f64;
    let charged = if allowed || force { cost } else { 0 };
    let remaining = floor_u64(l as f64 - estimate - charged as f64);
    let count = curr.saturating_add(charged);
    let reset_after = if count > 0 {
        (w - elapsed) + w
    } else if prev > 0 {
        w - elapsed
    } else {
        0
    };
    let retry_after = if allowed || cost > l {
        None
    } else if curr + cost <= l {
        // The previous window's weight must fall enough within this window.
        let budget = (l - curr - cost) as f64;
        let at = ceil_u64(wf - budget * wf / prev as f64);
        Some(at.saturating_sub(elapsed).max(1))
    } else {
        // Only once this window's count becomes the (decaying) previous one.
        let budget = (l - cost) as f64;
        let at = ceil_u64(wf - budget * wf / curr.max(1) as f64);
        Some((w - elapsed) + at)
    };
    Outcome {
        allowed,
        remaining,
        reset_after,
        retry_after,
        consumed: AlgoState::Window { index, count, prev },
        expires_at: (index + 2).saturating_mul(w),
    }
}
