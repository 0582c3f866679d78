//! Two orchestrators on one Redis share cache coherency and rate limits; one orchestrator under
//! steady load survives Redis being killed and restarted (chaos).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nilecare_test_support::{RedisServer, eventually};
use support::{Client, orchestrator, settings, two_instances};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_instance_invalidates_the_others_cache() {
    let server = RedisServer::start();
    let (a, b) = two_instances(settings(Some(server.url()))).await;
    let (to_a, to_b) = (Client::new(a.addr), Client::new(b.addr));

    assert_eq!(
        to_b.get("/api/v1/patients/2").await.header("cache-status"),
        Some("nilecare; fwd=miss; stored")
    );
    assert_eq!(
        to_b.get("/api/v1/patients/2").await.header("cache-status"),
        Some("nilecare; hit")
    );
    assert_eq!(
        to_a.get("/api/v1/patients/2").await.header("cache-status"),
        Some("nilecare; hit"),
        "A reads B's entry from Redis"
    );

    let clinician = to_a.bearer("dr-omar", &["clinician"], None).await;
    let put = to_a
        .send(
            "PUT",
            "/api/v1/patients/2",
            &[("authorization", &clinician)],
            r#"{"given_name":"Omar","family_name":"Nabil","birth_date":"1972-11-02"}"#,
        )
        .await;
    assert_eq!(put.status, 200);
    assert!(
        eventually(Duration::from_secs(3), || async {
            let r = to_b.get("/api/v1/patients/2").await;
            r.json()["family_name"] == "Nabil"
        })
        .await,
        "B serves the new version"
    );
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_shared() {
    let server = RedisServer::start();
    let mut s = settings(Some(server.url()));
    s.rate_limit_per_minute = 6;
    let (a, b) = two_instances(s).await;
    let (to_a, to_b) = (Client::new(a.addr), Client::new(b.addr));
    for _ in 0..3 {
        assert_eq!(to_a.get("/api/v1/appointments").await.status, 200);
        assert_eq!(to_b.get("/api/v1/appointments").await.status, 200);
    }
    assert_eq!(to_a.get("/api/v1/appointments").await.status, 429);
    assert_eq!(to_b.get("/api/v1/appointments").await.status, 429);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_load_degrades_without_failing() {
    let mut server = RedisServer::start();
    let app = orchestrator(settings(Some(server.url()))).await;
    let client = Client::new(app.addr);
    let statuses: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let started = Instant::now();
    let run_for = Duration::from_secs(7);
    let mut workers = Vec::new();
    for worker in 0..6u64 {
        let (client, statuses, slowest) = (client, statuses.clone(), slowest.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < run_for {
                n += 1;
                let path = match (worker + n) % 4 {
                    0 => "/api/v1/appointments".to_owned(),
                    k => format!("/api/v1/patients/{k}"),
                };
                let sent = Instant::now();
                let reply = client.get(&path).await;
                let took = sent.elapsed();
                *statuses.lock().unwrap().entry(reply.status).or_default() += 1;
                let mut s = slowest.lock().unwrap();
                *s = (*s).max(took);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.restart();
    for w in workers {
        w.await.unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    let slowest = *slowest.lock().unwrap();
    let total: u64 = statuses.values().sum();
    let ok = statuses.get(&200).copied().unwrap_or(0);
    println!("responses by status: {statuses:?}; slowest {slowest:?}; total {total}");
    assert!(total > 100, "the load ran: {statuses:?}");
    assert!(
        statuses.keys().all(|s| matches!(s, 200 | 503)),
        "only answers or 503s: {statuses:?}"
    );
    assert!(
        ok * 100 >= total * 95,
        "GETs kept being answered: {statuses:?}"
    );
    assert!(
        slowest < Duration::from_secs(3),
        "no request hung: {slowest:?}"
    );

    // While Redis was down the rate limiter decided locally.
    let metrics = String::from_utf8_lossy(&client.get("/metrics").await.body).into_owned();
    let fallbacks: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("nilecare_ratelimit_decisions_total")
                && l.contains(r#"result="fallback""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(fallbacks > 0.0, "no fallback decisions counted:\n{metrics}");

    // After the restart: ready again, the registry has every service back.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let ready = client.get("/ready").await;
            ready.status == 200
                && ready.json()["checks"]["registry"]["services"]
                    .as_array()
                    .is_some_and(|s| s.len() == 4)
        })
        .await,
        "{}",
        client.get("/ready").await.json()
    );
    assert_eq!(client.get("/health").await.status, 200);
    app.shutdown().await;
}

/// A token revoked through one instance (logout) is refused by every instance on the same Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_every_instance() {
    let server = RedisServer::start();
    let (a, b) = two_instances(settings(Some(server.url()))).await;
    let (to_a, to_b) = (Client::new(a.addr), Client::new(b.addr));
    let token = to_a
        .bearer("dr-leila", &["clinician"], Some("clinic-3"))
        .await;
    let auth = [("authorization", token.as_str())];
    // Both instances accept it (the development issuer's key is the same everywhere).
    assert_eq!(
        to_a.send("GET", "/api/v1/patients/1", &auth, "")
            .await
            .status,
        200
    );
    assert_eq!(
        to_b.send("GET", "/api/v1/patients/1", &auth, "")
            .await
            .status,
        200
    );
    assert_eq!(
        to_a.send("POST", "/api/v1/auth/logout", &auth, "")
            .await
            .status,
        204
    );
    assert_eq!(
        to_a.send("GET", "/api/v1/patients/1", &auth, "")
            .await
            .status,
        401
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            to_b.send("GET", "/api/v1/patients/1", &auth, "")
                .await
                .status
                == 401
        })
        .await,
        "instance B still accepts the revoked token"
    );
    // Another token of the same user still works on both.
    let fresh = to_b
        .bearer("dr-leila", &["clinician"], Some("clinic-3"))
        .await;
    let fresh = [("authorization", fresh.as_str())];
    assert_eq!(
        to_a.send("GET", "/api/v1/patients/1", &fresh, "")
            .await
            .status,
        200
    );
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_redis_fetch_the_issuers_keys_once() {
    use nilecare::auth::Algorithm;
    use nilecare_test_support::jwt::{JwksServer, SigningKey, jwks, now_secs};

    let server = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let provider = JwksServer::start(jwks(&[&key])).await;
    let mut s = settings(Some(server.url()));
    s.auth_issuer = Some(provider.issuer().to_owned());
    s.auth_jwks_url = Some(provider.jwks_url());
    let (a, b) = two_instances(s).await;
    assert_eq!(provider.jwks_fetches(), 1, "b took a's key set from Redis");

    let now = now_secs();
    let token = key.sign(&serde_json::json!({
        "iss": provider.issuer(), "aud": "orchestrator", "sub": "dr-salma",
        "roles": ["clinician"], "iat": now, "exp": now + 300,
    }));
    let bearer = format!("Bearer {token}");
    for client in [Client::new(a.addr), Client::new(b.addr)] {
        let put = client
            .send(
                "PUT",
                "/api/v1/patients/3",
                &[("authorization", &bearer)],
                r#"{"given_name":"Salma","family_name":"Idris","birth_date":"1990-01-20"}"#,
            )
            .await;
        assert_eq!(put.status, 200);
    }
    assert_eq!(provider.jwks_fetches(), 1);
    b.shutdown().await;
    a.shutdown().await;
}
