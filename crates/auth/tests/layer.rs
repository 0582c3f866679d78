//! `AuthLayer`, `RequireLayer` and the `Claims` extractors over real HTTP: every status and
//! `WWW-Authenticate` challenge of RFC 6750, problem+json bodies, the key-fetch path, and
//! custom claims.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::Method;
use nilecare_auth::{Algorithm, AuthLayer, Claims, KeySet, RequireLayer, Verifier};
use nilecare_test_support::http::{HttpResponse, request, serve};
use nilecare_test_support::jwt::{JwksServer, SigningKey, jwks, now_secs};
use serde_json::{Value, json};

const ISSUER: &str = "https://id.nilecare.test";

fn claims(roles: &[&str]) -> Value {
    let now = now_secs();
    json!({"iss": ISSUER, "aud": "orchestrator", "sub": "dr-who", "iat": now, "exp": now + 300,
           "roles": roles, "clinic_id": "clinic-7", "department": "cardiology"})
}

fn verifier(key: &SigningKey) -> Verifier {
    Verifier::builder()
        .issuer(ISSUER)
        .audience("orchestrator")
        .key_set(KeySet::from_jwks(jwks(&[key]).to_string().as_bytes()).unwrap())
        .tenant_claim("clinic_id")
        .build()
        .unwrap()
}

async fn whoami(claims: Option<Claims>) -> String {
    match claims {
        Some(c) => format!(
            "{} at {}",
            c.subject.unwrap_or_default(),
            c.tenant.unwrap_or_default()
        ),
        None => "anonymous".into(),
    }
}

async fn create(claims: Claims) -> String {
    format!("created by {}", claims.subject.unwrap_or_default())
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/patients", get(whoami).post(create))
        .layer(RequireLayer::role("clinician").for_methods([Method::POST]))
        .layer(AuthLayer::optional(verifier))
}

async fn call(addr: std::net::SocketAddr, method: &str, token: Option<&str>) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    request(addr, method, "/patients", &headers, b"").await
}

#[tokio::test]
async fn reads_accept_no_token_and_see_the_claims_of_a_good_one() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let addr = serve(app(verifier(&key))).await;
    let anonymous = call(addr, "GET", None).await;
    assert_eq!(
        (anonymous.status, anonymous.text().as_str()),
        (200, "anonymous")
    );
    let token = key.sign(&claims(&["nurse"]));
    let known = call(addr, "GET", Some(&token)).await;
    assert_eq!(
        (known.status, known.text().as_str()),
        (200, "dr-who at clinic-7")
    );
}

#[tokio::test]
async fn a_mutation_without_a_token_is_401_with_a_bare_challenge() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let addr = serve(app(verifier(&key))).await;
    let response = call(addr, "POST", None).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json()["status"], 401);
}

#[tokio::test]
async fn a_bad_token_is_401_invalid_token_even_where_auth_is_optional() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let addr = serve(app(verifier(&key))).await;
    let now = now_secs();
    let mut expired = claims(&["clinician"]);
    expired["exp"] = json!(now - 3600);
    let response = call(addr, "GET", Some(&key.sign(&expired))).await;
    assert_eq!(response.status, 401);
    let challenge = response.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token expired at "),
        "{challenge}"
    );
    let body = response.json();
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn a_token_without_the_role_is_403_insufficient_scope() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let addr = serve(app(verifier(&key))).await;
    let response = call(addr, "POST", Some(&key.sign(&claims(&["nurse"])))).await;
    assert_eq!(response.status, 403);
    let challenge = response.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        response.json()["detail"]
            .as_str()
            .unwrap()
            .contains("clinician")
    );
}

#[tokio::test]
async fn a_token_with_the_role_is_served() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let addr = serve(app(verifier(&key))).await;
    let response = call(addr, "POST", Some(&key.sign(&claims(&["clinician"])))).await;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "created by dr-who")
    );
}

#[tokio::test]
async fn a_malformed_authorization_header_is_400_invalid_request() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let addr = serve(app(verifier(&key))).await;
    let response = request(
        addr,
        "GET",
        "/patients",
        &[("authorization", "Bearer")],
        b"",
    )
    .await;
    assert_eq!(response.status, 400);
    assert!(
        response
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
}

#[tokio::test]
async fn a_required_layer_refuses_requests_without_a_token() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let app = Router::new()
        .route("/patients", get(whoami))
        .layer(AuthLayer::required(verifier(&key)).realm("nilecare"));
    let addr = serve(app).await;
    let response = call(addr, "GET", None).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"nilecare\"")
    );
    let token = key.sign(&claims(&[]));
    assert_eq!(call(addr, "GET", Some(&token)).await.status, 200);
}

