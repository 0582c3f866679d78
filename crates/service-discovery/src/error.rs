//! The error type of the service discovery crate.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value was rejected; `field` names the setting.
    #[error("invalid configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting that was rejected.
        field: &'static str,
        /// Why it was rejected.
        message: String,
    },
    /// An instance description was rejected; `field` names the part (`service`, `id`,
    /// `address`, `weight`, ...).
    #[error("invalid service instance `{field}`: {message}")]
    InvalidInstance {
        /// The part that was rejected.
        field: &'static str,
        /// Why (the offending text quoted).
        message: String,
    },
    /// No instance of the service may be picked (none registered, none healthy).
    #[error("no instance of service `{service}` is available")]
    NoInstance {
        /// The service.
        service: String,
    },
    /// Every try of a call failed without a response (refused, reset, timed out).
    #[error("calling service `{service}` failed after {attempts} tries: {reason}")]
    Call {
        /// The service.
        service: String,
        /// Tries made.
        attempts: u32,
        /// Why the last one failed.
        reason: String,
    },
    /// The Redis registry failed (connection, timeout, server error).
    #[cfg(feature = "redis")]
    #[error(transparent)]
    Redis(#[from] nilecare_redis::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
