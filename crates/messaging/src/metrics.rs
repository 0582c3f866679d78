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

/// `result`: `ok`, `duplicate` (dropped by the dedup window) or `error`.
pub(crate) fn published(topic: &str, result: &'static str) {
    metrics::counter!(PUBLISHED_TOTAL, "topic" => topic.to_owned(), "result" => result)
        .increment(1);
}

pub(crate) fn settled(topic: &str, group: &str, result: &'static str) {
    metrics::counter!(SETTLED_TOTAL, "topic" => topic.to_owned(), "group" => group.to_owned(), "result" => result)
        .increment(1);
}

pub(crate) fn handled(topic: &str, group: &str, took: Duration) {
    metrics::histogram!(HANDLER_DURATION_SECONDS, "topic" => topic.to_owned(), "group" => group.to_owned())
        .record(took.as_secs_f64());
}

pub(crate) fn reclaimed(topic: &str, group: &str, n: usize) {
    metrics::counter!(RECLAIMED_TOTAL, "topic" => topic.to_owned(), "group" => group.to_owned())
        .increment(n as u64);
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
