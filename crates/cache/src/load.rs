//! Loading through the cache: [`Cache::get_or_set_with`] and its variants, with single flight
//! (`single_flight.rs`), stale-while-revalidate, negative caching and the cross-instance lock.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::cache::Cache;
use crate::error::Error;
use crate::single_flight::{Flight, Landed};
use crate::stats::Counters;
use crate::store::Store;

/// How [`Cache::get_or_set_with_policy`] caches what its loader returns.
///
/// ```
/// use std::time::Duration;
/// use nilecare_cache::LoadPolicy;
///
/// // valid 10 min; after 1 min served stale while one background load refreshes it
/// let policy = LoadPolicy::new()
///     .ttl(Duration::from_secs(600))
///     .stale_after(Duration::from_secs(60))
///     .negative_ttl(Duration::from_secs(30));
/// assert_eq!(policy.stale_after_duration(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadPolicy {
    ttl: Option<Duration>,
    stale_after: Option<Duration>,
    negative_ttl: Option<Duration>,
    lock_lease: Option<Duration>,
}

impl LoadPolicy {
    /// Hard TTL from the cache's rules (namespace policy, else default), no stale phase, and
    /// "not found" never cached.
    pub const fn new() -> Self {
        LoadPolicy {
            ttl: None,
            stale_after: None,
            negative_ttl: None,
            lock_lease: None,
        }
    }

    /// The hard TTL: after it the value is gone and the next call loads synchronously.
    /// Jitter applies as for [`Cache::set`].
    #[must_use]
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The soft TTL: a value older than this is returned at once, and one background load
    /// (coalesced across callers in this process) replaces it. Without it values are fresh
    /// until the hard TTL.
    #[must_use]
    pub const fn stale_after(mut self, soft_ttl: Duration) -> Self {
        self.stale_after = Some(soft_ttl);
        self
    }

    /// For [`Cache::get_or_set_optional_with`]: remember a `None` ("not found") for this long.
    /// Without it `None` is never cached.
    #[must_use]
    pub const fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Coordinate loads across instances sharing a Redis store: the loading instance holds a
    /// lock (`SET NX PX`) for at most `lease`; the others poll for its value instead of calling
    /// their loader, and load themselves if the lease runs out first (a slow or dead holder
    /// never blocks them longer than that). Without a shared store it changes nothing.
    #[must_use]
    pub const fn lock(mut self, lease: Duration) -> Self {
        self.lock_lease = Some(lease);
        self
    }

    /// The soft TTL, if any.
    pub const fn stale_after_duration(&self) -> Option<Duration> {
        self.stale_after
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let zero = |field: &'static str| Error::InvalidConfig {
            field,
            message: "must be greater than zero".into(),
        };
        if self.stale_after.is_some_and(|d| d.is_zero()) {
            return Err(zero("stale_after"));
        }
        if self.negative_ttl.is_some_and(|d| d.is_zero()) {
            return Err(zero("negative_ttl"));
        }
        if self.lock_lease.is_some_and(|d| d.is_zero()) {
            return Err(zero("lock"));
        }
        Ok(())
    }
}

/// Why [`Cache::get_or_set_with`] returned no value.
pub enum LoadError<E> {
    /// The loader failed. Every caller waiting on the same load receives the same error; it is
    /// not cached, so the next call loads again.
    Loader(Arc<E>),
    /// The key or policy was rejected, or the loaded value could not be encoded.
    Cache(Error),
    /// The loader panicked (or its task was aborted by a runtime shutdown).
    Panicked,
}

impl<E: fmt::Debug> fmt::Debug for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Loader(e) => f.debug_tuple("Loader").field(e).finish(),
            LoadError::Cache(e) => f.debug_tuple("Cache").field(e).finish(),
            LoadError::Panicked => f.write_str("Panicked"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Loader(e) => write!(f, "cache loader failed: {e}"),
            LoadError::Cache(e) => e.fmt(f),
            LoadError::Panicked => f.write_str("cache loader panicked"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Loader(e) => Some(&**e),
            LoadError::Cache(e) => Some(e),
            LoadError::Panicked => None,
        }
    }
}

