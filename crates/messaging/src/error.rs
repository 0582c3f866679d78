//! The crate's [`Error`] and `Result`.

/// What went wrong publishing, receiving or settling a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an input (topic, group, header, payload) cannot work; names the field.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The setting or input.
        field: &'static str,
        /// Why, with the bad value where it is not secret.
        message: String,
    },
    /// The encoded message is larger than the limit.
    #[error("message too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A stored message could not be read (a foreign or corrupt entry); it goes to the
    /// dead-letter stream instead of a handler.
    #[error("undecodable message {id}: {reason}")]
    Decode {
        /// The message's broker id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The payload is not the type the handler asked for.
    #[error("payload is not a {type_name}: {source}")]
    Payload {
        /// The Rust type asked for.
        type_name: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The broker (Redis) failed or did not answer in time.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// `Result<T, nilecare_messaging::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
