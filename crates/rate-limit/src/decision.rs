//! [`Decision`]: the answer of a check.

use std::time::Duration;

/// The outcome of a check, with everything needed for `RateLimit` / `Retry-After` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether the request may proceed (always `true` in shadow mode).
    pub allowed: bool,
    /// The policy's limit (requests per window; the burst for token bucket and GCRA).
    pub limit: u64,
    /// Requests still allowed now.
    pub remaining: u64,
    /// Time until the quota is fully available again.
    pub reset_after: Duration,
    /// When denied: time until the same request would be allowed; `None` when allowed, or when
    /// it can never be (cost above the limit).
    pub retry_after: Option<Duration>,
    /// Shadow mode only: the request would have been denied.
    pub shadow_limited: bool,
    /// The decision came from the local fallback limiter because the shared backend failed.
    pub fallback: bool,
}

impl Decision {
    /// Denied for `wait` without evaluating (a penalty box, a key known to be blocked).
    pub(crate) fn blocked(limit: u64, wait: Duration) -> Decision {
        Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_after: wait,
            retry_after: Some(wait),
            shadow_limited: false,
            fallback: false,
        }
    }

    /// The metrics `result` label: `allowed`, `limited`, `shadow_limited` or `fallback`.
    pub fn result_label(&self) -> &'static str {
        if self.fallback {
            "fallback"
        } else if self.shadow_limited {
            "shadow_limited"
        } else if self.allowed {
            "allowed"
        } else {
            "limited"
        }
    }
}
