//! The error type of the rate-limit crate.

/// Everything that can go wrong in the rate-limit crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A quota was rejected (zero, overflow, window out of range); `field` names the part.
    #[error("invalid quota `{field}`: {message}")]
    InvalidQuota {
        /// `limit`, `window` or `burst`.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A configuration value was rejected; `field` names it.
    #[error("invalid rate-limit configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A key or cost was rejected; `field` names which.
    #[error("invalid rate-limit {field}: {message}")]
    InvalidInput {
        /// `key`, `cost` or `policy`.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The Redis backend failed or timed out.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[error(transparent)]
    Redis(#[from] nilecare_redis::Error),
}

impl Error {
    /// `true` when the backend was unreachable or too slow.
    pub fn is_unavailable(&self) -> bool {
        match self {
            #[cfg(feature = "redis")]
            Error::Redis(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
