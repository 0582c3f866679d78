//! Per-operation metrics with bounded operation names (the spans are checked in `spans.rs`,
//! a binary of its own: a thread's tracing subscriber must not see other tests' spans).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use metrics_util::debugging::DebuggingRecorder;
use nilecare_graphql::metrics::{OPERATION_DURATION_SECONDS, OPERATIONS_TOTAL};
use nilecare_graphql::{Observability, OperationLabels};
use nilecare_test_support::metrics::{counter, label_values, snapshot};
use support::{Writes, builder};

#[tokio::test(flavor = "current_thread")]
async fn results_are_counted_per_operation_type_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let labels = OperationLabels::new(5).min_operations(1);
    let schema = builder(&Writes::default())
        .extension(Observability::new(labels))
        .finish();

    for _ in 0..3 {
        assert!(
            schema
                .execute("query Hello { hello }")
                .await
                .errors
                .is_empty()
        );
    }
    assert!(
        !schema
            .execute("query Broken { hello fail }")
            .await
            .errors
            .is_empty()
    );
    assert!(
        !schema
            .execute("query Invalid { nosuchfield }")
            .await
            .errors
            .is_empty()
    );
    assert!(
        schema
            .execute("mutation Bump { bump }")
            .await
            .errors
            .is_empty()
    );
    assert!(!schema.execute("{").await.errors.is_empty());

    let snap = snapshot(&snapshotter);
    let ops = |labels: &[(&str, &str)]| counter(&snap, OPERATIONS_TOTAL, labels);
    assert_eq!(
        ops(&[("operation", "Hello"), ("type", "query"), ("result", "ok")]),
        3
    );
    assert_eq!(
        ops(&[
            ("operation", "Broken"),
            ("type", "query"),
            ("result", "error")
        ]),
        1
    );
    assert_eq!(
        ops(&[
            ("operation", "Invalid"),
            ("type", "query"),
            ("result", "rejected")
        ]),
        1
    );
    assert_eq!(
        ops(&[
            ("operation", "Bump"),
            ("type", "mutation"),
            ("result", "ok")
        ]),
        1
    );
    // A document that does not parse has no known operation.
    assert_eq!(
        ops(&[
            ("operation", "other"),
            ("type", "unknown"),
            ("result", "rejected")
        ]),
        1
    );
    let durations = snap
        .iter()
        .filter(|(key, ..)| key.key().name() == OPERATION_DURATION_SECONDS)
        .count();
    assert!(
        durations >= 4,
        "a duration histogram per operation and type"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn made_up_operation_names_cannot_mint_series() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let max = 4;
    let schema = builder(&Writes::default())
        .extension(Observability::new(OperationLabels::new(max)))
        .finish();
    // Real traffic: a few named operations, each many times.
    for round in 0..20 {
        for name in ["Patients", "Patient", "Appointments"] {
            let response = schema.execute(format!("query {name} {{ hello }}")).await;
            assert!(response.errors.is_empty(), "round {round}");
        }
    }
    // An attacker: 1 000 distinct names, once each; anonymous operations too.
    for i in 0..1_000 {
        schema.execute(format!("query Made{i} {{ hello }}")).await;
        schema.execute("{ hello }").await;
    }
    let snap = snapshot(&snapshotter);
    let names = label_values(&snap, OPERATIONS_TOTAL, "operation");
    assert!(
        names.len() <= max + 1,
        "at most {max} names and other: {names:?}"
    );
    for busy in ["Patients", "Patient", "Appointments", "other"] {
        assert!(
            names.contains(&busy.to_owned()),
            "{busy} is tracked: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.starts_with("Made")), "{names:?}");
}
