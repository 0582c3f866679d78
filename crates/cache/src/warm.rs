//! Cache warming: [`Cache::warm`] loads many keys ahead of traffic with bounded concurrency.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::store::Store;

/// Progress is logged every this many keys.
const PROGRESS_EVERY: u64 = 1000;

/// What [`Cache::warm`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmSummary {
    /// Keys loaded and stored.
    pub loaded: u64,
    /// Keys whose loader failed, whose key was invalid, or whose value could not be stored.
    pub failed: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl<S: Store> Cache<S> {
    /// Loads `keys` with `loader` (at most `concurrency` at once) and stores the values with
    /// `ttl` (else the namespace policy, else the default). Failures do not stop the run: they
    /// are counted in the returned summary and logged (key namespace only) at `debug`; progress
    /// is logged at `info` every 1000 keys and at the end.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), nilecare_cache::Error> {
    /// use nilecare_cache::{Cache, MemoryStore};
    /// let cache = Cache::builder().build(MemoryStore::with_max_entries(1_000)?)?;
    /// let ids = (1..=100).map(|id| format!("patients:{id}"));
    /// let summary = cache
    ///     .warm(ids, None, 8, |key: String| async move {
    ///         Ok::<_, std::io::Error>(format!("record for {key}")) // the database call
    ///     })
    ///     .await?;
    /// assert_eq!((summary.loaded, summary.failed), (100, 0));
    /// # Ok(()) }
    /// ```
    pub async fn warm<K, T, E, F, Fut>(
        &self,
        keys: impl IntoIterator<Item = K>,
        ttl: Option<Duration>,
        concurrency: usize,
        loader: F,
    ) -> Result<WarmSummary>
    where
        K: AsRef<str> + Clone,
        T: Serialize,
        E: Display,
        F: Fn(K) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
    {
        if concurrency == 0 {
            return Err(Error::InvalidConfig {
                field: "concurrency",
                message: "must be at least 1".into(),
            });
        }
        let started = Instant::now();
        let mut summary = WarmSummary::default();
        let mut results = stream::iter(keys)
            .map(|key| {
                let load = loader(key.clone());
                async move {
                    let namespace = key
                        .as_ref()
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let stored = match load.await {
                        Ok(value) => self
                            .set(key.as_ref(), &value, ttl)
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    (namespace, stored)
                }
            })
            .buffer_unordered(concurrency);
        while let Some((namespace, stored)) = results.next().await {
            match stored {
                Ok(()) => summary.loaded += 1,
                Err(error) => {
                    summary.failed += 1;
                    tracing::debug!(cache = self.name(), key.namespace = %namespace, %error, "warming a key failed");
                }
            }
            let done = summary.loaded + summary.failed;
            if done % PROGRESS_EVERY == 0 {
                tracing::info!(
                    cache = self.name(),
                    done,
                    failed = summary.failed,
                    "warming the cache"
                );
            }
        }
        summary.elapsed = started.elapsed();
        tracing::info!(
            cache = self.name(),
            loaded = summary.loaded,
            failed = summary.failed,
            elapsed_ms = summary.elapsed.as_millis() as u64,
            "cache warmed"
        );
        Ok(summary)
    }
}
