//! [`Publisher`]: checks and sends messages to a topic.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::message::{Message, check_name};
use crate::metrics::{PublishMetrics, PublishResult};
use crate::store::Broker;

/// The largest encoded message accepted by default (1 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Publishes messages through a broker, refusing oversize ones.
#[derive(Debug, Clone)]
pub struct Publisher<B> {
    broker: B,
    max_bytes: usize,
    dedup_window: Option<Duration>,
    metrics: Arc<PublishMetrics>,
}

impl<B: Broker> Publisher<B> {
    /// A publisher on `broker`, messages up to 1 MiB encoded.
    pub fn new(broker: B) -> Self {
        Publisher {
            broker,
            max_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            dedup_window: None,
            metrics: Arc::default(),
        }
    }

    /// Idempotent publishing: a message whose id was already published to the topic less than
    /// `window` ago is not appended again, and `publish` returns the first entry id (the check
    /// and the append are atomic in the broker). Give messages the producer's own ids
    /// ([`Message::with_id`], e.g. the order id) so that a producer retrying after a timeout,
    /// or a restarted producer sending its outbox again, publishes each once. Costs one key per
    /// message id on Redis, expiring with the window. Consumers still see a message more than
    /// once when it is redelivered (at-least-once): the window deduplicates publishes, a
    /// [`ProcessedSet`](crate::ProcessedSet) deduplicates handling.
    #[must_use]
    pub fn dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = Some(window).filter(|w| !w.is_zero());
        self
    }

    /// The largest encoded message (payload, headers and envelope) accepted.
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sends `message` to `topic`; returns the broker's entry id once the broker has it (on
    /// Redis: once `XADD` answered, so it survives what Redis' persistence survives).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `topic`; [`Error::TooLarge`]; [`Error::Unavailable`] when the
    /// broker fails (the message may or may not be stored: publish again with the same id and
    /// let consumers drop the duplicate with a [`ProcessedSet`](crate::ProcessedSet)).
    pub async fn publish(&self, topic: &str, message: &Message) -> Result<String> {
        check_name("topic", topic)?;
        // With tracing: a producer span, and its context in the message for the consumer.
        #[cfg(feature = "tracing")]
        let (span, traced) = {
            let span = crate::trace::producer_span(topic, message, self.broker.backend());
            let traced = span.in_scope(|| crate::trace::with_context(message));
            (span, traced)
        };
        #[cfg(feature = "tracing")]
        let message = traced.as_ref().unwrap_or(message);
        let size = message.encoded_len();
        if size > self.max_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        let sent = async {
            match self.dedup_window {
                None => self
                    .broker
                    .publish(topic, message)
                    .await
                    .map(|e| (e, false)),
                Some(window) => self
                    .broker
                    .publish_once(topic, message, window)
                    .await
                    .map(|p| (p.entry, p.duplicate)),
            }
        };
        #[cfg(feature = "tracing")]
        let sent = tracing::Instrument::instrument(sent, span);
        let result = sent.await;
        self.metrics.published(
            topic,
            match &result {
                Ok((_, false)) => PublishResult::Ok,
                Ok((_, true)) => PublishResult::Duplicate,
                Err(_) => PublishResult::Error,
            },
        );
        result.map(|(entry, _)| entry)
    }

    /// The broker.
    pub fn broker(&self) -> &B {
        &self.broker
    }
}
