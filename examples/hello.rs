//! A bare axum hello route: the baseline of the orchestrator's middleware benchmark
//! (`scripts/bench-orchestrator`).
//!
//! ```text
//! PORT=18081 cargo run --release --example hello
//! ```

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let app = Router::new().route("/api/v1/hello", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("hello listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
