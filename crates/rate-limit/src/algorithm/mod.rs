//! The five algorithms as pure functions of (quota, state, now, cost), one module each. The memory backend runs
//! them under a lock; `redis/limiter.lua` implements the same formulas in one script.

use std::collections::VecDeque;

use crate::quota::{Algorithm, Quota};

mod fixed_window;
mod gcra;
mod sliding_log;
mod sliding_window;
mod token_bucket;

pub(crate) use gcra::{GcraParams, GcraStep};

/// Per-key state of one algorithm.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AlgoState {
    /// Fixed and sliding windows: the window index, its count, and the previous window's count.
    Window { index: u64, count: u64, prev: u64 },
    /// Sliding log: one timestamp (µs) per consumed unit, oldest first.
    Log { events: VecDeque<u64> },
    /// Token bucket: tokens left at `last` (µs).
    Bucket { tokens: f64, last: u64 },
    /// GCRA: the theoretical arrival time (µs).
    Gcra { tat: f64 },
}

/// What an evaluation found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    pub(crate) remaining: u64,
    pub(crate) reset_after: u64,
    pub(crate) retry_after: Option<u64>,
    /// The state to store if the request is consumed (or, when denied, the rolled-over state,
    /// harmless to store).
    pub(crate) consumed: AlgoState,
    /// When the state is equivalent to a fresh key and may be dropped (µs).
    pub(crate) expires_at: u64,
}

/// Absorbs float rounding of `tat + cost * T - now` at large timestamps (half a microsecond).
pub(super) const GCRA_TOLERANCE: f64 = 0.5;

/// Evaluates a request of `cost` units at `now`. With `force`, the returned `consumed` state
/// includes the cost even when denied (penalty consumption).
pub(crate) fn evaluate(
    quota: &Quota,
    algorithm: Algorithm,
    state: Option<&AlgoState>,
    now: u64,
    cost: u64,
    force: bool,
) -> Outcome {
    match algorithm {
        Algorithm::FixedWindow => fixed_window::evaluate(quota, state, now, cost, force),
        Algorithm::SlidingWindow => sliding_window::evaluate(quota, state, now, cost, force),
        Algorithm::SlidingLog => sliding_log::evaluate(quota, state, now, cost, force),
        Algorithm::TokenBucket => token_bucket::evaluate(quota, state, now, cost, force),
        Algorithm::Gcra => gcra::evaluate(quota, state, now, cost, force),
    }
}

/// `x.floor()` as `u64`, 0 below zero: `as` truncates toward zero and saturates, which is the
/// floor for every `x >= 0` (no libm call on the hot path).
pub(super) fn floor_u64(x: f64) -> u64 {
    x as u64
}

/// `x.ceil()` as `u64`, 0 below zero, saturating above.
pub(super) fn ceil_u64(x: f64) -> u64 {
    let t = x as u64;
    if (t as f64) < x {
        t.saturating_add(1)
    } else {
        t
    }
}

