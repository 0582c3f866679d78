//! JSON lines: flat, ordered, redacted, filtered.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use nilecare_logger::{Error, Format, Logger, Rotation, TraceContext, Writer};
use support::{Buf, logger};

#[test]
fn span_and_event_fields_are_flattened_with_inner_fields_winning() {
    let buf = Buf::default();
    nilecare_test_support::logs::with_thread_default(logger(Format::Json, &buf), || {
        let outer = tracing::info_span!("request", request_id = "r-1", clinic = "clinic_7");
        let _o = outer.enter();
        let inner = tracing::info_span!("patient", clinic = "clinic_9", patient_id = 5u64);
        let _i = inner.enter();
        tracing::info!(
            cache = "hit",
            count = 3i64,
            ratio = 0.5,
            fresh = true,
            "loaded {}",
            "chart"
        );
    });
    let lines = buf.json_lines();
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["target"], "json");
    assert_eq!(l["message"], "loaded chart");
    assert_eq!(
        (
            l["service"].as_str(),
            l["version"].as_str(),
            l["environment"].as_str()
        ),
        (Some("svc"), Some("1.2.3"), Some("test"))
    );
    assert_eq!(l["request_id"], "r-1");
    assert_eq!(l["clinic"], "clinic_9", "the inner span wins");
    assert_eq!(l["patient_id"], 5);
    assert_eq!(
        (
            l["cache"].as_str(),
            l["count"].as_i64(),
            l["ratio"].as_f64(),
            l["fresh"].as_bool()
        ),
        (Some("hit"), Some(3), Some(0.5), Some(true))
    );
    let ts = l["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-11-21T09:02:32.123456Z".len(), "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    // fixed keys first, in this order
    let raw = buf.text();
    assert!(raw.starts_with("{\"timestamp\":"), "{raw}");
    assert!(
        raw.find("\"level\"") < raw.find("\"target\"")
            && raw.find("\"target\"") < raw.find("\"message\"")
    );
}

#[test]
fn sensitive_values_are_redacted_in_events_and_spans() {
    let buf = Buf::default();
    nilecare_test_support::logs::with_thread_default(logger(Format::Json, &buf), || {
        let span = tracing::info_span!("login", access_token = "tok-SECRET-1", user = "amina");
        let _e = span.enter();
        tracing::warn!(
            password = "pw-SECRET-2",
            Authorization = "Bearer SECRET-3",
            patient_ssn = "SECRET-4",
            "attempt"
        );
    });
    let raw = buf.text();
    for secret in ["SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4"] {
        assert!(!raw.contains(secret), "{secret} leaked: {raw}");
    }
    let l = &buf.json_lines()[0];
    for key in ["access_token", "password", "Authorization", "patient_ssn"] {
        assert_eq!(l[key], "[REDACTED]", "{key}");
    }
    assert_eq!(l["user"], "amina");
}

#[test]
fn recorded_span_fields_and_reserved_names() {
    let buf = Buf::default();
    nilecare_test_support::logs::with_thread_default(logger(Format::Json, &buf), || {
        let span = tracing::info_span!(
            "job",
            status = tracing::field::Empty,
            secret_key = tracing::field::Empty
        );
        span.record("status", "running");
        span.record("secret_key", "SECRET-5");
        let _e = span.enter();
        tracing::debug!(level = "custom", target = "x", "done");
        tracing::trace!("filtered out at debug");
    });
    let lines = buf.json_lines();
    assert_eq!(lines.len(), 1, "the trace event passed the filter");
    let l = &lines[0];
    assert_eq!(l["status"], "running");
    assert_eq!(l["secret_key"], "[REDACTED]");
    assert_eq!(l["level"], "DEBUG");
    assert_eq!(l["field.level"], "custom");
    assert_eq!(l["field.target"], "x");
}

#[test]
fn trace_ids_come_from_the_registered_provider() {
    fn provider() -> Option<TraceContext> {
        Some(TraceContext::new(
            [
                0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80,
                0x31, 0x9c,
            ],
            [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31],
        ))
    }
    nilecare_logger::set_trace_context_provider(provider);
    let buf = Buf::default();
    nilecare_test_support::logs::with_thread_default(logger(Format::Json, &buf), || {
        tracing::info!("traced")
    });
    let l = &buf.json_lines()[0];
    assert_eq!(l["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(l["span_id"], "b7ad6b7169203331");
}

#[test]
fn pretty_output_redacts_too() {
    let buf = Buf::default();
    nilecare_test_support::logs::with_thread_default(logger(Format::Pretty, &buf), || {
        let span = tracing::info_span!("req", api_key = "SECRET-6", clinic = "c7");
        let _e = span.enter();
        tracing::info!(password = "SECRET-7", patient = 9, "hello");
    });
    let text = buf.text();
    assert!(
        !text.contains("SECRET-6") && !text.contains("SECRET-7"),
        "{text}"
    );
    assert!(
        text.contains("password=[REDACTED]") && text.contains("api_key=[REDACTED]"),
        "{text}"
    );
    assert!(
        text.contains("hello") && text.contains("patient=9") && text.contains("clinic"),
        "{text}"
    );
}

/// A filter with a span directive admits an event by the span it happens in (the filter tracks
/// spans); one with targets and levels only decides by target and level alone.
#[test]
fn span_directives_admit_events_inside_the_named_span_only() {
    for (directives, inside, outside) in [
        ("warn,[job]=debug", true, false),
        ("warn,json=debug", true, true),
        ("warn", false, false),
    ] {
        let buf = Buf::default();
        let (dispatch, _guard) = Logger::builder()
            .filter(directives)
            .ignore_rust_log()
            .format(Format::Json)
            .writer(Writer::Custom(
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(buf.clone()),
            ))
            .build()
            .unwrap();
        nilecare_test_support::logs::with_thread_default(dispatch, || {
            tracing::debug!("outside");
            let job = tracing::info_span!("job", id = 7u64);
            job.in_scope(|| tracing::debug!("inside"));
            tracing::debug!("after");
        });
        let messages: Vec<String> = buf
            .json_lines()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect();
        let mut expected = Vec::new();
        if outside {
            expected.push("outside");
        }
        if inside {
            expected.push("inside");
        }
        if outside {
            expected.push("after");
        }
        assert_eq!(messages, expected, "filter {directives:?}");
    }
}

#[test]
fn bad_filters_are_errors_naming_the_field() {
    let err = Logger::builder()
        .filter("info,=[[")
        .ignore_rust_log()
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "filter",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_file_writer_flushes_when_the_guard_drops() {
    let dir = std::env::temp_dir().join(format!("nilecare-logger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (dispatch, guard) = Logger::builder()
        .format(Format::Json)
        .ignore_rust_log()
        .writer(Writer::File {
            directory: dir.clone(),
            prefix: "svc.log".into(),
            rotation: Rotation::Never,
        })
        .build()
        .unwrap();
    nilecare_test_support::logs::with_thread_default(dispatch, || {
        for i in 0..1_000 {
            tracing::info!(i, "line");
        }
    });
    drop(guard);
    let text = std::fs::read_to_string(dir.join("svc.log")).unwrap();
    assert_eq!(text.lines().count(), 1_000);
    let _ = std::fs::remove_dir_all(&dir);
}
