//! A small table read on every request and written a few times in a process's life, whose
//! reads take no lock and write nothing shared.
//!
//! A `RwLock` read still writes the lock's reader count: a cache line both worker threads pull
//! from each other on every request. Here the first entries live in slots written once
//! (`OnceLock`) and read with plain loads; entries past them go to a locked list.

use std::sync::{Mutex, OnceLock, PoisonError, RwLock};

/// Entries read without a lock; further ones are kept under one.
const SLOTS: usize = 16;

pub(crate) struct ReadMostly<K, V> {
    slots: [OnceLock<(K, V)>; SLOTS],
    overflow: RwLock<Vec<(K, V)>>,
    /// Held while an entry is added, so each key is made once.
    adding: Mutex<()>,
}

impl<K, V> Default for ReadMostly<K, V> {
    fn default() -> Self {
        ReadMostly {
            slots: [const { OnceLock::new() }; SLOTS],
            overflow: RwLock::new(Vec::new()),
            adding: Mutex::new(()),
        }
    }
}

impl<K, V> std::fmt::Debug for ReadMostly<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.slots.iter().filter(|s| s.get().is_some()).count();
        f.debug_struct("ReadMostly")
            .field("entries", &kept)
            .finish_non_exhaustive()
    }
}

impl<K: Copy + Eq, V> ReadMostly<K, V> {
    /// `f` of the value under `key`; the value is made by `make` (once) when the key is new.
    pub(crate) fn with<R>(&self, key: K, make: impl FnOnce() -> V, f: impl FnOnce(&V) -> R) -> R {
        // Slots fill in order: the first empty one ends the search.
        let mut full = true;
        for slot in &self.slots {
            match slot.get() {
                Some((k, v)) if *k == key => return f(v),
                Some(_) => {}
                None => {
                    full = false;
                    break;
                }
            }
        }
        if full {
            let overflow = self.overflow.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, v)) = overflow.iter().find(|(k, _)| *k == key) {
                return f(v);
            }
        }
        let _adding = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        for slot in &self.slots {
            match slot.get() {
                Some((k, v)) if *k == key => return f(v),
                Some(_) => {}
                // No other thread adds while `adding` is held: this slot takes the key.
                None => return f(&slot.get_or_init(|| (key, make())).1),
            }
        }
        let mut overflow = self
            .overflow
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let at = match overflow.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                overflow.push((key, make()));
                overflow.len() - 1
            }
        };
        f(&overflow[at].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_key_is_made_once_and_found_again_in_slots_and_overflow() {
        let table: ReadMostly<u32, String> = ReadMostly::default();
        let made = AtomicUsize::new(0);
        for round in 0..3 {
            for key in 0..(SLOTS as u32 * 3) {
                let got = table.with(
                    key,
                    || {
                        made.fetch_add(1, Ordering::Relaxed);
                        format!("v{key}")
                    },
                    Clone::clone,
                );
                assert_eq!(got, format!("v{key}"), "round {round}");
            }
        }
        assert_eq!(made.load(Ordering::Relaxed), SLOTS * 3);
    }

    #[test]
    fn threads_adding_the_same_keys_make_each_once() {
        let table: ReadMostly<u32, u32> = ReadMostly::default();
        let made = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for key in 0..40u32 {
                        let v = table.with(
                            key,
                            || {
                                made.fetch_add(1, Ordering::Relaxed);
                                key * 10
                            },
                            |v| *v,
                        );
                        assert_eq!(v, key * 10);
                    }
                });
            }
        });
        assert_eq!(made.load(Ordering::Relaxed), 40);
    }
}
