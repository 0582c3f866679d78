//! Per-operation metrics with bounded operation names, and the operation's server span as an
//! OTLP collector receives it (GraphQL semantic conventions).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_exports_a_server_span_with_the_graphql_conventions() {
    let (collector, spans) = nilecare_test_support::otlp::collector().await;
    let guard = nilecare_tracing::init(
        &nilecare_tracing::TracingConfig::new("graphql-test")
            .endpoint(format!("http://{collector}")),
    )
    .unwrap();
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::registry(),
        guard.layer(),
    );
    let _default = tracing::subscriber::set_default(subscriber);
    let plain = builder(&Writes::default())
        .extension(Observability::default())
        .finish();
    let named = builder(&Writes::default())
        .extension(
            Observability::default()
                .name_spans_by_operation(true)
                .record_document(true),
        )
        .finish();

    assert!(
        plain
            .execute("query Patients { hello }")
            .await
            .errors
            .is_empty()
    );
    assert!(
        !plain
            .execute("query Broken { fail }")
            .await
            .errors
            .is_empty()
    );
    assert!(!plain.execute("{").await.errors.is_empty());
    let with_variable =
        async_graphql::Request::new("query Items($n: Int!) { items(n: $n) { id } }").variables(
            async_graphql::Variables::from_json(serde_json::json!({"n": 424242})),
        );
    assert!(named.execute(with_variable).await.errors.is_empty());
    guard.flush();

    let graphql_spans = || -> Vec<nilecare_test_support::otlp::Received> {
        spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| {
                s.attributes.contains_key("graphql.operation.type") || s.name == "GraphQL Operation"
            })
            .cloned()
            .collect()
    };
    let exported = nilecare_test_support::eventually(std::time::Duration::from_secs(5), || {
        let n = graphql_spans().len();
        async move { n >= 4 }
    })
    .await;
    assert!(
        exported,
        "four GraphQL spans exported: {:?}",
        spans.lock().unwrap()
    );
    let graphql = graphql_spans();
    let by = |f: &dyn Fn(&nilecare_test_support::otlp::Received) -> bool| {
        graphql.iter().find(|s| f(s)).cloned().unwrap()
    };
    let ok = by(&|s| {
        s.attributes
            .get("graphql.operation.name")
            .map(String::as_str)
            == Some("Patients")
    });
    assert_eq!(ok.name, "query");
    assert_eq!(ok.kind, nilecare_test_support::otlp::KIND_SERVER);
    assert_eq!(ok.attributes["graphql.operation.type"], "query");
    assert!(
        !ok.attributes.contains_key("graphql.document"),
        "document only when asked"
    );
    assert_ne!(ok.status, nilecare_test_support::otlp::STATUS_ERROR);

    let failed = by(&|s| {
        s.attributes
            .get("graphql.operation.name")
            .map(String::as_str)
            == Some("Broken")
    });
    assert_eq!(failed.status, nilecare_test_support::otlp::STATUS_ERROR);
    assert_eq!(failed.attributes["error.type"], "NOT_FOUND");

    let unparsable = by(&|s| s.name == "GraphQL Operation");
    assert_eq!(unparsable.status, nilecare_test_support::otlp::STATUS_ERROR);

    let described = by(&|s| {
        s.attributes
            .get("graphql.operation.name")
            .map(String::as_str)
            == Some("Items")
    });
    assert_eq!(described.name, "query Items");
    let document = &described.attributes["graphql.document"];
    assert!(document.contains("items"), "{document}");
    assert!(
        !document.contains("424242"),
        "variable values are never recorded: {document}"
    );
}
