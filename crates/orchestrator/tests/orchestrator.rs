//! The orchestrator example end to end, over real HTTP on a free port: once with every backend
//! in memory and once on a spawned Redis. Cache miss then hit, invalidation on PUT, rate-limit
//! headers then 429, the breaker opening on a failing downstream and recovering, versioning
//! precedence, problem+json for 404/400/422, the trace context reaching the downstream, metrics.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use nilecare_orchestrator as service;
mod support;

use std::time::Duration;

use nilecare_test_support::{RedisServer, eventually};
use support::{Client, orchestrator, settings};

/// The cases, each against an orchestrator built from `redis_url`.
mod cases {
    use super::*;

    pub(super) async fn cache_miss_hit_and_invalidation(redis_url: Option<String>) {
        let app = orchestrator(settings(redis_url)).await;
        let client = Client::new(app.addr);
        let first = client.get("/api/v1/patients/1").await;
        assert_eq!(first.status, 200);
        assert_eq!(
            first.header("cache-status"),
            Some("nilecare; fwd=miss; stored")
        );
        assert_eq!(first.json()["given_name"], "Amina");
        let second = client.get("/api/v1/patients/1").await;
        assert_eq!(second.header("cache-status"), Some("nilecare; hit"));
        assert_eq!(second.body, first.body);
        let hits = app
            .demo
            .as_ref()
            .unwrap()
            .service("patients")
            .unwrap()
            .hits
            .clone();
        let before = hits.load(std::sync::atomic::Ordering::Relaxed);
        let _ = client.get("/api/v1/patients/1").await;
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::Relaxed),
            before,
            "served from cache"
        );

        let clinician = client.bearer("dr-amina", &["clinician"], None).await;
        let put = client
            .send(
                "PUT",
                "/api/v1/patients/1",
                &[("authorization", &clinician)],
                r#"{"given_name":"Amina","family_name":"Salah","birth_date":"1985-03-14"}"#,
            )
            .await;
        assert_eq!(put.status, 200, "{:?}", put.body);
        let after = client.get("/api/v1/patients/1").await;
        assert_eq!(
            after.header("cache-status"),
            Some("nilecare; fwd=miss; stored")
        );
        assert_eq!(
            after.json()["family_name"],
            "Salah",
            "the PUT invalidated the entry"
        );
        // Tenants have their own entries.
        let clinic = client
            .send(
                "GET",
                "/api/v1/patients/1",
                &[("x-clinic-id", "clinic-7")],
                "",
            )
            .await;
        assert_eq!(
            clinic.header("cache-status"),
            Some("nilecare; fwd=miss; stored")
        );
        let stats = client.get("/api/v1/cache/stats").await.json();
        assert!(stats["hits"].as_u64().unwrap() >= 2, "{stats}");
        app.shutdown().await;
    }

    pub(super) async fn rate_limit_then_429(redis_url: Option<String>) {
        let mut s = settings(redis_url);
        s.rate_limit_per_minute = 5;
        let app = orchestrator(s).await;
        let client = Client::new(app.addr);
        for i in 0..5 {
            let r = client.get("/api/v1/appointments").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("ratelimit-policy"), Some(r#""api";q=5;w=60"#));
            assert!(
                r.header("ratelimit")
                    .unwrap()
                    .contains(&format!("r={}", 4 - i)),
                "{:?}",
                r.header("ratelimit")
            );
        }
        let limited = client.get("/api/v1/appointments").await;
        assert_eq!(limited.status, 429);
        assert_eq!(
            limited.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(limited.json()["code"], "RATE_LIMITED");
        assert!(limited.header("retry-after").is_some());
        // The 429 carries the request's context like every other problem.
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let limited = client
            .send(
                "GET",
                "/api/v1/appointments",
                &[("x-request-id", "rl-ctx-1"), ("traceparent", traceparent)],
                "",
            )
            .await;
        assert_eq!(limited.status, 429);
        let body = limited.json();
        assert_eq!(body["instance"], "/api/v1/appointments", "{body}");
        assert_eq!(body["request_id"], "rl-ctx-1", "{body}");
        assert_eq!(
            body["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{body}"
        );
        assert_eq!(
            client.get("/health").await.status,
            200,
            "operations routes are not limited"
        );
        app.shutdown().await;
    }

    pub(super) async fn cache_stats_are_never_cached(redis_url: Option<String>) {
        let app = orchestrator(settings(redis_url)).await;
        let client = Client::new(app.addr);
        let first = client.get("/api/v1/cache/stats").await;
        assert_eq!(first.status, 200);
        assert_eq!(first.header("cache-control"), Some("no-store"));
        client.get("/api/v1/patients/2").await;
        client.get("/api/v1/patients/2").await; // a hit
        let second = client.get("/api/v1/cache/stats").await;
        assert_ne!(second.header("cache-status"), Some("nilecare; hit"));
        assert!(
            second.json()["hits"].as_u64().unwrap() > first.json()["hits"].as_u64().unwrap(),
            "frozen stats: {} then {}",
            first.text(),
            second.text()
        );
        for path in ["/health", "/ready", "/metrics"] {
            let r = client.get(path).await;
            assert_eq!(
                r.header("cache-status"),
                None,
                "{path} went through the cache"
            );
        }
        app.shutdown().await;
    }

    pub(super) async fn metrics_have_help_and_pass_promtool(redis_url: Option<String>) {
        let mut s = settings(redis_url);
        s.rate_limit_per_minute = 3;
        let app = orchestrator(s).await;
        let client = Client::new(app.addr);
        for path in [
            "/api/v1/patients/1",
            "/api/v1/patients/1",
            "/api/v1/appointments",
            "/nope",
        ] {
            client.get(path).await;
        }
        let body = client.get("/metrics").await.text();
        let families: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(
            families
                .iter()
                .filter(|f| f.starts_with("nilecare_"))
                .count()
                >= 3,
            "too few nilecare families:\n{body}"
        );
        for family in &families {
            assert!(
                body.contains(&format!("# HELP {family} ")),
                "{family} has no HELP:\n{body}"
            );
        }
        assert!(!body.contains("exported_instance"), "{body}");
        // The catalogue lists every metric a running service exposes.
        let missing: Vec<&&str> = families
            .iter()
            .filter(|f| nilecare::metrics::lookup(f).is_none())
            .collect();
        assert!(missing.is_empty(), "not in the catalogue: {missing:?}");
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (the Debian package `prometheus`; scripts/test installs it)");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool check metrics reported:\n{report}"
        );
        app.shutdown().await;
    }

    pub(super) async fn breaker_opens_and_recovers(redis_url: Option<String>) {
        let app = orchestrator(settings(redis_url)).await;
        let client = Client::new(app.addr);
        let billing = app
            .demo
            .as_ref()
            .unwrap()
            .service("billing")
            .unwrap()
            .clone();
        // Invoices go uncached: each request calls billing (no-cache skips the lookup).
        let fetch = || {
            client.send(
                "GET",
                "/api/v1/billing/invoices",
                &[("cache-control", "no-cache")],
                "",
            )
        };
        assert_eq!(fetch().await.status, 200);
        let switched = client
            .send("POST", "/demo/billing/failure?on=true", &[], "")
            .await;
        assert_eq!(switched.json()["failing"], true);
        let mut rejected_fast = None;
        for _ in 0..30 {
            let r = fetch().await;
            assert_eq!(r.status, 503);
            assert_eq!(r.json()["code"], "UPSTREAM_UNAVAILABLE");
            if r.header("retry-after").is_some() {
                rejected_fast = Some(r);
                break;
            }
        }
        let open = rejected_fast.expect("the breaker opened and answers with Retry-After");
        assert!(
            open.json()["detail"]
                .as_str()
                .unwrap()
                .contains("circuit breaker is open"),
            "{}",
            open.json()
        );
        let hits = billing.hits.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..5 {
            assert_eq!(fetch().await.status, 503);
        }
        assert_eq!(
            billing.hits.load(std::sync::atomic::Ordering::Relaxed),
            hits,
            "an open breaker does not call the failing service"
        );
        client
            .send("POST", "/demo/billing/failure?on=false", &[], "")
            .await;
        let recovered = eventually(Duration::from_secs(10), || async {
            fetch().await.status == 200
        })
        .await;
        assert!(recovered, "half-open probes succeed and the breaker closes");
        // The permitted half-open probes succeed: closed again.
        assert!(
            eventually(Duration::from_secs(5), || async {
                fetch().await.status == 200
                    && client.get("/ready").await.json()["checks"]["breakers"]["billing"]
                        == "closed"
            })
            .await,
            "{}",
            client.get("/ready").await.json()
        );
        app.shutdown().await;
    }

    pub(super) async fn versioning_precedence(redis_url: Option<String>) {
        let app = orchestrator(settings(redis_url)).await;
        let client = Client::new(app.addr);
        let v2_shape = |r: &support::Reply| r.json()["name"]["given"] == "Amina";
        let v1_shape = |r: &support::Reply| r.json()["given_name"] == "Amina";
        // Every combination of path, X-API-Version and Accept: the URL wins; for unversioned
        // paths the header, then Accept, then v1; anything unsupported is a 400 naming its field.
        let paths = [
            "/api/v1/patients/1",
            "/api/v2/patients/1",
            "/api/v3/patients/1",
            "/api/patients/1",
        ];
        let headers = [None, Some("1"), Some("v2"), Some("7")];
        let accepts = [
            None,
            Some("application/vnd.nilecare.v1+json"),
            Some("application/vnd.nilecare.v2+json"),
            Some("application/vnd.nilecare.v5+json"),
        ];
        for path in paths {
            for header in headers {
                for accept in accepts {
                    let mut h = Vec::new();
                    if let Some(v) = header {
                        h.push(("x-api-version", v));
                    }
                    if let Some(a) = accept {
                        h.push(("accept", a));
                    }
                    let case = format!("{path} {header:?} {accept:?}");
                    let r = client.send("GET", path, &h, "").await;
                    let expected: Result<u8, &str> = if path.starts_with("/api/v1") {
                        Ok(1)
                    } else if path.starts_with("/api/v2") {
                        Ok(2)
                    } else if path.starts_with("/api/v3") {
                        Err("path")
                    } else if let Some(v) = header {
                        if v == "7" {
                            Err("X-API-Version")
                        } else {
                            Ok(if v == "1" { 1 } else { 2 })
                        }
                    } else if let Some(a) = accept {
                        if a.contains("v5") {
                            Err("Accept")
                        } else {
                            Ok(if a.contains("v1") { 1 } else { 2 })
                        }
                    } else {
                        Ok(1)
                    };
                    match expected {
                        Ok(1) => assert!(
                            r.status == 200
                                && v1_shape(&r)
                                && r.header("x-api-version") == Some("v1"),
                            "{case}: {} {}",
                            r.status,
                            r.text()
                        ),
                        Ok(_) => assert!(
                            r.status == 200
                                && v2_shape(&r)
                                && r.header("x-api-version") == Some("v2"),
                            "{case}: {} {}",
                            r.status,
                            r.text()
                        ),
                        Err(field) => {
                            assert_eq!(r.status, 400, "{case}");
                            assert_eq!(r.json()["errors"][0]["field"], field, "{case}");
                        }
                    }
                }
            }
        }
        // A v1 and a v2 answer never share a cache entry: unversioned requests are cached under
        // their version's path.
        let v2_first = client
            .send("GET", "/api/patients/2", &[("x-api-version", "2")], "")
            .await;
        assert_eq!(
            v2_first.header("cache-status"),
            Some("nilecare; fwd=miss; stored")
        );
        let v1_then = client.get("/api/patients/2").await;
        assert_eq!(
            v1_then.header("cache-status"),
            Some("nilecare; fwd=miss; stored")
        );
        assert!(
            v1_then.json()["given_name"].is_string(),
            "{}",
            v1_then.text()
        );
        let v2_again = client.get("/api/v2/patients/2").await;
        assert_eq!(v2_again.header("cache-status"), Some("nilecare; hit"));
        assert!(v2_again.json()["name"]["given"].is_string());
        app.shutdown().await;
    }

    pub(super) async fn problems_traces_and_metrics(redis_url: Option<String>) {
        let app = orchestrator(settings(redis_url)).await;
        let client = Client::new(app.addr);
        let missing = client.get("/api/v1/nowhere").await;
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(missing.json()["code"], "NOT_FOUND");
        let no_patient = client.get("/api/v1/patients/999").await;
        assert_eq!(
            (no_patient.status, no_patient.json()["code"].clone()),
            (404, "NOT_FOUND".into())
        );
        let clinician = client.bearer("dr-amina", &["clinician"], None).await;
        let auth = [("authorization", clinician.as_str())];
        let malformed = client
            .send("POST", "/api/v1/patients", &auth, "{not json")
            .await;
        assert_eq!(malformed.status, 400);
        assert_eq!(
            malformed.header("content-type"),
            Some("application/problem+json")
        );
        let invalid = client
            .send(
                "POST",
                "/api/v1/patients",
                &auth,
                r#"{"given_name":"","family_name":"X","birth_date":"1990-13"}"#,
            )
            .await;
        assert_eq!(invalid.json()["code"], "VALIDATION_FAILED");
        let fields: Vec<String> = invalid.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fields, ["given_name", "birth_date"]);
        let created = client
            .send(
                "POST",
                "/api/v1/patients",
                &auth,
                r#"{"given_name":"Laila","family_name":"Adel","birth_date":"2001-02-03"}"#,
            )
            .await;
        assert_eq!(created.status, 201);

        // The caller's trace reaches the downstream.
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let traced = client
            .send(
                "GET",
                "/api/v1/appointments",
                &[
                    ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01")),
                    ("cache-control", "no-cache"),
                ],
                "",
            )
            .await;
        assert_eq!(traced.status, 200);
        assert!(traced.header("traceparent").unwrap().contains(trace_id));
        let seen = app
            .demo
            .as_ref()
            .unwrap()
            .service("appointments")
            .unwrap()
            .last_traceparent
            .lock()
            .unwrap()
            .clone();
        assert!(
            seen.as_deref()
                .is_some_and(|t| t.starts_with(&format!("00-{trace_id}-"))),
            "the downstream saw {seen:?}"
        );

        let metrics = client.get("/metrics").await;
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        assert!(text.contains(r#"route="/api/v1/patients/{id}""#), "{text}");
        assert!(text.contains("nilecare_cache_requests_total"));
        assert!(text.contains("nilecare_discovery_selections_total"));
        assert!(text.contains(r#"route="unmatched""#), "404s are one series");
        app.shutdown().await;
    }

    pub(super) async fn authentication_roles_and_tenants(redis_url: Option<String>) {
        let app = orchestrator(settings(redis_url)).await;
        let client = Client::new(app.addr);
        let body = r#"{"given_name":"Sara","family_name":"Ali","birth_date":"1990-01-02"}"#;
        // No token: reads pass, mutations are 401 problem+json with a bare Bearer challenge.
        assert_eq!(client.get("/api/v1/patients/1").await.status, 200);
        let anonymous = client
            .send(
                "POST",
                "/api/v1/patients",
                &[("x-request-id", "auth-1")],
                body,
            )
            .await;
        assert_eq!(anonymous.status, 401);
        assert_eq!(
            anonymous.header("www-authenticate"),
            Some("Bearer realm=\"api\"")
        );
        assert_eq!(
            anonymous.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(anonymous.json()["request_id"], "auth-1");
        // The wrong role: 403 insufficient_scope.
        let nurse = client.bearer("n-1", &["nurse"], None).await;
        let forbidden = client
            .send(
                "POST",
                "/api/v1/patients",
                &[("authorization", &nurse)],
                body,
            )
            .await;
        assert_eq!(forbidden.status, 403);
        assert!(
            forbidden
                .header("www-authenticate")
                .unwrap()
                .contains("insufficient_scope")
        );
        // A clinician: created.
        let clinician = client.bearer("dr-1", &["clinician"], None).await;
        let created = client
            .send(
                "POST",
                "/api/v1/patients",
                &[("authorization", &clinician)],
                body,
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        // A forged token: 401 invalid_token, even on a read.
        let forged = format!("{}x", &clinician[..clinician.len() - 1]);
        let refused = client
            .send(
                "GET",
                "/api/v1/patients/1",
                &[("authorization", &forged)],
                "",
            )
            .await;
        assert_eq!(refused.status, 401);
        assert!(
            refused
                .header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        // The clinic claim selects the cache tenant, whatever header the caller sends.
        let clinic7 = client
            .bearer("dr-7", &["clinician"], Some("clinic-7"))
            .await;
        let by_claim = client
            .send(
                "GET",
                "/api/v1/patients/2",
                &[("authorization", &clinic7), ("x-clinic-id", "clinic-9")],
                "",
            )
            .await;
        assert_eq!(
            by_claim.header("cache-status"),
            Some("nilecare; fwd=miss; stored")
        );
        let same_tenant = client
            .send(
                "GET",
                "/api/v1/patients/2",
                &[("x-clinic-id", "clinic-7")],
                "",
            )
            .await;
        assert_eq!(same_tenant.header("cache-status"), Some("nilecare; hit"));
        let other_tenant = client
            .send(
                "GET",
                "/api/v1/patients/2",
                &[("x-clinic-id", "clinic-9")],
                "",
            )
            .await;
        assert_eq!(
            other_tenant.header("cache-status"),
            Some("nilecare; fwd=miss; stored"),
            "clinic-9's view was not written by the clinic-7 caller"
        );
        // Logging out revokes the token.
        let logout = client
            .send(
                "POST",
                "/api/v1/auth/logout",
                &[("authorization", &clinic7)],
                "",
            )
            .await;
        assert_eq!(logout.status, 204, "{}", logout.text());
        let after = client
            .send(
                "GET",
                "/api/v1/patients/2",
                &[("authorization", &clinic7)],
                "",
            )
            .await;
        assert_eq!(after.status, 401);
        assert!(
            after
                .header("www-authenticate")
                .unwrap()
                .contains("revoked")
        );
        // The development issuer's keys are published.
        let jwks = client.get("/.well-known/jwks.json").await;
        assert_eq!(jwks.json()["keys"][0]["alg"], "EdDSA");
        app.shutdown().await;
    }
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    cases::$case(None).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = RedisServer::start();
                    cases::$case(Some(server.url())).await;
                }
            )*
        }
    };
}

both_backends!(
    cache_miss_hit_and_invalidation,
    cache_stats_are_never_cached,
    metrics_have_help_and_pass_promtool,
    rate_limit_then_429,
    breaker_opens_and_recovers,
    versioning_precedence,
    problems_traces_and_metrics,
    authentication_roles_and_tenants,
);

/// In production without `AUTH_ISSUER`, nothing mints or accepts tokens: the development
/// issuer's routes are absent and every mutation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_without_an_issuer_refuses_every_mutation() {
    let mut production = settings(None);
    production.environment = "production".to_owned();
    let app = orchestrator(production).await;
    let client = Client::new(app.addr);
    assert_eq!(
        client.send("POST", "/dev/token", &[], "{}").await.status,
        404
    );
    assert_eq!(client.get("/.well-known/jwks.json").await.status, 404);
    // A token the development issuer would sign (its seed is public) is not accepted here.
    let dev = orchestrator(settings(None)).await;
    let token = Client::new(dev.addr)
        .bearer("dr-1", &["clinician"], None)
        .await;
    let refused = client
        .send(
            "POST",
            "/api/v1/patients",
            &[("authorization", &token)],
            r#"{"given_name":"A","family_name":"B","birth_date":"1990-01-02"}"#,
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(client.get("/api/v1/patients/1").await.status, 200);
    dev.shutdown().await;
    app.shutdown().await;
}

/// A panicking handler behind the orchestrator's own layer functions: the 500 is problem+json
/// with the request's `instance`, `request_id` and `trace_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_problem_with_the_request_context() {
    use nilecare::rate_limit::{KeyExtractor, MemoryLimiter, Policy, Quota, RateLimitLayer};
    support::observability();
    let api = axum::Router::new().route(
        "/api/v1/boom",
        axum::routing::get(|| async {
            if true {
                panic!("handler bug");
            }
            "unreachable"
        }),
    );
    let limits = RateLimitLayer::new(MemoryLimiter::new())
        .policy(Policy::new("api", Quota::per_minute(100).unwrap()).unwrap())
        .key(KeyExtractor::global());
    let router = service::app::with_service_layers(
        service::app::with_api_layers(api, limits, None),
        &nilecare::metrics::TenantLabels::new(10),
    );
    let addr = nilecare_test_support::http::serve_with_connect_info(router).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = Client::new(addr)
        .send(
            "GET",
            "/api/v1/boom",
            &[
                ("x-request-id", "panic-ctx-1"),
                ("traceparent", traceparent),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let body = r.json();
    assert_eq!(body["code"], "INTERNAL", "{body}");
    assert_eq!(body["instance"], "/api/v1/boom", "{body}");
    assert_eq!(body["request_id"], "panic-ctx-1", "{body}");
    assert_eq!(
        body["trace_id"], "0af7651916cd43dd8448eb211c80319c",
        "{body}"
    );
    assert!(
        !r.text().contains("handler bug"),
        "the panic message stays in the log"
    );
}

#[test]
fn bad_configuration_is_reported_all_at_once() {
    use nilecare::config_validator::Source;
    let source = Source::from_pairs([
        ("APP_ENV", "production"),
        ("PORT", "eighty"),
        ("RATE_LIMIT_PER_MINUTE", "0"),
        ("CACHE_TTL", "soon"),
        ("REDIS_URL", "http://not-redis"),
    ]);
    let report = service::Settings::from_source(&source).unwrap_err();
    let text = report.to_string();
    for name in ["PORT", "RATE_LIMIT_PER_MINUTE", "CACHE_TTL", "REDIS_URL"] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

/// Every variable's typo is a named error, all reported at once (none silently accepted).
#[test]
fn every_variable_typo_is_a_named_error() {
    use nilecare::config_validator::Source;
    let cases = [
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
        ("APP_ENV", "prodcution"),
        ("HOST", "0.0.0.0:8080"),
        ("REDIS_URL", "redis://localhost:6379/notadb"),
        ("REDIS_POOL_SIZE", "0"),
        ("REDIS_COMMAND_TIMEOUT", "fast"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("DEMO_SERVICES", "maybe"),
        ("DEMO_LATENCY", "1h"),
        ("DOWNSTREAM_TIMEOUT", "0s"),
        ("DOWNSTREAM_ATTEMPTS", "99"),
        ("BREAKER_WAIT", "0s"),
        ("REGISTRY_TTL", "0s"),
        ("SHUTDOWN_GRACE", "1d"),
        ("CACHE_TTL", "0s"),
    ];
    let report = service::Settings::from_source(&Source::from_pairs(cases)).unwrap_err();
    let text = report.to_string();
    for (name, value) in cases {
        assert!(
            text.lines().any(|line| line.contains(name)),
            "{name}={value} not reported:\n{text}"
        );
    }
    assert!(text.contains("loud"), "the bad value is named:\n{text}");
    assert!(
        text.contains("target=level"),
        "the accepted forms are named:\n{text}"
    );
    // One at a time, each alone is an error too (not hidden behind another).
    for (name, value) in cases {
        let report = service::Settings::from_source(&Source::from_pairs([(name, value)]));
        assert!(report.is_err(), "{name}={value} was accepted");
    }
    // Levels and directives are accepted and normalized.
    let settings = service::Settings::from_source(&Source::from_pairs([(
        "LOG_LEVEL",
        " WARN, nilecare=Debug",
    )]))
    .unwrap();
    assert_eq!(settings.log_level, "warn,nilecare=debug");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_and_deregisters() {
    use nilecare::service_discovery::Registry;
    let mut s = settings(None);
    s.demo_latency = Duration::from_millis(400);
    let app = orchestrator(s).await;
    let registry = app.state.registry.clone();
    assert!(
        registry
            .services()
            .await
            .unwrap()
            .contains(&"orchestrator".to_owned())
    );
    let client = Client::new(app.addr);
    let addr = app.addr;
    let in_flight = tokio::spawn(async move { client.get("/api/v1/patients/1").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.shutdown().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the request in flight was answered");
    assert_eq!(reply.json()["given_name"], "Amina");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    assert!(
        !registry
            .instances("orchestrator")
            .await
            .unwrap()
            .iter()
            .any(|i| i.address() == format!("http://{addr}"))
    );
}

#[test]
fn a_valid_environment_gives_the_schema_defaults() {
    use nilecare::config_validator::Source;
    let settings = service::Settings::from_source(&Source::from_pairs([
        ("APP_ENV", "production"),
        ("PORT", "9000"),
        ("REDIS_URL", "redis://10.0.0.5:6379"),
    ]))
    .unwrap();
    assert_eq!(settings.port, 9000);
    assert_eq!(settings.redis_url.as_deref(), Some("redis://10.0.0.5:6379"));
    assert_eq!(settings.redis_command_timeout, Duration::from_millis(500));
    assert_eq!(settings.redis_pool_size, 4);
    assert_eq!(settings.rate_limit_per_minute, 600);
    assert_eq!(settings.demo_latency, Duration::from_millis(20));
    assert!(settings.demo_services);
    assert_eq!(settings.environment, "production");
    assert_eq!(settings.log_format, None);
}
