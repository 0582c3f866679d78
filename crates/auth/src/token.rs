//! The checks made before any cryptography: size, shape, and the protected header (`alg`,
//! `kid`, `crit`), with errors that say which part is wrong.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;

use crate::error::TokenError;

/// The protected header fields verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenHeader {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawHeader {
    alg: Option<serde_json::Value>,
    kid: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
}

/// Checks the size and shape of `token` and reads its header.
pub(crate) fn read_header(token: &str, max_bytes: usize) -> Result<TokenHeader, TokenError> {
    if token.len() > max_bytes {
        return Err(TokenError::TooLarge {
            size: token.len(),
            max: max_bytes,
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "expected three dot-separated parts (JWS compact serialization)".into(),
        ));
    };
    for (name, part) in [
        ("header", header),
        ("payload", payload),
        ("signature", signature),
    ] {
        if part.is_empty() {
            return Err(TokenError::Malformed(format!("empty {name}")));
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenError::Malformed(format!(
                "the {name} is not base64url (no padding)"
            )));
        }
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    let raw: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::Malformed(format!("header is not a JSON object: {e}")))?;
    if let Some(crit) = raw.crit {
        return Err(TokenError::UnsupportedCritical(crit.to_string()));
    }
    let alg = match raw.alg {
        Some(serde_json::Value::String(alg)) => parse_algorithm(&alg)?,
        Some(_) => return Err(TokenError::Malformed("header alg is not a string".into())),
        None => return Err(TokenError::Malformed("header has no alg".into())),
    };
    let kid = match raw.kid {
        Some(serde_json::Value::String(kid)) => Some(kid),
        None | Some(serde_json::Value::Null) => None,
        Some(_) => return Err(TokenError::Malformed("header kid is not a string".into())),
    };
    Ok(TokenHeader { alg, kid })
}

/// The JOSE algorithm named `name` (case-sensitive, RFC 7518).
pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, TokenError> {
    if name.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsigned);
    }
    Ok(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(TokenError::UnsupportedAlgorithm(shown));
        }
    })
}

/// The JOSE name of `alg`.
pub(crate) fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// Whether `alg` is an HMAC (shared secret) algorithm.
pub(crate) fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn size_is_checked_before_anything_else() {
        let token = "a".repeat(100);
        assert_eq!(
            read_header(&token, 99),
            Err(TokenError::TooLarge { size: 100, max: 99 })
        );
    }

    #[test]
    fn shape_errors_name_the_part() {
        let h = b64(r#"{"alg":"RS256"}"#);
        for (token, needle) in [
            ("abc", "three"),
            ("a.b.c.d", "three"),
            (&format!("{h}..sig") as &str, "empty payload"),
            (&format!("{h}.p a.sig"), "payload is not base64url"),
            (&format!("{h}.p.s="), "signature is not base64url"),
            ("e30.p.s", "no alg"),
            (&format!("{}.p.s", b64("[1]")), "JSON object"),
        ] {
            let err = read_header(token, 1000).unwrap_err().to_string();
            assert!(err.contains(needle), "{token}: {err}");
        }
    }

    #[test]
    fn none_crit_and_unknown_algorithms_are_refused() {
        for (alg, expected) in [
            ("none", TokenError::Unsigned),
            ("NONE", TokenError::Unsigned),
            ("ES512", TokenError::UnsupportedAlgorithm("ES512".into())),
        ] {
            let token = format!("{}.p.s", b64(&format!(r#"{{"alg":"{alg}"}}"#)));
            assert_eq!(read_header(&token, 1000), Err(expected));
        }
        let token = format!("{}.p.s", b64(r#"{"alg":"RS256","crit":["exp"]}"#));
        assert!(matches!(
            read_header(&token, 1000),
            Err(TokenError::UnsupportedCritical(_))
        ));
    }

    #[test]
    fn every_algorithm_name_round_trips() {
        for name in [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "EdDSA",
        ] {
            assert_eq!(algorithm_name(parse_algorithm(name).unwrap()), name);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]
        #[test]
        fn any_bytes_never_panic(text in ".{0,200}") {
            let _ = read_header(&text, 8192);
        }
    }
}
