//! The crate's one error type (configuration only: requests get problem+json answers).

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; names the field and the value.
    #[error("invalid versioning configuration: {field}: {message}")]
    InvalidConfig {
        /// The builder method.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }
}

/// `Result<T, Error>`.
pub type Result<T> = std::result::Result<T, Error>;
