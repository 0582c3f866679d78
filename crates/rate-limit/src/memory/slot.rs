//! The state of one (policy, key) and the map key it is found by without building a string.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::algorithm::AlgoState;
use crate::quota::Policy;

/// State of one (policy, key).
///
/// GCRA keeps its theoretical arrival time in an atomic (`tat`, compare-and-swap, no lock); the
/// other algorithms keep theirs under the mutex. The penalty box is an atomic for both.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// GCRA: the theoretical arrival time in µs as `f64` bits (`0.0` for a fresh key), with
    /// [`TAT_LOCKED`] set while `check_many` holds it.
    pub(crate) tat: AtomicU64,
    /// Denied until this time (µs), 0 when not in the penalty box.
    pub(crate) blocked_until: AtomicU64,
    /// Every other algorithm's state.
    pub(crate) state: Mutex<KeyState>,
}

/// The sign bit of `tat`: a TAT is never negative, so the bit marks the TAT as held by
/// `check_many`, which reads and writes several states as one.
pub(crate) const TAT_LOCKED: u64 = 1 << 63;

/// Lock-protected state of the non-GCRA algorithms.
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    pub(crate) algo: Option<AlgoState>,
    /// When the state is equivalent to a fresh key (µs).
    pub(crate) expires_at: u64,
}

impl Slot {
    /// Locks the mutex-held state; a poisoned lock (a panic elsewhere) still holds usable state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, KeyState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the slot behaves like a fresh key at `now` (and may be dropped). A slot whose
    /// lock is held is in use, so not expired.
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        if self.blocked_until.load(Ordering::Relaxed) > now {
            return false;
        }
        let tat = self.tat.load(Ordering::Relaxed);
        if tat & TAT_LOCKED != 0 || f64::from_bits(tat) > now as f64 {
            return false;
        }
        match self.state.try_lock() {
            Ok(s) => s.expires_at <= now,
            Err(_) => false,
        }
    }

    /// The GCRA TAT, waiting while `check_many` holds it (a few instructions' time).
    pub(crate) fn load_tat(&self) -> u64 {
        let mut spins = 0u32;
        loop {
            let bits = self.tat.load(Ordering::Acquire);
            if bits & TAT_LOCKED == 0 {
                return bits;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Map key: the policy name (with its hash) and the user key, owned.
#[derive(Debug)]
pub(crate) struct StateKey {
    name_hash: u64,
    policy: Arc<str>,
    key: Box<str>,
}

impl StateKey {
    pub(crate) fn new(policy: &Policy, key: &str) -> Self {
        let inner = policy.inner();
        StateKey {
            name_hash: inner.name_hash,
            policy: Arc::clone(&inner.name),
            key: Box::from(key),
        }
    }
}

/// (policy, key) borrowed or owned: lets the map be searched without building a key. Hashes
/// the policy name's precomputed hash and the key; equal when the key and the name are.
pub(crate) trait KeyParts {
    /// The policy name's hash, the policy name, the key.
    fn parts(&self) -> (u64, &str, &str);
}

impl KeyParts for StateKey {
    fn parts(&self) -> (u64, &str, &str) {
        (self.name_hash, &self.policy, &self.key)
    }
}

/// A lookup key: the policy and the user key as they are.
pub(crate) struct Lookup<'a>(pub(crate) &'a Policy, pub(crate) &'a str);

impl KeyParts for Lookup<'_> {
    fn parts(&self) -> (u64, &str, &str) {
        let inner = self.0.inner();
        (inner.name_hash, &inner.name, self.1)
    }
}

impl<'a> Borrow<dyn KeyParts + 'a> for StateKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

impl Hash for dyn KeyParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The key is the only variable-length part: no terminator needed.
        let (name_hash, _, key) = self.parts();
        state.write_u64(name_hash);
        state.write(key.as_bytes());
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        let (h1, p1, k1) = self.parts();
        let (h2, p2, k2) = other.parts();
        h1 == h2 && k1 == k2 && (std::ptr::eq(p1, p2) || p1 == p2)
    }
}

impl Eq for dyn KeyParts + '_ {}

impl Hash for StateKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyParts).hash(state);
    }
}

impl PartialEq for StateKey {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn KeyParts) == (other as &dyn KeyParts)
    }
}

impl Eq for StateKey {}
