//! The RED layer and the exposition, over real HTTP.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use nilecare_metrics::{HttpMetricsLayer, Metrics, StatusLabel, TEXT_FORMAT};
use nilecare_test_support::http::{get as http_get, request, serve};

/// The value of the series `name{labels...}` (all given labels must match).
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let metric = series.split('{').next().unwrap_or(series);
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

fn app(metrics: &Metrics, status: StatusLabel) -> Router {
    Router::new()
        .route("/api/v1/patients/{id}", get(|| async { "patient" }))
        .route("/api/v1/patients", post(|| async { StatusCode::CREATED }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "slow"
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .merge(metrics.router())
        .layer(
            HttpMetricsLayer::new()
                .exclude_path("/metrics")
                .exclude_path("/health")
                .status_label(status),
        )
}

fn local_metrics() -> Metrics {
    Metrics::builder()
        .service("red-test")
        .build_local()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn traffic_is_counted_by_route_template_with_one_unmatched_series() {
    let metrics = local_metrics();
    let _recorder = metrics.set_thread_default();
    let addr = serve(app(&metrics, StatusLabel::Code)).await;

    for id in [1, 1, 2, 3] {
        assert_eq!(
            http_get(addr, &format!("/api/v1/patients/{id}"))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        request(addr, "POST", "/api/v1/patients", &[], b"{}")
            .await
            .status,
        201
    );
    assert_eq!(http_get(addr, "/boom").await.status, 500);
    for i in 0..60 {
        assert_eq!(
            http_get(addr, &format!("/wp-admin/{i}/x{i}.php"))
                .await
                .status,
            404
        );
    }
    assert_eq!(http_get(addr, "/health").await.status, 200);

    let scrape = http_get(addr, "/metrics").await;
    assert_eq!(scrape.status, 200);
    assert_eq!(scrape.header("content-type"), Some(TEXT_FORMAT));
    let body = scrape.text();

    let patients = [
        ("method", "GET"),
        ("route", "/api/v1/patients/{id}"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(
            &body,
            "http_server_request_duration_seconds_count",
            &patients
        ),
        Some(4.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "http_server_request_duration_seconds_count",
            &patients
        ),
        Some(4.0)
    );
    let le10 = [patients[0], patients[1], patients[2], ("le", "10")];
    assert_eq!(
        sample(&body, "http_server_request_duration_seconds_bucket", &le10),
        Some(4.0)
    );
    let le5ms = [patients[0], patients[1], patients[2], ("le", "0.005")];
    assert!(sample(&body, "http_server_request_duration_seconds_bucket", &le5ms).is_some());
    assert_eq!(
        sample(
            &body,
            "http_server_request_duration_seconds_count",
            &[
                ("method", "POST"),
                ("route", "/api/v1/patients"),
                ("status", "201")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            "http_server_request_duration_seconds_count",
            &[("route", "/boom"), ("status", "500")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            "http_server_request_duration_seconds_count",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(60.0)
    );
    assert!(
        body.lines().all(|l| !l.contains("wp-admin")),
        "raw paths leaked into labels"
    );
    assert!(!body.contains("route=\"/health\"") && !body.contains("route=\"/metrics\""));
    assert!(
        body.contains("service=\"red-test\""),
        "global label missing"
    );
    // every request finished: no request in flight
    assert_eq!(
        sample(
            &body,
            "http_server_active_requests",
            &[("route", "/api/v1/patients/{id}")]
        ),
        Some(0.0)
    );
    // process metrics are collected on scrape
    assert!(
        sample(&body, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0),
        "{body}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn in_flight_requests_show_in_the_gauge_and_status_classes_work() {
    let metrics = local_metrics();
    let _recorder = metrics.set_thread_default();
    let addr = serve(app(&metrics, StatusLabel::Class)).await;

    let slow = tokio::spawn(async move { http_get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let during = http_get(addr, "/metrics").await.text();
    assert_eq!(
        sample(
            &during,
            "http_server_active_requests",
            &[("method", "GET"), ("route", "/slow")]
        ),
        Some(1.0),
        "{during}"
    );
    assert_eq!(slow.await.unwrap().status, 200);
    let after = http_get(addr, "/metrics").await.text();
    assert_eq!(
        sample(&after, "http_server_active_requests", &[("route", "/slow")]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &after,
            "http_server_request_duration_seconds_count",
            &[("route", "/slow"), ("status", "2xx")]
        ),
        Some(1.0),
        "{after}"
    );
}

fn promtool() -> &'static str {
    let found = Command::new("promtool").arg("--version").output().is_ok();
    assert!(
        found,
        "promtool is missing: install the Debian package `prometheus` (scripts/test does this)"
    );
    "promtool"
}

#[tokio::test(flavor = "current_thread")]
async fn a_real_scrape_passes_promtool_check_metrics() {
    let metrics = local_metrics();
    let _recorder = metrics.set_thread_default();
    let addr = serve(app(&metrics, StatusLabel::Code)).await;
    for path in ["/api/v1/patients/1", "/boom", "/nope"] {
        let _ = http_get(addr, path).await;
    }
    let body = http_get(addr, "/metrics").await.body;
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn installing_twice_is_an_error_not_a_panic() {
    let first = Metrics::builder().process_metrics(false).install();
    assert!(first.is_ok(), "{first:?}");
    let second = Metrics::builder().install();
    assert!(
        matches!(second, Err(nilecare_metrics::Error::AlreadyInstalled)),
        "{second:?}"
    );
}

/// The layer keeps its metric handles; they must follow the current recorder, not the first.
#[tokio::test(flavor = "current_thread")]
async fn one_layer_records_into_whichever_recorder_is_current() {
    let addr = serve(
        Router::new()
            .route("/x", get(|| async { "x" }))
            .layer(HttpMetricsLayer::new()),
    )
    .await;
    let first = local_metrics();
    let second = local_metrics();
    for (metrics, requests) in [(&first, 2), (&second, 1)] {
        let _recorder = metrics.set_thread_default();
        for _ in 0..requests {
            assert_eq!(http_get(addr, "/x").await.status, 200);
        }
    }
    let x = [("method", "GET"), ("route", "/x"), ("status", "200")];
    for (metrics, requests) in [(&first, 2.0), (&second, 1.0)] {
        let body = metrics.render();
        assert_eq!(
            sample(&body, "http_server_request_duration_seconds_count", &x),
            Some(requests),
            "{body}"
        );
        assert_eq!(
            sample(&body, "http_server_active_requests", &[("route", "/x")]),
            Some(0.0),
            "{body}"
        );
    }
}

#[test]
fn the_instance_label_does_not_collide_with_prometheus_target_label() {
    let metrics = Metrics::builder()
        .process_metrics(false)
        .instance("orchestrator-0")
        .build_local()
        .unwrap();
    {
        let _recorder = metrics.set_thread_default();
        metrics::counter!("nilecare_cache_requests_total", "cache" => "c", "result" => "hit")
            .increment(1);
    }
    let text = metrics.render();
    assert!(
        text.contains(r#"service_instance_id="orchestrator-0""#),
        "{text}"
    );
    assert!(
        !text
            .replace("service_instance_id=", "")
            .contains("instance="),
        "a bare `instance` label: {text}"
    );
    assert!(
        text.contains("# HELP nilecare_cache_requests_total "),
        "described on install: {text}"
    );
}
