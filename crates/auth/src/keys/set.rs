//! A parsed key set (JWKS, RFC 7517): the verification keys by `kid`, with the algorithm each
//! may verify.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::error::{Error, Result, TokenError};
use crate::token::{algorithm_name, is_hmac, parse_algorithm};

/// The family of algorithms a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn verifies(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::EcP256 => alg == Algorithm::ES256,
            KeyKind::EcP384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA (RS*/PS*)",
            KeyKind::EcP256 => "EC P-256 (ES256)",
            KeyKind::EcP384 => "EC P-384 (ES384)",
            KeyKind::Ed25519 => "Ed25519 (EdDSA)",
        }
    }
}

/// One public verification key.
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    /// The JWK's `alg`, when it names one: then only that algorithm.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) kind: KeyKind,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Checks that this key may verify a token signed with `alg`.
    pub(crate) fn check_algorithm(&self, alg: Algorithm) -> std::result::Result<(), TokenError> {
        let fits = self.kind.verifies(alg) && self.alg.is_none_or(|own| own == alg);
        if fits {
            return Ok(());
        }
        let key = match self.alg {
            Some(own) => algorithm_name(own).to_owned(),
            None => self.kind.describe().to_owned(),
        };
        Err(TokenError::KeyMismatch {
            kid: self.kid.clone().unwrap_or_default(),
            key,
            token: algorithm_name(alg).to_owned(),
        })
    }
}

