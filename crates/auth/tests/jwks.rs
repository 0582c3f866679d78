//! Keys from a real local identity provider (HTTP and HTTPS servers in the test, counting
//! fetches): one fetch for many verifications, rotation, a flood of unknown `kid`s bounded by
//! the cooldown, stale keys while the provider is down and the error after the maximum
//! staleness, a removed key refused after refresh, `Cache-Control: max-age`, OIDC discovery.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use nilecare_auth::{Algorithm, Claims, Error, NoCustomClaims, TokenError, Verifier};
use nilecare_test_support::TestCa;
use nilecare_test_support::jwt::{JwksServer, SigningKey, jwks};

mod support;

use support::{AUDIENCE, builder, claims, ok};

#[tokio::test]
async fn many_verifications_cost_one_fetch() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let verifier = builder(&server).build().unwrap();
    let token = key.sign(&claims(server.issuer()));
    for _ in 0..100 {
        let claims: Claims = verifier.verify(&token).await.unwrap();
        assert_eq!(claims.subject.as_deref(), Some("u1"));
    }
    assert_eq!(server.jwks_fetches(), 1);
}

#[tokio::test]
async fn concurrent_first_verifications_share_one_fetch() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let verifier = builder(&server).build().unwrap();
    let token = key.sign(&claims(server.issuer()));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (v, t) = (verifier.clone(), token.clone());
            tokio::spawn(async move { v.verify::<NoCustomClaims>(&t).await.is_ok() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert_eq!(server.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_fetch() {
    let old = SigningKey::rsa(1, "2026-11", Algorithm::RS256);
    let new = SigningKey::ec("2026-12", Algorithm::ES256);
    let server = JwksServer::start(jwks(&[&old])).await;
    let verifier = builder(&server)
        .refetch_cooldown(Duration::from_millis(50))
        .build()
        .unwrap();
    assert!(ok(&verifier, &old.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 1);
    // The provider publishes the new key next to the old one and starts signing with it.
    server.set_jwks(jwks(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(ok(&verifier, &new.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 2);
    // Both keys now verify without further fetches.
    assert!(ok(&verifier, &old.sign(&claims(server.issuer()))).await);
    assert!(ok(&verifier, &new.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_is_bounded_by_the_cooldown() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let cooldown = Duration::from_millis(200);
    let verifier = builder(&server).refetch_cooldown(cooldown).build().unwrap();
    assert!(ok(&verifier, &key.sign(&claims(server.issuer()))).await);
    let started = std::time::Instant::now();
    let mut refused = 0;
    for i in 0..500 {
        let bogus = SigningKey::rsa(2, &format!("bogus-{i}"), Algorithm::RS256);
        match verifier
            .verify::<NoCustomClaims>(&bogus.sign(&claims(server.issuer())))
            .await
        {
            Err(Error::InvalidToken(TokenError::UnknownKey(kid))) => {
                assert_eq!(kid, format!("bogus-{i}"));
                refused += 1;
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }
    let allowed = 1 + (started.elapsed().as_millis() / cooldown.as_millis()) as usize + 1;
    assert_eq!(refused, 500);
    assert!(
        server.jwks_fetches() <= allowed,
        "{} fetches for 500 bogus kids in {:?} (cooldown {cooldown:?}, at most {allowed})",
        server.jwks_fetches(),
        started.elapsed()
    );
    // The genuine key still verifies throughout.
    assert!(ok(&verifier, &key.sign(&claims(server.issuer()))).await);
}

#[tokio::test]
async fn stale_keys_verify_while_the_provider_is_down_until_the_maximum_staleness() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let ttl = Duration::from_millis(200);
    let verifier = builder(&server)
        .jwks_ttl(ttl, Duration::from_millis(100), Duration::from_secs(60))
        .refetch_cooldown(Duration::from_millis(50))
        .max_stale(Duration::from_millis(800))
        .build()
        .unwrap();
    let token = key.sign(&claims(server.issuer()));
    assert!(ok(&verifier, &token).await);
    server.set_down(true);
    // Past the key set's lifetime: refreshes fail, the cached keys keep verifying.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(ok(&verifier, &token).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ok(&verifier, &token).await);
    assert!(server.jwks_fetches() >= 2, "a refresh was attempted");
    // Past expiry + max_stale (200 + 800 ms): a clear error, never a pass.
    tokio::time::sleep(Duration::from_millis(600)).await;
    match verifier.verify::<NoCustomClaims>(&token).await {
        Err(Error::KeysUnavailable {
            source_url,
            message,
        }) => {
            assert_eq!(source_url, server.jwks_url());
            assert!(message.contains("503"), "{message}");
            assert!(message.contains("maximum staleness"), "{message}");
        }
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
    // The provider comes back: verification resumes.
    server.set_down(false);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(ok(&verifier, &token).await);
}

#[tokio::test]
async fn a_key_removed_from_the_set_is_refused_after_refresh() {
    let kept = SigningKey::rsa(1, "kept", Algorithm::RS256);
    let removed = SigningKey::rsa(2, "removed", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&kept, &removed])).await;
    let verifier = builder(&server)
        .jwks_ttl(
            Duration::from_millis(200),
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
        .refetch_cooldown(Duration::from_millis(50))
        .build()
        .unwrap();
    let token = removed.sign(&claims(server.issuer()));
    assert!(ok(&verifier, &token).await);
    server.set_jwks(jwks(&[&kept]));
    // The background refresh (at 80 % of the lifetime) replaces the whole set.
    let refused = nilecare_test_support::eventually(Duration::from_secs(3), || {
        let (verifier, token) = (verifier.clone(), token.clone());
        async move {
            matches!(
                verifier.verify::<NoCustomClaims>(&token).await,
                Err(Error::InvalidToken(TokenError::UnknownKey(_)))
            )
        }
    })
    .await;
    assert!(refused, "the removed key still verified");
    assert!(ok(&verifier, &kept.sign(&claims(server.issuer()))).await);
}

#[tokio::test]
async fn cache_control_max_age_sets_the_refresh_interval() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control(Some("public, max-age=1"));
    let verifier = builder(&server)
        .jwks_ttl(
            Duration::from_secs(3600),
            Duration::from_millis(500),
            Duration::from_secs(3600),
        )
        .refetch_cooldown(Duration::from_millis(50))
        .build()
        .unwrap();
    let token = key.sign(&claims(server.issuer()));
    assert!(ok(&verifier, &token).await);
    // Without the header the set would live an hour; max-age=1 refreshes at 0.8 s.
    let refreshed = nilecare_test_support::eventually(Duration::from_secs(3), || {
        let (verifier, token, server) = (verifier.clone(), token.clone(), server.clone());
        async move { ok(&verifier, &token).await && server.jwks_fetches() >= 2 }
    })
    .await;
    assert!(
        refreshed,
        "max-age was ignored ({} fetches)",
        server.jwks_fetches()
    );
}

#[tokio::test]
async fn a_provider_down_at_start_is_a_clear_error_and_is_not_hammered() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_down(true);
    let verifier = builder(&server).build().unwrap();
    let token = key.sign(&claims(server.issuer()));
    for _ in 0..20 {
        match verifier.verify::<NoCustomClaims>(&token).await {
            Err(Error::KeysUnavailable { message, .. }) => {
                assert!(message.contains("503"), "{message}")
            }
            other => panic!("expected KeysUnavailable, got {other:?}"),
        }
    }
    assert_eq!(server.jwks_fetches(), 1, "one attempt per cooldown");
}

#[tokio::test]
async fn oidc_discovery_over_https_with_a_private_ca() {
    let ca = TestCa::new("identity provider CA");
    let key = SigningKey::ec("e1", Algorithm::ES256);
    let server = JwksServer::start_tls(jwks(&[&key]), &ca.issue(&["localhost"])).await;
    let verifier = Verifier::builder()
        .issuer(server.issuer())
        .audience(AUDIENCE)
        .algorithms([Algorithm::ES256])
        .oidc_discovery()
        .tls_ca_pem(ca.pem().as_bytes().to_vec())
        .build()
        .unwrap();
    let token = key.sign(&claims(server.issuer()));
    for _ in 0..10 {
        assert!(ok(&verifier, &token).await);
    }
    assert_eq!((server.discovery_fetches(), server.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn an_untrusted_certificate_fetches_nothing() {
    let ca = TestCa::new("identity provider CA");
    let other = TestCa::new("another CA");
    let key = SigningKey::ec("e1", Algorithm::ES256);
    let server = JwksServer::start_tls(jwks(&[&key]), &ca.issue(&["localhost"])).await;
    let verifier = Verifier::builder()
        .issuer(server.issuer())
        .audience(AUDIENCE)
        .algorithms([Algorithm::ES256])
        .jwks_url(server.jwks_url())
        .tls_ca_pem(other.pem().as_bytes().to_vec())
        .build()
        .unwrap();
    match verifier
        .verify::<NoCustomClaims>(&key.sign(&claims(server.issuer())))
        .await
    {
        Err(Error::KeysUnavailable { message, .. }) => {
            assert!(message.contains("UnknownIssuer"), "{message}")
        }
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
    assert_eq!(server.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    // Configured with a trailing path the document does not name.
    let issuer = format!("{}/realms/other", server.issuer());
    let verifier = Verifier::builder()
        .issuer(&issuer)
        .audience(AUDIENCE)
        .oidc_discovery()
        .build()
        .unwrap();
    let err = verifier
        .verify::<NoCustomClaims>(&key.sign(&claims(&issuer)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("404") || err.contains("names issuer"), "{err}");
    assert_eq!(server.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_refreshed_set_with_duplicate_kids_keeps_the_previous_set() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let twin = SigningKey::rsa(2, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let verifier = builder(&server)
        .refetch_cooldown(Duration::from_millis(20))
        .build()
        .unwrap();
    assert!(ok(&verifier, &key.sign(&claims(server.issuer()))).await);
    server.set_jwks(jwks(&[&key, &twin]));
    tokio::time::sleep(Duration::from_millis(30)).await;
    // An unknown kid triggers a refetch, which is refused; the old set keeps serving.
    let stranger = SigningKey::rsa(2, "r9", Algorithm::RS256);
    assert!(!ok(&verifier, &stranger.sign(&claims(server.issuer()))).await);
    assert_eq!(server.jwks_fetches(), 2);
    assert!(ok(&verifier, &key.sign(&claims(server.issuer()))).await);
    // The twin's tokens never verify through the duplicated kid.
    assert!(!ok(&verifier, &twin.sign(&claims(server.issuer()))).await);
}

/// With usable cached keys, a token naming an unknown `kid` is the token's fault (401) even when
/// the refetch it triggers fails; only a key set past its staleness makes it 503. (With a zero
/// cooldown every lookup may refetch: the case that once answered 503.)
#[tokio::test]
async fn an_unknown_kid_while_the_provider_is_down_is_a_token_error() {
    let key = SigningKey::rsa(1, "r1", Algorithm::RS256);
    let server = JwksServer::start(jwks(&[&key])).await;
    let verifier = builder(&server)
        .refetch_cooldown(Duration::ZERO)
        .build()
        .unwrap();
    assert!(ok(&verifier, &key.sign(&claims(server.issuer()))).await);
    server.set_down(true);
    let stranger = SigningKey::rsa(2, "r9", Algorithm::RS256);
    for _ in 0..5 {
        match verifier
            .verify::<NoCustomClaims>(&stranger.sign(&claims(server.issuer())))
            .await
        {
            Err(Error::InvalidToken(TokenError::UnknownKey(kid))) => assert_eq!(kid, "r9"),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }
    // The known key still verifies from the cache.
    assert!(ok(&verifier, &key.sign(&claims(server.issuer()))).await);
}
