//! Revocation by token id and by subject, in memory and shared between two instances through a
//! real redis-server; a paused Redis makes checks fail closed after the maximum staleness.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_auth::{
    Algorithm, Error, KeySet, NoCustomClaims, RedisRevocationStore, RevocationSettings,
    Revocations, TokenError, Verifier,
};
mod support;

use nilecare_test_support::RedisServer;
use nilecare_test_support::jwt::{SigningKey, jwks, now_secs};
use serde_json::json;
use support::redis_pool;

const ISSUER: &str = "https://id.nilecare.test";

fn verifier(key: &SigningKey, revocations: Revocations) -> Verifier {
    Verifier::builder()
        .issuer(ISSUER)
        .audience("orchestrator")
        .key_set(KeySet::from_jwks(jwks(&[key]).to_string().as_bytes()).unwrap())
        .revocations(revocations)
        .build()
        .unwrap()
}

fn token(key: &SigningKey, jti: &str, sub: &str, iat: u64) -> String {
    key.sign(
        &json!({"iss": ISSUER, "aud": "orchestrator", "sub": sub, "jti": jti,
                     "iat": iat, "exp": now_secs() + 300}),
    )
}

async fn outcome(verifier: &Verifier, token: &str) -> Result<(), String> {
    match verifier.verify::<NoCustomClaims>(token).await {
        Ok(_) => Ok(()),
        Err(Error::InvalidToken(TokenError::Revoked)) => Err("revoked".into()),
        Err(Error::RevocationUnavailable(m)) => Err(format!("unavailable: {m}")),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn a_revoked_token_id_is_refused_and_others_pass() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let revocations = Revocations::memory();
    let verifier = verifier(&key, revocations.clone());
    let now = now_secs();
    let (a, b) = (token(&key, "j-1", "u1", now), token(&key, "j-2", "u1", now));
    assert_eq!(outcome(&verifier, &a).await, Ok(()));
    revocations.revoke_token("j-1", now + 300).await.unwrap();
    assert_eq!(outcome(&verifier, &a).await, Err("revoked".into()));
    assert_eq!(outcome(&verifier, &b).await, Ok(()));
}

#[tokio::test]
async fn a_revoked_subject_refuses_tokens_issued_before_and_accepts_later_ones() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let revocations = Revocations::memory();
    let verifier = verifier(&key, revocations.clone());
    let now = now_secs();
    let before = token(&key, "j-1", "u1", now - 10);
    let other_user = token(&key, "j-2", "u2", now - 10);
    revocations.revoke_subject("u1", now - 5).await.unwrap();
    assert_eq!(outcome(&verifier, &before).await, Err("revoked".into()));
    assert_eq!(outcome(&verifier, &other_user).await, Ok(()));
    // Logged in again after the revocation.
    assert_eq!(
        outcome(&verifier, &token(&key, "j-3", "u1", now)).await,
        Ok(())
    );
}

async fn redis_instance(url: &str, settings: RevocationSettings) -> Revocations {
    Revocations::start(RedisRevocationStore::new(redis_pool(url).await), settings)
        .await
        .unwrap()
}

fn fast() -> RevocationSettings {
    RevocationSettings {
        sync_interval: Duration::from_millis(50),
        max_staleness: Duration::from_millis(800),
    }
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_seen_by_the_other() {
    let server = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let a = verifier(&key, redis_instance(&server.url(), fast()).await);
    let b = verifier(&key, redis_instance(&server.url(), fast()).await);
    let now = now_secs();
    let stolen = token(&key, "j-stolen", "u1", now);
    let everywhere = token(&key, "j-9", "u2", now - 10);
    assert_eq!(outcome(&b, &stolen).await, Ok(()));
    let revocations = a.revocations().unwrap();
    revocations
        .revoke_token("j-stolen", now + 300)
        .await
        .unwrap();
    revocations.revoke_subject("u2", now - 1).await.unwrap();
    // Refused at once where revoked...
    assert_eq!(outcome(&a, &stolen).await, Err("revoked".into()));
    // ...and within the sync interval on the other instance.
    let seen = nilecare_test_support::eventually(Duration::from_secs(2), || {
        let (b, stolen, everywhere) = (b.clone(), stolen.clone(), everywhere.clone());
        async move {
            outcome(&b, &stolen).await.is_err() && outcome(&b, &everywhere).await.is_err()
        }
    })
    .await;
    assert!(seen, "instance b never saw the revocations");
    // A third instance starting later reads the retained log.
    let c = verifier(&key, redis_instance(&server.url(), fast()).await);
    assert_eq!(outcome(&c, &stolen).await, Err("revoked".into()));
    assert_eq!(outcome(&c, &everywhere).await, Err("revoked".into()));
    assert_eq!(outcome(&c, &token(&key, "j-new", "u3", now)).await, Ok(()));
}

#[tokio::test]
async fn checks_cost_no_round_trip() {
    let server = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let settings = RevocationSettings {
        sync_interval: Duration::from_secs(60),
        max_staleness: Duration::from_secs(120),
    };
    let verifier = verifier(&key, redis_instance(&server.url(), settings).await);
    let before = server.command_calls("xrange");
    let t = token(&key, "j-1", "u1", now_secs());
    for _ in 0..200 {
        assert_eq!(outcome(&verifier, &t).await, Ok(()));
    }
    assert_eq!(server.command_calls("xrange"), before);
}

#[tokio::test]
async fn a_paused_redis_fails_closed_after_the_maximum_staleness() {
    let server = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let verifier = verifier(&key, redis_instance(&server.url(), fast()).await);
    let t = token(&key, "j-1", "u1", now_secs());
    assert_eq!(outcome(&verifier, &t).await, Ok(()));
    server.pause();
    // Within the staleness bound the local copy answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(outcome(&verifier, &t).await, Ok(()));
    // Revoking while Redis is down is an error, and revokes nothing.
    let revoked = verifier
        .revocations()
        .unwrap()
        .revoke_token("j-1", now_secs() + 300)
        .await;
    assert!(matches!(revoked, Err(Error::Redis(_))), "{revoked:?}");
    let closed = nilecare_test_support::eventually(Duration::from_secs(3), || {
        let (verifier, t) = (verifier.clone(), t.clone());
        async move {
            outcome(&verifier, &t)
                .await
                .is_err_and(|e| e.starts_with("unavailable"))
        }
    })
    .await;
    assert!(closed, "checks kept passing on a stale copy");
    server.resume();
    let open = nilecare_test_support::eventually(Duration::from_secs(5), || {
        let (verifier, t) = (verifier.clone(), t.clone());
        async move { outcome(&verifier, &t).await.is_ok() }
    })
    .await;
    assert!(open, "checks did not recover after Redis came back");
}
