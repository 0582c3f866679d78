//! The five algorithms as pure functions of (quota, state, now, cost). The memory backend runs
//! them under a lock; `redis/limiter.lua` implements the same formulas in one script.

use std::collections::VecDeque;

use crate::quota::{Algorithm, Quota};

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
const GCRA_TOLERANCE: f64 = 0.5;

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
    let w = quota.window_micros().max(1);
    let l = quota.limit();
    match algorithm {
        Algorithm::FixedWindow => {
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
        Algorithm::SlidingWindow => {
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
        Algorithm::SlidingLog => {
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
        Algorithm::TokenBucket => {
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
        Algorithm::Gcra => {
            let tat = match state {
                Some(AlgoState::Gcra { tat }) => Some(*tat),
                _ => None,
            };
            gcra(&GcraParams::new(quota), tat, now, cost, force)
        }
    }
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

/// `x.floor()` as `u64`, 0 below zero: `as` truncates toward zero and saturates, which is the
/// floor for every `x >= 0` (no libm call on the hot path).
fn floor_u64(x: f64) -> u64 {
    x as u64
}

/// `x.ceil()` as `u64`, 0 below zero, saturating above.
fn ceil_u64(x: f64) -> u64 {
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
