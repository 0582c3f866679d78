//! [`MemoryLimiter`]: all five algorithms in process, on a concurrent map with automatic idle
//! eviction and a key cap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::algorithm::{AlgoState, refund};
use crate::clock::{Clock, SystemClock};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::{Algorithm, BackendState, Policy, next_backend_id};
use crate::store::{Check, RateLimiter};

mod decide;
mod gcra;
mod slot;

use decide::decide;

pub(crate) use slot::PolicyMap;
use slot::{KeyState, Slot, TAT_LOCKED};

/// What a check does with the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Consume if allowed.
    Check,
    /// Report only.
    Peek,
    /// Consume even if denied (penalty).
    Consume,
}

/// An in-process rate limiter for every [`Algorithm`].
///
/// State lives in a sharded concurrent map keyed by (policy name, key), hashed with SipHash
/// (keys are client-controlled: IPs, API keys); GCRA state is one atomic per key (no lock). Memory stays bounded without manual calls:
/// every `sweep_every` new keys, expired state is dropped (a key's state expires when it would
/// behave like a fresh key again). When `max_keys` is reached even after a sweep, **new** keys
/// share one overflow state per policy: they are still limited (together), and an attacker
/// rotating keys can exhaust neither memory nor the limit of known keys.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), nilecare_rate_limit::Error> {
/// use nilecare_rate_limit::{MemoryLimiter, Policy, Quota, RateLimiter};
///
/// let limiter = MemoryLimiter::new();
/// let api = Policy::new("api", Quota::per_second(2)?)?;
/// assert!(limiter.check(&api, "client-1", 1).await?.allowed);
/// assert!(limiter.check(&api, "client-1", 1).await?.allowed);
/// assert!(!limiter.check(&api, "client-1", 1).await?.allowed);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    /// Distinguishes limiters in the policies' cached map handles.
    id: usize,
    /// Per policy name: its keys' states.
    policies: DashMap<Arc<str>, Arc<PolicyMap>>,
    /// Keys held, over every policy.
    keys: AtomicUsize,
    clock: Arc<dyn Clock>,
    max_keys: usize,
    sweep_every: u64,
    new_keys: AtomicU64,
    sweeping: AtomicBool,
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("keys", &self.len())
            .field("max_keys", &self.inner.max_keys)
            .finish()
    }
}

/// Builder of [`MemoryLimiter`].
pub struct MemoryLimiterBuilder {
    clock: Arc<dyn Clock>,
    max_keys: usize,
    sweep_every: u64,
}

impl std::fmt::Debug for MemoryLimiterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiterBuilder")
            .field("max_keys", &self.max_keys)
            .field("sweep_every", &self.sweep_every)
            .finish_non_exhaustive()
    }
}

