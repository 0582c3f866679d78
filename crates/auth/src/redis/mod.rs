//! The revocation log on Redis: one stream (`XADD` trimmed by server time, `XRANGE` from the
//! last id read), shared by every instance.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use nilecare_redis::fred::clients::Pool;
use nilecare_redis::fred::interfaces::StreamsInterface;
use nilecare_redis::{KeyPrefix, Script};

use crate::error::{Error, Result};
use crate::store::{Revocation, RevocationStore};

static APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("append.lua")));

/// The most entries one read takes (a burst of revocations is read over several syncs).
const READ_BATCH: u64 = 1000;

/// Revocations in a Redis stream at `<prefix>auth:revocations`, shared by every instance.
///
/// Entries are kept for [`retention`](Self::with_retention) (default 24 hours, measured in
/// Redis server time): set it at least as long as the longest token lifetime, since a subject
/// revocation must outlive every token issued before it.
#[derive(Clone)]
pub struct RedisRevocationStore {
    pool: Pool,
    key: String,
    retention: Duration,
}

impl std::fmt::Debug for RedisRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationStore")
            .field("key", &self.key)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationStore {
    /// The log under the default prefix (`nilecare:auth:revocations`).
    pub fn new(pool: Pool) -> Self {
        Self::with_prefix(pool, &KeyPrefix::default())
    }

    /// The log under `prefix` (`<prefix>auth:revocations`).
    pub fn with_prefix(pool: Pool, prefix: &KeyPrefix) -> Self {
        RedisRevocationStore {
            pool,
            key: prefix.segment("auth").key("revocations"),
            retention: Duration::from_secs(24 * 3600),
        }
    }

    /// How long entries are kept (at least one second).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `retention` when shorter than a second.
    pub fn with_retention(mut self, retention: Duration) -> Result<Self> {
        if retention < Duration::from_secs(1) {
            return Err(Error::config(
                "retention",
                format!("must be at least 1s, got {retention:?}"),
            ));
        }
        self.retention = retention;
        Ok(self)
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

fn redis_error(e: impl std::fmt::Display) -> Error {
    Error::Redis(e.to_string())
}

impl RevocationStore for RedisRevocationStore {
    async fn append(&self, revocation: &Revocation) -> Result<()> {
        let (kind, value, time) = match revocation {
            Revocation::Token { jti, until } => ("jti", jti.as_str(), *until),
            Revocation::Subject { sub, since } => ("sub", sub.as_str(), *since),
        };
        let retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let _: String = APPEND
            .run(
                &self.pool,
                vec![self.key.clone()],
                vec![
                    kind.to_owned(),
                    value.to_owned(),
                    time.to_string(),
                    retention_ms.to_string(),
                ],
            )
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn read_after(&self, cursor: Option<&str>) -> Result<(Vec<Revocation>, Option<String>)> {
        let start = match cursor {
            Some(id) => format!("({id}"),
            None => "-".to_owned(),
        };
        let entries: Vec<(String, HashMap<String, String>)> = self
            .pool
            .xrange(&self.key, start, "+", Some(READ_BATCH))
            .await
            .map_err(redis_error)?;
        let next = entries
            .last()
            .map(|(id, _)| id.clone())
            .or_else(|| cursor.map(str::to_owned));
        let mut revocations = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let time = fields.get("t").and_then(|t| t.parse::<u64>().ok());
            match (fields.get("k").map(String::as_str), fields.get("v"), time) {
                (Some("jti"), Some(jti), Some(until)) => revocations.push(Revocation::Token {
                    jti: jti.clone(),
                    until,
                }),
                (Some("sub"), Some(sub), Some(since)) => revocations.push(Revocation::Subject {
                    sub: sub.clone(),
                    since,
                }),
                // Written by something else: skipped, never fatal for the other entries.
                _ => tracing::warn!(key = %self.key, id, "skipping a malformed revocation entry"),
            }
        }
        Ok((revocations, next))
    }

    fn is_shared(&self) -> bool {
        true
    }
}
