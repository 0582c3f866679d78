//! The bounded tenant label end to end through `HttpMetricsLayer`, and the JSON summary's
//! figures against the histogram they are computed from.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeSet;

use axum::Router;
use axum::routing::get;
use nilecare_metrics::names::HTTP_SERVER_REQUEST_DURATION_SECONDS;
use nilecare_metrics::{
    HttpMetricsLayer, Metrics, RequestTenant, Summary, TenantFrom, TenantLabels,
};
use tower::ServiceExt;

fn tenant_values(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter_map(|l| l.split("tenant=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

async fn get_with_tenant(app: &Router, tenant: &str) -> u16 {
    let request = http::Request::get("/patients")
        .header("x-clinic-id", tenant)
        .body(axum::body::Body::empty())
        .unwrap();
    app.clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn ten_thousand_tenants_make_at_most_n_plus_one_label_values() {
    let metrics = Metrics::builder().build_local().unwrap();
    let _recorder = metrics.set_thread_default();
    let labels = TenantLabels::new(5);
    let app = Router::new()
        .route("/patients", get(|| async { "ok" }))
        .layer(HttpMetricsLayer::new().tenant(
            labels.clone(),
            TenantFrom::Header(http::HeaderName::from_static("x-clinic-id")),
        ));
    for i in 0..10_000 {
        assert_eq!(get_with_tenant(&app, &format!("hostile-{i}")).await, 200);
        // Five clinics send a fifth of the traffic between them.
        if i % 2 == 0 {
            get_with_tenant(&app, &format!("clinic-{}", i % 5)).await;
        }
    }
    let exposition = metrics.render();
    let values = tenant_values(&exposition);
    assert!(values.len() <= 5 + 1, "{values:?}");
    for i in 0..5 {
        assert!(values.contains(&format!("clinic-{i}")), "{values:?}");
    }
    assert!(values.contains("other"));
    assert!(
        labels.sketch_len() <= 64,
        "memory: {} sketch entries",
        labels.sketch_len()
    );
    // Every request is counted once: 10 000 + 5 000.
    let summary = Summary::from_exposition(&exposition, 10);
    assert_eq!(summary.requests, 15_000);
    let tenants: Vec<&str> = summary.tenants.iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(tenants[0], "other", "{tenants:?}");
    assert!(summary.tenants.len() <= 6);
}

#[tokio::test]
async fn hostile_tenant_values_cannot_mint_series() {
    let metrics = Metrics::builder().build_local().unwrap();
    let _recorder = metrics.set_thread_default();
    let app = Router::new()
        .route("/patients", get(|| async { "ok" }))
        .layer(HttpMetricsLayer::new().tenant(
            TenantLabels::new(100),
            TenantFrom::Header(http::HeaderName::from_static("x-clinic-id")),
        ));
    for bad in ["a b", "{x}", &"x".repeat(65), "none", "other", "é"] {
        let request = http::Request::get("/patients")
            .header(
                "x-clinic-id",
                http::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            )
            .body(axum::body::Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap();
    }
    let request = http::Request::get("/patients")
        .body(axum::body::Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap();
    let values = tenant_values(&metrics.render());
    assert_eq!(
        values,
        BTreeSet::from(["none".to_owned(), "other".to_owned()])
    );
}

#[tokio::test]
async fn an_inner_layer_can_refine_the_tenant_before_it_is_recorded() {
    let metrics = Metrics::builder().build_local().unwrap();
    let _recorder = metrics.set_thread_default();
    let app = Router::new()
        .route("/patients", get(|| async { "ok" }))
        // As the orchestrator does with the caller's clinic claim after the auth layer.
        .layer(tower::util::MapRequestLayer::new(
            |request: http::Request<axum::body::Body>| {
                if let Some(tenant) = request.extensions().get::<RequestTenant>() {
                    assert!(tenant.refine("clinic-from-claim"));
                }
                request
            },
        ))
        .layer(HttpMetricsLayer::new().tenant(
            TenantLabels::new(10).min_requests(1),
            TenantFrom::Header(http::HeaderName::from_static("x-clinic-id")),
        ));
    assert_eq!(get_with_tenant(&app, "clinic-from-header").await, 200);
    let values = tenant_values(&metrics.render());
    assert_eq!(values, BTreeSet::from(["clinic-from-claim".to_owned()]));
}

/// A known latency distribution recorded into the RED histogram: 1 000 requests at
/// 1, 2, ..., 1000 ms (one each). The summary's percentiles must agree with the exact ones within
/// the width of the bucket holding them, its average exactly, its error ratio exactly.
#[test]
fn summary_percentiles_agree_with_the_histogram_buckets() {
    let metrics = Metrics::builder().build_local().unwrap();
    let buckets = nilecare_metrics::names::HTTP_DURATION_BUCKETS;
    {
        let _recorder = metrics.set_thread_default();
        for ms in 1..=1000u32 {
            let status = if ms % 20 == 0 { "503" } else { "200" };
            let tenant = if ms % 2 == 0 {
                "clinic-even"
            } else {
                "clinic-odd"
            };
            metrics::histogram!(HTTP_SERVER_REQUEST_DURATION_SECONDS,
                "method" => "GET", "route" => "/x", "status" => status, "tenant" => tenant)
            .record(f64::from(ms) / 1000.0);
        }
        metrics::counter!("nilecare_cache_requests_total", "cache" => "c", "result" => "hit")
            .increment(70);
        metrics::counter!("nilecare_cache_requests_total", "cache" => "c", "result" => "miss")
            .increment(30);
    }
    let summary = metrics.summary(10);
    assert_eq!(summary.requests, 1000);
    assert_eq!(summary.errors, 50);
    assert!((summary.error_ratio - 0.05).abs() < 1e-9);
    assert!(
        (summary.latency.avg_ms - 500.5).abs() < 1e-6,
        "{:?}",
        summary.latency
    );
    assert_eq!(summary.cache_hit_rate, Some(0.7));
    let width_ms = |exact_ms: f64| {
        let s = exact_ms / 1000.0;
        let upper = buckets.iter().copied().find(|b| *b >= s).unwrap();
        let lower = buckets.iter().copied().rfind(|b| *b < s).unwrap_or(0.0);
        (upper - lower) * 1000.0
    };
    for (got, exact) in [
        (summary.latency.p50_ms, 500.0),
        (summary.latency.p95_ms, 950.0),
        (summary.latency.p99_ms, 990.0),
    ] {
        assert!(
            (got - exact).abs() <= width_ms(exact),
            "{got} ms vs exact {exact} ms (bucket width {} ms)",
            width_ms(exact)
        );
    }
    let names: Vec<&str> = summary.tenants.iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(names, ["clinic-even", "clinic-odd"]);
    // Every 20th request fails, and those are all even.
    assert_eq!(summary.tenants[0].errors, 50);
    assert_eq!(summary.tenants[1].errors, 0);
}

/// The tenant counters of the cache and rate-limit layers: one series per (tenant label,
/// result), counted through cached handles, and a new recorder gets its own handles.
#[test]
fn tenant_counters_count_per_label_and_result_on_the_current_recorder() {
    let counters = nilecare_metrics::TenantCounters::new(
        "nilecare_cache_tenant_lookups_total",
        &["hit", "miss"],
    );
    let labels = TenantLabels::new(5).min_requests(1);
    let clinic = RequestTenant::new(labels.clone(), Some("clinic-a"));
    let nobody = RequestTenant::new(labels, None);
    let count = |exposition: &str, tenant: &str, result: &str| -> f64 {
        exposition
            .lines()
            .find(|l| {
                l.starts_with("nilecare_cache_tenant_lookups_total{")
                    && l.contains(&format!("tenant=\"{tenant}\""))
                    && l.contains(&format!("result=\"{result}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let first = Metrics::builder().build_local().unwrap();
    {
        let _recorder = first.set_thread_default();
        for _ in 0..3 {
            counters.increment(&clinic, 0);
        }
        counters.increment(&clinic, 1);
        counters.increment(&nobody, 1);
        counters.increment(&clinic, 7); // out of range: ignored
    }
    let text = first.render();
    assert_eq!(count(&text, "clinic-a", "hit"), 3.0);
    assert_eq!(count(&text, "clinic-a", "miss"), 1.0);
    assert_eq!(count(&text, "none", "miss"), 1.0);
    let second = Metrics::builder().build_local().unwrap();
    {
        let _recorder = second.set_thread_default();
        counters.increment(&clinic, 0);
    }
    assert_eq!(count(&second.render(), "clinic-a", "hit"), 1.0);
    assert_eq!(count(&first.render(), "clinic-a", "hit"), 3.0);
}
