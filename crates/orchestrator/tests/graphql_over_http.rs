//! GraphQL over HTTP conformance of the gateway: the `graphql-http` reference server audits
//! (installed by `scripts/graphql-audit/install`, which `scripts/test` runs) against the running
//! orchestrator. Every MUST passes; `docs/graphql-over-http.md` lists every audit with the result
//! this test gets, and the test fails when the two disagree.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{orchestrator, settings};

/// Where `scripts/graphql-audit/install` puts the audit.
fn audit_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("graphql-audit")
}

fn run_audit(url: &str) -> Vec<Value> {
    let dir = audit_dir();
    assert!(
        dir.join("node_modules/graphql-http").is_dir(),
        "the graphql-http audit is not installed in {}: run scripts/graphql-audit/install \
         (Node.js and npm needed; scripts/test does it)",
        dir.display()
    );
    let output = Command::new("node")
        .arg(dir.join("audit.mjs"))
        .arg(url)
        .output()
        .expect("node runs (install Node.js >= 18)");
    assert!(
        output.status.success(),
        "the audit failed to run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `| id | requirement | result |` rows of the conformance document.
fn documented() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/graphql-over-http.md"
    ))
    .unwrap();
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // ["", id, requirement, result, ""]
            (cells.len() == 5 && cells[1].starts_with('`'))
                .then(|| (cells[1].trim_matches('`').to_owned(), cells[3].to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_passes_the_graphql_over_http_audits() {
    let mut config = settings(None);
    // Production mode: what a deployment serves (introspection off).
    config.environment = "production".to_owned();
    let app = orchestrator(config).await;
    let url = format!("http://{}/graphql", app.addr);
    let results = tokio::task::spawn_blocking(move || run_audit(&url))
        .await
        .unwrap();
    app.shutdown().await;

    assert!(results.len() >= 60, "{} audits ran", results.len());
    let failed_musts: Vec<&Value> = results.iter().filter(|r| r["status"] == "error").collect();
    assert!(
        failed_musts.is_empty(),
        "MUST audits failed: {failed_musts:#?}"
    );

    let documented = documented();
    for result in &results {
        let id = result["id"].as_str().unwrap();
        let status = result["status"].as_str().unwrap();
        let row = documented.iter().find(|(doc_id, _)| doc_id == id);
        assert_eq!(
            row.map(|(_, s)| s.as_str()),
            Some(status),
            "docs/graphql-over-http.md must list audit {id} ({}) as {status}; reason: {}",
            result["name"],
            result["reason"]
        );
    }
    assert_eq!(
        documented.len(),
        results.len(),
        "the document lists audits that did not run"
    );
}
