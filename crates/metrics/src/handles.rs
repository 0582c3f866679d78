//! [`CachedCounters`] and [`CachedHistograms`]: metric handles kept across calls, for hot
//! paths in library crates.

use std::sync::OnceLock;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};

/// Where cached registrations come from (the `metrics` metadata of the handles).
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The address of the recorder `metrics` would use right now.
pub(crate) fn current_recorder() -> usize {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>() as usize)
}

/// A kind of handle a recorder registers.
trait Register: Sized {
    fn register(recorder: &dyn Recorder, key: &Key) -> Self;
}

impl Register for Counter {
    fn register(recorder: &dyn Recorder, key: &Key) -> Self {
        recorder.register_counter(key, &METADATA)
    }
}

impl Register for Histogram {
    fn register(recorder: &dyn Recorder, key: &Key) -> Self {
        recorder.register_histogram(key, &METADATA)
    }
}

/// `N` handles of one metric (one per label set), with the recorder that issued them.
#[derive(Debug)]
struct Cached<H> {
    keys: Box<[Key]>,
    handles: OnceLock<(usize, Box<[H]>)>,
}

impl<H: Register> Cached<H> {
    fn new(
        name: &'static str,
        label_sets: impl IntoIterator<Item = Vec<(&'static str, String)>>,
    ) -> Self {
        Cached {
            keys: label_sets
                .into_iter()
                .map(|labels| {
                    Key::from_parts(
                        name,
                        labels
                            .into_iter()
                            .map(|(k, v)| Label::new(k, v))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
            handles: OnceLock::new(),
        }
    }

    /// Runs `f` on handle `index` of the current recorder (out-of-range indices are ignored).
    #[inline]
    fn with(&self, index: usize, f: impl FnOnce(&H)) {
        if index >= self.keys.len() {
            return;
        }
        let recorder = current_recorder();
        match self.handles.get() {
            Some((id, handles)) if *id == recorder => f(&handles[index]),
            _ => {
                let handles: Box<[H]> = metrics::with_recorder(|r| {
                    self.keys.iter().map(|key| H::register(r, key)).collect()
                });
                f(&handles[index]);
                let _ = self.handles.set((recorder, handles));
            }
        }
    }
}

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
pub struct CachedCounters<const N: usize>(Cached<Counter>);

impl<const N: usize> CachedCounters<N> {
    /// Counters named `name`, one per label set.
    pub fn new(name: &'static str, label_sets: [Vec<(&'static str, String)>; N]) -> Self {
        CachedCounters(Cached::new(name, label_sets))
    }

    /// Adds `n` to counter `index` (out-of-range indices are ignored).
    #[inline]
    pub fn increment(&self, index: usize, n: u64) {
        self.0.with(index, |c| c.increment(n));
    }
}

/// Like [`CachedCounters`], with the label sets known only at run time (e.g. one per
/// configured API version).
///
/// ```
/// use nilecare_metrics::CounterSet;
///
/// let versions = ["v1", "v2"];
/// let requests = CounterSet::new(
///     "nilecare_versioning_requests_total",
///     versions.iter().map(|v| vec![("version", (*v).to_owned())]),
/// );
/// requests.increment(1, 1); // one v2 request
/// ```
#[derive(Debug)]
pub struct CounterSet(Cached<Counter>);

impl CounterSet {
    /// Counters named `name`, one per label set, in order.
    pub fn new(
        name: &'static str,
        label_sets: impl IntoIterator<Item = Vec<(&'static str, String)>>,
    ) -> Self {
        CounterSet(Cached::new(name, label_sets))
    }

    /// Adds `n` to counter `index` (out-of-range indices are ignored).
    #[inline]
    pub fn increment(&self, index: usize, n: u64) {
        self.0.with(index, |c| c.increment(n));
    }
}

/// A fixed set of histograms (one name, `N` label sets) whose handles are looked up once per
/// recorder instead of on every sample: the histogram counterpart of [`CachedCounters`], with
/// the same rule for a recorder that changes.
///
/// ```
/// use nilecare_metrics::CachedHistograms;
///
/// let durations = CachedHistograms::new(
///     "nilecare_ratelimit_check_duration_seconds",
///     [vec![("policy", "api".to_owned()), ("backend", "redis".to_owned())]],
/// );
/// durations.record(0, 0.000_42);
/// ```
#[derive(Debug)]
pub struct CachedHistograms<const N: usize>(Cached<Histogram>);

impl<const N: usize> CachedHistograms<N> {
    /// Histograms named `name`, one per label set.
    pub fn new(name: &'static str, label_sets: [Vec<(&'static str, String)>; N]) -> Self {
        CachedHistograms(Cached::new(name, label_sets))
    }

    /// Records `value` in histogram `index` (out-of-range indices are ignored).
    #[inline]
    pub fn record(&self, index: usize, value: f64) {
        self.0.with(index, |h| h.record(value));
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

    /// Every histogram's samples by its `policy` label (a snapshot drains histograms).
    fn samples(recorder: &DebuggingRecorder) -> std::collections::BTreeMap<String, Vec<f64>> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(k, _, _, v)| match v {
                DebugValue::Histogram(values) => Some((
                    k.key()
                        .labels()
                        .find(|l| l.key() == "policy")
                        .map(|l| l.value().to_owned())
                        .unwrap_or_default(),
                    values.into_iter().map(|v| v.into_inner()).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn samples_reach_the_current_recorder_even_when_it_changes() {
        let h = CachedHistograms::new(
            "t_seconds",
            [
                vec![("policy", "a".to_owned())],
                vec![("policy", "b".to_owned())],
            ],
        );
        let first = DebuggingRecorder::new();
        metrics::with_local_recorder(&first, || {
            h.record(0, 0.5);
            h.record(1, 2.0);
            h.record(0, 1.5);
            h.record(9, 1.0); // ignored
        });
        let second = DebuggingRecorder::new();
        metrics::with_local_recorder(&second, || h.record(1, 3.0));
        let (first, second) = (samples(&first), samples(&second));
        assert_eq!(first["a"], vec![0.5, 1.5]);
        assert_eq!(first["b"], vec![2.0]);
        assert_eq!(second["b"], vec![3.0]);
        assert!(second.get("a").is_none_or(Vec::is_empty), "{second:?}");
    }
}