/// The outcome of cross-instance coordination.
enum Coordinated {
    /// This instance holds the lock (key, token): load, then release it.
    Locked((String, String)),
    /// Another instance loaded it meanwhile.
    Loaded(Bytes),
    /// No coordination possible (store failure, lease passed twice): load anyway.
    Alone,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The loader contract shared by every `get_or_set_*` call.
trait Loader<T, E>: FnOnce() -> Self::Fut + Send + 'static {
    type Fut: Future<Output = Result<T, E>> + Send + 'static;
}

impl<T, E, F, Fut> Loader<T, E> for F
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    type Fut = Fut;
}

impl<S: Store> Cache<S> {
    /// The value under `key`, or the loader's value, stored with `ttl` (else the namespace
    /// policy, else the default TTL), under the namespace's
    /// [`load_policy`](crate::CacheBuilder::load_policy) if one is configured. Concurrent misses of one key in this process run the
    /// loader once and share its result (single flight); a loader error reaches every waiter
    /// and is not cached. Backend failures fail open: the loader runs and its value is
    /// returned. The load runs in its own task, so a caller that gives up (timeout, client
    /// gone) does not cancel it for the others.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use nilecare_cache::{Cache, LoadError, MemoryStore};
    ///
    /// let cache = Cache::builder().build(MemoryStore::with_max_entries(1_000).unwrap()).unwrap();
    /// let name: Result<String, LoadError<std::io::Error>> = cache
    ///     .get_or_set_with("patients:7:name", Some(Duration::from_secs(60)), || async {
    ///         Ok("Amina".to_owned()) // the database call
    ///     })
    ///     .await;
    /// assert_eq!(name.unwrap(), "Amina");
    /// # }
    /// ```
    pub async fn get_or_set_with<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut policy = self.load_policy_for(key);
        policy.ttl = ttl.or(policy.ttl);
        self.load_through(key, policy, loader, |_| false).await
    }

    /// [`get_or_set_with`](Self::get_or_set_with) under a [`LoadPolicy`] (hard TTL,
    /// stale-while-revalidate).
    pub async fn get_or_set_with_policy<T, E, F, Fut>(
        &self,
        key: &str,
        policy: &LoadPolicy,
        loader: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.load_through(key, *policy, loader, |_| false).await
    }

    /// For loaders that may find nothing: `None` is cached for the policy's
    /// [`negative_ttl`](LoadPolicy::negative_ttl) (never without one), so repeated lookups of a
    /// missing record do not all reach the database.
    pub async fn get_or_set_optional_with<T, E, F, Fut>(
        &self,
        key: &str,
        policy: &LoadPolicy,
        loader: F,
    ) -> Result<Option<T>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
    {
        self.load_through(key, *policy, loader, Option::is_none)
            .await
    }

    /// The load policy of `key`'s namespace ([`CacheBuilder::load_policy`](crate::CacheBuilder::load_policy)),
    /// else the default.
    pub fn load_policy_for(&self, key: &str) -> LoadPolicy {
        self.shared()
            .load_policies
            .get(crate::cache::namespace(key))
            .copied()
            .unwrap_or_default()
    }

    /// How many loads are running in this process (all views of the cache).
    pub fn loads_in_flight(&self) -> usize {
        self.shared().flights.len()
    }

    async fn load_through<T, E, F>(
        &self,
        key: &str,
        policy: LoadPolicy,
        loader: F,
        is_absent: fn(&T) -> bool,
    ) -> Result<T, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + Sync + 'static,
        F: Loader<T, E>,
    {
        let full = self.full_key(key).map_err(LoadError::Cache)?;
        policy.validate().map_err(LoadError::Cache)?;
        // reject a zero TTL before anything runs
        self.effective_ttl(key, policy.ttl)
            .map_err(LoadError::Cache)?;

        match self.read_stamped::<T>(key, &full).await {
            Some((value, stale_at)) if stale_at.is_none_or(|at| now_ms() < at) => {
                self.count_lookups(1, 0);
                return Ok(value);
            }
            Some((stale, _)) => {
                self.count_lookups(1, 0);
                if let Err(tx) = self.shared().flights.join_or_lead(&full) {
                    Counters::add(&self.shared().counters.refreshes, 1);
                    self.spawn_load(tx, key, full, policy, loader, is_absent);
                }
                return Ok(stale);
            }
            None => self.count_lookups(0, 1),
        }

        let (mut rx, own_loader) = match self.shared().flights.join_or_lead(&full) {
            Ok(rx) => (rx, Some(loader)),
            Err(tx) => {
                let rx = tx.subscribe();
                self.spawn_load(tx, key, full, policy, loader, is_absent);
                (rx, None)
            }
        };
        let landed = match rx.wait_for(Option::is_some).await {
            Ok(landed) => landed.clone(),
            Err(_) => return Err(LoadError::Panicked),
        };
        let mismatch = match landed {
            Some(Landed::Value(bytes)) => match self.envelope().decode_stamped::<T>(&bytes) {
                Ok((value, _)) => return Ok(value),
                Err(e) => e.to_string(),
            },
            Some(Landed::Failed(error)) => match error.downcast::<E>() {
                Ok(error) => return Err(LoadError::Loader(error)),
                Err(_) => "the loader's error is of another type".to_owned(),
            },
            Some(Landed::Unencodable(message)) => {
                return Err(LoadError::Cache(Error::Encode(message.to_string())));
            }
            None => return Err(LoadError::Panicked),
        };
        // Another caller loaded the same key as a different type: run this caller's loader.
        match own_loader {
            Some(loader) => {
                Counters::add(&self.shared().counters.loads, 1);
                loader().await.map_err(|e| LoadError::Loader(Arc::new(e)))
            }
            None => Err(LoadError::Cache(Error::Encode(mismatch))),
        }
    }

    /// Reads and decodes `full` with its stale-at stamp; failures are logged and read as a miss.
    async fn read_stamped<T: DeserializeOwned>(
        &self,
        key: &str,
        full: &str,
    ) -> Option<(T, Option<u64>)> {
        let started = self.start();
        let result = self.shared().store.get(full).await;
        self.finish("get", started, &result);
        let bytes = result.ok().flatten()?;
        match self.envelope().decode_stamped(&bytes) {
            Ok(found) => Some(found),
            Err(e) => {
                self.record_decode_error(key, &e);
                None
            }
        }
    }

    /// Runs `loader` in its own task, stores what it returns and hands it to the waiters.
    fn spawn_load<T, E, F>(
        &self,
        tx: watch::Sender<Option<Landed>>,
        key: &str,
        full: String,
        policy: LoadPolicy,
        loader: F,
        is_absent: fn(&T) -> bool,
    ) where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Send + Sync + 'static,
        F: Loader<T, E>,
    {
        let cache = self.clone();
        let key = key.to_owned();
        // The load runs in the span of the caller that started it: its log lines carry that
        // request's id and trace. Callers joining an in-flight load keep their own spans and
        // receive its result.
        let span = tracing::Span::current();
        let load = async move {
            let flight = Flight {
                cache: cache.clone(),
                key: full.clone(),
                tx,
            };
            // A load that finished just before this one registered may have stored a fresh value.
            if let Some(bytes) = cache.fresh_in_store::<T>(&full).await {
                flight.land(Landed::Value(bytes));
                return;
            }
            let lock = match policy.lock_lease {
                Some(lease) => match cache.lock_or_wait::<T>(&key, &full, lease).await {
                    Coordinated::Loaded(bytes) => {
                        flight.land(Landed::Value(bytes));
                        return;
                    }
                    Coordinated::Locked(lock) => Some(lock),
                    Coordinated::Alone => None,
                },
                None => None,
            };
            Counters::add(&cache.shared().counters.loads, 1);
            let landed = match loader().await {
                Ok(value) => {
                    let absent = is_absent(&value);
                    cache
                        .store_loaded(&key, &full, &policy, value, absent)
                        .await
                }
                Err(error) => {
                    Counters::add(&cache.shared().counters.load_errors, 1);
                    Landed::Failed(Arc::new(error))
                }
            };
            if let Some((lock_key, token)) = lock {
                let _ = cache.shared().store.unlock(&lock_key, &token).await;
            }
            flight.land(landed);
        };
        tokio::spawn(tracing::Instrument::instrument(load, span));
    }

    /// The stored bytes of `full` when they decode as `T` and are not stale.
    async fn fresh_in_store<T: DeserializeOwned>(&self, full: &str) -> Option<Bytes> {
        let bytes = self.shared().store.get(full).await.ok()??;
        let (_, stale_at) = self.envelope().decode_stamped::<T>(&bytes).ok()?;
        stale_at.is_none_or(|at| now_ms() < at).then_some(bytes)
    }

    /// Takes the cross-instance load lock of `key`, or waits for the holder's value.
    async fn lock_or_wait<T: DeserializeOwned>(
        &self,
        key: &str,
        full: &str,
        lease: Duration,
    ) -> Coordinated {
        let store = &self.shared().store;
        let lock_key = self.scope().key(&format!("@:lock:{key}"));
        let token = format!(
            "{:016x}",
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), now_ms())
        );
        let poll = (lease / 20).clamp(Duration::from_millis(5), Duration::from_millis(50));
        let give_up = tokio::time::Instant::now() + lease * 2;
        loop {
            match store.try_lock(&lock_key, &token, lease).await {
                Ok(true) => return Coordinated::Locked((lock_key, token)),
                Ok(false) => {}
                Err(_) => return Coordinated::Alone,
            }
            tokio::time::sleep(poll).await;
            if let Some(bytes) = self.fresh_in_store::<T>(full).await {
                return Coordinated::Loaded(bytes);
            }
            if tokio::time::Instant::now() >= give_up {
                return Coordinated::Alone;
            }
        }
    }

    /// Encodes a loaded value and stores it (a failed write is logged; the value still lands).
    async fn store_loaded<T: Serialize>(
        &self,
        key: &str,
        full: &str,
        policy: &LoadPolicy,
        value: T,
        absent: bool,
    ) -> Landed {
        let (ttl, stale_at) = if absent {
            (policy.negative_ttl, None)
        } else {
            let ttl = self.effective_ttl(key, policy.ttl).ok().flatten();
            let stale_at = policy
                .stale_after
                .map(|soft| now_ms().saturating_add(soft.as_millis() as u64));
            (ttl, stale_at)
        };
        let encoded = self.envelope().encode_stamped(&value, stale_at);
        drop(value);
        let bytes = match encoded {
            Ok(bytes) => bytes,
            Err(e) => {
                let message: Arc<str> = Arc::from(e.to_string());
                self.finish::<()>("set", None, &Err(e));
                return Landed::Unencodable(message);
            }
        };
        if absent && policy.negative_ttl.is_none() {
            return Landed::Value(bytes);
        }
        let started = self.start();
        let result = self.shared().store.set(full, bytes.clone(), ttl).await;
        if result.is_ok() {
            Counters::add(&self.shared().counters.sets, 1);
        }
        self.finish("set", started, &result);
        Landed::Value(bytes)
    }
}

