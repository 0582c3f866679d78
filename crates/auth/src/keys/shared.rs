//! Key sets shared between instances through nilecare-cache (feature `shared-keys`): the
//! instance that fetches from the provider stores the document, the others take it from the
//! cache, so N instances cost the provider one fetch per refresh (and per rotation), not N.
//!
//! What is stored is the provider's JSON document as fetched, with its source, when it was
//! fetched and how long it stays fresh. A reader parses it with the same rules as a fetched
//! document (duplicate `kid`s refused, unsupported keys skipped) and only takes it when it is
//! newer than the set it holds: a refetch for an unknown `kid` never takes back the set it
//! already has. The cache must be as trusted as the provider: whoever can write it can publish
//! keys (use Redis with ACLs and TLS).

use std::time::Duration;

use nilecare_cache::Cache;
use serde::{Deserialize, Serialize};

use super::KeySet;
use crate::error::{Error, Result};
use crate::verifier::unix_ms;

/// The key under which a source's key set is stored (below the cache's own prefix).
fn key_of(source_url: &str) -> String {
    format!("auth:jwks:{source_url}")
}

/// One fetched key set, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The address it was fetched from (checked on read).
    source: String,
    /// Unix milliseconds of the provider fetch.
    fetched_at_ms: u64,
    /// How long it stays fresh from `fetched_at_ms`.
    ttl_ms: u64,
    /// The provider's document.
    jwks: String,
}

/// A key set taken from the shared cache.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) set: KeySet,
    /// Fresh for this long from now.
    pub(crate) remaining: Duration,
    pub(crate) fetched_at_ms: u64,
}

/// The shared cache of one verifier.
#[derive(Debug, Clone)]
pub(crate) struct SharedKeySets {
    cache: Cache,
}

impl SharedKeySets {
    /// Checks that the source's key is one the cache accepts.
    pub(crate) fn new(cache: Cache, source_url: &str) -> Result<Self> {
        cache
            .full_key(&key_of(source_url))
            .map_err(|e| Error::config("shared_key_sets", e.to_string()))?;
        Ok(SharedKeySets { cache })
    }

    /// The stored set of `source_url` when it is fresh and newer than `held_ms` (the fetch
    /// time of the set this instance holds). A cache failure or an unreadable entry is a miss
    /// (the provider is asked instead).
    pub(crate) async fn newer(&self, source_url: &str, held_ms: Option<u64>) -> Option<Shared> {
        let entry: Entry = self.cache.get(&key_of(source_url)).await?;
        if entry.source != source_url || held_ms.is_some_and(|held| entry.fetched_at_ms <= held) {
            return None;
        }
        let now = unix_ms();
        let expires = entry.fetched_at_ms.saturating_add(entry.ttl_ms);
        if expires <= now {
            return None;
        }
        match KeySet::parse(entry.jwks.as_bytes(), source_url) {
            Ok(set) => Some(Shared {
                set,
                remaining: Duration::from_millis(expires - now),
                fetched_at_ms: entry.fetched_at_ms,
            }),
            Err(e) => {
                tracing::warn!(source = %source_url, error = %e,
                    "the shared key set is unusable; fetching from the provider");
                None
            }
        }
    }

    /// Stores a set fetched from the provider, fresh for `ttl`. A failure is logged: the
    /// other instances then fetch for themselves.
    pub(crate) async fn store(
        &self,
        source_url: &str,
        jwks: &[u8],
        fetched_at_ms: u64,
        ttl: Duration,
    ) {
        let Ok(jwks) = std::str::from_utf8(jwks) else {
            return;
        };
        let entry = Entry {
            source: source_url.to_owned(),
            fetched_at_ms,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            jwks: jwks.to_owned(),
        };
        if let Err(e) = self.cache.set(&key_of(source_url), &entry, Some(ttl)).await {
            tracing::debug!(source = %source_url, error = %e,
                "storing the key set in the shared cache failed");
        }
    }
}
