//! Token verification against its anchor, same run: a bare `jsonwebtoken::decode` with the same
//! key and validation, vs `Verifier::verify`, vs a GET through an axum router with `AuthLayer`
//! (and the same router without the layer, to show what routing itself costs). RS256 and ES256.
//!
//! `cargo bench -p nilecare-auth --bench verify`
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use nilecare_auth::jsonwebtoken::{DecodingKey, Validation, decode};
use nilecare_auth::{Algorithm, AuthLayer, Claims, KeySet, NoCustomClaims, Verifier};
use nilecare_test_support::jwt::{SigningKey, jwks, now_secs};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const ISSUER: &str = "https://id.nilecare.test";

fn request(token: &str) -> http::Request<axum::body::Body> {
    http::Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .expect("request")
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let now = now_secs();
    let claims = json!({"iss": ISSUER, "aud": "orchestrator", "sub": "u1", "iat": now,
                        "exp": now + 3600, "roles": ["clinician"]});
    for key in [
        SigningKey::rsa(1, "r1", Algorithm::RS256),
        SigningKey::ec("e1", Algorithm::ES256),
    ] {
        let name = format!("{:?}", key.alg);
        let mut group = c.benchmark_group(format!("verify_{name}"));
        let token = key.sign(&claims);
        let set = KeySet::from_jwks(jwks(&[&key]).to_string().as_bytes()).expect("set");
        let verifier = Verifier::builder()
            .issuer(ISSUER)
            .audience("orchestrator")
            .algorithms([key.alg])
            .key_set(set)
            .build()
            .expect("verifier");

        // The anchor: the same key, signature, iss/aud/exp checks, payload into a JSON map.
        let jwk: nilecare_auth::jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.jwk.clone()).expect("jwk");
        let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&["orchestrator"]);
        group.bench_function("bare_jsonwebtoken_decode", |b| {
            b.iter(|| decode::<Map<String, Value>>(&token, &decoding, &validation).is_ok())
        });
        group.bench_function("verifier", |b| {
            b.iter(|| {
                runtime
                    .block_on(verifier.verify::<NoCustomClaims>(&token))
                    .is_ok()
            })
        });
        async fn handler(claims: Claims) -> String {
            claims.subject.unwrap_or_default()
        }
        async fn bare() -> &'static str {
            "u1"
        }
        let with_layer = Router::new()
            .route("/", get(handler))
            .layer(AuthLayer::required(verifier.clone()));
        let without = Router::new().route("/", get(bare));
        group.bench_function("router_with_auth_layer", |b| {
            b.iter(|| {
                let response = runtime
                    .block_on(with_layer.clone().oneshot(request(&token)))
                    .expect("infallible");
                assert_eq!(response.status(), 200);
            })
        });
        group.bench_function("router_without_layer", |b| {
            b.iter(|| {
                runtime
                    .block_on(without.clone().oneshot(request(&token)))
                    .expect("infallible")
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = nilecare_test_support::criterion_config();
    targets = verify
}
criterion_main!(benches);
