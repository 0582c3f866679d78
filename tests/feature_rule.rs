//! The workspace's one rule for the `axum` feature (README, "Feature flags"): on by default in
//! the HTTP-edge crates, off by default in the crates whose core works without HTTP.

use std::path::Path;

fn default_features(krate: &str) -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("default ="))
        .unwrap_or("default = []");
    line.split_once('=')
        .map(|(_, list)| list)
        .unwrap_or_default()
        .trim()
        .trim_matches(['[', ']'])
        .split(',')
        .map(|f| f.trim().trim_matches('"').to_owned())
        .filter(|f| !f.is_empty())
        .collect()
}

#[test]
fn axum_is_on_by_default_exactly_in_the_http_edge_crates() {
    for krate in ["auth", "error-handler", "logger", "metrics", "tracing"] {
        assert!(
            default_features(krate).iter().any(|f| f == "axum"),
            "{krate}: an HTTP-edge crate has `axum` on by default"
        );
    }
    for krate in [
        "cache",
        "rate-limit",
        "circuit-breaker",
        "service-discovery",
    ] {
        assert!(
            !default_features(krate).iter().any(|f| f == "axum"),
            "{krate}: its core works without HTTP, so `axum` is opt-in"
        );
    }
}
