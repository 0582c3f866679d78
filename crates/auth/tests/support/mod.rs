//! What the auth test binaries share: claims for a local identity provider, a verifier of its
//! keys, and a Redis pool with short timeouts.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use nilecare_auth::{Algorithm, NoCustomClaims, Verifier, VerifierBuilder};
use nilecare_test_support::jwt::{JwksServer, now_secs};
use serde_json::{Value, json};

/// The audience every test token carries.
pub const AUDIENCE: &str = "orchestrator";

/// Valid claims of `issuer` for subject `u1`, for 5 minutes.
pub fn claims(issuer: &str) -> Value {
    let now = now_secs();
    json!({"iss": issuer, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 300})
}

/// A verifier of `server`'s tokens (RS256 and ES256) with keys from its JWKS.
pub fn builder(server: &JwksServer) -> VerifierBuilder {
    Verifier::builder()
        .issuer(server.issuer())
        .audience(AUDIENCE)
        .algorithms([Algorithm::RS256, Algorithm::ES256])
        .jwks_url(server.jwks_url())
}

/// Whether `token` verifies.
pub async fn ok(verifier: &Verifier, token: &str) -> bool {
    verifier.verify::<NoCustomClaims>(token).await.is_ok()
}

/// A pool on `url` whose commands give up after 300 ms.
pub async fn redis_pool(url: &str) -> nilecare_redis::fred::clients::Pool {
    nilecare_redis::connect(
        &nilecare_redis::RedisConfig::from_url(url)
            .unwrap()
            .with_command_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap()
}
