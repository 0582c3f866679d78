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

#[derive(Debug)]
pub(crate) enum Window {
    Count {
        /// Outcome bits per slot: 1 = failure, 2 = slow; `None` until written.
        ring: Vec<Option<u8>>,
        next: usize,
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
                ring: vec![None; n as usize],
                next: 0,
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
            Window::Count { ring, next, totals } => {
                if let Some(old) = ring[*next] {
                    totals.calls -= 1;
                    totals.failures -= u32::from(old & 1);
                    totals.slow -= u32::from(old >> 1 & 1);
                }
                ring[*next] = Some(u8::from(failure) | u8::from(slow) << 1);
                *next = (*next + 1) % ring.len();
                totals.calls += 1;
                totals.failures += u32::from(failure);
                totals.slow += u32::from(slow);
            }
            Window::Time {
                buckets, totals, ..
            } => {
                let n = buckets.len() as u64;
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
}
