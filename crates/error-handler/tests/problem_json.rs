//! Every error path of an axum service answers RFC 9457 problem+json, over real HTTP.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::routing::{get, post};
use nilecare_error_handler::{
    ApiError, ApiResult, ErrorCode, Json, ProblemConfig, ProblemLayer, catch_panic_layer,
    method_not_allowed, not_found,
};
use nilecare_test_support::http::{HttpResponse, get as http_get, request, serve};
use serde_json::Value;
use tower::ServiceExt;

#[derive(serde::Deserialize, serde::Serialize)]
struct Patient {
    name: String,
    birth_year: u16,
}

async fn create(Json(p): Json<Patient>) -> ApiResult<Json<Patient>> {
    Ok(Json(p))
}

async fn by_code(Path(code): Path<String>) -> ApiError {
    let code = ErrorCode::BUILTIN
        .iter()
        .copied()
        .find(|c| c.as_str() == code)
        .expect("known code");
    ApiError::new(code, format!("detail for {code}"))
}

async fn fails_internally() -> ApiResult<()> {
    let cause = std::io::Error::other("connection refused by db-7.internal:5432");
    Err(ApiError::internal("chart store query failed on shard 7").with_source(cause))
}

async fn panics() -> &'static str {
    panic!("secret panic text: invariant broken")
}

async fn typed(Path(id): Path<u32>) -> String {
    id.to_string()
}

