//! Persisted queries: automatic (register by hash + document, then send the hash only), shared
//! between instances through a Redis cache, and an allow-list that runs nothing else.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::atomic::Ordering;

use nilecare_cache::{AnyStore, Cache, MemoryStore, RedisStore};
use nilecare_graphql::{PersistedQueries, query_hash};
use nilecare_redis::{RedisConfig, connect};
use nilecare_test_support::RedisServer;
use nilecare_test_support::http::{request, serve};
use serde_json::{Value, json};
use support::{TestSchema, Writes, app, builder, post};

fn memory_cache() -> Cache {
    Cache::builder()
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap()
}

fn with(pq: PersistedQueries, writes: &Writes) -> TestSchema {
    builder(writes).extension(pq).finish()
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

const QUERY: &str = "{ items(n: 2) { id } }";

#[tokio::test]
async fn a_hash_runs_once_its_document_was_registered() {
    let addr = serve(app(with(
        PersistedQueries::automatic(memory_cache()),
        &Writes::default(),
    )))
    .await;
    let hash = query_hash(QUERY);
    // Unknown hash: the client is told to send the document.
    let unknown = post(addr, None, &json!({"extensions": persisted(&hash)})).await;
    assert_eq!(unknown.status, 200);
    let body = unknown.json();
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    // Document and hash: it runs and is registered.
    let registered = post(
        addr,
        None,
        &json!({"query": QUERY, "extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(
        registered.json(),
        json!({"data": {"items": [{"id": 0}, {"id": 1}]}})
    );
    // The hash alone now runs it, over POST and over GET.
    let by_hash = post(addr, None, &json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        by_hash.json(),
        json!({"data": {"items": [{"id": 0}, {"id": 1}]}})
    );
    let extensions = persisted(&hash).to_string();
    let query_string = serde_urlencoded::to_string([("extensions", extensions.as_str())]).unwrap();
    let get = request(addr, "GET", &format!("/graphql?{query_string}"), &[], b"").await;
    assert_eq!(
        get.json(),
        json!({"data": {"items": [{"id": 0}, {"id": 1}]}})
    );
}

#[tokio::test]
async fn a_hash_that_is_not_the_documents_is_refused() {
    let schema = with(
        PersistedQueries::automatic(memory_cache()),
        &Writes::default(),
    );
    let wrong = query_hash("{ hello }");
    let request = async_graphql::Request::new(QUERY);
    let mut request = request;
    request.extensions.insert(
        "persistedQuery".into(),
        async_graphql::Value::from_json(persisted(&wrong)["persistedQuery"].clone()).unwrap(),
    );
    let response = schema.execute(request).await;
    assert_eq!(
        response.errors[0].message,
        "provided sha does not match query"
    );
    // Nothing was registered under the wrong hash.
    let mut lookup = async_graphql::Request::new("");
    lookup.extensions.insert(
        "persistedQuery".into(),
        async_graphql::Value::from_json(persisted(&wrong)["persistedQuery"].clone()).unwrap(),
    );
    let response = schema.execute(lookup).await;
    assert_eq!(
        nilecare_graphql::error_code(&response.errors[0]),
        Some("PERSISTED_QUERY_NOT_FOUND")
    );
}

#[tokio::test]
async fn a_malformed_persisted_query_extension_names_its_field() {
    let addr = serve(app(with(
        PersistedQueries::automatic(memory_cache()),
        &Writes::default(),
    )))
    .await;
    for (extension, field) in [
        (json!({"persistedQuery": "abc"}), "persistedQuery"),
        (
            json!({"persistedQuery": {"version": 2, "sha256Hash": query_hash(QUERY)}}),
            "version",
        ),
        (
            json!({"persistedQuery": {"version": 1, "sha256Hash": "../../etc"}}),
            "sha256Hash",
        ),
        (json!({"persistedQuery": {"version": 1}}), "sha256Hash"),
    ] {
        let response = post(addr, None, &json!({"extensions": extension})).await;
        let body = response.json();
        let message = body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(field),
            "{extension} should name {field}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    }
}

#[tokio::test]
async fn a_stored_mutation_cannot_run_by_hash_over_get() {
    let writes = Writes::default();
    let addr = serve(app(with(
        PersistedQueries::automatic(memory_cache()),
        &writes,
    )))
    .await;
    let mutation = "mutation { bump }";
    let hash = query_hash(mutation);
    let registered = post(
        addr,
        None,
        &json!({"query": mutation, "extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(registered.json(), json!({"data": {"bump": 1}}));
    let extensions = persisted(&hash).to_string();
    let query_string = serde_urlencoded::to_string([("extensions", extensions.as_str())]).unwrap();
    let get = request(addr, "GET", &format!("/graphql?{query_string}"), &[], b"").await;
    assert_eq!(get.status, 405, "{}", get.text());
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(writes.0.load(Ordering::SeqCst), 1, "the GET did not write");
}

#[tokio::test]
async fn the_allow_list_runs_only_its_documents() {
    let pq = PersistedQueries::allow_list(["{ hello }", QUERY]).unwrap();
    let addr = serve(app(with(pq, &Writes::default()))).await;
    // By hash or by text: listed documents run.
    let by_hash = post(
        addr,
        None,
        &json!({"extensions": persisted(&query_hash("{ hello }"))}),
    )
    .await;
    assert_eq!(by_hash.json(), json!({"data": {"hello": "world"}}));
    let by_text = post(addr, None, &json!({"query": QUERY})).await;
    assert_eq!(by_text.json()["data"]["items"][1]["id"], 1);
    // Anything else is refused before it is parsed, even with a matching hash.
    for body in [
        json!({"query": "{ items(n: 1000) { id name price } }"}),
        json!({"query": "{ hello hello }", "extensions": persisted(&query_hash("{ hello hello }"))}),
        json!({"extensions": persisted(&query_hash("{ other }"))}),
    ] {
        let refused = post(addr, Some("application/graphql-response+json"), &body).await;
        assert_eq!(refused.status, 400, "{body}");
        assert_eq!(
            refused.json()["errors"][0]["extensions"]["code"],
            "PERSISTED_QUERY_NOT_ALLOWED"
        );
    }
    // A list with a document that does not parse is a configuration error naming the field.
    let error = PersistedQueries::allow_list(["{ hello"]).unwrap_err();
    assert!(error.to_string().contains("query"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_registered_documents_through_redis() {
    let server = RedisServer::start();
    let cache = || async {
        let pool = connect(&RedisConfig::from_url(&server.url()).unwrap())
            .await
            .unwrap();
        Cache::builder()
            .build(AnyStore::from(RedisStore::new(pool)))
            .unwrap()
    };
    let first = serve(app(with(
        PersistedQueries::automatic(cache().await),
        &Writes::default(),
    )))
    .await;
    let second = serve(app(with(
        PersistedQueries::automatic(cache().await),
        &Writes::default(),
    )))
    .await;
    let hash = query_hash(QUERY);
    post(
        first,
        None,
        &json!({"query": QUERY, "extensions": persisted(&hash)}),
    )
    .await;
    let elsewhere = post(second, None, &json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        elsewhere.json(),
        json!({"data": {"items": [{"id": 0}, {"id": 1}]}})
    );
}
