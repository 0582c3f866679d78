//! The error type of the metrics crate.

/// Everything that can go wrong while setting up metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder value was rejected; `field` names it.
    #[error("invalid metrics configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A global `metrics` recorder is already installed (by this crate or another).
    #[error("a global metrics recorder is already installed; install once per process")]
    AlreadyInstalled,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
