//! [`ResilientLimiter`]: Redis first; when Redis fails or is slow, a local decision instead of
//! failing every request; and known-blocked keys rejected locally without a round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::clock::{Clock, SystemClock};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::memory::MemoryLimiter;
use crate::quota::{Policy, Quota};
use crate::redis::RedisLimiter;
use crate::store::{Check, RateLimiter};

/// What to decide while Redis is unavailable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OnRedisFailure {
    /// Decide with a local in-memory limiter granting this instance `share` of each quota
    /// (e.g. `0.25` with four instances). The default, with share 1.0.
    Fallback {
        /// Fraction of each policy's limit and burst this instance may grant alone (0 < share ≤ 1).
        share: f64,
    },
    /// Allow everything (availability over protection).
    Open,
    /// Deny everything (protection over availability).
    Closed,
}

impl Default for OnRedisFailure {
    fn default() -> Self {
        Self::fallback()
    }
}

impl OnRedisFailure {
    /// Local fallback with the whole quota per instance.
    pub const fn fallback() -> Self {
        OnRedisFailure::Fallback { share: 1.0 }
    }
}

/// Redis-backed limiter with an insurance limiter and a local fast-reject cache.
///
/// - When Redis errors or exceeds its timeout (see [`RedisLimiter::with_timeout`], default
///   50 ms), the decision comes from [`OnRedisFailure`]: a local limiter with a configurable
///   share of the quota (default), allow all, or deny all. Such decisions have
///   `fallback == true` and are counted as `result="fallback"`. After Redis was unreachable or
///   too slow, checks skip it for one second (no caller waits for a timeout meanwhile), then
///   the next check probes it again.
/// - A key Redis denied until `T` is denied locally until `T`, without a round trip, so a client
///   hammering a blocked key costs Redis nothing.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use nilecare_rate_limit::{OnRedisFailure, RedisLimiter, ResilientLimiter};
/// use nilecare_redis::{RedisConfig, connect};
///
/// let pool = connect(&RedisConfig::from_url("redis://127.0.0.1:6379")?).await?;
/// let limiter = ResilientLimiter::new(RedisLimiter::new(pool))
///     .on_redis_failure(OnRedisFailure::Fallback { share: 0.25 })?; // 4 instances
/// # let _ = limiter; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ResilientLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    redis: RedisLimiter,
    local: MemoryLimiter,
    on_failure: OnRedisFailure,
    /// Policies scaled to the local share, by policy name.
    scaled: DashMap<String, Policy>,
    /// (policy, key) → denied until (µs of `clock`).
    blocked: DashMap<String, u64>,
    clock: SystemClock,
    /// Per hash slot: after the node serving it failed as unavailable, skip Redis for its keys
    /// until then (µs of `clock`), then probe again. A failure marks every slot of the failed
    /// node (every slot without a cluster), so one failing primary does not push the keys of
    /// healthy primaries into the fallback.
    down_until: Box<[AtomicU64]>,
}

/// How long to decide locally after Redis was found unavailable, before trying it again.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

impl ResilientLimiter {
    /// Redis with the local fallback granting the whole quota.
    pub fn new(redis: RedisLimiter) -> Self {
        Self::build(redis, OnRedisFailure::fallback())
    }

    fn build(redis: RedisLimiter, on_failure: OnRedisFailure) -> Self {
        ResilientLimiter {
            inner: Arc::new(Inner {
                redis,
                local: MemoryLimiter::new(),
                on_failure,
                scaled: DashMap::new(),
                blocked: DashMap::new(),
                clock: SystemClock::default(),
                down_until: (0..crate::redis::SLOTS)
                    .map(|_| AtomicU64::new(0))
                    .collect(),
            }),
        }
    }

    /// The behaviour while Redis is unavailable; a share outside (0, 1] is an error.
    pub fn on_redis_failure(self, on_failure: OnRedisFailure) -> Result<Self> {
        if let OnRedisFailure::Fallback { share } = on_failure {
            if !(share > 0.0 && share <= 1.0) {
                return Err(Error::InvalidConfig {
                    field: "share",
                    message: format!("must be within (0, 1], got {share}"),
                });
            }
        }
        Ok(Self::build(self.inner.redis.clone(), on_failure))
    }

