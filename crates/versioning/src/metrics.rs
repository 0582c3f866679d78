//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_versioning_requests_total` | counter | `version` = a supported version (`v1`, `v2`, ...) or `unsupported`, `source` = `url` / `header` / `accept` / `default` / `none` |

use nilecare_metrics::CounterSet;

use crate::negotiate::Source;
use crate::version::ApiVersion;

/// The name, defined once in nilecare-metrics' catalogue (with its type, labels and help).
pub use nilecare_metrics::names::versioning::REQUESTS_TOTAL;

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-versioning");
}

const SOURCES: [Source; 4] = [Source::Url, Source::Header, Source::Accept, Source::Default];

/// One counter per (supported version, source) and one for unsupported requests, their
/// handles cached per recorder (a registry lookup per request costs as much as the layer).
#[derive(Debug)]
pub(crate) struct Counters {
    set: CounterSet,
    versions: Vec<ApiVersion>,
}

impl Counters {
    pub(crate) fn new(versions: &[ApiVersion]) -> Self {
        let labels = |version: String, source: &'static str| {
            vec![("version", version), ("source", source.to_owned())]
        };
        let label_sets = versions
            .iter()
            .flat_map(|v| SOURCES.iter().map(move |s| labels(v.label(), s.label())))
            .chain([labels("unsupported".into(), "none")]);
        Counters {
            set: CounterSet::new(REQUESTS_TOTAL, label_sets),
            versions: versions.to_vec(),
        }
    }

    pub(crate) fn negotiated(&self, version: ApiVersion, source: Source) {
        let v = self
            .versions
            .iter()
            .position(|x| *x == version)
            .unwrap_or(0);
        let s = SOURCES.iter().position(|x| *x == source).unwrap_or(0);
        self.set.increment(v * SOURCES.len() + s, 1);
    }

    pub(crate) fn unsupported(&self) {
        self.set.increment(self.versions.len() * SOURCES.len(), 1);
    }
}
