//! The README's quickstart (`examples/quickstart.rs`), run as a user runs it: the example
//! binary (built by `cargo test` / `cargo nextest` with the other targets) on a free port;
//! miss then hit, a 404 problem+json, a 429, `/metrics`; every log line of a request carries
//! that request's id.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nilecare_test_support::http::{HttpResponse, request};

/// `target/<profile>/examples/quickstart`, next to this test's own `deps/` directory.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("quickstart");
    assert!(
        binary.is_file(),
        "{} is missing: `cargo test` and `cargo nextest run` build the examples; build it with \
         `cargo build --all-features --example quickstart`",
        binary.display()
    );
    binary
}

struct Quickstart {
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    addr: std::net::SocketAddr,
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Quickstart {
    let mut child = Command::new(example_binary())
        .env("PORT", "0")
        .env("RATE_LIMIT_PER_MINUTE", "4")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = lines.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            sink.lock().unwrap().push(value);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let found = lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l["message"] == "listening")
            .and_then(|l| l["addr"].as_str()?.parse().ok());
        if let Some(addr) = found {
            break addr;
        }
        assert!(Instant::now() < deadline, "the quickstart did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    Quickstart { child, lines, addr }
}

async fn get(q: &Quickstart, path: &str) -> HttpResponse {
    request(q.addr, "GET", path, &[], b"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_serves_caches_limits_and_logs_with_request_ids() {
    let q = start();
    let miss = get(&q, "/patients/1").await;
    assert_eq!((miss.status, miss.text().as_str()), (200, "Amina Salah"));
    assert_eq!(
        miss.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    let hit = get(&q, "/patients/1").await;
    assert_eq!(hit.header("cache-status"), Some("nilecare; hit"));
    let missing = get(&q, "/patients/9").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        missing.json()["request_id"].as_str(),
        missing.header("x-request-id")
    );
    let fourth = get(&q, "/patients/1").await;
    assert_eq!(fourth.status, 200);
    let limited = get(&q, "/patients/1").await;
    assert_eq!(limited.status, 429, "a limit of 4 per minute");
    assert_eq!(limited.json()["code"], "RATE_LIMITED");
    let metrics = get(&q, "/metrics").await.text();
    for family in [
        "http_server_request_duration_seconds",
        "nilecare_cache_requests_total",
        "nilecare_ratelimit_decisions_total",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from /metrics:\n{metrics}"
        );
    }

    // Every line written while serving a request carries that request's id.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = q.lines.lock().unwrap().clone();
    let ids: Vec<&str> = [&miss, &hit, &missing, &fourth, &limited]
        .iter()
        .map(|r| r.header("x-request-id").unwrap())
        .collect();
    for id in &ids {
        let of_request: Vec<_> = lines.iter().filter(|l| l["request_id"] == *id).collect();
        assert!(
            of_request.iter().any(|l| l["target"] == "nilecare::access"),
            "no access line for {id}: {lines:#?}"
        );
    }
    let loads: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "loading the patient from the database")
        .collect();
    assert_eq!(loads.len(), 2, "patient 1 once, patient 9 once: {loads:#?}");
    for line in &lines {
        if line["message"] != "listening" {
            assert!(
                line["request_id"]
                    .as_str()
                    .is_some_and(|id| ids.contains(&id)),
                "a line without its request's id: {line}"
            );
        }
    }
}

#[test]
fn the_readme_shows_the_quickstart_as_it_is() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("examples/quickstart.rs")).unwrap();
    let code: String = example
        .lines()
        .skip_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(code.trim()),
        "README.md's quickstart differs from examples/quickstart.rs: copy the file's code in"
    );
}
