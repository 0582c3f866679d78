//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_versioning_requests_total` | counter | `version` = a supported version (`v1`, `v2`, ...) or `unsupported`, `source` = `url` / `header` / `accept` / `default` / `none` |

use std::sync::OnceLock;

use metrics::{Counter, Key, Label};

use crate::negotiate::Source;
use crate::version::ApiVersion;

/// The name, defined once in nilecare-metrics' catalogue (with its type, labels and help).
pub use nilecare_metrics::names::versioning::REQUESTS_TOTAL;

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-versioning");
}

const SOURCES: [Source; 4] = [Source::Url, Source::Header, Source::Accept, Source::Default];

/// One counter handle per (supported version, source) and one for unsupported requests,
/// registered once per recorder (a registry lookup per request costs as much as the layer).
#[derive(Debug)]
pub(crate) struct Counters {
    keys: Vec<Key>,
    versions: Vec<ApiVersion>,
    handles: OnceLock<(usize, Vec<Counter>)>,
}

fn recorder_id() -> usize {
    metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>() as usize)
}

impl Counters {
    pub(crate) fn new(versions: &[ApiVersion]) -> Self {
        let key = |version: String, source: &'static str| {
            Key::from_parts(
                REQUESTS_TOTAL,
                vec![Label::new("version", version), Label::new("source", source)],
            )
        };
        let mut keys: Vec<Key> = versions
            .iter()
            .flat_map(|v| SOURCES.iter().map(move |s| key(v.label(), s.label())))
            .collect();
        keys.push(key("unsupported".into(), "none"));
        Counters {
            keys,
            versions: versions.to_vec(),
            handles: OnceLock::new(),
        }
    }

    fn increment(&self, index: usize) {
        let recorder = recorder_id();
        match self.handles.get() {
            Some((id, handles)) if *id == recorder => handles[index].increment(1),
            _ => {
                static METADATA: metrics::Metadata<'static> =
                    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
                let handles: Vec<Counter> = metrics::with_recorder(|r| {
                    self.keys
                        .iter()
                        .map(|k| r.register_counter(k, &METADATA))
                        .collect()
                });
                handles[index].increment(1);
                let _ = self.handles.set((recorder, handles));
            }
        }
    }

    pub(crate) fn negotiated(&self, version: ApiVersion, source: Source) {
        let v = self
            .versions
            .iter()
            .position(|x| *x == version)
            .unwrap_or(0);
        let s = SOURCES.iter().position(|x| *x == source).unwrap_or(0);
        self.increment(v * SOURCES.len() + s);
    }

    pub(crate) fn unsupported(&self) {
        self.increment(self.keys.len() - 1);
    }
}
