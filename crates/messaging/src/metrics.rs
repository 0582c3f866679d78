//! Metric names and recording (through the `metrics` facade).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `nilecare_messaging_published_total` | counter | `topic`, `result` = `ok` / `error` |
//! | `nilecare_messaging_settled_total` | counter | `topic`, `group`, `result` = `acked` / `retried` / `dead_lettered` |
//! | `nilecare_messaging_handler_duration_seconds` | histogram | `topic`, `group` |
//! | `nilecare_messaging_reclaimed_total` | counter | `topic`, `group` |
//! | `nilecare_messaging_pending_messages` | gauge | `topic`, `group` (every 5 s by each running consumer) |
//! | `nilecare_messaging_lag_messages` | gauge | `topic`, `group` |
//! | `nilecare_messaging_dead_letters` | gauge | `topic`, `group` |
//! | `nilecare_messaging_sagas_total` | counter | `saga`, `result` = `started` / `completed` / `compensated` / `failed` |
//!
//! Topics and groups are names the application chooses in code (bounded).

use std::time::Duration;

/// The names, defined once in nilecare-metrics' catalogue.
pub use nilecare_metrics::names::messaging::{
    DEAD_LETTERS, HANDLER_DURATION_SECONDS, LAG_MESSAGES, PENDING_MESSAGES, PUBLISHED_TOTAL,
    RECLAIMED_TOTAL, SAGAS_TOTAL, SETTLED_TOTAL,
};

/// Registers the metric descriptions with the installed recorder.
pub fn describe() {
    nilecare_metrics::catalogue::describe_emitted_by("nilecare-messaging");
}

/// How a publish ended: the index into [`PublishMetrics`]' counters of a topic.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PublishResult {
    Ok = 0,
    /// Dropped by the dedup window.
    Duplicate = 1,
    Error = 2,
}

/// A publisher's counters, one set per topic it published to, looked up once per recorder
/// (topics are names in the application's code: bounded).
#[derive(Debug, Default)]
pub(crate) struct PublishMetrics {
    topics: std::sync::RwLock<
        std::collections::HashMap<String, std::sync::Arc<nilecare_metrics::CachedCounters<3>>>,
    >,
}

impl PublishMetrics {
    pub(crate) fn published(&self, topic: &str, result: PublishResult) {
        let found = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
            .cloned();
        let counters = found.unwrap_or_else(|| {
            let labels =
                |result: &str| vec![("topic", topic.to_owned()), ("result", result.to_owned())];
            let counters = std::sync::Arc::new(nilecare_metrics::CachedCounters::new(
                PUBLISHED_TOTAL,
                [labels("ok"), labels("duplicate"), labels("error")],
            ));
            self.topics
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(topic.to_owned())
                .or_insert(counters)
                .clone()
        });
        counters.increment(result as usize, 1);
    }
}

/// How a message was settled: the index into [`ConsumerMetrics`]' settled counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Settled {
    Acked = 0,
    Retried = 1,
    DeadLettered = 2,
}

/// One consumer's metric handles, looked up once per recorder instead of on every message
/// (no label strings built per message).
#[derive(Debug)]
pub(crate) struct ConsumerMetrics {
    settled: nilecare_metrics::CachedCounters<3>,
    reclaimed: nilecare_metrics::CachedCounters<1>,
    handled: nilecare_metrics::CachedHistograms<1>,
}

impl ConsumerMetrics {
    pub(crate) fn new(topic: &str, group: &str) -> Self {
        let labels = |result: Option<&'static str>| {
            let mut labels = vec![("topic", topic.to_owned()), ("group", group.to_owned())];
            labels.extend(result.map(|r| ("result", r.to_owned())));
            labels
        };
        ConsumerMetrics {
            settled: nilecare_metrics::CachedCounters::new(
                SETTLED_TOTAL,
                [
                    labels(Some("acked")),
                    labels(Some("retried")),
                    labels(Some("dead_lettered")),
                ],
            ),
            reclaimed: nilecare_metrics::CachedCounters::new(RECLAIMED_TOTAL, [labels(None)]),
            handled: nilecare_metrics::CachedHistograms::new(
                HANDLER_DURATION_SECONDS,
                [labels(None)],
            ),
        }
    }

    pub(crate) fn settled(&self, how: Settled) {
        self.settled_many(how, 1);
    }

    pub(crate) fn settled_many(&self, how: Settled, n: usize) {
        self.settled.increment(how as usize, n as u64);
    }

    pub(crate) fn handled(&self, took: Duration) {
        self.handled.record(0, took.as_secs_f64());
    }

    pub(crate) fn reclaimed(&self, n: usize) {
        self.reclaimed.increment(0, n as u64);
    }
}

pub(crate) fn backlog(topic: &str, group: &str, backlog: crate::store::Backlog) {
    let labels = [("topic", topic.to_owned()), ("group", group.to_owned())];
    metrics::gauge!(PENDING_MESSAGES, &labels).set(backlog.pending as f64);
    metrics::gauge!(LAG_MESSAGES, &labels).set(backlog.lag as f64);
    metrics::gauge!(DEAD_LETTERS, &labels).set(backlog.dead_letters as f64);
}

pub(crate) fn saga(saga: &str, result: &'static str) {
    metrics::counter!(SAGAS_TOTAL, "saga" => saga.to_owned(), "result" => result).increment(1);
}