/// `?` on a loading call in a handler returning `Result<_, ApiError>` (feature `error-handler`):
/// a loader that failed with an [`ApiError`](nilecare_error_handler::ApiError) keeps its code,
/// detail, field errors and `Retry-After`; any other loader error, a cache error or a panic is a
/// 500 `INTERNAL` whose cause goes to the log, never to the client.
#[cfg(feature = "error-handler")]
#[cfg_attr(docsrs, doc(cfg(feature = "error-handler")))]
impl<E> From<LoadError<E>> for nilecare_error_handler::ApiError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: LoadError<E>) -> Self {
        use nilecare_error_handler::ApiError;
        match error {
            LoadError::Loader(e) => {
                if let Some(api) = (&*e as &dyn std::any::Any).downcast_ref::<ApiError>() {
                    let mut copy = ApiError::new(api.code(), api.detail());
                    for f in api.field_errors() {
                        copy = copy.field(f.field.clone(), f.message.clone());
                    }
                    if let Some(after) = api.retry_after() {
                        copy = copy.with_retry_after(after);
                    }
                    return copy;
                }
                ApiError::internal("Loading the value failed.").with_source(SharedError(e))
            }
            LoadError::Cache(e) => ApiError::internal("The cache failed.").with_source(e),
            LoadError::Panicked => ApiError::internal("Loading the value panicked."),
        }
    }
}

/// A loader error shared by every waiter, as an error source.
#[cfg(feature = "error-handler")]
#[derive(Debug)]
struct SharedError<E>(Arc<E>);

#[cfg(feature = "error-handler")]
impl<E: std::error::Error> fmt::Display for SharedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "error-handler")]
impl<E: std::error::Error + 'static> std::error::Error for SharedError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
