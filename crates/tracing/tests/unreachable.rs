//! An unreachable collector: spans are dropped with a warning; the service is unaffected.
//! (Alone in its binary: it installs a global subscriber, since exports run on the SDK's thread.)
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use nilecare_tracing::{TracingConfig, init};

#[test]
fn export_failures_are_warned_about_not_felt() {
    let guard = init(
        &TracingConfig::new("dead-collector")
            .endpoint("http://127.0.0.1:9")
            .export_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let (dispatch, _log_guard, logs) = support::logged(&guard);
    tracing::dispatcher::set_global_default(dispatch).unwrap();

    let started = Instant::now();
    for i in 0..500 {
        let _s = tracing::info_span!("request", i).entered();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "spans waited for the exporter"
    );
    guard.flush();
    let warnings: Vec<_> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("opentelemetry"))
        })
        .collect();
    assert!(
        !warnings.is_empty(),
        "no warning about the failed export: {}",
        logs.text()
    );
    assert!(
        warnings.len() <= 5,
        "one warning per failed export, not per span: {warnings:#?}"
    );
    drop(guard);
}
