//! The error type of the error-handler crate itself (not the errors it renders: see
//! [`ApiError`](crate::ApiError)).

/// Everything that can go wrong in this crate's own API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user-defined [`ErrorCode`](crate::ErrorCode) was rejected; `field` is `code` or `status`.
    #[error("invalid error code `{field}`: {message}")]
    InvalidCode {
        /// `code` or `status`.
        field: &'static str,
        /// Why it was rejected.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
