//! Known-answer vectors: the JWS examples of RFC 7515 Appendix A (A.1 HS256, A.2 RS256,
//! A.3 ES256), written here from the RFC's values. Each verifies as of a time before its `exp`
//! (1300819380); modified copies fail. The payload is `{"iss":"joe", "exp":1300819380,
//! "http://example.com/is_root":true}` with CRLFs, exactly as the RFC signs it.
//!
//! RFC 7520's JWS examples sign a text payload (not a JWT claims set): section 4.4 (HS256) is
//! used to show that the signature is checked before the payload, which a JWT verifier then
//! refuses as not a claims set.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nilecare_auth::{Algorithm, Claims, Error, KeySet, NoCustomClaims, TokenError, Verifier};

const PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const EXP: u64 = 1_300_819_380;

/// A.1: `{"typ":"JWT",\r\n "alg":"HS256"}` with the A.1 octet key.
const A1_HEADER: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
const A1_SIGNATURE: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// A.2: `{"alg":"RS256"}` with the A.2 RSA key.
const A2_HEADER: &str = "eyJhbGciOiJSUzI1NiJ9";
const A2_SIGNATURE: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

/// A.3: `{"alg":"ES256"}` with the A.3 P-256 key.
const A3_HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
const A3_SIGNATURE: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

fn before_exp() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(EXP - 60)
}

fn joe() -> nilecare_auth::VerifierBuilder {
    // The examples carry no `aud`.
    Verifier::builder().issuer("joe").any_audience()
}

/// An HS256 verifier with the base64url octet key `k` of a JWK.
fn hs256_with(k: &str) -> Verifier {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(k)
        .unwrap();
    joe()
        .algorithms([Algorithm::HS256])
        .shared_secret(key)
        .build()
        .unwrap()
}

fn hs256() -> Verifier {
    hs256_with(A1_KEY)
}

fn rs256() -> Verifier {
    let set = format!(r#"{{"keys":[{{"kty":"RSA","n":"{A2_N}","e":"AQAB"}}]}}"#);
    joe()
        .algorithms([Algorithm::RS256])
        .key_set(KeySet::from_jwks(set.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn es256() -> Verifier {
    let set = format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{A3_X}","y":"{A3_Y}"}}]}}"#);
    joe()
        .algorithms([Algorithm::ES256])
        .key_set(KeySet::from_jwks(set.as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn verifies(verifier: &Verifier, token: &str) {
    let claims: Claims = verifier.verify_at(token, before_exp()).await.unwrap();
    assert_eq!(claims.issuer, "joe");
    assert_eq!(claims.expires_at, Some(EXP));
}

async fn refused(verifier: &Verifier, token: &str, at: SystemTime) -> TokenError {
    match verifier.verify_at::<NoCustomClaims>(token, at).await {
        Err(Error::InvalidToken(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The same token with one signature character changed.
fn flipped(header: &str, signature: &str) -> String {
    let mut s = signature.to_owned();
    let last = if s.ends_with('A') { "B" } else { "A" };
    s.replace_range(10..11, last);
    format!("{header}.{PAYLOAD}.{s}")
}

#[tokio::test]
async fn rfc7515_a1_hs256_verifies() {
    verifies(&hs256(), &format!("{A1_HEADER}.{PAYLOAD}.{A1_SIGNATURE}")).await;
}

#[tokio::test]
async fn rfc7515_a1_modified_signature_fails() {
    let token = flipped(A1_HEADER, A1_SIGNATURE);
    assert_eq!(
        refused(&hs256(), &token, before_exp()).await,
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn rfc7515_a1_after_exp_is_expired() {
    let token = format!("{A1_HEADER}.{PAYLOAD}.{A1_SIGNATURE}");
    let after = UNIX_EPOCH + Duration::from_secs(EXP + 60);
    assert_eq!(
        refused(&hs256(), &token, after).await,
        TokenError::Expired(EXP)
    );
}

#[tokio::test]
async fn rfc7515_a2_rs256_verifies() {
    verifies(&rs256(), &format!("{A2_HEADER}.{PAYLOAD}.{A2_SIGNATURE}")).await;
}

#[tokio::test]
async fn rfc7515_a2_modified_signature_fails() {
    let token = flipped(A2_HEADER, A2_SIGNATURE);
    assert_eq!(
        refused(&rs256(), &token, before_exp()).await,
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn rfc7515_a2_modified_payload_fails() {
    // `"iss":"joe"` → `"iss":"jo3"`: same length, different bytes.
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = engine.decode(PAYLOAD).unwrap();
    let at = bytes.windows(3).position(|w| w == b"joe").unwrap();
    bytes[at + 2] = b'3';
    let token = format!("{A2_HEADER}.{}.{A2_SIGNATURE}", engine.encode(bytes));
    assert_eq!(
        refused(&rs256(), &token, before_exp()).await,
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn rfc7515_a3_es256_verifies() {
    verifies(&es256(), &format!("{A3_HEADER}.{PAYLOAD}.{A3_SIGNATURE}")).await;
}

#[tokio::test]
async fn rfc7515_a3_modified_signature_fails() {
    let token = flipped(A3_HEADER, A3_SIGNATURE);
    assert_eq!(
        refused(&es256(), &token, before_exp()).await,
        TokenError::InvalidSignature
    );
}

#[tokio::test]
async fn rfc7515_a2_signature_under_the_a3_key_fails() {
    // The RS256 example presented to an ES256-only verifier: refused by the allow-list.
    let token = format!("{A2_HEADER}.{PAYLOAD}.{A2_SIGNATURE}");
    assert_eq!(
        refused(&es256(), &token, before_exp()).await,
        TokenError::AlgorithmNotAllowed("RS256".into())
    );
}

/// RFC 7520 section 4.4: HS256 with the "018c0ae5-..." symmetric key over a text payload.
const RFC7520_4_4: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";
const RFC7520_OCT_KEY: &str = "hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg";

fn rfc7520_hs256() -> Verifier {
    hs256_with(RFC7520_OCT_KEY)
}

#[tokio::test]
async fn rfc7520_4_4_signature_verifies_and_the_text_payload_is_refused() {
    // The signature verifies (else InvalidSignature), then the payload is no claims set.
    match refused(&rfc7520_hs256(), RFC7520_4_4, before_exp()).await {
        TokenError::Malformed(why) => assert!(why.contains("payload"), "{why}"),
        other => panic!("expected the payload to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn rfc7520_4_4_modified_signature_fails() {
    let (head, signature) = RFC7520_4_4.rsplit_once('.').unwrap();
    let (header, _) = head.split_once('.').unwrap();
    let payload = head.split_once('.').unwrap().1;
    let mut s = signature.to_owned();
    s.replace_range(5..6, if &s[5..6] == "A" { "B" } else { "A" });
    let token = format!("{header}.{payload}.{s}");
    assert_eq!(
        refused(&rfc7520_hs256(), &token, before_exp()).await,
        TokenError::InvalidSignature
    );
}
