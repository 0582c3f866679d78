//! The revocation store trait: an append-only log of revocations that every instance reads.

use std::future::Future;

use crate::error::Result;

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// The token whose `jti` is `jti`, remembered until `until` (its `exp`, Unix seconds).
    Token {
        /// The token id.
        jti: String,
        /// Unix seconds after which the token has expired anyway.
        until: u64,
    },
    /// Every token of subject `sub` issued before `since` (Unix seconds): "log out everywhere".
    Subject {
        /// The subject.
        sub: String,
        /// Tokens with an `iat` before this (or without `iat`) are revoked.
        since: u64,
    },
}

/// An append-only log of revocations. Instances [`append`](Self::append) what they revoke and
/// read what others appended with [`read_after`](Self::read_after); the log forgets entries
/// older than its retention.
pub trait RevocationStore: Send + Sync + 'static {
    /// Appends one revocation (one round trip on a remote store).
    fn append(&self, revocation: &Revocation) -> impl Future<Output = Result<()>> + Send;

    /// The revocations appended after `cursor` (`None`: every retained one), oldest first, and
    /// the cursor to pass next time (unchanged when nothing is new).
    fn read_after(
        &self,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<Revocation>, Option<String>)>> + Send;

    /// Whether other processes share this store (then the local copy can be stale).
    fn is_shared(&self) -> bool;
}
