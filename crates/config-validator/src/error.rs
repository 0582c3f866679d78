//! Errors of typed access after validation (validation problems themselves are collected in a
//! [`Report`](crate::Report)).

/// Reading a validated [`Config`](crate::Config) or a `.env` file went wrong. Never contains a
/// secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema declares no variable of this name.
    #[error("configuration variable `{name}` is not declared in the schema")]
    Unknown {
        /// The name asked for (without prefix).
        name: String,
    },
    /// The variable is optional and was not set; ask for `Option<T>`.
    #[error("configuration variable `{name}` is not set (it is optional: read it as Option<T>)")]
    Unset {
        /// The variable (with prefix).
        name: String,
    },
    /// The value has another type than the one asked for.
    #[error("configuration variable `{name}` holds {found}, not {wanted}")]
    TypeMismatch {
        /// The variable (with prefix).
        name: String,
        /// The Rust type asked for.
        wanted: &'static str,
        /// What the value is (e.g. `an integer 70000`, never a secret's content).
        found: String,
    },
    /// Deserializing into the user's struct failed.
    #[error("cannot deserialize the configuration: {message}")]
    Deserialize {
        /// serde's message, with any secret value redacted.
        message: String,
    },
    /// A `.env` file exists but cannot be read or parsed.
    #[error("cannot read {path}: {message}")]
    DotEnv {
        /// The file.
        path: String,
        /// What is wrong (a line number, never the line's content).
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
