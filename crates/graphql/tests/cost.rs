//! Rate limiting by complexity: a big query spends more of the caller's budget than a small
//! one, over budget is 429 with `Retry-After`, callers have separate budgets, instances share
//! them on Redis, and a Redis outage fails open.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use nilecare_graphql::{CostKey, CostLimit};
use nilecare_rate_limit::{MemoryLimiter, Policy, Quota, RateLimiter, RedisLimiter};
use nilecare_redis::{ReconnectPolicy, RedisConfig, connect};
use nilecare_test_support::RedisServer;
use nilecare_test_support::http::serve;
use serde_json::json;
use support::{TestSchema, Writes, app, builder, post};

/// 100 complexity units a minute.
fn policy() -> Policy {
    Policy::new("graphql", Quota::per_minute(100).unwrap()).unwrap()
}

fn schema<L: RateLimiter>(limiter: L) -> TestSchema {
    builder(&Writes::default())
        .extension(CostLimit::new(limiter, policy()))
        .finish()
}

/// `{ items(n: 3) { id name price } }`: complexity 4 (the list field and its three fields).
const BIG: &str = "{ items(n: 3) { id name price } }";

async fn run(schema: &TestSchema, query: &str, caller: &str) -> async_graphql::Response {
    schema
        .execute(async_graphql::Request::new(query).data(CostKey::new(caller)))
        .await
}

#[tokio::test]
async fn complexity_is_charged_and_over_budget_is_rate_limited() {
    let schema = schema(MemoryLimiter::new());
    // 100 units: 25 queries of complexity 4.
    for i in 0..25 {
        assert!(
            run(&schema, BIG, "alice").await.errors.is_empty(),
            "query {i}"
        );
    }
    let refused = run(&schema, BIG, "alice").await;
    assert_eq!(refused.errors.len(), 1);
    assert_eq!(
        nilecare_graphql::error_code(&refused.errors[0]),
        Some("RATE_LIMITED")
    );
    assert!(
        matches!(refused.data, async_graphql::Value::Null),
        "nothing executed"
    );
    // Another caller has a budget of its own.
    assert!(run(&schema, BIG, "bob").await.errors.is_empty());
}

#[tokio::test]
async fn a_small_query_costs_less_than_a_big_one() {
    let schema = schema(MemoryLimiter::new());
    // Complexity 1: 100 of them fit where only 25 big ones did.
    for i in 0..100 {
        assert!(
            run(&schema, "{ hello }", "carol").await.errors.is_empty(),
            "query {i}"
        );
    }
    assert!(!run(&schema, "{ hello }", "carol").await.errors.is_empty());
}

#[tokio::test]
async fn an_invalid_document_costs_nothing() {
    let schema = schema(MemoryLimiter::new());
    for _ in 0..200 {
        assert!(
            !run(&schema, "{ nosuchfield }", "dave")
                .await
                .errors
                .is_empty()
        );
    }
    assert!(
        run(&schema, BIG, "dave").await.errors.is_empty(),
        "budget untouched"
    );
}

#[tokio::test]
async fn over_budget_over_http_is_429_with_retry_after() {
    let addr = serve(app(schema(MemoryLimiter::new()))).await;
    let body = json!({"query": BIG});
    for _ in 0..25 {
        assert_eq!(post(addr, None, &body).await.status, 200);
    }
    for accept in [None, Some("application/graphql-response+json")] {
        let response = post(addr, accept, &body).await;
        assert_eq!(response.status, 429, "{accept:?}");
        let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
        // A minute's window, plus the limiter's jitter.
        assert!((1..=90).contains(&retry), "retry after {retry}");
        let body = response.json();
        assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
        assert!(body.get("data").is_none());
    }
}

async fn redis_limiter(url: &str) -> RedisLimiter {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .with_command_timeout(Duration::from_millis(300))
        .with_reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ));
    RedisLimiter::new(connect(&config).await.unwrap())
        .with_timeout(Duration::from_millis(200))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_budget_on_redis_and_an_outage_fails_open() {
    let mut server = RedisServer::start();
    let first = schema(redis_limiter(&server.url()).await);
    let second = schema(redis_limiter(&server.url()).await);
    // 13 + 12 big queries across two instances spend the 100 units.
    for i in 0..25 {
        let instance = if i % 2 == 0 { &first } else { &second };
        assert!(
            run(instance, BIG, "erin").await.errors.is_empty(),
            "query {i}"
        );
    }
    for instance in [&first, &second] {
        let refused = run(instance, BIG, "erin").await;
        assert_eq!(
            nilecare_graphql::error_code(&refused.errors[0]),
            Some("RATE_LIMITED")
        );
    }
    server.kill();
    // Fail open: the operation runs while the limiter cannot answer, and each call returns
    // within the limiter's timeout (plus the operation).
    let started = std::time::Instant::now();
    let response = run(&first, BIG, "erin").await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
