//! The [`Broker`] trait every backend implements (the in-memory one in `memory`, Redis Streams in
//! `redis`; [`AnyBroker`](crate::AnyBroker) picks one at run time), and what it hands out.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;
use crate::message::Message;

/// One delivery of a message to one consumer of a group.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The broker's id of the entry (a Redis stream id); what [`Broker::ack`] takes.
    pub entry: String,
    /// Which delivery this is (1 the first time; a retry or a reclaim after a crash adds one).
    pub attempt: u32,
    /// The message, or why the stored entry could not be read (it then goes to the
    /// dead-letter stream, never to a handler).
    pub message: std::result::Result<Message, String>,
}

/// A message that exhausted its attempts (or could not be read), kept for inspection, replay or
/// purging.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub entry: String,
    /// The id of the original entry in the topic.
    pub original: String,
    /// The last error.
    pub error: String,
    /// Deliveries made.
    pub attempts: u32,
    /// The message, when it could be read.
    pub message: Option<Message>,
}

/// A message broker: topics (append-only logs), consumer groups sharing a topic's messages,
/// at-least-once delivery with acknowledgement, delayed retries and dead letters.
///
/// Semantics every backend keeps (the shared test suite checks them on each):
/// - every group of a topic gets every message; the consumers of one group share them;
/// - a delivered message stays pending for its group until acked, retried or dead-lettered; a
///   consumer that dies leaves it pending, and [`reclaim`](Self::reclaim) hands it to another
///   consumer once it was idle that long;
/// - a retry keeps the message pending but out of reach of `reclaim` until it is due
///   ([`due_retries`](Self::due_retries)), so a backoff never blocks other messages;
/// - each delivery, first or not, increments [`Delivery::attempt`].
pub trait Broker: Send + Sync + 'static {
    /// Appends `message` to `topic`; returns the entry id.
    fn publish(
        &self,
        topic: &str,
        message: &Message,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Appends `message` unless a message with the same id was appended to `topic` less than
    /// `window` ago (idempotent publish: a producer that retries after a timeout does not
    /// publish twice). The check and the append are one atomic step.
    fn publish_once(
        &self,
        topic: &str,
        message: &Message,
        window: Duration,
    ) -> impl Future<Output = Result<Published>> + Send;

    /// Creates `group` on `topic` if it does not exist, reading from `start`; an existing group
    /// keeps its position.
    fn create_group(
        &self,
        topic: &str,
        group: &str,
        start: StartAt,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Up to `max` messages never delivered to `group`, waiting up to `wait` for one.
    fn receive(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Up to `max` retries of `group` whose time has come, now delivered to `consumer`.
    fn due_retries(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// Up to `max` messages of `group` delivered to some consumer at least `idle` ago and neither
    /// settled nor waiting for a retry: a crashed consumer's; now delivered to `consumer`.
    fn reclaim(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// The message is done for `group`.
    fn ack(&self, topic: &str, group: &str, entry: &str)
    -> impl Future<Output = Result<()>> + Send;

    /// These messages are done for `group` (one broker call: what consumers use, batching the
    /// acks of handlers that finish together).
    fn ack_many(
        &self,
        topic: &str,
        group: &str,
        entries: &[String],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Delivers the message to `group` again after `after` (the broker's clock).
    fn retry(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        after: Duration,
        error: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Moves the message to `group`'s dead-letter stream with `error`, and acks it.
    fn dead_letter(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        attempts: u32,
        error: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Up to `max` dead letters of `group`, oldest first.
    fn dead_letters(
        &self,
        topic: &str,
        group: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>>> + Send;

    /// Removes a dead letter; `true` when it existed.
    fn remove_dead_letter(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Messages of `group` delivered and not yet settled (pending), and not yet delivered (lag),
    /// where the backend can tell.
    fn backlog(&self, topic: &str, group: &str) -> impl Future<Output = Result<Backlog>> + Send;

    /// Removes `group` from `topic` with its pending messages, retries and dead letters (a
    /// group that will never read again, e.g. the group of an instance that stops for good);
    /// `true` when it existed.
    fn delete_group(&self, topic: &str, group: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Takes, or renews, the exclusive lease of `group` on `topic` for `owner`, for `ttl`:
    /// `true` when `owner` holds it now, `false` while another owner does. What keeps one
    /// consumer per topic and group at a time for ordered consumption
    /// ([`ConsumerBuilder::in_order`](crate::ConsumerBuilder::in_order)).
    fn lease(
        &self,
        topic: &str,
        group: &str,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Gives the lease up if `owner` holds it (another consumer can take it at once).
    fn release(
        &self,
        topic: &str,
        group: &str,
        owner: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Backend name for logs and metrics (`memory`, `redis`).
    fn backend(&self) -> &'static str;
}

/// What [`Broker::publish_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The entry id (of the first publish, for a duplicate).
    pub entry: String,
    /// The id was published within the window before: nothing was appended.
    pub duplicate: bool,
}

/// Where a new consumer group starts reading a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// The first message the topic still retains (a work queue: nothing published before the
    /// group existed is missed).
    #[default]
    Beginning,
    /// The next message published.
    Now,
    /// The first message published at or after this time, in milliseconds since the Unix
    /// epoch: a new subscriber replaying recent events. On Redis the time of the server's clock
    /// when it stored the message (entry ids), in memory the publisher's `published_at_ms`.
    Time(u64),
    /// The messages after this entry (an id `publish` returned, `<ms>-<seq>`): a subscriber
    /// resuming after the last message it knows. Build it with [`StartAt::after`].
    After {
        /// The entry id's first part.
        ms: u64,
        /// The entry id's second part.
        seq: u64,
    },
}

impl StartAt {
    /// The messages after entry `entry` (`<ms>-<seq>`).
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) naming `entry` when it is not an entry id.
    pub fn after(entry: &str) -> Result<Self> {
        entry
            .split_once('-')
            .and_then(|(ms, seq)| {
                Some(StartAt::After {
                    ms: ms.parse().ok()?,
                    seq: seq.parse().ok()?,
                })
            })
            .ok_or_else(|| crate::Error::Invalid {
                field: "entry",
                message: format!("{entry:?} is not an entry id <ms>-<seq>"),
            })
    }
}

/// How far behind a group is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Delivered, not yet acked (includes retries waiting).
    pub pending: u64,
    /// Not yet delivered to the group.
    pub lag: u64,
    /// Dead letters kept.
    pub dead_letters: u64,
}
