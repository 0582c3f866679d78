//! [`Backoff`]: how long a failed message waits before its next attempt.

use std::time::Duration;

use crate::error::{Error, Result};

/// Exponential backoff with jitter: attempt `n` (1 = the first retry) waits
/// `min(initial × factor^(n-1), max)`, shortened at random by up to `jitter` of itself so that
/// messages failing together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
}

impl Default for Backoff {
    /// 200 ms, doubling, at most 60 s, 20 % jitter.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// `initial` doubling up to `max`, 20 % jitter.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `backoff` when `initial` is zero or above `max`.
    pub fn exponential(initial: Duration, max: Duration) -> Result<Self> {
        if initial.is_zero() || initial > max {
            return Err(Error::Invalid {
                field: "backoff",
                message: format!(
                    "initial ({initial:?}) must be above zero and at most max ({max:?})"
                ),
            });
        }
        Ok(Backoff {
            initial,
            max,
            ..Backoff::default()
        })
    }

    /// The share of each delay taken off at random (0.0-1.0, default 0.2).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The delay before retry `attempt` (1 = first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .factor
            .powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
        let full = self.initial.mul_f64(exp.min(1e9)).min(self.max);
        let cut = full.mul_f64(self.jitter * random_unit());
        full.saturating_sub(cut)
    }
}

/// A number in [0, 1) from a per-thread xorshift generator seeded by the clock.
fn random_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9E37_79B9_7F4A_7C15, |d| u64::from(d.subsec_nanos()) | 1)
                ^ 0x9E37_79B9_7F4A_7C15,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_jitter_only_shortens() {
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).unwrap();
        for _ in 0..100 {
            let first = b.delay(1);
            assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(80));
            let third = b.delay(3);
            assert!(third <= Duration::from_millis(400) && third >= Duration::from_millis(320));
            assert!(b.delay(30) <= Duration::from_secs(1));
        }
        assert!(Backoff::exponential(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Backoff::exponential(Duration::from_secs(2), Duration::from_secs(1)).is_err());
    }
}