#[tokio::test]
async fn the_claims_extractor_without_the_layer_is_401() {
    let addr = serve(Router::new().route("/patients", get(create))).await;
    let response = call(addr, "GET", None).await;
    assert_eq!(response.status, 401);
}

#[tokio::test]
async fn the_first_request_waits_for_the_key_fetch() {
    let key = SigningKey::ec("e1", Algorithm::ES256);
    let provider = JwksServer::start(jwks(&[&key])).await;
    let verifier = Verifier::builder()
        .issuer(ISSUER)
        .audience("orchestrator")
        .algorithms([Algorithm::ES256])
        .jwks_url(provider.jwks_url())
        .build()
        .unwrap();
    let addr = serve(app(verifier)).await;
    let token = key.sign(&claims(&["clinician"]));
    for _ in 0..5 {
        let response = call(addr, "POST", Some(&token)).await;
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "created by dr-who")
        );
    }
    assert_eq!(provider.jwks_fetches(), 1);
}

#[tokio::test]
async fn unavailable_keys_are_503_never_a_pass() {
    let key = SigningKey::ec("e1", Algorithm::ES256);
    let provider = JwksServer::start(jwks(&[&key])).await;
    provider.set_down(true);
    let verifier = Verifier::builder()
        .issuer(ISSUER)
        .audience("orchestrator")
        .algorithms([Algorithm::ES256])
        .jwks_url(provider.jwks_url())
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let addr = serve(app(verifier)).await;
    let response = call(addr, "GET", Some(&key.sign(&claims(&[])))).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("5"));
    assert!(
        !response.text().contains("jwks.json"),
        "{}",
        response.text()
    );
}

#[derive(Clone, Debug, serde::Deserialize)]
struct Staff {
    department: String,
}

#[tokio::test]
async fn custom_claims_reach_the_handler_typed() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    async fn department(claims: Claims<Staff>) -> String {
        claims.custom.department
    }
    let app = Router::new()
        .route("/patients", get(department))
        .layer(RequireLayer::role("clinician").claims::<Staff>())
        .layer(AuthLayer::required(verifier(&key)).claims::<Staff>());
    let addr = serve(app).await;
    let response = call(addr, "GET", Some(&key.sign(&claims(&["clinician"])))).await;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "cardiology")
    );
}

/// Every outcome, with TRACE logging captured (the HTTP client's and the layer's): the token
/// appears in no log line and no body; the subject appears only with `log_subject(true)`.
#[tokio::test]
async fn the_token_never_reaches_logs_or_bodies() {
    use nilecare_test_support::logs::{LogBuffer, set_thread_default};
    use tower::ServiceExt;
    let buffer = LogBuffer::new();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    let _guard = set_thread_default(subscriber);

    let key = SigningKey::ec("e1", Algorithm::ES256);
    let provider = JwksServer::start(jwks(&[&key])).await;
    let verifier = Verifier::builder()
        .issuer(ISSUER)
        .audience("orchestrator")
        .algorithms([Algorithm::ES256])
        .jwks_url(provider.jwks_url())
        .refetch_cooldown(Duration::from_millis(1))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/patients", get(whoami).post(create))
        .layer(RequireLayer::role("clinician").for_methods([Method::POST]))
        .layer(AuthLayer::optional(verifier).log_subject(true));
    let now = now_secs();
    let mut expired = claims(&["clinician"]);
    expired["exp"] = json!(now - 3600);
    let good = key.sign(&claims(&["clinician"]));
    let stranger = SigningKey::ec("e9", Algorithm::ES256).sign(&claims(&["clinician"]));
    let tokens = [
        good.clone(),
        key.sign(&expired),
        format!("{}AAAA", &good[..good.len() - 4]),
        stranger,
        key.sign(&claims(&["nurse"])),
    ];
    let mut statuses = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if i == 3 {
            provider.set_down(true); // the unknown kid's refetch fails and is logged
        }
        for method in [Method::GET, Method::POST] {
            let request = http::Request::builder()
                .method(method)
                .uri("/patients")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            statuses.push(response.status().as_u16());
            let headers = format!("{:?}", response.headers());
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let signature = token.rsplit('.').next().unwrap();
            assert!(!String::from_utf8_lossy(&body).contains(signature));
            assert!(!headers.contains(signature), "{headers}");
        }
    }
    assert_eq!(statuses, [200, 200, 401, 401, 401, 401, 401, 401, 200, 403]);
    let logs = buffer.text();
    assert!(
        logs.contains("caller authenticated") && logs.contains("dr-who"),
        "{logs}"
    );
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        assert!(!logs.contains(signature), "a signature reached the logs");
        assert!(!logs.contains(payload), "a payload reached the logs");
    }
}
