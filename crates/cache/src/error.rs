//! The error type of the cache crate.

use std::time::Duration;

/// Everything that can go wrong in the cache crate. Reads (`get`, `get_many`) never return it:
/// they fail open (a miss, counted and logged). Writes and administrative calls do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder value was rejected; `field` names it.
    #[error("invalid cache configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A key, tenant id or pattern was rejected; `field` names which (`key`, `tenant`, `pattern`).
    #[error("invalid cache {field}: {message}")]
    InvalidKey {
        /// `key`, `tenant` or `pattern`.
        field: &'static str,
        /// Why (the offending text is quoted, shortened).
        message: String,
    },
    /// A value could not be serialized.
    #[error("cannot encode the value: {0}")]
    Encode(String),
    /// The backend did not answer within the per-call timeout.
    #[error("cache {operation} timed out after {after:?}")]
    Timeout {
        /// The operation (`get`, `set`, ...).
        operation: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The Redis backend failed.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[error(transparent)]
    Redis(#[from] nilecare_redis::Error),
}

impl Error {
    /// `true` when the backend was unreachable or too slow (as opposed to bad input).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            #[cfg(feature = "redis")]
            Error::Redis(e) => e.is_unavailable(),
            _ => false,
        }
    }

    /// A short, bounded label for metrics: `timeout`, `backend`, `encode`, `input`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "timeout",
            Error::Encode(_) => "encode",
            Error::InvalidConfig { .. } | Error::InvalidKey { .. } => "input",
            #[cfg(feature = "redis")]
            Error::Redis(e) if e.is_unavailable() => "timeout",
            #[cfg(feature = "redis")]
            Error::Redis(_) => "backend",
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