/// Gives `cost` units back (reward / compensation).
pub(crate) fn refund(quota: &Quota, state: &mut AlgoState, cost: u64) {
    match state {
        AlgoState::Window { count, .. } => *count = count.saturating_sub(cost),
        AlgoState::Log { events } => {
            for _ in 0..cost {
                if events.pop_back().is_none() {
                    break;
                }
            }
        }
        AlgoState::Bucket { tokens, .. } => {
            *tokens = (*tokens + cost as f64).min(quota.burst() as f64);
        }
        AlgoState::Gcra { tat } => {
            let interval = quota.window_micros() as f64 / quota.limit() as f64;
            *tat -= cost as f64 * interval;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn floor_and_ceil_match_the_float_functions() {
        for x in [
            -3.5,
            -0.5,
            -0.0,
            0.0,
            0.25,
            1.0,
            1.5,
            2.999_999,
            1e15 + 0.5,
            1e300,
            f64::NAN,
        ] {
            assert_eq!(super::floor_u64(x), x.floor().max(0.0) as u64, "floor {x}");
            assert_eq!(super::ceil_u64(x), x.ceil().max(0.0) as u64, "ceil {x}");
        }
    }

    use std::time::Duration;

    use super::*;

    const SEC: u64 = 1_000_000;

    /// Runs `n` unit checks at `now`, storing consumed states; returns how many were allowed.
    fn burst(q: &Quota, a: Algorithm, st: &mut Option<AlgoState>, now: u64, n: u64) -> u64 {
        let mut ok = 0;
        for _ in 0..n {
            let out = evaluate(q, a, st.as_ref(), now, 1, false);
            if out.allowed {
                ok += 1;
                *st = Some(out.consumed);
            }
        }
        ok
    }

    #[test]
    fn every_algorithm_allows_exactly_the_limit_at_once() {
        let q = Quota::per_second(10).unwrap();
        for a in [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::SlidingLog,
            Algorithm::TokenBucket,
            Algorithm::Gcra,
        ] {
            let mut st = None;
            // a large, realistic timestamp: float precision must not matter
            let now = 1_700_000_000 * SEC + 123_456;
            let now = now - now % SEC + 1; // start of a window for the window algorithms
            assert_eq!(burst(&q, a, &mut st, now, 25), 10, "{a:?}");
            let denied = evaluate(&q, a, st.as_ref(), now, 1, false);
            assert!(!denied.allowed);
            assert_eq!(denied.remaining, 0, "{a:?}");
            assert!(
                denied.retry_after.is_some_and(|r| r > 0 && r <= 2 * SEC),
                "{a:?}: {denied:?}"
            );
        }
    }

    #[test]
    fn cost_above_the_limit_can_never_pass() {
        let q = Quota::per_second(5).unwrap();
        for a in [
            Algorithm::FixedWindow,
            Algorithm::SlidingLog,
            Algorithm::TokenBucket,
            Algorithm::Gcra,
        ] {
            let out = evaluate(&q, a, None, SEC, 6, false);
            assert!(!out.allowed, "{a:?}");
            assert_eq!(out.retry_after, None, "{a:?}");
        }
    }

    #[test]
    fn token_bucket_and_gcra_refill_at_the_rate() {
        let q = Quota::per_second(10).unwrap();
        for a in [Algorithm::TokenBucket, Algorithm::Gcra] {
            let mut st = None;
            assert_eq!(burst(&q, a, &mut st, SEC, 10), 10);
            // 0.35 s later: 3 tokens back
            assert_eq!(burst(&q, a, &mut st, SEC + 350_000, 10), 3, "{a:?}");
        }
    }

    #[test]
    fn burst_lowers_the_instant_capacity_not_the_rate() {
        let q = Quota::per_second(10).unwrap().with_burst(2).unwrap();
        for a in [Algorithm::TokenBucket, Algorithm::Gcra] {
            let mut st = None;
            assert_eq!(burst(&q, a, &mut st, SEC, 10), 2, "{a:?}");
            assert_eq!(burst(&q, a, &mut st, SEC + 100_000, 10), 1, "{a:?}");
        }
    }

    #[test]
    fn sliding_window_weights_the_previous_window() {
        let q = Quota::per(Duration::from_secs(10), 10).unwrap();
        let mut st = None;
        assert_eq!(
            burst(&q, Algorithm::SlidingWindow, &mut st, 10 * SEC, 10),
            10
        );
        // next window, 30% in: the previous 10 weigh 7 → 3 allowed
        assert_eq!(
            burst(&q, Algorithm::SlidingWindow, &mut st, 23 * SEC, 10),
            3
        );
        // fixed window would allow all 10 at the boundary
        let mut fx = None;
        assert_eq!(burst(&q, Algorithm::FixedWindow, &mut fx, 19 * SEC, 10), 10);
        assert_eq!(burst(&q, Algorithm::FixedWindow, &mut fx, 20 * SEC, 10), 10);
    }

    #[test]
    fn sliding_window_retry_after_is_when_it_would_pass() {
        let q = Quota::per(Duration::from_secs(10), 10).unwrap();
        let mut st = None;
        burst(&q, Algorithm::SlidingWindow, &mut st, 10 * SEC, 10);
        let denied = evaluate(
            &q,
            Algorithm::SlidingWindow,
            st.as_ref(),
            23 * SEC,
            4,
            false,
        );
        let retry = denied.retry_after.unwrap();
        let later = evaluate(
            &q,
            Algorithm::SlidingWindow,
            st.as_ref(),
            23 * SEC + retry,
            4,
            false,
        );
        assert!(later.allowed, "not allowed after retry_after {retry}");
        let before = evaluate(
            &q,
            Algorithm::SlidingWindow,
            st.as_ref(),
            23 * SEC + retry - 2,
            4,
            false,
        );
        assert!(!before.allowed, "retry_after {retry} is later than needed");
    }

    #[test]
    fn sliding_log_is_exact() {
        let q = Quota::per(Duration::from_secs(10), 3).unwrap();
        let mut st = None;
        for t in [1, 2, 3] {
            assert_eq!(burst(&q, Algorithm::SlidingLog, &mut st, t * SEC, 1), 1);
        }
        let denied = evaluate(&q, Algorithm::SlidingLog, st.as_ref(), 5 * SEC, 1, false);
        assert_eq!(denied.retry_after, Some(6 * SEC)); // the event at 1 s expires at 11 s
        assert_eq!(
            burst(&q, Algorithm::SlidingLog, &mut st, 11 * SEC - 1, 1),
            0
        );
        assert_eq!(burst(&q, Algorithm::SlidingLog, &mut st, 11 * SEC, 1), 1);
    }

    #[test]
    fn refund_gives_units_back() {
        let q = Quota::per_second(2).unwrap();
        for a in [
            Algorithm::FixedWindow,
            Algorithm::SlidingLog,
            Algorithm::TokenBucket,
            Algorithm::Gcra,
        ] {
            let mut st = None;
            burst(&q, a, &mut st, SEC, 2);
            let mut state = st.clone().unwrap();
            refund(&q, &mut state, 1);
            let out = evaluate(&q, a, Some(&state), SEC, 1, false);
            assert!(out.allowed, "{a:?}");
        }
    }
}