    /// The Redis limiter.
    pub fn redis(&self) -> &RedisLimiter {
        &self.inner.redis
    }

    fn fast_key(policy: &Policy, key: &str) -> String {
        format!("{}\u{1f}{key}", policy.name())
    }

    /// A local denial for a key Redis blocked, if it is still blocked.
    fn locally_blocked(&self, policy: &Policy, key: &str) -> Option<Decision> {
        if policy.is_shadow() {
            return None;
        }
        let now = self.inner.clock.now_micros();
        let fast = Self::fast_key(policy, key);
        let until = *self.inner.blocked.get(&fast)?;
        if until <= now {
            self.inner.blocked.remove(&fast);
            return None;
        }
        Some(Decision::blocked(
            policy.reported_limit(),
            Duration::from_micros(until - now),
        ))
    }

    fn remember(&self, policy: &Policy, key: &str, decision: &Decision) {
        if decision.allowed {
            return;
        }
        if let Some(retry) = decision.retry_after {
            let now = self.inner.clock.now_micros();
            if self.inner.blocked.len() > 100_000 {
                self.inner.blocked.retain(|_, until| *until > now);
            }
            let until = now.saturating_add(u64::try_from(retry.as_micros()).unwrap_or(u64::MAX));
            self.inner
                .blocked
                .insert(Self::fast_key(policy, key), until);
        }
    }

    /// Whether the node serving `slot` recently failed as unavailable (callers then skip the
    /// round trip).
    fn redis_known_down(&self, slot: Option<u16>) -> bool {
        slot.and_then(|s| self.inner.down_until.get(usize::from(s)))
            .is_some_and(|until| until.load(Ordering::Relaxed) > self.inner.clock.now_micros())
    }

    /// After an unavailable error for a key in `slot`: skip the slots of that node for the
    /// probe interval.
    fn note_failure(&self, error: &Error, slot: Option<u16>) {
        if !error.is_unavailable() {
            return;
        }
        let until = self.inner.clock.now_micros()
            + u64::try_from(PROBE_INTERVAL.as_micros()).unwrap_or(u64::MAX);
        let ranges = match slot {
            Some(slot) => self.inner.redis.node_slots(slot),
            None => vec![0..=crate::redis::SLOTS - 1],
        };
        for range in ranges {
            for slot in range {
                if let Some(cell) = self.inner.down_until.get(usize::from(slot)) {
                    cell.store(until, Ordering::Relaxed);
                }
            }
        }
    }

    /// The policy scaled to this instance's share.
    fn local_policy(&self, policy: &Policy, share: f64) -> Result<Policy> {
        if let Some(p) = self.inner.scaled.get(policy.name()) {
            return Ok(p.clone());
        }
        let q = policy.quota();
        let scale = |n: u64| ((n as f64 * share).ceil() as u64).max(1);
        let quota = Quota::per(q.window(), scale(q.limit()))?.with_burst(scale(q.burst()))?;
        let mut local = Policy::new(policy.name(), quota)?
            .algorithm(policy.algorithm_kind())
            .shadow(policy.is_shadow());
        if let Some(block) = policy.block_duration() {
            local = local.block_for(block);
        }
        self.inner
            .scaled
            .insert(policy.name().to_owned(), local.clone());
        Ok(local)
    }

