//! The [`RateLimiter`] trait every backend implements, and [`AnyLimiter`] to pick one at run time.

use std::future::Future;

use crate::decision::Decision;
use crate::error::Result;
use crate::quota::Policy;

/// One entry of [`RateLimiter::check_many`]: (policy, key, cost).
pub type Check<'a> = (&'a Policy, &'a str, u32);

/// A rate limiter: decides whether `cost` units may be spent on `key` under a [`Policy`].
///
/// Denied requests consume nothing. Implementations: [`MemoryLimiter`](crate::MemoryLimiter),
/// `RedisLimiter` (feature `redis`), `ResilientLimiter` (Redis with a local fallback), and
/// [`AnyLimiter`] to choose at run time.
pub trait RateLimiter: Send + Sync + 'static {
    /// Checks and, when allowed, consumes `cost` units.
    fn check(
        &self,
        policy: &Policy,
        key: &str,
        cost: u32,
    ) -> impl Future<Output = Result<Decision>> + Send;

    /// Checks every entry and consumes all of them only if **all** are allowed; otherwise
    /// nothing is consumed and every returned decision has `allowed == false` (each keeps its
    /// own `retry_after`). On Redis the entries must share one key when running on a cluster.
    fn check_many(
        &self,
        checks: &[Check<'_>],
    ) -> impl Future<Output = Result<Vec<Decision>>> + Send;

    /// The decision a 1-unit request would get now, without consuming.
    fn peek(&self, policy: &Policy, key: &str) -> impl Future<Output = Result<Decision>> + Send;

    /// Consumes `cost` units even past the limit (a penalty, e.g. for a failed login).
    fn consume(
        &self,
        policy: &Policy,
        key: &str,
        cost: u32,
    ) -> impl Future<Output = Result<Decision>> + Send;

    /// Gives `cost` units back (a reward, or undoing a request that did not happen).
    fn refund(
        &self,
        policy: &Policy,
        key: &str,
        cost: u32,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Forgets the key's state (and penalty box).
    fn reset(&self, policy: &Policy, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Backend name for logs and metrics (`memory`, `redis`, `resilient`).
    fn backend(&self) -> &'static str;
}

impl RateLimiter for crate::memory::MemoryLimiter {
    async fn check(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        self.check_now(policy, key, cost)
    }

    async fn check_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        let decisions = self.decide_many(checks)?;
        for ((policy, _, _), d) in checks.iter().zip(&decisions) {
            crate::metrics::record(policy, d);
        }
        Ok(decisions)
    }

    async fn peek(&self, policy: &Policy, key: &str) -> Result<Decision> {
        self.decide_one(policy, key, 1, crate::memory::Mode::Peek)
    }

    async fn consume(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        self.decide_one(policy, key, u64::from(cost), crate::memory::Mode::Consume)
    }

    async fn refund(&self, policy: &Policy, key: &str, cost: u32) -> Result<()> {
        self.refund_one(policy, key, u64::from(cost))
    }

    async fn reset(&self, policy: &Policy, key: &str) -> Result<()> {
        self.reset_one(policy, key)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

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
