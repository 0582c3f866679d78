//! The in-process revocation log (one instance, nothing to share).

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::store::{Revocation, RevocationStore};

/// Revocations kept in this process: every [`Revocations`](crate::Revocations) built on a clone
/// of it sees the same log.
#[derive(Debug, Clone, Default)]
pub struct MemoryRevocationStore {
    log: Arc<Mutex<Vec<Revocation>>>,
}

impl MemoryRevocationStore {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RevocationStore for MemoryRevocationStore {
    async fn append(&self, revocation: &Revocation) -> Result<()> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(revocation.clone());
        Ok(())
    }

    async fn read_after(&self, cursor: Option<&str>) -> Result<(Vec<Revocation>, Option<String>)> {
        let start = match cursor {
            None => 0,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| Error::config("cursor", format!("{text:?} is not a log index")))?,
        };
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let new = log.get(start..).map(<[_]>::to_vec).unwrap_or_default();
        Ok((new, Some(log.len().to_string())))
    }

    fn is_shared(&self) -> bool {
        false
    }
}
