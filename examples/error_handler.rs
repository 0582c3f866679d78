//! nilecare-error-handler: every failure of an axum service as RFC 9457 problem+json.
//!
//! ```text
//! cargo run --example error_handler          # starts the service, sends requests, prints answers
//! ```

use axum::Router;
use axum::routing::{get, post};
use nilecare::error_handler::{
    ApiError, ApiResult, Json, ProblemConfig, ProblemLayer, catch_panic_layer, method_not_allowed,
    not_found,
};
use nilecare_test_support::http::{request, serve};

#[derive(serde::Deserialize, serde::Serialize)]
struct Patient {
    name: String,
    birth_year: u16,
}

async fn create(Json(p): Json<Patient>) -> ApiResult<Json<Patient>> {
    if p.name.trim().is_empty() {
        return Err(ApiError::validation().field("name", "must not be empty"));
    }
    Ok(Json(p))
}

async fn chart() -> ApiResult<String> {
    let cause = std::io::Error::other("connection refused by charts-db:5432");
    Err(ApiError::internal("chart query failed").with_source(cause))
}

async fn crash() -> &'static str {
    panic!("invariant broken")
}

/// method, path, headers, body
type Call<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

#[tokio::main]
async fn main() {
    tracing_subscriber_init();
    let app = Router::new()
        .route("/patients", post(create))
        .route(
            "/patients/{id}",
            get(|| async { ApiError::not_found("patient 123") }),
        )
        .route("/charts", get(chart))
        .route("/crash", get(crash))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(catch_panic_layer())
        .layer(ProblemLayer::new(ProblemConfig::default().production(true)));
    let addr = serve(app).await;
    println!("serving on http://{addr} (production mode)\n");

    let json = [("content-type", "application/json")];
    let trace = [(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )];
    let calls: [Call<'_>; 7] = [
        ("GET", "/patients/123", &[], b""),
        ("POST", "/patients", &json, br#"{"name": "#),
        (
            "POST",
            "/patients",
            &json,
            br#"{"name":"","birth_year":1990}"#,
        ),
        (
            "POST",
            "/patients",
            &[("content-type", "text/plain")],
            b"hi",
        ),
        ("DELETE", "/patients", &[], b""),
        ("GET", "/charts", &trace, b""),
        ("GET", "/crash", &[], b""),
    ];
    for (method, path, headers, body) in calls {
        let r = request(addr, method, path, headers, body).await;
        println!("{method} {path} -> {}\n  {}\n", r.status, r.text());
    }
}

/// Logs to stderr so the 5xx chains (which the bodies hide) are visible.
fn tracing_subscriber_init() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
}
