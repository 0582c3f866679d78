//! The schema the tests run: a few fields, a list to make complexity, a failing field and a
//! mutation.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::{EmptySubscription, Object, Schema, SchemaBuilder, SimpleObject};

/// One row of `items`.
#[derive(SimpleObject)]
pub struct Item {
    pub id: u32,
    pub name: String,
    pub price: u32,
}

pub struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &'static str {
        "world"
    }

    /// `n` items (complexity: one per field asked, per the default).
    async fn items(&self, n: u32) -> Vec<Item> {
        (0..n)
            .map(|id| Item {
                id,
                name: format!("item {id}"),
                price: id * 10,
            })
            .collect()
    }

    async fn fail(&self) -> async_graphql::Result<Option<u32>> {
        Err(nilecare_graphql::problem_error(
            nilecare_error_handler::ApiError::not_found("no such thing"),
        ))
    }
}

/// Counts how many times the mutation ran.
#[derive(Clone, Default)]
pub struct Writes(pub Arc<AtomicU64>);

pub struct Mutation;

#[Object]
impl Mutation {
    async fn bump(&self, ctx: &async_graphql::Context<'_>) -> u64 {
        ctx.data::<Writes>()
            .unwrap()
            .0
            .fetch_add(1, Ordering::SeqCst)
            + 1
    }
}

pub type TestSchema = Schema<Query, Mutation, EmptySubscription>;

/// The builder with a depth limit and the write counter.
pub fn builder(writes: &Writes) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(5)
        .data(writes.clone())
}

/// The router serving `schema` at `/graphql`.
pub fn app(schema: TestSchema) -> axum::Router {
    axum::Router::new().route("/graphql", nilecare_graphql::http::graphql_route(schema))
}

/// A POST of `body` with JSON content type and `accept`.
pub async fn post(
    addr: std::net::SocketAddr,
    accept: Option<&str>,
    body: &serde_json::Value,
) -> nilecare_test_support::http::HttpResponse {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(accept) = accept {
        headers.push(("accept", accept));
    }
    nilecare_test_support::http::request(
        addr,
        "POST",
        "/graphql",
        &headers,
        body.to_string().as_bytes(),
    )
    .await
}
