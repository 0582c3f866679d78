//! [`CachedCounters`]: counter handles kept across calls, for hot paths in library crates.

use std::sync::OnceLock;

use metrics::{Counter, Key, Label, Level, Metadata};

/// Where cached registrations come from (the `metrics` metadata of the handles).
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A fixed set of counters (one name, `N` label sets) whose handles are looked up once per
/// recorder instead of on every increment.
///
/// Looking a counter up in a recorder (hashing the name and labels, finding the entry) costs more
/// than a whole in-memory cache hit or rate-limit check. The handles are kept together with the
/// address of the recorder that issued them, and used only while that recorder is the current
/// one; with any other recorder (a test-local one, or one installed after the first increment)
/// every call registers again, which is always correct.
///
/// ```
/// use nilecare_metrics::CachedCounters;
///
/// let lookups = CachedCounters::new(
///     "nilecare_cache_requests_total",
///     [
///         vec![("cache", "patients".to_owned()), ("result", "hit".to_owned())],
///         vec![("cache", "patients".to_owned()), ("result", "miss".to_owned())],
///     ],
/// );
/// lookups.increment(0, 1); // one hit
/// ```
#[derive(Debug)]
pub struct CachedCounters<const N: usize> {
    keys: [Key; N],
    handles: OnceLock<(usize, [Counter; N])>,
}

/// The address of the recorder `metrics` would use right now.
pub(crate) fn current_recorder() -> usize {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>() as usize)
}

impl<const N: usize> CachedCounters<N> {
    /// Counters named `name`, one per label set.
    pub fn new(name: &'static str, label_sets: [Vec<(&'static str, String)>; N]) -> Self {
        CachedCounters {
            keys: label_sets.map(|labels| {
                Key::from_parts(
                    name,
                    labels
                        .into_iter()
                        .map(|(k, v)| Label::new(k, v))
                        .collect::<Vec<_>>(),
                )
            }),
            handles: OnceLock::new(),
        }
    }

    /// Adds `n` to counter `index` (out-of-range indices are ignored).
    pub fn increment(&self, index: usize, n: u64) {
        if index >= N {
            return;
        }
        let recorder = current_recorder();
        match self.handles.get() {
            Some((id, handles)) if *id == recorder => handles[index].increment(n),
            _ => {
                let handles = metrics::with_recorder(|r| {
                    std::array::from_fn(|i| r.register_counter(&self.keys[i], &METADATA))
                });
                handles[index].increment(n);
                let _ = self.handles.set((recorder, handles));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn value(recorder: &DebuggingRecorder, result: &str) -> u64 {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .find_map(|(k, _, _, v)| match v {
                DebugValue::Counter(n)
                    if k.key()
                        .labels()
                        .any(|l| l.key() == "result" && l.value() == result) =>
                {
                    Some(n)
                }
                _ => None,
            })
            .unwrap_or(0)
    }

    #[test]
    fn increments_reach_the_current_recorder_even_when_it_changes() {
        let c = CachedCounters::new(
            "t_total",
            [
                vec![("result", "a".to_owned())],
                vec![("result", "b".to_owned())],
            ],
        );
        let first = DebuggingRecorder::new();
        metrics::with_local_recorder(&first, || {
            c.increment(0, 2);
            c.increment(1, 1);
            c.increment(0, 1);
            c.increment(7, 1); // ignored
        });
        let second = DebuggingRecorder::new();
        metrics::with_local_recorder(&second, || c.increment(1, 5));
        assert_eq!(value(&first, "a"), 3);
        assert_eq!(value(&second, "b"), 5);
    }
}
