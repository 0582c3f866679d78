//! Single flight: one load per key in this process; callers of a key being loaded wait for
//! that load and share its result.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cache::Cache;
use crate::store::Store;

/// What a finished load hands to its waiters.
#[derive(Clone)]
pub(crate) enum Landed {
    /// The encoded value (as stored).
    Value(Bytes),
    /// The loader's error, type-erased (`Arc<E>`).
    Failed(Arc<dyn Any + Send + Sync>),
    /// The value could not be encoded.
    Unencodable(Arc<str>),
}

pub(crate) type Receiver = watch::Receiver<Option<Landed>>;

/// The loads in progress, by full key.
#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<String, Receiver>>,
}

impl Flights {
    /// Joins the load of `key` if one runs, or registers a new one and returns its sender.
    pub(crate) fn join_or_lead(
        &self,
        key: &str,
    ) -> Result<Receiver, watch::Sender<Option<Landed>>> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = running.get(key) {
            return Ok(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        running.insert(key.to_owned(), rx);
        Err(tx)
    }

    /// Unregisters the load of `key` whose channel is `mine` (a later load of the same key,
    /// registered after this one finished, stays).
    fn finish(&self, key: &str, mine: &Receiver) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.get(key).is_some_and(|rx| rx.same_channel(mine)) {
            running.remove(key);
        }
    }

    /// How many loads are running (for tests and stats).
    pub(crate) fn len(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The sending end of a load. Landing unregisters the load *before* waking the waiters, so a
/// call that starts after a waiter returned never joins a finished load (an error is never
/// served twice); dropping it unlanded (panic, abort) unregisters it too.
pub(crate) struct Flight<S: Store> {
    pub(crate) cache: Cache<S>,
    pub(crate) key: String,
    pub(crate) tx: watch::Sender<Option<Landed>>,
}

impl<S: Store> Flight<S> {
    pub(crate) fn land(self, landed: Landed) {
        self.unregister();
        self.tx.send_replace(Some(landed));
    }

    fn unregister(&self) {
        self.cache
            .shared()
            .flights
            .finish(&self.key, &self.tx.subscribe());
    }
}

impl<S: Store> Drop for Flight<S> {
    fn drop(&mut self) {
        self.unregister();
    }
}
