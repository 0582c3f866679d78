//! The error type of the tracing crate.

/// Everything that can go wrong while setting up tracing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting was rejected; `field` names it.
    #[error("invalid tracing configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
