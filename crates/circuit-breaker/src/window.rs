//! Sliding windows of call outcomes: last N calls, or last N seconds in per-second buckets.

use crate::config::WindowType;

/// Aggregates of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bucket {
    calls: u32,
    failures: u32,
    slow: u32,
}

/// Two outcome bits per call (1 = failure, 2 = slow), 32 calls to a word: inline for windows
/// of up to [`SlotRing::INLINE_CALLS`] calls (on the cache lines of the breaker's lock, so a
/// counted call on a contended breaker moves one line less), on the heap beyond.
#[derive(Debug)]
pub(crate) enum SlotRing {
    Inline([u64; 4]),
    Heap(Box<[u64]>),
}

impl SlotRing {
    const INLINE_CALLS: usize = 128;

    fn new(calls: usize) -> Self {
        if calls <= Self::INLINE_CALLS {
            SlotRing::Inline([0; 4])
        } else {
            SlotRing::Heap(vec![0; calls.div_ceil(32)].into_boxed_slice())
        }
    }

    /// Writes `bits` into slot `i` and returns what it held.
    fn replace(&mut self, i: usize, bits: u8) -> u8 {
        let words: &mut [u64] = match self {
            SlotRing::Inline(words) => words,
            SlotRing::Heap(words) => words,
        };
        let word = &mut words[i / 32];
        let shift = (i % 32) * 2;
        let old = (*word >> shift & 3) as u8;
        *word = *word & !(3 << shift) | u64::from(bits) << shift;
        old
    }
}

#[derive(Debug)]
pub(crate) enum Window {
    Count {
        ring: SlotRing,
        /// Calls the window holds.
        size: usize,
        next: usize,
        /// Slots written so far (the ring fills in order; `size` once it has wrapped).
        filled: usize,
        totals: Totals,
    },
    Time {
        buckets: Vec<Bucket>,
        totals: Totals,
        /// The newest second whose bucket is accounted for in `totals`.
        newest: u64,
    },
}

impl Window {
    pub(crate) fn new(kind: WindowType) -> Self {
        match kind {
            WindowType::CountBased(n) => Window::Count {
                ring: SlotRing::new(n as usize),
                size: n as usize,
                next: 0,
                filled: 0,
                totals: Totals::default(),
            },
            WindowType::TimeBased(n) => Window::Time {
                buckets: vec![Bucket::default(); n as usize],
                totals: Totals::default(),
                newest: 0,
            },
        }
    }

    /// Drops buckets older than the window (time-based only).
    fn advance(&mut self, now_second: u64) {
        if let Window::Time {
            buckets,
            totals,
            newest,
        } = self
        {
            let n = buckets.len() as u64;
            if now_second <= *newest {
                return;
            }
            // Clear every bucket between the newest recorded second and now (at most n).
            let from = (*newest + 1).max(now_second.saturating_sub(n - 1));
            for second in from..=now_second {
                let b = &mut buckets[(second % n) as usize];
                totals.calls -= b.calls;
                totals.failures -= b.failures;
                totals.slow -= b.slow;
                *b = Bucket::default();
            }
            *newest = now_second;
        }
    }

    pub(crate) fn record(&mut self, failure: bool, slow: bool, now_second: u64) {
        self.advance(now_second);
        match self {
            Window::Count {
                ring,
                size,
                next,
                filled,
                totals,
            } => {
                let old = ring.replace(*next, u8::from(failure) | u8::from(slow) << 1);
                if *filled == *size {
                    // The oldest call leaves the window.
                    totals.calls -= 1;
                    totals.failures -= u32::from(old & 1);
                    totals.slow -= u32::from(old >> 1 & 1);
                } else {
                    *filled += 1;
                }
                *next += 1;
                if *next == *size {
                    *next = 0;
                }
                totals.calls += 1;
                totals.failures += u32::from(failure);
                totals.slow += u32::from(slow);
            }
            Window::Time {
                buckets,
                totals,
                newest,
            } => {
                let n = buckets.len() as u64;
                // A call is dated by the clock reading that timed it, taken before the window's
                // lock: another thread may have moved the window on since. A second still in
                // the window has its bucket; one older than the window is outside it.
                if now_second + n <= *newest {
                    return;
                }
                let b = &mut buckets[(now_second % n) as usize];
                b.calls += 1;
                b.failures += u32::from(failure);
                b.slow += u32::from(slow);
                totals.calls += 1;
                totals.failures += u32::from(failure);
                totals.slow += u32::from(slow);
            }
        }
    }

    pub(crate) fn totals(&mut self, now_second: u64) -> Totals {
        self.advance(now_second);
        match self {
            Window::Count { totals, .. } | Window::Time { totals, .. } => *totals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_keeps_the_last_n() {
        let mut w = Window::new(WindowType::CountBased(3));
        for failure in [true, true, false, false] {
            w.record(failure, false, 0);
        }
        assert_eq!(
            w.totals(0),
            Totals {
                calls: 3,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn count_windows_inline_and_on_the_heap_keep_the_last_n_with_both_bits() {
        for n in [1u32, 31, 32, 33, 100, 128, 129, 1000] {
            let mut w = Window::new(WindowType::CountBased(n));
            // 3n calls: every third a failure, every fifth slow; the window holds the last n.
            let calls: Vec<(bool, bool)> = (0..3 * n).map(|i| (i % 3 == 0, i % 5 == 0)).collect();
            for (i, &(failure, slow)) in calls.iter().enumerate() {
                w.record(failure, slow, 0);
                let held = &calls[(i + 1).saturating_sub(n as usize)..=i];
                let want = Totals {
                    calls: held.len() as u32,
                    failures: held.iter().filter(|c| c.0).count() as u32,
                    slow: held.iter().filter(|c| c.1).count() as u32,
                };
                assert_eq!(w.totals(0), want, "window {n}, after call {i}");
            }
        }
    }

    #[test]
    fn time_window_forgets_old_seconds() {
        let mut w = Window::new(WindowType::TimeBased(10));
        w.record(true, false, 100);
        w.record(false, true, 105);
        assert_eq!(
            w.totals(109),
            Totals {
                calls: 2,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(
            w.totals(110),
            Totals {
                calls: 1,
                failures: 0,
                slow: 1
            }
        );
        assert_eq!(w.totals(500), Totals::default());
        w.record(true, false, 501);
        assert_eq!(
            w.totals(501),
            Totals {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn a_call_dated_before_the_window_moved_on_counts_in_its_own_second() {
        let mut w = Window::new(WindowType::TimeBased(10));
        w.record(false, false, 105);
        // Dated 103 (read before another thread recorded 105): inside the window, in its own
        // bucket, and it leaves the window with second 103.
        w.record(true, false, 103);
        let both = Totals {
            calls: 2,
            failures: 1,
            slow: 0,
        };
        assert_eq!(w.totals(112), both);
        let one = Totals {
            calls: 1,
            failures: 0,
            slow: 0,
        };
        assert_eq!(w.totals(113), one);
        // Dated 95 while the window holds 104..=113: outside it, not counted (it would
        // otherwise land in the bucket of second 105).
        w.record(true, true, 95);
        assert_eq!(w.totals(113), one);
    }
}
