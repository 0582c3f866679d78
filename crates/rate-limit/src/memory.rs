//! [`MemoryLimiter`]: all five algorithms in process, on a concurrent map with automatic idle
//! eviction and a key cap.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;

use crate::algorithm::{AlgoState, evaluate, refund};
use crate::clock::{Clock, SystemClock};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::{Algorithm, Policy};
use crate::store::{Check, validate};

/// State of one (policy, key).
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    pub(crate) algo: Option<AlgoState>,
    pub(crate) blocked_until: u64,
    pub(crate) expires_at: u64,
}

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

/// Separates the policy name from the user key in map keys (policy names cannot contain it).
const SEP: char = '\u{1f}';
/// The shared key of new keys arriving while the map is full.
const OVERFLOW_KEY: &str = "\u{1f}overflow";

/// An in-process rate limiter for every [`Algorithm`].
///
/// State lives in a sharded concurrent map keyed by (policy name, key), hashed with SipHash
/// (keys are client-controlled: IPs, API keys). Memory stays bounded without manual calls:
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
    map: DashMap<Box<str>, Arc<Mutex<KeyState>>>,
    clock: Arc<dyn Clock>,
    max_keys: usize,
    sweep_every: u64,
    new_keys: AtomicU64,
    sweeping: AtomicBool,
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("keys", &self.inner.map.len())
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
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Most keys held (default 1 000 000); see the overflow behaviour above.
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n;
        self
    }

    /// Sweep expired state every this many new keys (default 4 096).
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
                map: DashMap::new(),
                clock: self.clock,
                max_keys: self.max_keys,
                sweep_every: self.sweep_every,
                new_keys: AtomicU64::new(0),
                sweeping: AtomicBool::new(false),
            }),
        })
    }
}

