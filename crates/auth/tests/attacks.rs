//! Tokens an attacker (or a broken client) sends, and the claim rules, against a verifier with
//! a fixed key set: each case one test, each asserting the exact refusal.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nilecare_auth::jsonwebtoken::Header;
use nilecare_auth::{Algorithm, Claims, Error, KeySet, NoCustomClaims, TokenError, Verifier};
use nilecare_test_support::jwt::{SigningKey, jwks, now_secs};
use serde_json::{Value, json};

const ISSUER: &str = "https://id.nilecare.test";
const AUDIENCE: &str = "orchestrator";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

struct Keys {
    rsa: SigningKey,
    ec: SigningKey,
    ed: SigningKey,
}

fn keys() -> Keys {
    Keys {
        rsa: SigningKey::rsa(1, "r1", Algorithm::RS256),
        ec: SigningKey::ec("e1", Algorithm::ES256),
        ed: SigningKey::ed25519("d1"),
    }
}

fn verifier(keys: &Keys) -> Verifier {
    let set = jwks(&[&keys.rsa, &keys.ec, &keys.ed]).to_string();
    Verifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .key_set(KeySet::from_jwks(set.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn claims() -> Value {
    let now = now_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 300})
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

async fn refusal(verifier: &Verifier, token: &str) -> TokenError {
    match verifier.verify::<NoCustomClaims>(token).await {
        Err(Error::InvalidToken(e)) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn valid_tokens_of_every_allowed_algorithm_verify() {
    let keys = keys();
    let verifier = verifier(&keys);
    for key in [&keys.rsa, &keys.ec, &keys.ed] {
        let claims: Claims = verifier.verify(&key.sign(&claims())).await.unwrap();
        assert_eq!(claims.subject.as_deref(), Some("u1"), "{:?}", key.alg);
        assert_eq!(claims.issuer, ISSUER);
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let keys = keys();
    let verifier = verifier(&keys);
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims().to_string().as_bytes());
    // The usual form, with an empty signature, and one with a made-up signature.
    assert!(matches!(
        refusal(&verifier, &format!("{header}.{payload}.")).await,
        TokenError::Malformed(_)
    ));
    assert_eq!(
        refusal(&verifier, &format!("{header}.{payload}.c2ln")).await,
        TokenError::Unsigned
    );
    let header = b64(br#"{"alg":"None"}"#);
    assert_eq!(
        refusal(&verifier, &format!("{header}.{payload}.c2ln")).await,
        TokenError::Unsigned
    );
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let keys = keys();
    // The classic confusion: the attacker uses the published public key as an HMAC secret.
    let public = keys.rsa.jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let forged = SigningKey::hmac("r1", Algorithm::HS256, &public).sign(&claims());
    // HS256 not allowed: refused by the allow-list.
    assert_eq!(
        refusal(&verifier(&keys), &forged).await,
        TokenError::AlgorithmNotAllowed("HS256".into())
    );
    // HS256 allowed with a secret: the secret is used, never the RSA key the kid names.
    let both = Verifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .algorithms([Algorithm::RS256, Algorithm::HS256])
        .shared_secret(SECRET)
        .key_set(KeySet::from_jwks(jwks(&[&keys.rsa]).to_string().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(refusal(&both, &forged).await, TokenError::InvalidSignature);
    // And the genuine HS256 token passes there.
    let genuine = SigningKey::hmac("any", Algorithm::HS256, SECRET).sign(&claims());
    assert!(both.verify::<NoCustomClaims>(&genuine).await.is_ok());
}

#[tokio::test]
async fn a_token_naming_a_key_of_another_type_is_refused() {
    let keys = keys();
    let verifier = verifier(&keys);
    // Signed with the EC key but naming the RSA key's kid.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("r1".into());
    let token = keys.ec.sign_with_header(&header, &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        TokenError::KeyMismatch { kid, .. } if kid == "r1"
    ));
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let keys = keys();
    let other = SigningKey::rsa(2, "r2", Algorithm::RS256);
    assert_eq!(
        refusal(&verifier(&keys), &other.sign(&claims())).await,
        TokenError::UnknownKey("r2".into())
    );
}

#[tokio::test]
async fn a_signature_by_another_key_with_the_same_kid_is_refused() {
    let keys = keys();
    let impostor = SigningKey::rsa(2, "r1", Algorithm::RS256);
    assert_eq!(
        refusal(&verifier(&keys), &impostor.sign(&claims())).await,
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn expired_tokens_are_refused_beyond_the_leeway() {
    let keys = keys();
    let verifier = verifier(&keys);
    let now = now_secs();
    let expired = keys.rsa.sign(&with(claims(), "exp", json!(now - 60)));
    assert_eq!(
        refusal(&verifier, &expired).await,
        TokenError::Expired(now - 60)
    );
    // 10 s ago is within the default 30 s leeway.
    let recent = keys.rsa.sign(&with(claims(), "exp", json!(now - 10)));
    assert!(verifier.verify::<NoCustomClaims>(&recent).await.is_ok());
}

#[tokio::test]
async fn tokens_not_yet_valid_are_refused() {
    let keys = keys();
    let verifier = verifier(&keys);
    let later = now_secs() + 120;
    let token = keys.rsa.sign(&with(claims(), "nbf", json!(later)));
    assert_eq!(
        refusal(&verifier, &token).await,
        TokenError::NotYetValid(later)
    );
    let token = keys.rsa.sign(&with(claims(), "iat", json!(later)));
    assert_eq!(
        refusal(&verifier, &token).await,
        TokenError::IssuedInFuture(later)
    );
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let keys = keys();
    let token = keys
        .rsa
        .sign(&with(claims(), "iss", json!("https://evil.test")));
    assert_eq!(
        refusal(&verifier(&keys), &token).await,
        TokenError::WrongIssuer
    );
}

#[tokio::test]
async fn a_missing_issuer_is_refused() {
    let keys = keys();
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        refusal(&verifier(&keys), &keys.rsa.sign(&claims)).await,
        TokenError::MissingClaim("iss".into())
    );
}

#[tokio::test]
async fn a_wrong_or_missing_audience_is_refused() {
    let keys = keys();
    let verifier = verifier(&keys);
    let token = keys
        .rsa
        .sign(&with(claims(), "aud", json!(["billing", "x"])));
    assert_eq!(refusal(&verifier, &token).await, TokenError::WrongAudience);
    let mut claims_without = claims();
    claims_without.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        refusal(&verifier, &keys.rsa.sign(&claims_without)).await,
        TokenError::MissingClaim("aud".into())
    );
    // One of several audiences is enough.
    let token = keys
        .rsa
        .sign(&with(claims(), "aud", json!(["billing", AUDIENCE])));
    assert!(verifier.verify::<NoCustomClaims>(&token).await.is_ok());
}

#[tokio::test]
async fn a_missing_exp_is_refused_unless_configured() {
    let keys = keys();
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("exp");
    let token = keys.rsa.sign(&claims);
    assert_eq!(
        refusal(&verifier(&keys), &token).await,
        TokenError::MissingClaim("exp".into())
    );
    let lenient = Verifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_exp(false)
        .key_set(KeySet::from_jwks(jwks(&[&keys.rsa]).to_string().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(lenient.verify::<NoCustomClaims>(&token).await.is_ok());
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let keys = keys();
    let token = keys.rsa.sign(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let promoted = b64(with(claims(), "roles", json!(["admin"]))
        .to_string()
        .as_bytes());
    let tampered = format!("{}.{promoted}.{}", parts[0], parts[2]);
    assert_eq!(
        refusal(&verifier(&keys), &tampered).await,
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn truncated_and_garbage_tokens_are_malformed() {
    let keys = keys();
    let verifier = verifier(&keys);
    let token = keys.rsa.sign(&claims());
    let (head, _) = token.rsplit_once('.').unwrap();
    for bad in [
        head.to_owned(),
        token[..token.len() - 5].to_owned(),
        "not a token".to_owned(),
        "a.b.c".to_owned(),
        String::new(),
        format!("{token}.extra"),
        "%%%.%%%.%%%".to_owned(),
    ] {
        let err = refusal(&verifier, &bad).await;
        assert!(
            matches!(err, TokenError::Malformed(_) | TokenError::InvalidSignature),
            "{bad:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_one_megabyte_token_is_refused_before_parsing() {
    let keys = keys();
    let token = "a".repeat(1024 * 1024);
    assert_eq!(
        refusal(&verifier(&keys), &token).await,
        TokenError::TooLarge {
            size: 1024 * 1024,
            max: nilecare_auth::DEFAULT_MAX_TOKEN_BYTES
        }
    );
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let keys = keys();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("r1".into());
    let token = keys.rsa.sign_with_header(&header, &claims());
    // Re-sign with a crit header: built by hand since jsonwebtoken's Header has no crit.
    let (_, rest) = token.split_once('.').unwrap();
    let crit = b64(br#"{"alg":"RS256","kid":"r1","crit":["http://example.com/x"]}"#);
    assert!(matches!(
        refusal(&verifier(&keys), &format!("{crit}.{rest}")).await,
        TokenError::UnsupportedCritical(_)
    ));
}

#[tokio::test]
async fn a_key_set_with_duplicate_kids_is_refused() {
    let keys = keys();
    let twin = SigningKey::rsa(2, "r1", Algorithm::RS256);
    let err = KeySet::from_jwks(jwks(&[&keys.rsa, &twin]).to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("duplicate kid \"r1\""), "{err}");
}

#[tokio::test]
async fn error_messages_never_contain_the_token() {
    let keys = keys();
    let verifier = verifier(&keys);
    let token = keys
        .rsa
        .sign(&with(claims(), "iss", json!("https://evil.test")));
    let err = verifier
        .verify::<NoCustomClaims>(&token)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(&token[..20]), "{err}");
}

#[test]
fn configuration_errors_name_the_field() {
    let keys = keys();
    let set = || KeySet::from_jwks(jwks(&[&keys.rsa]).to_string().as_bytes()).unwrap();
    let base = || Verifier::builder().issuer(ISSUER).audience(AUDIENCE);
    let cases: Vec<(nilecare_auth::VerifierBuilder, &str)> = vec![
        (
            Verifier::builder().audience(AUDIENCE).key_set(set()),
            "issuer",
        ),
        (
            Verifier::builder().issuer(ISSUER).key_set(set()),
            "audience",
        ),
        (base().key_set(set()).algorithms([]), "algorithms"),
        (base().algorithms([Algorithm::HS256]), "shared_secret"),
        (
            base().algorithms([Algorithm::HS512]).shared_secret(SECRET),
            "shared_secret",
        ),
        (base().key_set(set()).shared_secret(SECRET), "shared_secret"),
        (base(), "keys"),
        (base().jwks_url("http://id.example/jwks"), "jwks_url"),
        (base().jwks_url("nope"), "jwks_url"),
        (base().key_set(set()).max_token_bytes(10), "max_token_bytes"),
        (
            base().key_set(set()).leeway(Duration::from_secs(600)),
            "leeway",
        ),
        (base().key_set(set()).roles_claims(["a..b"]), "claims"),
        (
            base()
                .jwks_url("https://id.example/jwks")
                .tls_ca_pem(b"garbage".to_vec()),
            "tls_ca",
        ),
    ];
    for (builder, field) in cases {
        match builder.build() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn debug_never_shows_the_shared_secret() {
    let verifier = Verifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .algorithms([Algorithm::HS256])
        .shared_secret(SECRET)
        .build()
        .unwrap();
    let shown = format!("{verifier:?}");
    assert!(
        shown.contains("***") && !shown.contains("0123456789abcdef"),
        "{shown}"
    );
}
