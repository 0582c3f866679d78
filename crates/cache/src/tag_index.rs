//! The in-process tag index of [`MemoryStore`](crate::MemoryStore): tag index key → tagged
//! full keys with their expiry. Expired members are pruned whenever their tag is written, and
//! an index with no live member left is dropped, as on Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    tags: Mutex<HashMap<String, HashMap<String, Option<Instant>>>>,
}

fn live(expires_at: Option<Instant>, now: Instant) -> bool {
    expires_at.is_none_or(|at| at > now)
}

impl TagIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Option<Instant>>>> {
        self.tags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `keys` to `index`; returns its size after pruning.
    pub(crate) fn add(&self, index: &str, keys: &[(String, Option<Duration>)]) -> u64 {
        let now = Instant::now();
        let mut tags = self.lock();
        let members = tags.entry(index.to_owned()).or_default();
        members.retain(|_, at| live(*at, now));
        for (key, ttl) in keys {
            members.insert(key.clone(), ttl.and_then(|t| now.checked_add(t)));
        }
        let len = members.len() as u64;
        if len == 0 {
            tags.remove(index);
        }
        len
    }

    /// Removes `index`; returns its live keys.
    pub(crate) fn take(&self, index: &str) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .remove(index)
            .map(|members| {
                members
                    .into_iter()
                    .filter(|(_, at)| live(*at, now))
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Members of `index` (expired ones included until the next write of the tag).
    pub(crate) fn len(&self, index: &str) -> u64 {
        self.lock().get(index).map_or(0, |m| m.len() as u64)
    }
}
