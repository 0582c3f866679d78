//! [`ReconnectPolicy`]: how a lost connection is retried (exponential, constant or never), and
//! its translation to fred's policy.

use std::time::Duration;

use crate::error::{Error, Result};

/// When and how often a lost connection is re-established: exponential backoff with a cap.
///
/// The delay starts at `min_delay`, doubles after each failed attempt and never exceeds
/// `max_delay` (fred adds up to 100 ms of jitter so that instances do not reconnect in lockstep).
///
/// ```
/// use std::time::Duration;
/// use nilecare_redis::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::exponential(Duration::from_millis(20), Duration::from_secs(2))
///     .with_max_attempts(50);
/// assert_eq!(policy.max_attempts(), Some(50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    kind: PolicyKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyKind {
    Never,
    Exponential {
        min_delay: Duration,
        max_delay: Duration,
        /// 0 = unlimited
        max_attempts: u32,
    },
}

impl ReconnectPolicy {
    /// Reconnect forever with exponential backoff between `min_delay` and `max_delay`.
    pub const fn exponential(min_delay: Duration, max_delay: Duration) -> Self {
        ReconnectPolicy {
            kind: PolicyKind::Exponential {
                min_delay,
                max_delay,
                max_attempts: 0,
            },
        }
    }

    /// Never reconnect: a lost connection stays lost (commands fail until the pool is rebuilt).
    pub const fn never() -> Self {
        ReconnectPolicy {
            kind: PolicyKind::Never,
        }
    }

    /// Give up after `attempts` consecutive failed reconnects (`0` means never give up).
    #[must_use]
    pub const fn with_max_attempts(self, attempts: u32) -> Self {
        match self.kind {
            PolicyKind::Never => self,
            PolicyKind::Exponential {
                min_delay,
                max_delay,
                ..
            } => ReconnectPolicy {
                kind: PolicyKind::Exponential {
                    min_delay,
                    max_delay,
                    max_attempts: attempts,
                },
            },
        }
    }

    /// The attempt limit, `None` when unlimited or when the policy never reconnects.
    pub const fn max_attempts(&self) -> Option<u32> {
        match self.kind {
            PolicyKind::Exponential { max_attempts, .. } if max_attempts > 0 => Some(max_attempts),
            _ => None,
        }
    }

    /// `(min_delay, max_delay)`, `None` for [`ReconnectPolicy::never`].
    pub const fn delays(&self) -> Option<(Duration, Duration)> {
        match self.kind {
            PolicyKind::Never => None,
            PolicyKind::Exponential {
                min_delay,
                max_delay,
                ..
            } => Some((min_delay, max_delay)),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let PolicyKind::Exponential {
            min_delay,
            max_delay,
            ..
        } = self.kind
        {
            if min_delay < Duration::from_millis(1) {
                return Err(Error::config(
                    "reconnect.min_delay",
                    format!("must be at least 1ms, got {min_delay:?}"),
                ));
            }
            if max_delay < min_delay {
                return Err(Error::config(
                    "reconnect.max_delay",
                    format!("must be >= min_delay ({min_delay:?}), got {max_delay:?}"),
                ));
            }
            if max_delay > Duration::from_secs(3600) {
                return Err(Error::config(
                    "reconnect.max_delay",
                    format!("must be at most 1h, got {max_delay:?}"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn to_fred(self) -> Option<fred::types::config::ReconnectPolicy> {
        match self.kind {
            PolicyKind::Never => None,
            PolicyKind::Exponential {
                min_delay,
                max_delay,
                max_attempts,
            } => Some(fred::types::config::ReconnectPolicy::new_exponential(
                max_attempts,
                millis_u32(min_delay),
                millis_u32(max_delay),
                2,
            )),
        }
    }
}

impl Default for ReconnectPolicy {
    /// Exponential from 50 ms to 5 s, unlimited attempts.
    fn default() -> Self {
        ReconnectPolicy::exponential(Duration::from_millis(50), Duration::from_secs(5))
    }
}

/// Validated range (≤ 1 h) makes the conversion lossless.
fn millis_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
