//! Per-clinic observability end to end, in its own test binary (its own process-wide
//! recorder): 10 000 distinct `X-Clinic-Id` values make at most N+1 tenant label values on
//! `/metrics`, the busiest clinics are the tracked ones, memory stays bounded, the JSON summary
//! agrees with the exposition, and an authenticated caller is counted under its clinic claim.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::collections::BTreeSet;

use support::{Client, orchestrator, settings};

const MAX_TENANTS: usize = 5;

fn tenant_values(exposition: &str, family: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| l.starts_with(family))
        .filter_map(|l| l.split("tenant=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinics_are_bounded_tracked_by_traffic_and_summarised() {
    let mut config = settings(None);
    config.metrics_max_tenants = MAX_TENANTS;
    config.rate_limit_per_minute = 1_000_000_000;
    let app = orchestrator(config).await;
    let client = Client::new(app.addr);

    // 10 000 clinic ids seen once each (a hostile or broken client), interleaved with three
    // real clinics sending 600 requests each.
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            tokio::spawn(async move {
                for i in (task..10_000).step_by(8) {
                    let id = format!("made-up-{i}");
                    let r = client
                        .send("GET", "/api/v1/hello", &[("x-clinic-id", &id)], "")
                        .await;
                    assert_eq!(r.status, 200);
                    if i % 6 == 0 {
                        let clinic = format!("clinic-{}", (i / 6) % 3);
                        client
                            .send("GET", "/api/v1/hello", &[("x-clinic-id", &clinic)], "")
                            .await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Cached reads of one clinic: a miss then hits, in the cache's tenant family.
    for _ in 0..3 {
        client
            .send(
                "GET",
                "/api/v1/patients/1",
                &[("x-clinic-id", "clinic-0")],
                "",
            )
            .await;
    }

    let exposition = client.get("/metrics").await.text();
    let red = tenant_values(&exposition, "http_server_request_duration_seconds_count");
    assert!(red.len() <= MAX_TENANTS + 1, "{red:?}");
    for clinic in ["clinic-0", "clinic-1", "clinic-2"] {
        assert!(red.contains(clinic), "{clinic} not tracked: {red:?}");
    }
    assert!(red.contains("other"));
    let tracked = app.state.tenants.tracked();
    assert!(tracked.len() <= MAX_TENANTS);
    assert!(app.state.tenants.sketch_len() <= 64, "memory stays bounded");
    let cache = tenant_values(&exposition, "nilecare_cache_tenant_lookups_total");
    assert!(cache.contains("clinic-0"), "{cache:?}");
    let limits = tenant_values(&exposition, "nilecare_ratelimit_tenant_decisions_total");
    assert!(limits.len() <= MAX_TENANTS + 1, "{limits:?}");
    assert!(limits.contains("clinic-1"), "{limits:?}");

    // The summary: JSON, never cached, computed from the same recorder.
    let summary = client.get("/api/v1/metrics/summary").await;
    assert_eq!(summary.header("cache-control"), Some("no-store"));
    let summary = summary.json();
    assert!(summary["requests"].as_u64().unwrap() >= 10_000 + 3 * 500);
    let tenants = summary["tenants"].as_array().unwrap();
    assert_eq!(tenants[0]["tenant"], "other", "{summary}");
    let names: BTreeSet<&str> = tenants
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert!(names.is_superset(&BTreeSet::from(["clinic-0", "clinic-1", "clinic-2"])));
    let clinic0 = tenants.iter().find(|t| t["tenant"] == "clinic-0").unwrap();
    assert!(clinic0["requests"].as_u64().unwrap() >= 500, "{clinic0}");
    let hit_rate = clinic0["cache_hit_rate"].as_f64().unwrap();
    assert!((hit_rate - 2.0 / 3.0).abs() < 1e-9, "{clinic0}");
    for figure in ["avg_ms", "p50_ms", "p95_ms", "p99_ms"] {
        assert!(
            summary["latency"][figure].as_f64().unwrap() > 0.0,
            "{summary}"
        );
    }

    // An authenticated clinician of clinic-2 claiming clinic-1 in the header is counted under
    // the token's clinic.
    let token = client
        .bearer("dr-2", &["clinician"], Some("clinic-2"))
        .await;
    let before = count_of(&client.get("/metrics").await.text(), "clinic-2");
    for _ in 0..20 {
        client
            .send(
                "GET",
                "/api/v1/hello",
                &[("authorization", &token), ("x-clinic-id", "clinic-1")],
                "",
            )
            .await;
    }
    let after = count_of(&client.get("/metrics").await.text(), "clinic-2");
    assert_eq!(after - before, 20.0);
    app.shutdown().await;
}

/// Requests counted for `tenant` on the hello route.
fn count_of(exposition: &str, tenant: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter(|l| {
            l.contains("route=\"/api/v1/hello\"") && l.contains(&format!("tenant=\"{tenant}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