fn app(production: bool) -> Router {
    Router::new()
        .route("/patients", post(create))
        .route("/codes/{code}", get(by_code))
        .route("/boom", get(fails_internally))
        .route("/panic", get(panics))
        .route("/typed/{id}", get(typed))
        .route(
            "/limited",
            get(|| async { ApiError::rate_limited(Duration::from_millis(1500)) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(256))
        .layer(catch_panic_layer())
        .layer(ProblemLayer::new(
            ProblemConfig::default().production(production),
        ))
}

/// Asserts the RFC 9457 shape and returns the body.
fn problem(r: &HttpResponse, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body = r.json();
    let type_uri = body["type"].as_str().expect("type is a string");
    assert!(type_uri.contains(':'), "type is not a URI: {type_uri}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert!(
        body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with('/')),
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
    body
}

#[tokio::test]
async fn every_code_maps_to_its_status_as_problem_json() {
    let addr = serve(app(false)).await;
    for code in ErrorCode::BUILTIN {
        let r = http_get(addr, &format!("/codes/{}", code.as_str())).await;
        let body = problem(&r, code.status().as_u16(), code.as_str());
        assert_eq!(body["title"], code.title());
        assert_eq!(
            body["type"],
            format!("urn:nilecare:problem:{}", code.slug())
        );
    }
}

#[tokio::test]
async fn production_500_hides_internal_text_and_dev_shows_it() {
    let addr = serve(app(true)).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = request(
        addr,
        "GET",
        "/boom",
        &[("traceparent", traceparent), ("x-request-id", "req-42")],
        b"",
    )
    .await;
    let body = problem(&r, 500, "INTERNAL");
    let text = r.text();
    for secret in ["shard 7", "db-7", "connection refused", "5432"] {
        assert!(!text.contains(secret), "body leaks {secret:?}: {text}");
    }
    assert_eq!(body["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(body["request_id"], "req-42");
    assert_eq!(body["instance"], "/boom");

    let addr = serve(app(false)).await;
    let r = http_get(addr, "/boom").await;
    assert!(r.text().contains("chart store query failed on shard 7"));
    // the source is never serialized, not even in development
    assert!(!r.text().contains("db-7"), "{}", r.text());
}

#[tokio::test]
async fn the_log_carries_the_full_chain_exactly_once() {
    let logs = nilecare_test_support::logs::LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = nilecare_test_support::logs::set_thread_default(subscriber);

    let req = http::Request::get("/boom")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app(true).oneshot(req).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("db-7"));

    let log = logs.text();
    assert!(log.contains("chart store query failed on shard 7"), "{log}");
    assert!(
        log.contains("connection refused by db-7.internal:5432"),
        "{log}"
    );
    assert_eq!(log.matches("request failed").count(), 1, "{log}");
}

#[tokio::test]
async fn json_extractor_rejections_are_problem_json() {
    let addr = serve(app(true)).await;
    let json = [("content-type", "application/json")];

    let r = request(addr, "POST", "/patients", &json, br#"{"name": "#).await;
    problem(&r, 400, "BAD_REQUEST");

    let r = request(
        addr,
        "POST",
        "/patients",
        &[("content-type", "text/plain")],
        b"{}",
    )
    .await;
    problem(&r, 415, "UNSUPPORTED_MEDIA_TYPE");

    let big = format!(r#"{{"name":"{}","birth_year":1990}}"#, "x".repeat(1_000));
    let r = request(addr, "POST", "/patients", &json, big.as_bytes()).await;
    problem(&r, 413, "PAYLOAD_TOO_LARGE");

    let r = request(
        addr,
        "POST",
        "/patients",
        &json,
        br#"{"name":"A","birth_year":"old"}"#,
    )
    .await;
    let body = problem(&r, 422, "VALIDATION_FAILED");
    assert_eq!(body["errors"][0]["field"], "birth_year", "{body}");

    let r = request(
        addr,
        "POST",
        "/patients",
        &json,
        br#"{"name":"A","birth_year":1990}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "A");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problem_json() {
    let addr = serve(app(true)).await;
    let r = http_get(addr, "/no/such/route?token=abc").await;
    let body = problem(&r, 404, "NOT_FOUND");
    assert_eq!(
        body["instance"], "/no/such/route",
        "query strings stay out of the body"
    );

    let r = request(addr, "DELETE", "/patients", &[], b"").await;
    problem(&r, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn bare_and_plain_text_errors_are_converted_without_explicit_fallbacks() {
    let app = Router::new()
        .route("/only-get", get(|| async { "ok" }))
        .route("/typed/{id}", get(typed))
        .layer(ProblemLayer::new(ProblemConfig::default()));
    let addr = serve(app).await;
    problem(&http_get(addr, "/missing").await, 404, "NOT_FOUND");
    let r = request(addr, "POST", "/only-get", &[], b"").await;
    problem(&r, 405, "METHOD_NOT_ALLOWED");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
    // axum's plain-text Path rejection
    let body = problem(&http_get(addr, "/typed/abc").await, 400, "BAD_REQUEST");
    assert!(body["detail"].as_str().unwrap().contains("parse"), "{body}");
    // success untouched
    assert_eq!(http_get(addr, "/typed/7").await.text(), "7");
}

#[tokio::test]
async fn a_panicking_handler_yields_500_and_the_server_keeps_serving() {
    for production in [true, false] {
        let addr = serve(app(production)).await;
        let r = http_get(addr, "/panic").await;
        problem(&r, 500, "INTERNAL");
        assert!(!r.text().contains("secret panic text"), "{}", r.text());
        let r = request(
            addr,
            "POST",
            "/patients",
            &[("content-type", "application/json")],
            br#"{"name":"B","birth_year":2001}"#,
        )
        .await;
        assert_eq!(r.status, 200, "server stopped serving after a panic");
    }
}

#[tokio::test]
async fn rate_limited_sets_retry_after_rounded_up() {
    let addr = serve(app(true)).await;
    let r = http_get(addr, "/limited").await;
    problem(&r, 429, "RATE_LIMITED");
    assert_eq!(r.header("retry-after"), Some("2"));
}

#[tokio::test]
async fn without_the_layer_errors_are_still_problem_json() {
    let app = Router::new().route(
        "/x",
        get(|| async { ApiError::conflict("version 3 is stale") }),
    );
    let response = app
        .oneshot(
            http::Request::get("/x")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["detail"], "version 3 is stale");
    assert_eq!(v["code"], "CONFLICT");
}

#[cfg(feature = "config-validator")]
#[test]
fn a_config_report_becomes_an_internal_error_without_leaking_into_the_body() {
    use nilecare_config_validator::{Schema, Source, Var};
    let report = Schema::new()
        .var(Var::port("PORT"))
        .load(&Source::from_pairs([("PORT", "http")]))
        .unwrap_err();
    let e = ApiError::from(report);
    assert_eq!(e.code(), ErrorCode::INTERNAL);
    assert!(e.chain().contains("PORT"), "{}", e.chain());
    assert!(!e.detail().contains("PORT"));
}
