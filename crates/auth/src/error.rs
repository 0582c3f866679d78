//! The crate's one error type.

/// What went wrong with a token. Every variant is the caller's fault: the layer answers 401
/// with `WWW-Authenticate: Bearer error="invalid_token"` and the variant's text as the
/// description (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the configured maximum; rejected before any parsing.
    #[error("the token is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its length.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Not three base64url segments, or a part that does not decode to JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg: none` (an unsigned token): never accepted.
    #[error("unsigned tokens (alg \"none\") are not accepted")]
    Unsigned,
    /// An `alg` this crate does not implement.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// An `alg` outside the configured allow-list.
    #[error("algorithm {0} is not allowed for this issuer")]
    AlgorithmNotAllowed(String),
    /// The header lists `crit` extensions, none of which this crate understands (RFC 7515
    /// section 4.1.11).
    #[error("critical header extensions are not supported: {0}")]
    UnsupportedCritical(String),
    /// No key of the issuer has this `kid` (after a refetch, or within the refetch cooldown).
    #[error("no key with kid {0:?}")]
    UnknownKey(String),
    /// The token has no `kid` and the key set has more than one candidate key.
    #[error("the token names no kid and the key set holds {0} keys for its algorithm")]
    AmbiguousKey(usize),
    /// The key's `alg` or type does not fit the token's `alg` (algorithm confusion).
    #[error("key {kid:?} is for {key}, the token says {token}")]
    KeyMismatch {
        /// The key id.
        kid: String,
        /// What the key is for.
        key: String,
        /// The token's `alg`.
        token: String,
    },
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("the token expired at {0} (Unix time)")]
    Expired(u64),
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid before {0} (Unix time)")]
    NotYetValid(u64),
    /// `iat` is in the future (beyond the leeway).
    #[error("the token claims to be issued at {0} (Unix time), in the future")]
    IssuedInFuture(u64),
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing.
    #[error("missing claim {0:?}")]
    MissingClaim(String),
    /// A claim has the wrong type or an unacceptable value.
    #[error("invalid claim {name:?}: {message}")]
    InvalidClaim {
        /// The claim.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The token (its `jti`) or its subject was revoked.
    #[error("the token was revoked")]
    Revoked,
}

impl TokenError {
    /// A bounded label for metrics (`result` of `nilecare_auth_verifications_total`).
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::TooLarge { .. } => "too_large",
            TokenError::Malformed(_) => "malformed",
            TokenError::Unsigned
            | TokenError::UnsupportedAlgorithm(_)
            | TokenError::AlgorithmNotAllowed(_)
            | TokenError::UnsupportedCritical(_) => "algorithm",
            TokenError::UnknownKey(_) | TokenError::AmbiguousKey(_) => "unknown_key",
            TokenError::KeyMismatch { .. } => "key_mismatch",
            TokenError::InvalidSignature => "invalid_signature",
            TokenError::Expired(_) => "expired",
            TokenError::NotYetValid(_) | TokenError::IssuedInFuture(_) => "not_yet_valid",
            TokenError::WrongIssuer | TokenError::WrongAudience => "wrong_issuer_or_audience",
            TokenError::MissingClaim(_) | TokenError::InvalidClaim { .. } => "invalid_claims",
            TokenError::Revoked => "revoked",
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is not acceptable (401).
    #[error(transparent)]
    InvalidToken(#[from] TokenError),
    /// A configuration value is invalid; names the field and the value (secrets excepted).
    #[error("invalid auth configuration: {field}: {message}")]
    InvalidConfig {
        /// The field (builder method or environment variable).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The issuer's keys could not be fetched and no usable copy is cached (503: tokens cannot
    /// be checked, so none is accepted).
    #[error("the keys of {source_url} are unavailable: {message}")]
    KeysUnavailable {
        /// The JWKS or discovery address.
        source_url: String,
        /// The last fetch error.
        message: String,
    },
    /// A key set document is unacceptable (duplicate `kid`s, not JSON, ...).
    #[error("invalid key set from {source_url}: {message}")]
    InvalidKeySet {
        /// Where it came from (`configured` for a static set).
        source_url: String,
        /// What is wrong.
        message: String,
    },
    /// The revocation state is older than the configured maximum staleness (its store is
    /// unreachable): tokens are refused (503) rather than risk accepting a revoked one.
    #[error("revocation state unavailable: {0}")]
    RevocationUnavailable(String),
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(String),
}

impl Error {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }

    /// The token error, when the token (not a dependency) is at fault.
    pub fn token_error(&self) -> Option<&TokenError> {
        match self {
            Error::InvalidToken(e) => Some(e),
            _ => None,
        }
    }
}

/// `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;
