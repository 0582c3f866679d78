//! [`ProcessedSet`]: remembers which message ids a consumer group handled, so a message
//! delivered again (a producer published it twice, or its consumer died after handling it,
//! before the ack) is handled once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Result;

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<HashMap<String, (bool, Instant)>>>),
    #[cfg(feature = "redis")]
    Redis(fred::clients::Pool),
}

/// What [`ProcessedSet::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Nobody handled it: handle it, then [`finish`](ProcessedSet::finish) (or
    /// [`abandon`](ProcessedSet::abandon) on failure).
    New,
    /// Handled already: ack it without handling.
    Done,
    /// Another delivery is handling it right now (its lease runs): retry later.
    InProgress,
}

/// Handled message ids, shared by a group's consumers.
///
/// ```text
/// match processed.begin(id).await? {
///     Begin::New => { handle; processed.finish(id).await?; Ack }
///     Begin::Done => Ack,
///     Begin::InProgress => Retry after the lease,
/// }
/// ```
///
/// `begin` takes a lease (default 30 s, set it to the consumer's visibility timeout): if the
/// consumer dies mid-way the lease runs out and a redelivery handles the message (nothing is
/// lost). A `finish`ed id is kept for `ttl` (longer than a message can be redelivered). The
/// one window left, a crash after the handler's effect and before `finish`, is closed by making
/// the effect itself idempotent on the message id.
#[derive(Clone)]
pub struct ProcessedSet {
    backend: Backend,
    namespace: String,
    /// `<root>msg:done:` on Redis.
    #[cfg(feature = "redis")]
    prefix: String,
    ttl: Duration,
    lease: Duration,
}

impl std::fmt::Debug for ProcessedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessedSet")
            .field("namespace", &self.namespace)
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// `d` as a Redis `PX` argument (at least 1 ms).
#[cfg(feature = "redis")]
fn ms(d: Duration) -> i64 {
    i64::try_from(crate::clock::millis(d))
        .unwrap_or(i64::MAX)
        .max(1)
}

impl ProcessedSet {
    /// In process, for `namespace` (e.g. the group name); finished ids kept for `ttl`.
    pub fn memory(namespace: &str, ttl: Duration) -> Self {
        ProcessedSet {
            backend: Backend::Memory(Arc::default()),
            namespace: namespace.to_owned(),
            #[cfg(feature = "redis")]
            prefix: String::new(),
            ttl,
            lease: Duration::from_secs(30),
        }
    }

    /// On Redis (keys `nilecare:msg:done:<namespace>:<id>`), shared by every instance.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(pool: fred::clients::Pool, namespace: &str, ttl: Duration) -> Self {
        ProcessedSet {
            backend: Backend::Redis(pool),
            namespace: namespace.to_owned(),
            prefix: nilecare_redis::KeyPrefix::default()
                .segment("msg")
                .segment("done")
                .as_str()
                .to_owned(),
            ttl,
            lease: Duration::from_secs(30),
        }
    }

    /// On Redis, keys under `<root>msg:done:` (the root prefix the service gives every crate)
    /// instead of `nilecare:msg:done:`.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn with_prefix(mut self, root: &nilecare_redis::KeyPrefix) -> Self {
        self.prefix = root.segment("msg").segment("done").as_str().to_owned();
        self
    }

    /// How long a `begin` holds an id before a redelivery may take it (default 30 s).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    #[cfg(feature = "redis")]
    fn key(&self, id: &str) -> String {
        format!(
            "{}{}:{}",
            self.prefix,
            nilecare_redis::escape_key_part(&self.namespace),
            nilecare_redis::escape_key_part(id)
        )
    }

    /// Takes `id` for handling, or says why not.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when Redis fails: do not ack then,
    /// the message comes back.
    pub async fn begin(&self, id: &str) -> Result<Begin> {
        match &self.backend {
            Backend::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if map.len() > 100_000 {
                    map.retain(|_, (_, until)| *until > now);
                }
                match map.get(id) {
                    Some((true, until)) if *until > now => Ok(Begin::Done),
                    Some((false, until)) if *until > now => Ok(Begin::InProgress),
                    _ => {
                        map.insert(id.to_owned(), (false, now + self.lease));
                        Ok(Begin::New)
                    }
                }
            }
            #[cfg(feature = "redis")]
            Backend::Redis(pool) => {
                use fred::interfaces::KeysInterface;
                use fred::types::{Expiration, SetOptions};
                let unavailable = |e: fred::error::Error| crate::Error::Unavailable(e.to_string());
                let key = self.key(id);
                let taken: Option<String> = pool
                    .set(
                        &key,
                        "p",
                        Some(Expiration::PX(ms(self.lease))),
                        Some(SetOptions::NX),
                        false,
                    )
                    .await
                    .map_err(unavailable)?;
                if taken.is_some() {
                    return Ok(Begin::New);
                }
                let state: Option<String> = pool.get(&key).await.map_err(unavailable)?;
                Ok(match state.as_deref() {
                    Some("d") => Begin::Done,
                    Some(_) => Begin::InProgress,
                    // Expired between the two calls: try once more.
                    None => Box::pin(self.begin(id)).await?,
                })
            }
        }
    }

    /// Records `id` as handled (kept for the TTL).
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when Redis fails.
    pub async fn finish(&self, id: &str) -> Result<()> {
        match &self.backend {
            Backend::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                map.insert(id.to_owned(), (true, Instant::now() + self.ttl));
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(pool) => {
                use fred::interfaces::KeysInterface;
                use fred::types::Expiration;
                pool.set::<(), _, _>(
                    self.key(id),
                    "d",
                    Some(Expiration::PX(ms(self.ttl))),
                    None,
                    false,
                )
                .await
                .map_err(|e| crate::Error::Unavailable(e.to_string()))
            }
        }
    }

    /// Gives `id` up after a failed attempt, so the next delivery handles it.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::Error::Unavailable) when Redis fails (the lease then
    /// runs out on its own).
    pub async fn abandon(&self, id: &str) -> Result<()> {
        match &self.backend {
            Backend::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                if map.get(id).is_some_and(|(done, _)| !done) {
                    map.remove(id);
                }
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(pool) => {
                use fred::interfaces::KeysInterface;
                let key = self.key(id);
                let state: Option<String> = pool
                    .get(&key)
                    .await
                    .map_err(|e| crate::Error::Unavailable(e.to_string()))?;
                if state.as_deref() == Some("p") {
                    pool.del::<(), _>(&key)
                        .await
                        .map_err(|e| crate::Error::Unavailable(e.to_string()))?;
                }
                Ok(())
            }
        }
    }
}
