//! GraphQL over HTTP through `graphql_route`, one test per row of the module's table, over a
//! real socket.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use nilecare_test_support::http::{request, serve};
use serde_json::json;
use support::{Writes, app, builder, post};

async fn server() -> (std::net::SocketAddr, Writes) {
    let writes = Writes::default();
    (serve(app(builder(&writes).finish())).await, writes)
}

const GQL: &str = "application/graphql-response+json";

#[tokio::test]
async fn a_query_answers_200_in_the_negotiated_media_type() {
    let (addr, _) = server().await;
    let body = json!({"query": "{ hello }"});
    for (accept, media) in [
        (None, "application/json"),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (Some(GQL), GQL),
        (
            Some("application/json;q=0.5, application/graphql-response+json"),
            GQL,
        ),
        (
            Some("application/graphql-response+json;q=0.2, application/json"),
            "application/json",
        ),
    ] {
        let response = post(addr, accept, &body).await;
        assert_eq!(response.status, 200, "accept {accept:?}");
        let content_type = response.header("content-type").unwrap();
        assert!(
            content_type.starts_with(media) && content_type.contains("charset=utf-8"),
            "accept {accept:?} gave {content_type}"
        );
        assert_eq!(response.json(), json!({"data": {"hello": "world"}}));
    }
}

#[tokio::test]
async fn field_errors_are_200_with_partial_data_and_the_problem_code() {
    let (addr, _) = server().await;
    let response = post(addr, Some(GQL), &json!({"query": "{ hello fail }"})).await;
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["data"]["hello"], "world");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(body["errors"][0]["path"], json!(["fail"]));
}

#[tokio::test]
async fn request_errors_are_400_for_graphql_response_json_and_200_for_json_without_data() {
    let (addr, _) = server().await;
    for (query, variables) in [
        ("{", json!(null)),                                   // does not parse
        ("{ nosuchfield }", json!(null)),                     // does not validate
        ("{ items(n: 1) { id items { id } } }", json!(null)), // invalid selection
        (
            "query Q($n: Int!) { items(n: $n) { id } }",
            json!({"n": null}),
        ), // variable coercion
        (
            "{ a: items(n: 1) { id } b: hello } query Two { hello }",
            json!(null),
        ), // no operation chosen
    ] {
        let body = json!({"query": query, "variables": variables});
        let strict = post(addr, Some(GQL), &body).await;
        assert_eq!(strict.status, 400, "{query}: {}", strict.text());
        let strict = strict.json();
        assert!(strict.get("data").is_none(), "{query}: {strict}");
        assert!(!strict["errors"].as_array().unwrap().is_empty());
        let legacy = post(addr, Some("application/json"), &body).await;
        assert_eq!(legacy.status, 200, "{query}");
        assert!(legacy.json().get("data").is_none(), "{query}");
    }
}

#[tokio::test]
async fn malformed_requests_are_400_problems_naming_the_field() {
    let (addr, _) = server().await;
    for (body, field) in [
        (&b"{ \"not a JSON"[..], "body"),
        (b"[\"array\"]", "body"),
        (b"", "body"),
        (br#"{"qeury": "{ hello }"}"#, "query"),
        (br#"{"query": {"obj": "ect"}}"#, "query"),
        (br#"{"query": 0}"#, "query"),
        (
            br#"{"query": "{ hello }", "operationName": false}"#,
            "operationName",
        ),
        (br#"{"query": "{ hello }", "variables": "{}"}"#, "variables"),
        (
            br#"{"query": "{ hello }", "extensions": ["x"]}"#,
            "extensions",
        ),
    ] {
        let response = request(
            addr,
            "POST",
            "/graphql",
            &[("content-type", "application/json"), ("accept", GQL)],
            body,
        )
        .await;
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(body));
        assert!(
            response
                .header("content-type")
                .unwrap()
                .starts_with("application/problem+json")
        );
        let problem = response.json();
        assert_eq!(problem["code"], "BAD_REQUEST");
        assert!(
            problem.to_string().contains(&format!("\"{field}\"")),
            "{} should name {field}: {problem}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn null_optional_parameters_are_allowed() {
    let (addr, _) = server().await;
    let body =
        json!({"query": "{ hello }", "variables": null, "operationName": null, "extensions": null});
    let response = post(addr, Some(GQL), &body).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"data": {"hello": "world"}}));
}

#[tokio::test]
async fn post_without_a_json_content_type_is_415_naming_it() {
    let (addr, _) = server().await;
    let body = br#"{"query": "{ hello }"}"#;
    for headers in [
        vec![],
        vec![("content-type", "text/plain")],
        vec![("content-type", "application/json; charset=latin1")],
    ] {
        let response = request(addr, "POST", "/graphql", &headers, body).await;
        assert_eq!(response.status, 415, "{headers:?}");
        assert!(response.text().contains("content-type"));
    }
    let utf8 = request(
        addr,
        "POST",
        "/graphql",
        &[("content-type", "application/json; charset=utf-8")],
        br#"{"query": "{ hello }"}"#,
    )
    .await;
    assert_eq!(utf8.status, 200);
}

#[tokio::test]
async fn get_runs_queries_with_json_variables_and_refuses_mutations() {
    let (addr, writes) = server().await;
    let ok = request(
        addr,
        "GET",
        "/graphql?query=query%20Q(%24n%3A%20Int!)%20%7B%20items(n%3A%20%24n)%20%7B%20id%20%7D%20%7D&variables=%7B%22n%22%3A2%7D&operationName=Q",
        &[],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        ok.json(),
        json!({"data": {"items": [{"id": 0}, {"id": 1}]}})
    );

    for query in [
        "mutation%20%7B%20bump%20%7D",
        "query%20A%20%7B%20hello%20%7D%20mutation%20B%20%7B%20bump%20%7D&operationName=B",
    ] {
        let refused = request(addr, "GET", &format!("/graphql?query={query}"), &[], b"").await;
        assert_eq!(refused.status, 405, "{query}");
        assert_eq!(refused.header("allow"), Some("POST"));
    }
    assert_eq!(
        writes.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was written"
    );
    // The same mutation over POST runs.
    let posted = post(addr, None, &json!({"query": "mutation { bump }"})).await;
    assert_eq!(posted.json(), json!({"data": {"bump": 1}}));
}

#[tokio::test]
async fn an_accept_without_a_json_type_is_406() {
    let (addr, _) = server().await;
    let response = request(
        addr,
        "POST",
        "/graphql",
        &[
            ("content-type", "application/json"),
            ("accept", "text/html, application/json;q=0"),
        ],
        br#"{"query": "{ hello }"}"#,
    )
    .await;
    assert_eq!(response.status, 406);
    assert!(response.text().contains("accept"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let (addr, _) = server().await;
    let padding = " ".repeat(nilecare_graphql::http::MAX_BODY_BYTES);
    let body = format!(r#"{{"query": "{{ hello {padding} }}"}}"#);
    let response = request(
        addr,
        "POST",
        "/graphql",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 413);
}
