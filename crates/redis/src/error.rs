//! The error type of the Redis plumbing.

#[cfg(feature = "client")]
use std::time::Duration;

/// Everything that can go wrong while configuring, connecting to or talking to Redis.
///
/// No variant ever carries a password: configuration errors name the field and describe the
/// problem, connection errors carry fred's error (which names hosts, never credentials).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value was rejected; `field` names the setting (`url`, `pool_size`, ...).
    #[error("invalid Redis configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting that was rejected.
        field: &'static str,
        /// Why it was rejected (never includes a password).
        message: String,
    },
    /// A key part or prefix was rejected; `field` names which one.
    #[error("invalid Redis key `{field}`: {message}")]
    InvalidKey {
        /// The key component that was rejected (`prefix`, `segment`, ...).
        field: &'static str,
        /// Why it was rejected.
        message: String,
    },
    /// The first connection could not be established within `connect_timeout`.
    #[cfg(feature = "client")]
    #[error("could not connect to Redis at {target} within {after:?}")]
    ConnectTimeout {
        /// The redacted URL of the deployment.
        target: String,
        /// The configured connect timeout.
        after: Duration,
    },
    /// The first connection failed: refused, a TLS certificate not trusted, a wrong password.
    /// `target` is the redacted URL; the cause comes from fred (it names hosts, never
    /// credentials).
    #[cfg(feature = "client")]
    #[error("could not connect to Redis at {target}: {source}")]
    Connect {
        /// The redacted URL of the deployment.
        target: String,
        /// What failed.
        source: fred::error::Error,
    },
    /// A command failed: the server answered with an error, the connection broke or the command
    /// timed out (`fred`'s `ErrorKind::Timeout`).
    #[cfg(feature = "client")]
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
}

impl Error {
    /// `true` when the error means Redis was unreachable or too slow (timeout, I/O, connection
    /// closed, cancelled), as opposed to an answer from the server. Callers use this to decide
    /// between their fail-open and fail-closed paths.
    pub fn is_unavailable(&self) -> bool {
        #[cfg(feature = "client")]
        use fred::error::ErrorKind;
        match self {
            #[cfg(feature = "client")]
            Error::ConnectTimeout { .. } => true,
            #[cfg(feature = "client")]
            Error::Redis(e) | Error::Connect { source: e, .. } => matches!(
                e.kind(),
                ErrorKind::Timeout | ErrorKind::IO | ErrorKind::Canceled | ErrorKind::Backpressure
            ),
            _ => false,
        }
    }

    #[cfg(feature = "client")]
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
