//! [`AnyLimiter`]: a limiter chosen at run time (memory, or Redis from `REDIS_URL`).

use crate::decision::Decision;
use crate::error::Result;
use crate::quota::Policy;
use crate::store::{Check, RateLimiter};

/// A limiter chosen at run time (memory, or Redis from `REDIS_URL`), so handler and layer types
/// carry no backend generic.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyLimiter {
    /// In process.
    Memory(crate::memory::MemoryLimiter),
    /// Shared through Redis, failing with an error when Redis does.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(crate::redis::RedisLimiter),
    /// Shared through Redis, with a local fallback.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Resilient(crate::resilient::ResilientLimiter),
}

impl From<crate::memory::MemoryLimiter> for AnyLimiter {
    fn from(l: crate::memory::MemoryLimiter) -> Self {
        AnyLimiter::Memory(l)
    }
}

#[cfg(feature = "redis")]
impl From<crate::redis::RedisLimiter> for AnyLimiter {
    fn from(l: crate::redis::RedisLimiter) -> Self {
        AnyLimiter::Redis(l)
    }
}

#[cfg(feature = "redis")]
impl From<crate::resilient::ResilientLimiter> for AnyLimiter {
    fn from(l: crate::resilient::ResilientLimiter) -> Self {
        AnyLimiter::Resilient(l)
    }
}

macro_rules! dispatch {
    ($self:ident, $l:ident => $e:expr) => {
        match $self {
            AnyLimiter::Memory($l) => $e,
            #[cfg(feature = "redis")]
            AnyLimiter::Redis($l) => $e,
            #[cfg(feature = "redis")]
            AnyLimiter::Resilient($l) => $e,
        }
    };
}

impl RateLimiter for AnyLimiter {
    async fn check(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        dispatch!(self, l => l.check(policy, key, cost).await)
    }

    async fn check_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        dispatch!(self, l => l.check_many(checks).await)
    }

    async fn peek(&self, policy: &Policy, key: &str) -> Result<Decision> {
        dispatch!(self, l => l.peek(policy, key).await)
    }

    async fn consume(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        dispatch!(self, l => l.consume(policy, key, cost).await)
    }

    async fn refund(&self, policy: &Policy, key: &str, cost: u32) -> Result<()> {
        dispatch!(self, l => l.refund(policy, key, cost).await)
    }

    async fn reset(&self, policy: &Policy, key: &str) -> Result<()> {
        dispatch!(self, l => l.reset(policy, key).await)
    }

    fn backend(&self) -> &'static str {
        dispatch!(self, l => l.backend())
    }
}
