//! The [`RateLimiter`] trait every backend implements (the backends live in `memory`, `redis`
//! and `resilient`; [`AnyLimiter`](crate::AnyLimiter) picks one at run time).

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
/// [`AnyLimiter`](crate::AnyLimiter) to choose at run time.
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
