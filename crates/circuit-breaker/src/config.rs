//! [`BreakerConfig`]: thresholds, window, waits, probes; validated (errors, never panics).

use std::time::Duration;

use crate::error::{Error, Result};

/// Which calls the failure and slow-call rates are computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowType {
    /// The last `n` calls.
    CountBased(u32),
    /// The calls of the last `n` seconds (one bucket per second).
    TimeBased(u32),
}

/// How long the breaker stays open before probing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WaitStrategy {
    /// Always the same wait.
    Fixed(Duration),
    /// `initial × multiplier^(openings − 1)`, capped at `max`, for consecutive openings (reset
    /// when the breaker closes).
    Backoff {
        /// First wait.
        initial: Duration,
        /// Growth per consecutive opening (≥ 1).
        multiplier: f64,
        /// Cap.
        max: Duration,
    },
}

/// Breaker settings, built with setters and checked by [`validate`](BreakerConfig::validate)
/// (which [`CircuitBreaker::new`](crate::CircuitBreaker::new) calls). Defaults follow
/// resilience4j: 50 % failure rate, slow calls off, window of the last 100 calls, at least 100
/// calls before rates count, 60 s open, 10 probes.
///
/// ```
/// use std::time::Duration;
/// use nilecare_circuit_breaker::{BreakerConfig, WaitStrategy, WindowType};
///
/// let config = BreakerConfig::default()
///     .failure_rate_threshold(25.0)
///     .slow_calls(Duration::from_millis(500), 50.0)
///     .window(WindowType::TimeBased(30))
///     .minimum_calls(20)
///     .wait(WaitStrategy::Backoff {
///         initial: Duration::from_secs(5),
///         multiplier: 2.0,
///         max: Duration::from_secs(120),
///     })
///     .half_open_permits(3)
///     .call_timeout(Duration::from_secs(2));
/// config.validate()?;
/// # Ok::<(), nilecare_circuit_breaker::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration: Duration,
    pub(crate) window: WindowType,
    pub(crate) minimum_calls: u32,
    pub(crate) wait: WaitStrategy,
    pub(crate) jitter: f64,
    pub(crate) half_open_permits: u32,
    pub(crate) max_wait_in_half_open: Option<Duration>,
    pub(crate) call_timeout: Option<Duration>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Duration::from_secs(60),
            window: WindowType::CountBased(100),
            minimum_calls: 100,
            wait: WaitStrategy::Fixed(Duration::from_secs(60)),
            jitter: 0.0,
            half_open_permits: 10,
            max_wait_in_half_open: None,
            call_timeout: None,
        }
    }
}

