//! Key sets shared between instances through nilecare-cache on a real redis-server: the second
//! instance verifies without asking the provider, a rotation fetched by one instance reaches
//! the other without a second fetch, and the shared cache going away falls back to the
//! provider.

#![cfg(feature = "shared-keys")]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_auth::{Algorithm, Error, Verifier, VerifierBuilder};
use nilecare_cache::{AnyStore, Cache, MemoryStore, RedisStore};
use nilecare_test_support::RedisServer;
use nilecare_test_support::jwt::{JwksServer, SigningKey, jwks};

mod support;

use support::{AUDIENCE, claims, ok, redis_pool};

/// A verifier of `server`'s keys that may refetch every 50 ms.
fn builder(server: &JwksServer) -> VerifierBuilder {
    support::builder(server).refetch_cooldown(Duration::from_millis(50))
}

/// One instance's cache on the shared Redis (each instance has its own connection pool).
async fn redis_cache(url: &str) -> Cache {
    Cache::builder()
        .name("auth")
        .build(AnyStore::from(RedisStore::new(redis_pool(url).await)))
        .unwrap()
}

/// One instance: a verifier of `server`'s keys sharing them through `redis`.
async fn instance(server: &JwksServer, redis: &RedisServer) -> Verifier {
    builder(server)
        .shared_key_sets(redis_cache(&redis.url()).await)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_second_instance_verifies_without_asking_the_provider() {
    let redis = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let token = key.sign(&claims(server.issuer()));
    let a = instance(&server, &redis).await;
    let b = instance(&server, &redis).await;
    assert!(ok(&a, &token).await);
    assert_eq!(server.jwks_fetches(), 1);
    for _ in 0..20 {
        assert!(ok(&b, &token).await);
    }
    assert_eq!(server.jwks_fetches(), 1, "b took a's key set from Redis");
    // Without sharing, every instance fetches for itself.
    let c = builder(&server).build().unwrap();
    assert!(ok(&c, &token).await);
    assert_eq!(server.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_rotation_fetched_by_one_instance_reaches_the_other_without_a_fetch() {
    let redis = RedisServer::start();
    let old = SigningKey::rsa(1, "2026-11", Algorithm::RS256);
    let new = SigningKey::ec("2026-12", Algorithm::ES256);
    let server = JwksServer::start(jwks(&[&old])).await;
    let a = instance(&server, &redis).await;
    let b = instance(&server, &redis).await;
    assert!(ok(&a, &old.sign(&claims(server.issuer()))).await);
    assert!(ok(&b, &old.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 1);

    server.set_jwks(jwks(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(60)).await;
    let rotated = new.sign(&claims(server.issuer()));
    assert!(ok(&a, &rotated).await, "a refetches for the unknown kid");
    assert_eq!(server.jwks_fetches(), 2);
    assert!(ok(&b, &rotated).await, "b finds the newer set in Redis");
    assert_eq!(server.jwks_fetches(), 2, "b did not ask the provider");

    // A kid nobody publishes: the shared set is not newer than b's, so b asks the provider
    // (once per cooldown, which its shared load just started) instead of taking back the set
    // it already holds.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let unknown = SigningKey::rsa(2, "made-up", Algorithm::RS256);
    assert!(!ok(&b, &unknown.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 3);
}

#[tokio::test]
async fn verifiers_of_one_process_share_through_a_memory_cache() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let cache = Cache::builder()
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap();
    let token = key.sign(&claims(server.issuer()));
    for _ in 0..3 {
        let verifier = builder(&server)
            .shared_key_sets(cache.clone())
            .build()
            .unwrap();
        assert!(ok(&verifier, &token).await);
    }
    assert_eq!(server.jwks_fetches(), 1);
}

#[tokio::test]
async fn the_shared_cache_down_falls_back_to_the_provider() {
    let mut redis = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let token = key.sign(&claims(server.issuer()));
    let a = instance(&server, &redis).await;
    redis.kill();
    assert!(ok(&a, &token).await, "verified with the provider's keys");
    assert_eq!(server.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_garbage_shared_entry_is_ignored() {
    let redis = RedisServer::start();
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let cache = redis_cache(&redis.url()).await;
    // Someone else's value under the key, and a set with the attacker's key for another source.
    cache
        .set(
            &format!("auth:jwks:{}", server.jwks_url()),
            "not a key set",
            None,
        )
        .await
        .unwrap();
    let attacker = SigningKey::rsa(2, "r1", Algorithm::RS256);
    let a = builder(&server).shared_key_sets(cache).build().unwrap();
    assert!(ok(&a, &key.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 1, "the provider was asked");
    assert!(!ok(&a, &attacker.sign(&claims(server.issuer()))).await);
}

#[test]
fn sharing_configured_keys_is_a_named_error() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let cache = Cache::builder()
        .build(AnyStore::from(MemoryStore::with_max_entries(100).unwrap()))
        .unwrap();
    let error = Verifier::builder()
        .issuer("https://id.nilecare.test")
        .audience(AUDIENCE)
        .key_set(nilecare_auth::KeySet::from_jwks(jwks(&[&key]).to_string().as_bytes()).unwrap())
        .shared_key_sets(cache)
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidConfig { field, .. } if *field == "shared_key_sets"),
        "{error:?}"
    );
}
