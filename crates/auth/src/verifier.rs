//! [`Verifier`]: checks a token's size, header, key, signature, claims and revocation, in that
//! order, and hands back typed [`Claims`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::claims::{ClaimPaths, Claims};
use crate::config::VerifierBuilder;
use crate::error::{Error, Result, TokenError};
use crate::keys::{KeyCache, Lookup};
use crate::revocations::Revocations;
use crate::token::{is_hmac, read_header};

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    unix_seconds(SystemTime::now())
}

/// Unix milliseconds now.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) struct Inner {
    pub(crate) keys: Arc<KeyCache>,
    pub(crate) secret: Option<DecodingKey>,
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: u64,
    pub(crate) required: Vec<String>,
    pub(crate) max_token_bytes: usize,
    pub(crate) paths: ClaimPaths,
    pub(crate) revocations: Option<Revocations>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The shared secret is never shown.
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("keys", &self.keys.source_url())
            .field("shared_secret", &self.secret.as_ref().map(|_| "***"))
            .field("revocations", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}

/// Verifies the tokens of one issuer. Cheap to clone (one `Arc`); share one per issuer.
///
/// Verification, in order: size limit, three base64url parts, header (`alg` in the allow-list,
/// never `none`, no `crit`), key by `kid` (fetched or refetched as needed; its `alg` and type
/// must fit the token's), signature, `iss` exact, `aud` contains an accepted audience, `exp`,
/// `nbf` and `iat` against the clock with the leeway, required claims, revocation.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
    /// One `jsonwebtoken` validation per allowed algorithm, built once.
    validations: Arc<[(Algorithm, Validation)]>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Verifier {
    /// The builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    pub(crate) fn from_inner(mut inner: Inner) -> Self {
        if !inner.audiences.is_empty() && !inner.required.iter().any(|c| c == "aud") {
            // `jsonwebtoken` checks `aud` only when present: a token without one must fail.
            inner.required.push("aud".into());
        }
        if !inner.required.iter().any(|c| c == "iss") {
            inner.required.push("iss".into());
        }
        let validations = inner
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.validate_exp = false;
                v.validate_nbf = false;
                v.required_spec_claims.clear();
                v.set_issuer(&[&inner.issuer]);
                if inner.audiences.is_empty() {
                    v.validate_aud = false;
                } else {
                    v.set_audience(&inner.audiences);
                }
                (*alg, v)
            })
            .collect();
        Verifier {
            inner: Arc::new(inner),
            validations,
        }
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The revocations checked by this verifier, if any.
    pub fn revocations(&self) -> Option<&Revocations> {
        self.inner.revocations.as_ref()
    }

    /// Fetches the issuer's keys now (at start-up, so the first request does not wait).
    ///
    /// # Errors
    /// [`Error::KeysUnavailable`] when they cannot be fetched.
    pub async fn prefetch_keys(&self) -> Result<()> {
        match self.inner.keys.lookup(Some(""), Algorithm::RS256, true) {
            Lookup::Fetch => self.inner.keys.fetch().await,
            _ => Ok(()),
        }
    }

    /// Verifies `token` now.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token that must be refused (401),
    /// [`Error::KeysUnavailable`] / [`Error::RevocationUnavailable`] when it cannot be checked
    /// (503).
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Claims<T>> {
        self.verify_at(token, SystemTime::now()).await
    }

    /// Verifies `token` as of `now` (for tests and replays of recorded traffic; keys are still
    /// fetched and cached in real time).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub async fn verify_at<T: DeserializeOwned>(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Claims<T>> {
        let result = match self.attempt(token, now, true) {
            Some(result) => result,
            None => match self.inner.keys.fetch().await {
                Err(e) => Err(e),
                // Just fetched (or refused to, within the cooldown): an unknown kid now is the
                // token's fault, a set past its staleness the provider's.
                Ok(()) => self
                    .attempt(token, now, false)
                    .unwrap_or_else(|| Err(self.inner.keys.unavailable())),
            },
        };
        record(&result);
        result
    }

    /// Verifies with the keys already cached; `None` when keys must be fetched first (the
    /// layer then waits for [`verify`](Self::verify)). Records the metric when done.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn verify_cached<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Option<Result<Claims<T>>> {
        let result = self.attempt(token, SystemTime::now(), true)?;
        record(&result);
        Some(result)
    }

    /// The verification, or `None` when keys must be fetched first.
    fn attempt<T: DeserializeOwned>(
        &self,
        token: &str,
        now: SystemTime,
        refetch: bool,
    ) -> Option<Result<Claims<T>>> {
        let inner = &self.inner;
        let header = match read_header(token, inner.max_token_bytes) {
            Ok(header) => header,
            Err(e) => return Some(Err(e.into())),
        };
        let Some(validation) = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
        else {
            let name = crate::token::algorithm_name(header.alg).to_owned();
            return Some(Err(TokenError::AlgorithmNotAllowed(name).into()));
        };
        let verified = if is_hmac(header.alg) {
            match &inner.secret {
                Some(secret) => decode(token, secret, validation),
                None => Err(TokenError::AlgorithmNotAllowed(
                    crate::token::algorithm_name(header.alg).to_owned(),
                )),
            }
        } else {
            let key = match inner
                .keys
                .lookup(header.kid.as_deref(), header.alg, refetch)
            {
                Lookup::Found(key) => key,
                Lookup::Fetch => return None,
                Lookup::Invalid(e) => return Some(Err(e.into())),
            };
            if let Err(e) = key.check_algorithm(header.alg) {
                return Some(Err(e.into()));
            }
            decode(token, &key.decoding, validation)
        };
        Some(
            verified
                .and_then(|payload| self.check_claims(payload, unix_seconds(now)))
                .map_err(Error::from)
                .and_then(|claims| self.check_revocation(claims)),
        )
    }

    fn check_claims<T: DeserializeOwned>(
        &self,
        payload: Map<String, Value>,
        now: u64,
    ) -> std::result::Result<Claims<T>, TokenError> {
        let inner = &self.inner;
        for name in &inner.required {
            if payload.get(name).is_none_or(Value::is_null) {
                return Err(TokenError::MissingClaim(name.clone()));
            }
        }
        // The claims are read once (their types checked), then the times compared.
        let claims: Claims<T> = crate::claims::build(payload, &inner.paths, &inner.issuer)?;
        let leeway = inner.leeway;
        if let Some(exp) = claims.expires_at {
            // RFC 7519 4.1.4: the current time must be before `exp`.
            if now >= exp.saturating_add(leeway) {
                return Err(TokenError::Expired(exp));
            }
        }
        if let Some(nbf) = claims.not_before {
            if nbf > now.saturating_add(leeway) {
                return Err(TokenError::NotYetValid(nbf));
            }
        }
        if let Some(iat) = claims.issued_at {
            if iat > now.saturating_add(leeway) {
                return Err(TokenError::IssuedInFuture(iat));
            }
        }
        Ok(claims)
    }

    fn check_revocation<T>(&self, claims: Claims<T>) -> Result<Claims<T>> {
        if let Some(revocations) = &self.inner.revocations {
            revocations.check(
                claims.token_id.as_deref(),
                claims.subject.as_deref(),
                claims.issued_at,
            )?;
        }
        Ok(claims)
    }
}

/// Signature, `iss` and `aud` through `jsonwebtoken`; the payload as a JSON object.
fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> std::result::Result<Map<String, Value>, TokenError> {
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::RsaFailedSigning => TokenError::InvalidSignature,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::AlgorithmNotAllowed("(key and token disagree)".into())
            }
            ErrorKind::Base64(_) => TokenError::Malformed("a part is not base64url".into()),
            ErrorKind::Json(e) => {
                TokenError::Malformed(format!("payload is not a JSON object: {e}"))
            }
            ErrorKind::Utf8(_) => TokenError::Malformed("payload is not UTF-8".into()),
            ErrorKind::MissingRequiredClaim(name) => TokenError::MissingClaim(name.clone()),
            other => TokenError::Malformed(format!("{other:?}")),
        }),
    }
}

fn record<T>(result: &Result<Claims<T>>) {
    crate::metrics::verified(match result {
        Ok(_) => "ok",
        Err(Error::InvalidToken(e)) => e.label(),
        Err(_) => "unavailable",
    });
}