impl BreakerConfig {
    /// Open when at least this percentage of calls failed (0 < p ≤ 100).
    #[must_use]
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.failure_rate_threshold = percent;
        self
    }

    /// Calls at least `duration` long are slow; open when at least `percent` of calls are slow.
    #[must_use]
    pub fn slow_calls(mut self, duration: Duration, percent: f64) -> Self {
        self.slow_call_duration = duration;
        self.slow_call_rate_threshold = percent;
        self
    }

    /// The sliding window.
    #[must_use]
    pub fn window(mut self, window: WindowType) -> Self {
        self.window = window;
        self
    }

    /// Calls needed in the window before rates are evaluated.
    #[must_use]
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }

    /// How long to stay open.
    #[must_use]
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// Random spread of each open wait, as a fraction (0.0..=0.5; default 0): instances that
    /// opened together do not probe together.
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Probe calls allowed in half-open (never more at once).
    #[must_use]
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.half_open_permits = n;
        self
    }

    /// Re-open if the probes have not all completed within this time.
    #[must_use]
    pub fn max_wait_in_half_open(mut self, wait: Duration) -> Self {
        self.max_wait_in_half_open = Some(wait);
        self
    }

    /// Calls through [`call`](crate::Breaker::call) running longer fail with
    /// `BreakerError::Timeout` (counted as failures).
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, message: String| Err(Error::InvalidConfig { field, message });
        let percent = |p: f64| p > 0.0 && p <= 100.0;
        if !percent(self.failure_rate_threshold) {
            return bad(
                "failure_rate_threshold",
                format!(
                    "must be within (0, 100], got {}",
                    self.failure_rate_threshold
                ),
            );
        }
        if !percent(self.slow_call_rate_threshold) {
            return bad(
                "slow_call_rate_threshold",
                format!(
                    "must be within (0, 100], got {}",
                    self.slow_call_rate_threshold
                ),
            );
        }
        if self.slow_call_duration.is_zero() {
            return bad("slow_call_duration", "must be greater than zero".into());
        }
        match self.window {
            WindowType::CountBased(n) if !(1..=100_000).contains(&n) => {
                return bad(
                    "window",
                    format!("count-based size must be 1..=100000, got {n}"),
                );
            }
            WindowType::TimeBased(n) if !(1..=3_600).contains(&n) => {
                return bad(
                    "window",
                    format!("time-based size must be 1..=3600 seconds, got {n}"),
                );
            }
            _ => {}
        }
        if self.minimum_calls == 0 {
            return bad("minimum_calls", "must be at least 1".into());
        }
        match self.wait {
            WaitStrategy::Fixed(d) if d.is_zero() => {
                return bad("wait", "must be greater than zero".into());
            }
            WaitStrategy::Backoff {
                initial,
                multiplier,
                max,
            } => {
                if initial.is_zero() || max < initial {
                    return bad(
                        "wait",
                        format!("backoff needs 0 < initial <= max, got {initial:?} and {max:?}"),
                    );
                }
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return bad(
                        "wait",
                        format!("backoff multiplier must be >= 1, got {multiplier}"),
                    );
                }
            }
            _ => {}
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return bad(
                "jitter",
                format!("must be within 0.0..=0.5, got {}", self.jitter),
            );
        }
        if self.half_open_permits == 0 {
            return bad("half_open_permits", "must be at least 1".into());
        }
        if self.max_wait_in_half_open.is_some_and(|d| d.is_zero()) {
            return bad("max_wait_in_half_open", "must be greater than zero".into());
        }
        if self.call_timeout.is_some_and(|d| d.is_zero()) {
            return bad("call_timeout", "must be greater than zero".into());
        }
        Ok(())
    }

    /// The calls a closed window needs before its rates count: `minimum_calls`, capped at the
    /// size of a count-based window (as resilience4j: a window of 5 with the default minimum of
    /// 100 would otherwise never open).
    pub(crate) fn effective_minimum_calls(&self) -> u32 {
        match self.window {
            WindowType::CountBased(n) => self.minimum_calls.min(n),
            WindowType::TimeBased(_) => self.minimum_calls,
        }
    }

    /// The probes a half-open round needs before it decides: `minimum_calls` capped at the
    /// permitted probes.
    pub(crate) fn half_open_minimum_calls(&self) -> u32 {
        self.minimum_calls.min(self.half_open_permits)
    }

    /// Whether slow calls are detected at all (a 100 % threshold can never be exceeded, so
    /// calls need not be timed unless a call timeout is set).
    pub(crate) fn times_calls(&self) -> bool {
        self.slow_call_rate_threshold < 100.0
    }

    /// The open wait after `openings` consecutive openings (≥ 1), before jitter.
    pub(crate) fn open_wait(&self, openings: u32) -> Duration {
        match self.wait {
            WaitStrategy::Fixed(d) => d,
            WaitStrategy::Backoff {
                initial,
                multiplier,
                max,
            } => {
                let factor =
                    multiplier.powi(i32::try_from(openings.saturating_sub(1)).unwrap_or(i32::MAX));
                let secs = (initial.as_secs_f64() * factor).min(max.as_secs_f64());
                Duration::from_secs_f64(secs)
            }
        }
    }
}
