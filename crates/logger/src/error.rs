//! The error type of the logger crate.

/// Everything that can go wrong while setting up logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting was rejected; `field` names it.
    #[error("invalid logger configuration `{field}`: {message}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A global `tracing` subscriber is already installed.
    #[error(
        "a global tracing subscriber is already installed; initialise logging once per process"
    )]
    AlreadyInitialized,
    /// The log file or directory could not be opened.
    #[error("cannot open the log file: {0}")]
    File(String),
    /// The thread that writes log lines in the background could not be started.
    #[error("cannot start the log writer thread: {0}")]
    WriterThread(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
