//! Reading what a `metrics_util` debugging recorder captured: counters by name and labels, and
//! the values a label took (to check that a label stays bounded).

use metrics_util::debugging::{DebugValue, Snapshotter};

/// One snapshot of a debugging recorder.
pub type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Takes a snapshot (taking it drains the debugging recorder's counters).
pub fn snapshot(snapshotter: &Snapshotter) -> Snapshot {
    snapshotter.snapshot().into_vec()
}

/// The sum of the counters `name` carrying all of `labels` (other labels free); 0 when none.
pub fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter_map(|(key, _, _, value)| {
            let k = key.key();
            let matches = k.name() == name
                && labels
                    .iter()
                    .all(|(l, v)| k.labels().any(|lab| lab.key() == *l && lab.value() == *v));
            match (matches, value) {
                (true, DebugValue::Counter(n)) => Some(*n),
                _ => None,
            }
        })
        .sum()
}

/// The distinct values of `label` on metric `name`, sorted.
pub fn label_values(snapshot: &Snapshot, name: &str, label: &str) -> Vec<String> {
    let mut values: Vec<String> = snapshot
        .iter()
        .filter(|(key, ..)| key.key().name() == name)
        .filter_map(|(key, ..)| {
            key.key()
                .labels()
                .find(|l| l.key() == label)
                .map(|l| l.value().to_owned())
        })
        .collect();
    values.sort();
    values.dedup();
    values
}
