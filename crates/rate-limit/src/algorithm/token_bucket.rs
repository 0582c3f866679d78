//! Token bucket: `burst` tokens, refilled continuously at `limit / w`.

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
    let capacity = quota.burst() as f64;
    let rate = l as f64 / w as f64; // tokens per µs
    let tokens = match state {
        Some(AlgoState::Bucket { tokens, last }) => {
            (tokens + now.saturating_sub(*last) as f64 * rate).min(capacity)
        }
        _ => capacity,
    };
    let allowed = tokens >= cost as f64;
    let after = if allowed || force {
        tokens - cost as f64
    } else {
        tokens
    };
    let reset_after = ceil_u64((capacity - after) / rate);
    Outcome {
        allowed,
        remaining: floor_u64(after),
        reset_after,
        retry_after: (!allowed && cost as f64 <= capacity)
            .then(|| ceil_u64((cost as f64 - tokens) / rate).max(1)),
        consumed: AlgoState::Bucket {
            tokens: after,
            last: now,
        },
        expires_at: now + reset_after,
    }
}