    /// The decision while Redis is unavailable.
    async fn degraded(
        &self,
        policy: &Policy,
        key: &str,
        cost: u32,
        error: Option<(&Error, Option<u16>)>,
    ) -> Result<Decision> {
        if let Some((error, slot)) = error {
            self.note_failure(error, slot);
            tracing::warn!(policy = policy.name(), error = %error, "rate limiter deciding without Redis");
        }
        let fixed = |allowed: bool| Decision {
            allowed,
            limit: policy.reported_limit(),
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: (!allowed).then_some(Duration::from_secs(1)),
            shadow_limited: false,
            fallback: true,
        };
        let decision = match self.inner.on_failure {
            OnRedisFailure::Open => fixed(true),
            OnRedisFailure::Closed => fixed(false),
            OnRedisFailure::Fallback { share } => {
                let local = self.local_policy(policy, share)?;
                let mut d = self
                    .inner
                    .local
                    .decide_local(&local, key, u64::from(cost))?;
                d.fallback = true;
                d
            }
        };
        crate::metrics::record(policy, &decision);
        Ok(decision)
    }
}

impl RateLimiter for ResilientLimiter {
    async fn check(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        if let Some(denied) = self.locally_blocked(policy, key) {
            crate::metrics::record(policy, &denied);
            return Ok(denied);
        }
        let slot = self.inner.redis.slot(policy, key);
        if self.redis_known_down(slot) {
            return self.degraded(policy, key, cost, None).await;
        }
        match self.inner.redis.check(policy, key, cost).await {
            Ok(d) => {
                self.remember(policy, key, &d);
                Ok(d)
            }
            Err(e @ Error::InvalidInput { .. }) => Err(e),
            Err(e) => self.degraded(policy, key, cost, Some((&e, slot))).await,
        }
    }

    async fn check_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        match self.inner.redis.check_many(checks).await {
            Ok(decisions) => Ok(decisions),
            Err(e @ Error::InvalidInput { .. }) => Err(e),
            Err(e) => {
                let slot = checks
                    .first()
                    .and_then(|(policy, key, _)| self.inner.redis.slot(policy, key));
                self.note_failure(&e, slot);
                tracing::warn!(error = %e, "rate limiter deciding check_many without Redis");
                let mut local = Vec::with_capacity(checks.len());
                let mut scaled = Vec::with_capacity(checks.len());
                for (policy, _, _) in checks {
                    scaled.push(match self.inner.on_failure {
                        OnRedisFailure::Fallback { share } => self.local_policy(policy, share)?,
                        _ => (*policy).clone(),
                    });
                }
                for ((_, key, cost), policy) in checks.iter().zip(&scaled) {
                    local.push((policy, *key, *cost));
                }
                let mut decisions = match self.inner.on_failure {
                    OnRedisFailure::Fallback { .. } => self.inner.local.decide_many(&local)?,
                    OnRedisFailure::Open | OnRedisFailure::Closed => {
                        let allowed = self.inner.on_failure == OnRedisFailure::Open;
                        checks
                            .iter()
                            .map(|(p, _, _)| Decision {
                                allowed,
                                limit: p.reported_limit(),
                                remaining: 0,
                                reset_after: Duration::ZERO,
                                retry_after: (!allowed).then_some(Duration::from_secs(1)),
                                shadow_limited: false,
                                fallback: true,
                            })
                            .collect()
                    }
                };
                for (d, (policy, _, _)) in decisions.iter_mut().zip(checks) {
                    d.fallback = true;
                    crate::metrics::record(policy, d);
                }
                Ok(decisions)
            }
        }
    }

    async fn peek(&self, policy: &Policy, key: &str) -> Result<Decision> {
        if let Some(denied) = self.locally_blocked(policy, key) {
            return Ok(denied);
        }
        self.inner.redis.peek(policy, key).await
    }

    async fn consume(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        let d = self.inner.redis.consume(policy, key, cost).await?;
        self.remember(policy, key, &d);
        Ok(d)
    }

    async fn refund(&self, policy: &Policy, key: &str, cost: u32) -> Result<()> {
        self.inner.blocked.remove(&Self::fast_key(policy, key));
        self.inner.redis.refund(policy, key, cost).await
    }

    async fn reset(&self, policy: &Policy, key: &str) -> Result<()> {
        self.inner.blocked.remove(&Self::fast_key(policy, key));
        self.inner.redis.reset(policy, key).await
    }

    fn backend(&self) -> &'static str {
        "resilient"
    }
}