thread_local! {
    /// Reused buffer for composite keys: no allocation on the hot path.
    static KEY_BUF: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Locks a key's state; a poisoned lock (a panic elsewhere) still holds usable state.
fn lock(state: &Mutex<KeyState>) -> MutexGuard<'_, KeyState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                map: DashMap::new(),
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
        self.inner.map.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// Drops every expired key state now (runs automatically every `sweep_every` new keys).
    pub fn sweep(&self) {
        let now = self.inner.clock.now_micros();
        self.inner.map.retain(|_, state| match state.try_lock() {
            Ok(s) => s.expires_at > now || s.blocked_until > now,
            Err(_) => true,
        });
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_micros()
    }

    /// Runs `f` on the locked state of (policy, key), creating it if needed. The common case
    /// (a known key) allocates nothing: the composite key is built in a thread-local buffer and
    /// the state is locked while the map's shard is read-locked.
    fn with_state<R>(&self, policy: &Policy, key: &str, f: impl FnOnce(&mut KeyState) -> R) -> R {
        let mut f = Some(f);
        let found = KEY_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.push_str(policy.name());
            buf.push(SEP);
            buf.push_str(key);
            let entry = self.inner.map.get(buf.as_str())?;
            let f = f.take()?;
            Some(f(&mut lock(entry.value())))
        });
        match (found, f) {
            (Some(r), _) => r,
            (None, Some(f)) => f(&mut lock(&self.state(policy, key))),
            // `f` is only taken when the key was found.
            (None, None) => unreachable!("state closure consumed without a result"),
        }
    }

    /// The state of (policy, key), created if needed.
    fn state(&self, policy: &Policy, key: &str) -> Arc<Mutex<KeyState>> {
        let composite = format!("{}{SEP}{key}", policy.name());
        if let Some(state) = self.inner.map.get(composite.as_str()) {
            return state.clone();
        }
        let inner = &self.inner;
        if inner.new_keys.fetch_add(1, Ordering::Relaxed) % inner.sweep_every == 0
            || inner.map.len() >= inner.max_keys
        {
            self.sweep_once();
        }
        let composite: Box<str> = if inner.map.len() >= inner.max_keys {
            format!("{}{OVERFLOW_KEY}", policy.name()).into()
        } else {
            composite.into()
        };
        inner.map.entry(composite).or_default().clone()
    }

    fn sweep_once(&self) {
        if !self.inner.sweeping.swap(true, Ordering::Acquire) {
            self.sweep();
            self.inner.sweeping.store(false, Ordering::Release);
        }
    }

    pub(crate) fn decide_one(
        &self,
        policy: &Policy,
        key: &str,
        cost: u64,
        mode: Mode,
    ) -> Result<Decision> {
        validate(policy, key, cost, mode == Mode::Peek)?;
        Ok(self.with_state(policy, key, |state| {
            let now = self.now();
            decide(policy, state, now, cost, mode)
        }))
    }

    /// [`RateLimiter::check`](crate::RateLimiter::check) without the future: the memory limiter
    /// never waits, so synchronous code (and hot paths) can call this directly.
    pub fn check_now(&self, policy: &Policy, key: &str, cost: u32) -> Result<Decision> {
        let d = self.decide_one(policy, key, u64::from(cost), Mode::Check)?;
        crate::metrics::record(policy, &d);
        Ok(d)
    }

    pub(crate) fn decide_many(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        for (policy, key, cost) in checks {
            validate(policy, key, u64::from(*cost), false)?;
        }
        let states: Vec<Arc<Mutex<KeyState>>> =
            checks.iter().map(|(p, k, _)| self.state(p, k)).collect();
        // Lock each distinct state once, in address order: atomic and deadlock-free.
        let mut order: Vec<usize> = (0..states.len()).collect();
        order.sort_by_key(|&i| Arc::as_ptr(&states[i]) as usize);
        order.dedup_by_key(|i| Arc::as_ptr(&states[*i]) as usize);
        let mut guards: Vec<(usize, MutexGuard<'_, KeyState>)> =
            order.iter().map(|&i| (i, lock(&states[i]))).collect();
        let now = self.now();
        let guard_of = |guards: &mut Vec<(usize, MutexGuard<'_, KeyState>)>, i: usize| {
            let ptr = Arc::as_ptr(&states[i]);
            guards
                .iter()
                .position(|(j, _)| Arc::as_ptr(&states[*j]) == ptr)
                .unwrap_or(0)
        };
        // Evaluate everything first (same-key entries see each other's cost via a scratch state).
        let mut peeks = Vec::with_capacity(checks.len());
        let mut scratch: Vec<(usize, KeyState)> = Vec::new();
        for (i, (policy, _, cost)) in checks.iter().enumerate() {
            let g = guard_of(&mut guards, i);
            let base = scratch.iter().rev().find(|(j, _)| *j == g).map(|(_, s)| s);
            let mut trial = KeyState {
                algo: base.map_or_else(|| guards[g].1.algo.clone(), |s| s.algo.clone()),
                blocked_until: guards[g].1.blocked_until,
                expires_at: guards[g].1.expires_at,
            };
            let decision = decide(policy, &mut trial, now, u64::from(*cost), Mode::Check);
            scratch.push((g, trial));
            peeks.push(decision);
        }
        if peeks.iter().all(|d| d.allowed) {
            for (g, state) in scratch {
                let target = &mut guards[g].1;
                target.algo = state.algo;
                target.expires_at = target.expires_at.max(state.expires_at);
            }
            return Ok(peeks);
        }
        // Denied: nothing is consumed; penalty boxes of the denied entries still apply.
        for (i, (policy, _, _)) in checks.iter().enumerate() {
            if !peeks[i].allowed {
                if let Some(block) = policy.block_duration() {
                    let g = guard_of(&mut guards, i);
                    let until =
                        now.saturating_add(u64::try_from(block.as_micros()).unwrap_or(u64::MAX));
                    guards[g].1.blocked_until = until;
                    guards[g].1.expires_at = guards[g].1.expires_at.max(until);
                }
            }
        }
        Ok(peeks
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
        validate(policy, key, cost, false)?;
        self.with_state(policy, key, |state| {
            if let Some(algo) = state.algo.as_mut() {
                refund(&policy.quota(), algo, cost);
            }
        });
        Ok(())
    }

    pub(crate) fn reset_one(&self, policy: &Policy, key: &str) -> Result<()> {
        validate(policy, key, 1, true)?;
        let composite = format!("{}{SEP}{key}", policy.name());
        self.inner.map.remove(composite.as_str());
        Ok(())
    }
}

/// The limit reported in decisions and headers.
pub(crate) fn reported_limit(policy: &Policy) -> u64 {
    match policy.algorithm_kind() {
        Algorithm::TokenBucket | Algorithm::Gcra => policy.quota().burst(),
        _ => policy.quota().limit(),
    }
}

/// Applies the penalty box, the algorithm and shadow mode to one key state.
pub(crate) fn decide(
    policy: &Policy,
    state: &mut KeyState,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Decision {
    let limit = reported_limit(policy);
    let mut decision = if state.blocked_until > now {
        let wait = state.blocked_until - now;
        Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_after: std::time::Duration::from_micros(wait),
            retry_after: Some(std::time::Duration::from_micros(wait)),
            shadow_limited: false,
            fallback: false,
        }
    } else {
        let out = evaluate(
            &policy.quota(),
            policy.algorithm_kind(),
            state.algo.as_ref(),
            now,
            cost,
            mode == Mode::Consume,
        );
        let commit = match mode {
            Mode::Check => out.allowed,
            Mode::Consume => true,
            Mode::Peek => false,
        };
        if commit {
            state.algo = Some(out.consumed);
            state.expires_at = out.expires_at;
        } else if mode == Mode::Check && !policy.is_shadow() {
            if let Some(block) = policy.block_duration() {
                state.blocked_until =
                    now.saturating_add(u64::try_from(block.as_micros()).unwrap_or(u64::MAX));
                state.expires_at = state.expires_at.max(state.blocked_until);
            }
        }
        // A peek reports what is left now, not after the hypothetical unit it evaluated.
        let remaining = if mode == Mode::Peek && out.allowed {
            out.remaining.saturating_add(cost).min(limit)
        } else {
            out.remaining
        };
        Decision {
            allowed: out.allowed,
            limit,
            remaining,
            reset_after: std::time::Duration::from_micros(out.reset_after),
            retry_after: out.retry_after.map(std::time::Duration::from_micros),
            shadow_limited: false,
            fallback: false,
        }
    };
    if policy.is_shadow() && !decision.allowed {
        decision.allowed = true;
        decision.shadow_limited = true;
        decision.retry_after = None;
    }
    decision
}
