//! Cross-instance L1 coherency for [`TieredStore`](crate::TieredStore): invalidation messages
//! on a Redis pub/sub channel, and the listener that applies them.
//!
//! Every write, delete and pattern invalidation publishes `{"o": origin, "k": [keys]}` or
//! `{"o": origin, "p": pattern}`; every other instance drops those keys from its L1. When the
//! listener cannot vouch for having seen every message (disconnect, lag, an unreadable message,
//! the stream ending) it clears L1 and, until resubscribed, the store reads through to Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedReceiver;

use nilecare_redis::ChannelEvent;

use crate::memory::MemoryStore;
use crate::store::Store;

/// One invalidation.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Invalidation {
    /// The publishing instance (its own messages are skipped).
    #[serde(rename = "o")]
    pub(crate) origin: u64,
    /// Full keys to drop.
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) keys: Vec<String>,
    /// A full-key glob to drop.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub(crate) pattern: Option<String>,
}

/// What the store and the listener share.
#[derive(Debug)]
pub(crate) struct Coherency {
    pub(crate) l1: MemoryStore,
    pub(crate) origin: u64,
    /// L1 may be used: the listener is subscribed and has missed nothing since L1 was cleared.
    coherent: AtomicBool,
    /// Bumped before every invalidation is applied; a reader fills L1 only when it did not
    /// change across its Redis read (else an invalidation may have raced the fill).
    epoch: AtomicU64,
    /// Invalidations applied from other instances.
    received: AtomicU64,
}

impl Coherency {
    pub(crate) fn new(l1: MemoryStore, origin: u64) -> Self {
        Coherency {
            l1,
            origin,
            coherent: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    pub(crate) fn is_coherent(&self) -> bool {
        self.coherent.load(Ordering::Acquire)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Clears L1 and sets whether it may be used from now on.
    fn reset(&self, coherent: bool) {
        self.bump();
        if !coherent {
            self.coherent.store(false, Ordering::Release);
        }
        self.l1.clear();
        if coherent {
            self.coherent.store(true, Ordering::Release);
        }
    }

    async fn apply(&self, message: &[u8]) {
        let Ok(inv) = serde_json::from_slice::<Invalidation>(message) else {
            tracing::warn!(
                bytes = message.len(),
                "unreadable cache invalidation message: L1 cleared"
            );
            self.reset(true);
            return;
        };
        if inv.origin == self.origin {
            return;
        }
        self.bump();
        self.received.fetch_add(1, Ordering::Relaxed);
        if !inv.keys.is_empty() {
            let _ = self.l1.delete(&inv.keys).await;
        }
        if let Some(pattern) = inv.pattern {
            let _ = self.l1.delete_matching(&pattern, &|_| true).await;
        }
    }
}

/// Applies channel events to L1 until the stream ends (then L1 stays off).
pub(crate) async fn run_listener(
    coherency: Arc<Coherency>,
    mut events: UnboundedReceiver<ChannelEvent>,
) {
    while let Some(event) = events.recv().await {
        match event {
            ChannelEvent::Message(bytes) => coherency.apply(&bytes).await,
            ChannelEvent::Disconnected => {
                if coherency.is_coherent() {
                    tracing::warn!("cache invalidation channel lost: L1 off until resubscribed");
                }
                coherency.reset(false);
            }
            ChannelEvent::Resubscribed => {
                tracing::info!("cache invalidation channel back: L1 on (cleared)");
                coherency.reset(true);
            }
            ChannelEvent::Lagged(missed) => {
                tracing::warn!(missed, "cache invalidations dropped: L1 cleared");
                coherency.reset(true);
            }
            _ => coherency.reset(true),
        }
    }
    coherency.reset(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_compact_json() {
        let inv = Invalidation {
            origin: 7,
            keys: vec!["nilecare:cache:k".into()],
            pattern: None,
        };
        let json = serde_json::to_string(&inv).unwrap();
        assert_eq!(json, r#"{"o":7,"k":["nilecare:cache:k"]}"#);
        assert_eq!(serde_json::from_str::<Invalidation>(&json).unwrap(), inv);
        let p: Invalidation = serde_json::from_str(r#"{"o":1,"p":"x:*"}"#).unwrap();
        assert_eq!((p.keys.len(), p.pattern.as_deref()), (0, Some("x:*")));
    }
}
