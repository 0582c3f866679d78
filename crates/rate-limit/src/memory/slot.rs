//! The state of one (policy, key) and the map key it is found by without building a string.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;

use crate::algorithm::AlgoState;

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

/// The state of every key of one policy (by name) in one limiter.
#[derive(Debug, Default)]
pub(crate) struct PolicyMap {
    /// Key → state. The key alone is hashed (SipHash: keys are client-controlled).
    pub(crate) keys: DashMap<Box<str>, Arc<Slot>>,
    /// The state new keys share while the limiter is full.
    pub(crate) overflow: Arc<Slot>,
}