impl MemoryLimiterBuilder {
    /// The time source (default: the monotonic system clock; [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Most keys held (default 1 000 000); see the overflow behaviour above.
    #[must_use]
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n;
        self
    }

    /// Sweep expired state every this many new keys (default 4 096).
    #[must_use]
    pub fn sweep_every(mut self, n: u64) -> Self {
        self.sweep_every = n;
        self
    }

    /// Builds the limiter; zero bounds are errors naming the field.
    pub fn build(self) -> Result<MemoryLimiter> {
        for (field, v) in [
            ("max_keys", self.max_keys as u64),
            ("sweep_every", self.sweep_every),
        ] {
            if v == 0 {
                return Err(Error::InvalidConfig {
                    field,
                    message: "must be greater than zero".into(),
                });
            }
        }
        Ok(MemoryLimiter {
            inner: Arc::new(Inner {
                id: next_backend_id(),
                policies: DashMap::new(),
                keys: AtomicUsize::new(0),
                clock: self.clock,
                max_keys: self.max_keys,
                sweep_every: self.sweep_every,
                new_keys: AtomicU64::new(0),
                sweeping: AtomicBool::new(false),
            }),
        })
    }
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLimiter {
    /// A limiter with the system clock and default bounds.
    pub fn new() -> Self {
        MemoryLimiter {
            inner: Arc::new(Inner {
                id: next_backend_id(),
                policies: DashMap::new(),
                keys: AtomicUsize::new(0),
                clock: Arc::new(SystemClock::default()),
                max_keys: 1_000_000,
                sweep_every: 4_096,
                new_keys: AtomicU64::new(0),
                sweeping: AtomicBool::new(false),
            }),
        }
    }

    /// A builder (clock, bounds).
    pub fn builder() -> MemoryLimiterBuilder {
        MemoryLimiterBuilder {
            clock: Arc::new(SystemClock::default()),
            max_keys: 1_000_000,
            sweep_every: 4_096,
        }
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.inner.keys.load(Ordering::Relaxed)
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired key state now (runs automatically every `sweep_every` new keys).
    pub fn sweep(&self) {
        let now = self.inner.clock.now_micros();
        for policy in self.inner.policies.iter() {
            policy.keys.retain(|_, slot| {
                let expired = slot.is_expired(now);
                if expired {
                    self.inner.keys.fetch_sub(1, Ordering::Relaxed);
                }
                !expired
            });
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_micros()
    }

    /// Runs `f` with the state map of `policy`: the one the policy caches from its last check
    /// on this limiter, or found (or created) by name.
    #[inline]
    fn with_policy<R>(&self, policy: &Policy, f: impl FnOnce(&PolicyMap) -> R) -> R {
        let cache = &policy.inner().backend_state;
        if let Some((id, state)) = cache.get() {
            if *id == self.inner.id {
                if let Some(map) = state.downcast_ref::<PolicyMap>() {
                    return f(map);
                }
            }
        }
        let map = self
            .inner
            .policies
            .entry(Arc::clone(&policy.inner().name))
            .or_default()
            .clone();
        let _ = cache.set((self.inner.id, Arc::clone(&map) as BackendState));
        f(&map)
    }

    /// Runs `f` on the slot of (policy, key), creating it if needed. A known key allocates
    /// nothing and is one lookup of the key in the policy's map (`f` runs while the map's
    /// shard is read-locked).
    #[inline]
    fn with_slot<R>(&self, policy: &Policy, key: &str, f: impl FnOnce(&Slot) -> R) -> R {
        let found = self.with_policy(policy, |map| match map.keys.get(key) {
            Some(entry) => Ok(f(entry.value())),
            None => Err(f),
        });
        found.unwrap_or_else(|f| f(&self.slot(policy, key)))
    }

    /// The slot of (policy, key), created if needed.
    fn slot(&self, policy: &Policy, key: &str) -> Arc<Slot> {
        self.with_policy(policy, |map| {
            if let Some(slot) = map.keys.get(key) {
                return slot.clone();
            }
            let inner = &self.inner;
            if inner.new_keys.fetch_add(1, Ordering::Relaxed) % inner.sweep_every == 0
                || self.len() >= inner.max_keys
            {
                self.sweep_once();
            }
            if self.len() >= inner.max_keys {
                return map.overflow.clone();
            }
            match map.keys.entry(Box::from(key)) {
                dashmap::Entry::Occupied(e) => e.get().clone(),
                dashmap::Entry::Vacant(e) => {
                    inner.keys.fetch_add(1, Ordering::Relaxed);
                    e.insert(Arc::default()).clone()
                }
            }
        })
    }

    fn sweep_once(&self) {
        if !self.inner.sweeping.swap(true, Ordering::Acquire) {
            self.sweep();
            self.inner.sweeping.store(false, Ordering::Release);
        }
    }

    #[inline]
    pub(crate) fn decide_one(
        &self,
        policy: &Policy,
        key: &str,
        cost: u64,
        mode: Mode,
    ) -> Result<Decision> {
        let key = &*crate::input::checked(key, cost, mode == Mode::Peek)?;
        if policy.algorithm_kind() == Algorithm::Gcra {
            // Only the compare-and-swap runs while the key's shard is locked; the decision is
            // built after (GCRA tolerates a clock read before the lookup: the TAT never moves back).
            let now = self.now();
            let step = self.with_slot(policy, key, |slot| {
                gcra::step(policy, slot, now, cost, mode)
            });
            return Ok(gcra::decision(policy, step, now, cost, mode));
        }
        Ok(self.with_slot(policy, key, |slot| {
            decide(policy, slot, &mut slot.lock(), self.now(), cost, mode)
        }))
    }

    /// [`RateLimiter::check`](crate::RateLimiter::check) without the future: the memory limiter
    /// never waits, so synchronous code (and hot paths) can call this directly.
    #[inline]
    pub fn check_now(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        let d = self.decide_one(policy, key, u64::from(cost), Mode::Check)?;
        crate::metrics::record(policy, &d);
        Ok(d)
    }

    /// [`RateLimiter::check_many`](crate::RateLimiter::check_many) without the future.
    pub fn check_many_now(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        let decisions = self.decide_many(checks)?;
        for ((policy, _, _), d) in checks.iter().zip(&decisions) {
            crate::metrics::record(policy, d);
        }
        Ok(decisions)
    }

    pub(crate) fn decide_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        let keys = checks
            .iter()
            .map(|(_, key, cost)| crate::input::checked(key, u64::from(*cost), false))
            .collect::<Result<Vec<_>>>()?;
        let slots: Vec<Arc<Slot>> = checks
            .iter()
            .zip(&keys)
            .map(|((p, _, _), k)| self.slot(p, k))
            .collect();
        // Hold each distinct slot once, in address order: atomic and deadlock-free.
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by_key(|&i| Arc::as_ptr(&slots[i]) as usize);
        order.dedup_by_key(|i| Arc::as_ptr(&slots[*i]) as usize);
        let mut held: Vec<Held<'_>> = order.iter().map(|&i| Held::new(&slots[i])).collect();
        let now = self.now();
        let held_of = |i: usize| {
            let ptr = Arc::as_ptr(&slots[i]);
            held.iter()
                .position(|h| std::ptr::eq(h.slot, ptr))
                .unwrap_or(0)
        };
        let holders: Vec<usize> = (0..checks.len()).map(held_of).collect();
        // Evaluate everything on scratch states first (same-key entries see each other's cost).
        let mut decisions = Vec::with_capacity(checks.len());
        let mut scratch: Vec<(usize, KeyState)> = Vec::new();
        for (i, (policy, _, cost)) in checks.iter().enumerate() {
            let h = &held[holders[i]];
            let base = scratch.iter().rev().find(|(j, _)| *j == holders[i]);
            let mut trial = KeyState {
                algo: match base {
                    Some((_, s)) => s.algo.clone(),
                    None if policy.algorithm_kind() == Algorithm::Gcra => h.gcra_state(),
                    None => h.guard.algo.clone(),
                },
                expires_at: h.guard.expires_at,
            };
            let decision = decide(
                policy,
                h.slot,
                &mut trial,
                now,
                u64::from(*cost),
                Mode::Check,
            );
            scratch.push((holders[i], trial));
            decisions.push(decision);
        }
        if decisions.iter().all(|d| d.allowed) {
            for ((h, state), (policy, _, _)) in scratch.into_iter().zip(checks) {
                let target = &mut held[h];
                match state.algo {
                    Some(AlgoState::Gcra { tat }) if policy.algorithm_kind() == Algorithm::Gcra => {
                        target.tat = tat.to_bits();
                    }
                    algo => {
                        target.guard.expires_at = target.guard.expires_at.max(state.expires_at);
                        target.guard.algo = algo;
                    }
                }
            }
            return Ok(decisions);
        }
        // Denied: nothing is consumed (penalty boxes of denied entries were set by `decide`).
        Ok(decisions
            .into_iter()
            .map(|d| Decision {
                allowed: false,
                ..d
            })
            .collect())
    }

    /// A check that does not record metrics (the caller records the final decision).
    #[cfg(feature = "redis")]
    pub(crate) fn decide_local(&self, policy: &Policy, key: &str, cost: u64) -> Result<Decision> {
        self.decide_one(policy, key, cost, Mode::Check)
    }

    pub(crate) fn refund_one(&self, policy: &Policy, key: &str, cost: u64) -> Result<()> {
        let key = &*crate::input::checked(key, cost, false)?;
        let quota = policy.quota();
        self.with_slot(policy, key, |slot| {
            if policy.algorithm_kind() == Algorithm::Gcra {
                gcra::refund(&quota, slot, cost);
            } else if let Some(algo) = slot.lock().algo.as_mut() {
                refund(&quota, algo, cost);
            }
        });
        Ok(())
    }

    pub(crate) fn reset_one(&self, policy: &Policy, key: &str) -> Result<()> {
        let key = &*crate::input::stored_key(key)?;
        if self
            .with_policy(policy, |map| map.keys.remove(key))
            .is_some()
        {
            self.inner.keys.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl RateLimiter for MemoryLimiter {
    async fn check(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        self.check_now(policy, key, cost)
    }

    async fn check_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        self.check_many_now(checks)
    }

    async fn peek(&self, policy: &Policy, key: &str) -> Result<Decision> {
        self.decide_one(policy, key, 1, Mode::Peek)
    }

    async fn consume(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        self.decide_one(policy, key, u64::from(cost), Mode::Consume)
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

/// A slot held by `check_many`: its mutex, and its GCRA TAT marked as held until dropped.
struct Held<'a> {
    slot: &'a Slot,
    guard: std::sync::MutexGuard<'a, KeyState>,
    /// The TAT to store when released (the value found, or the committed one).
    tat: u64,
}

impl<'a> Held<'a> {
    fn new(slot: &'a Slot) -> Self {
        let guard = slot.lock();
        let tat = loop {
            let bits = slot.load_tat();
            if slot
                .tat
                .compare_exchange_weak(
                    bits,
                    bits | TAT_LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                break bits;
            }
        };
        Held { slot, guard, tat }
    }

    /// The GCRA state found (`None` for a fresh key).
    fn gcra_state(&self) -> Option<AlgoState> {
        (self.tat != 0).then(|| AlgoState::Gcra {
            tat: f64::from_bits(self.tat),
        })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.slot.tat.store(self.tat, Ordering::Release);
    }
}