/// The verification keys of one issuer, by `kid`. Built from a JWKS document: keys meant for
/// encryption (`use: enc`), of unsupported types or curves are skipped (a provider may publish
/// them for other clients); a duplicate `kid` rejects the whole set, since a token naming it
/// could then be checked against either key.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    /// Every key, for tokens without `kid`.
    all: Vec<Arc<VerifyingKey>>,
    skipped: usize,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    ///
    /// # Errors
    /// [`Error::InvalidKeySet`] when it is not JSON, has no `keys` array, holds a duplicate `kid`
    /// or a key whose parameters do not decode.
    pub fn from_jwks(json: &[u8]) -> Result<Self> {
        Self::parse(json, "configured")
    }

    pub(crate) fn parse(json: &[u8], source: &str) -> Result<Self> {
        let invalid = |message: String| Error::InvalidKeySet {
            source_url: source.to_owned(),
            message,
        };
        let doc: Value =
            serde_json::from_slice(json).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("no \"keys\" array".into()))?;
        let mut set = KeySet::default();
        for (index, jwk) in keys.iter().enumerate() {
            match parse_jwk(jwk).map_err(|m| invalid(format!("keys[{index}]: {m}")))? {
                Some(key) => {
                    let key = Arc::new(key);
                    if let Some(kid) = &key.kid {
                        if set.by_kid.insert(kid.clone(), key.clone()).is_some() {
                            return Err(invalid(format!("duplicate kid {kid:?}")));
                        }
                    }
                    set.all.push(key);
                }
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Keys skipped as not usable for verification (encryption keys, unsupported types).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether a key has this `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The key for a token with this `kid` (or, without one, the only key fitting `alg`).
    pub(crate) fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> std::result::Result<Option<&Arc<VerifyingKey>>, TokenError> {
        match kid {
            Some(kid) => Ok(self.by_kid.get(kid)),
            None => {
                let mut fitting = self.all.iter().filter(|k| k.check_algorithm(alg).is_ok());
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(Some(key)),
                    (None, _) => Ok(None),
                    (Some(_), Some(_)) => Err(TokenError::AmbiguousKey(
                        self.all
                            .iter()
                            .filter(|k| k.check_algorithm(alg).is_ok())
                            .count(),
                    )),
                }
            }
        }
    }
}

fn text<'a>(jwk: &'a Value, name: &str) -> std::result::Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

fn required<'a>(jwk: &'a Value, name: &str) -> std::result::Result<&'a str, String> {
    text(jwk, name)?.ok_or_else(|| format!("missing {name}"))
}

/// One JWK as a verification key; `Ok(None)` for keys this crate does not verify with.
fn parse_jwk(jwk: &Value) -> std::result::Result<Option<VerifyingKey>, String> {
    if !jwk.is_object() {
        return Err("not an object".into());
    }
    if text(jwk, "use")?.is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let kid = text(jwk, "kid")?.map(str::to_owned);
    let alg = match text(jwk, "alg")? {
        None => None,
        Some(name) => match parse_algorithm(name) {
            Ok(alg) if !is_hmac(alg) => Some(alg),
            // An HMAC, encryption or unknown algorithm: not a public verification key.
            _ => return Ok(None),
        },
    };
    let bad = |e: jsonwebtoken::errors::Error| format!("unusable key parameters: {e}");
    let (kind, decoding) = match required(jwk, "kty")? {
        "RSA" => {
            let (n, e) = (required(jwk, "n")?, required(jwk, "e")?);
            (
                KeyKind::Rsa,
                DecodingKey::from_rsa_components(n, e).map_err(bad)?,
            )
        }
        "EC" => {
            let kind = match required(jwk, "crv")? {
                "P-256" => KeyKind::EcP256,
                "P-384" => KeyKind::EcP384,
                _ => return Ok(None),
            };
            let (x, y) = (required(jwk, "x")?, required(jwk, "y")?);
            (kind, DecodingKey::from_ec_components(x, y).map_err(bad)?)
        }
        "OKP" => {
            if required(jwk, "crv")? != "Ed25519" {
                return Ok(None);
            }
            let x = required(jwk, "x")?;
            (
                KeyKind::Ed25519,
                DecodingKey::from_ed_components(x).map_err(bad)?,
            )
        }
        // `oct` (shared secrets never come from a key set) and unknown types.
        _ => return Ok(None),
    };
    if let Some(alg) = alg {
        if !kind.verifies(alg) {
            return Err(format!(
                "alg {} does not fit a {} key",
                algorithm_name(alg),
                kind.describe()
            ));
        }
    }
    Ok(Some(VerifyingKey {
        kid,
        alg,
        kind,
        decoding,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_n() -> String {
        let key = nilecare_test_support::jwt::SigningKey::rsa(1, "r", Algorithm::RS256);
        key.jwk["n"].as_str().unwrap().to_owned()
    }

    #[test]
    fn keys_are_found_by_kid_and_algorithm() {
        let rsa_n = rsa_n();
        let doc = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"r1","alg":"RS256","n":"{rsa_n}","e":"AQAB"}},
                         {{"kty":"RSA","kid":"enc","use":"enc","n":"{rsa_n}","e":"AQAB"}},
                         {{"kty":"oct","kid":"h","k":"c2VjcmV0"}},
                         {{"kty":"EC","kid":"p521","crv":"P-521","x":"AA","y":"AA"}}]}}"#
        );
        let set = KeySet::from_jwks(doc.as_bytes()).unwrap();
        assert_eq!((set.len(), set.skipped()), (1, 3));
        let key = set.find(Some("r1"), Algorithm::RS256).unwrap().unwrap();
        assert!(key.check_algorithm(Algorithm::RS256).is_ok());
        // The JWK says RS256: a PS256 or HS256 token naming it is refused.
        for alg in [Algorithm::PS256, Algorithm::HS256, Algorithm::ES256] {
            assert!(matches!(
                key.check_algorithm(alg),
                Err(TokenError::KeyMismatch { .. })
            ));
        }
        assert!(set.find(Some("enc"), Algorithm::RS256).unwrap().is_none());
        // No kid: the only RSA key is chosen.
        assert!(set.find(None, Algorithm::RS256).unwrap().is_some());
    }

    #[test]
    fn duplicate_kids_reject_the_set() {
        let rsa_n = rsa_n();
        let doc = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"k","n":"{rsa_n}","e":"AQAB"}},
                         {{"kty":"RSA","kid":"k","n":"{rsa_n}","e":"AQAB"}}]}}"#
        );
        let err = KeySet::from_jwks(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("duplicate kid \"k\""), "{err}");
    }

    #[test]
    fn bad_documents_name_the_problem() {
        for (doc, needle) in [
            (r#"nope"#, "not JSON"),
            (r#"{"key":[]}"#, "no \"keys\" array"),
            (r#"{"keys":[1]}"#, "keys[0]: not an object"),
            (
                r#"{"keys":[{"kty":"RSA","e":"AQAB"}]}"#,
                "keys[0]: missing n",
            ),
            (
                r#"{"keys":[{"kty":"EC","crv":"P-256","alg":"RS256","x":"AA","y":"AA"}]}"#,
                "does not fit",
            ),
            (
                r#"{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}"#,
                "unusable",
            ),
            (r#"{"keys":[{"kty":5}]}"#, "kty is not a string"),
        ] {
            let err = KeySet::from_jwks(doc.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{doc}: {err}");
        }
    }

    #[test]
    fn a_key_whose_alg_contradicts_its_type_is_an_error() {
        let rsa_n = rsa_n();
        let doc = format!(r#"{{"keys":[{{"kty":"RSA","alg":"ES256","n":"{rsa_n}","e":"AQAB"}}]}}"#);
        let err = KeySet::from_jwks(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("alg ES256 does not fit a RSA"), "{err}");
    }
}
