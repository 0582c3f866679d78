//! The crate's [`Error`]: configuration mistakes, each naming its field.

/// What went wrong while configuring a GraphQL extension.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an input has a value that cannot work.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The setting or input (`query`, `max_operations`, ...).
        field: &'static str,
        /// Why, with the bad value where it is not secret.
        message: String,
    },
}

/// `Result<T, nilecare_graphql::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
