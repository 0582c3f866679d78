//! [`RetryPolicy`]: how many tries, and the backoff between them.

use std::time::Duration;

use crate::error::{Error, Result};

/// Retries of idempotent requests on another instance: at most `max_attempts` tries in all,
/// waiting a random time in `[0, min(max_backoff, base_backoff × 2^(n-1))]` before try n+1
/// ("full jitter", so retrying callers spread out instead of arriving together).
///
/// ```
/// use std::time::Duration;
/// use nilecare_service_discovery::RetryPolicy;
/// let retry = RetryPolicy::default()
///     .max_attempts(4)?
///     .backoff(Duration::from_millis(20), Duration::from_millis(500))?;
/// # Ok::<(), nilecare_service_discovery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) base_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 tries, 25 ms base backoff, 1 s cap.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Tries in all, the first included (1 = no retry; at most 10).
    pub fn max_attempts(mut self, attempts: u32) -> Result<Self> {
        if !(1..=10).contains(&attempts) {
            return Err(Error::InvalidConfig {
                field: "retry.max_attempts",
                message: format!("must be 1 to 10, got {attempts}"),
            });
        }
        self.max_attempts = attempts;
        Ok(self)
    }

    /// The first backoff bound and the cap (base ≤ max).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Result<Self> {
        if base > max {
            return Err(Error::InvalidConfig {
                field: "retry.backoff",
                message: format!("base ({base:?}) must not exceed max ({max:?})"),
            });
        }
        self.base_backoff = base;
        self.max_backoff = max;
        Ok(self)
    }

    /// The wait after failed try `attempt` (1-based).
    pub(crate) fn backoff_after(&self, attempt: u32) -> Duration {
        let exp = self
            .base_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let bound = exp.min(self.max_backoff).as_nanos() as u64;
        if bound == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(crate::balance::random_u64() % (bound + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_the_cap() {
        let p = RetryPolicy::default()
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .expect("valid");
        for _ in 0..200 {
            assert!(p.backoff_after(1) <= Duration::from_millis(10));
            assert!(p.backoff_after(2) <= Duration::from_millis(20));
            assert!(p.backoff_after(9) <= Duration::from_millis(50));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.backoff_after(3)).collect();
        assert!(spread.len() > 10, "jittered, not fixed");
        assert!(RetryPolicy::default().max_attempts(0).is_err());
        assert!(
            RetryPolicy::default()
                .backoff(Duration::from_secs(2), Duration::from_secs(1))
                .is_err()
        );
    }
}
