//! The operation's server span as a real OTLP receiver gets it (GraphQL semantic conventions).
//! Its own test binary: with plain `cargo test`, tests of one binary run on parallel threads,
//! and the other tests' schemas would register the same span callsites concurrently.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use nilecare_graphql::Observability;
use support::{Writes, builder};

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
