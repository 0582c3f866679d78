//! [`Consumer`]: runs a handler over a topic's messages for one consumer group: bounded
//! concurrency, acks, retries with backoff, dead letters, reclaiming a crashed consumer's
//! messages, graceful shutdown.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::Backoff;
use crate::error::Result;
use crate::message::{Message, check_name};
use crate::metrics::{self, ConsumerMetrics, Settled};
use crate::store::{Broker, Delivery, StartAt};

/// What a handler decided about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: acknowledge it.
    Ack,
    /// Failed for now: deliver it again after the backoff (or the given delay); after the
    /// consumer's `max_attempts` it goes to the dead-letter stream with this error.
    Retry {
        /// Why, kept with the message if it ends as a dead letter.
        error: String,
        /// Wait this long instead of the backoff.
        after: Option<Duration>,
    },
    /// Never processable (malformed, refused): straight to the dead-letter stream.
    Reject(String),
}

impl Outcome {
    /// A retry after the backoff.
    pub fn retry(error: impl std::fmt::Display) -> Self {
        Outcome::Retry {
            error: error.to_string(),
            after: None,
        }
    }
}

/// `Ok` acks; `Err` retries with the backoff (a handler written with `?` gets at-least-once
/// delivery with retries for free).
impl<E: std::fmt::Display> From<std::result::Result<(), E>> for Outcome {
    fn from(result: std::result::Result<(), E>) -> Self {
        match result {
            Ok(()) => Outcome::Ack,
            Err(e) => Outcome::retry(e),
        }
    }
}

/// `Ok(outcome)` is that outcome; `Err` retries with the backoff (a handler can use `?` and
/// still choose its outcome).
impl<E: std::fmt::Display> From<std::result::Result<Outcome, E>> for Outcome {
    fn from(result: std::result::Result<Outcome, E>) -> Self {
        result.unwrap_or_else(Outcome::retry)
    }
}

/// Settings of a [`Consumer`] (see [`Consumer::builder`]).
#[derive(Debug, Clone)]
pub struct ConsumerBuilder<B> {
    broker: B,
    topic: String,
    group: String,
    name: String,
    concurrency: usize,
    batch: usize,
    visibility_timeout: Duration,
    max_attempts: u32,
    backoff: Backoff,
    poll: Duration,
    start: StartAt,
    shutdown_grace: Duration,
    /// Message types handled (exact names or `prefix*`); empty: every type.
    types: Vec<String>,
    /// Ordered consumption: the lease held on the topic for the group.
    in_order: Option<Duration>,
    /// Metric handles for this topic and group (built when the consumer starts).
    metrics: Arc<ConsumerMetrics>,
    /// Acks waiting to be sent together (see `ack`).
    acks: Arc<Mutex<Vec<String>>>,
}

/// A consumer of one topic for one group. Several consumers (in one process or many) with the
/// same group share the group's messages; each group gets every message.
#[derive(Debug)]
pub struct Consumer;

/// How often a consumer records its group's backlog gauges.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// How often a consumer looks for retries that are due (a retry is late by at most this;
/// looking on every read would cost a broker call per batch).
const DUE_RETRIES_EVERY: Duration = Duration::from_millis(10);

static CONSUMERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Consumer {
    /// A consumer of `topic` in `group` on `broker`, with the defaults: 16 messages handled at
    /// once, 30 s visibility timeout (a message its consumer has held that long without
    /// settling it is handed to another consumer), 5 attempts, [`Backoff::default`], reading
    /// from the topic's first retained message when the group is new.
    pub fn builder<B: Broker + Clone>(broker: B, topic: &str, group: &str) -> ConsumerBuilder<B> {
        let n = CONSUMERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ConsumerBuilder {
            broker,
            topic: topic.to_owned(),
            group: group.to_owned(),
            name: format!("c-{}-{n}", std::process::id()),
            concurrency: 16,
            batch: 32,
            visibility_timeout: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::default(),
            poll: Duration::from_millis(500),
            start: StartAt::Beginning,
            shutdown_grace: Duration::from_secs(10),
            types: Vec::new(),
            in_order: None,
            metrics: Arc::new(ConsumerMetrics::new(topic, group)),
            acks: Arc::default(),
        }
    }
}

impl<B: Broker + Clone> ConsumerBuilder<B> {
    /// This consumer's name in the group (default `c-<pid>-<n>`; unique per process).
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Messages handled at once (default 16, at least 1). The messages read together run as
    /// one tokio task (their handlers concurrently inside it, like `buffer_unordered`), and
    /// batches run as separate tasks, so handlers use every worker thread; a handler doing
    /// long CPU work should move it to `spawn_blocking` as in any async code.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self.batch = self.batch.min(self.concurrency.max(1) * 2);
        self
    }

    /// How long a consumer may hold a message before another one takes it over (default
    /// 30 s). Longer than the slowest handler, or a slow message is handled twice.
    #[must_use]
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// Deliveries before a failing message goes to the dead-letter stream (default 5, at
    /// least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay between attempts (default [`Backoff::default`]).
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long one read waits for new messages (default 500 ms); also how late a due retry
    /// may start.
    #[must_use]
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// A new group starts at the next message published instead of the first retained one.
    #[must_use]
    pub fn from_now(mut self) -> Self {
        self.start = StartAt::Now;
        self
    }

    /// Where a new group starts (default [`StartAt::Beginning`]); e.g.
    /// `StartAt::Time(ms)` for a new subscriber replaying the last hour's events. An existing
    /// group keeps its position.
    #[must_use]
    pub fn start_at(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }

    /// How long [`ConsumerHandle::shutdown`] waits for handlers in flight (default 10 s);
    /// messages still in flight then stay pending and another consumer reclaims them.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Subscribes to these message types only: exact names (`patient.registered`) or prefixes
    /// ending in `*` (`patient.*`, `*` for all). Messages of other types are acknowledged for
    /// this group without reaching the handler (an event bus: one topic, each service's group
    /// picks the events it cares about). Default: every type.
    #[must_use]
    pub fn types<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.types = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Ordered consumption: this consumer handles the topic's messages one at a time, in
    /// publishing order, while it holds the topic's lease for its group (taken and renewed
    /// every `lease / 3`; one holder per topic and group across every process). A retry
    /// happens in place, after the backoff, before the next message (head-of-line blocking:
    /// the price of order), and a message that exhausts its attempts goes to the dead-letter
    /// stream so the rest can proceed. When the holder stops, another consumer takes the lease
    /// at once (graceful shutdown releases it) or after `lease` (a crash), and first handles
    /// the messages the previous holder left pending, in order. Choose `lease` above a
    /// handler's longest run: a holder that stalls longer can overlap with its successor
    /// (use a [`ProcessedSet`](crate::ProcessedSet) where that matters). For per-key order
    /// with parallelism, partition the topic ([`run_partitions`](Self::run_partitions)).
    #[must_use]
    pub fn in_order(mut self, lease: Duration) -> Self {
        self.in_order = Some(lease.max(Duration::from_millis(30)));
        self.concurrency = 1;
        self.batch = 1;
        self
    }

    /// Consumes every partition of `partitions` in order (see [`in_order`](Self::in_order),
    /// default lease 10 s): one ordered consumer per partition topic in this process, each
    /// handling its partition while it holds the partition's lease. Run it in every instance:
    /// the partitions spread over the instances that take their leases, and move to the
    /// others when one stops. The builder's topic is not used.
    ///
    /// # Errors
    /// As [`run`](Self::run), for any partition.
    pub async fn run_partitions<H, F, O>(
        self,
        partitions: &crate::Partitions,
        handler: H,
    ) -> Result<ConsumerHandle>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = O> + Send + 'static,
        O: Into<Outcome> + Send + 'static,
    {
        let lease = self.in_order.unwrap_or(Duration::from_secs(10));
        let handler = Arc::new(handler);
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::with_capacity(partitions.topics().len());
        for topic in partitions.topics() {
            let mut config = self.clone().in_order(lease);
            config.topic.clone_from(topic);
            config.metrics = Arc::new(ConsumerMetrics::new(topic, &config.group));
            config.acks = Arc::default();
            config.validate().await?;
            tasks.push(tokio::spawn(run_loop(
                Arc::new(config),
                handler.clone(),
                stop.subscribe(),
            )));
        }
        Ok(ConsumerHandle {
            stop,
            tasks,
            grace: self.shutdown_grace,
        })
    }

    /// Checks the names and creates the group.
    async fn validate(&self) -> Result<()> {
        check_name("topic", &self.topic)?;
        check_name("group", &self.group)?;
        check_name("consumer", &self.name)?;
        for pattern in &self.types {
            match pattern.strip_suffix('*') {
                Some("") => {}
                Some(prefix) => check_name("types", prefix)?,
                None => check_name("types", pattern)?,
            }
        }
        self.broker
            .create_group(&self.topic, &self.group, self.start)
            .await
    }

    fn wants(&self, kind: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => kind == p,
            })
    }

    /// Creates the group if needed and starts consuming with `handler` on the current tokio
    /// runtime. A handler that panics has its message retried.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) naming `topic`, `group` or `consumer`;
    /// [`Error::Unavailable`](crate::Error::Unavailable) when the group cannot be created.
    pub async fn run<H, F, O>(self, handler: H) -> Result<ConsumerHandle>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = O> + Send + 'static,
        O: Into<Outcome> + Send + 'static,
    {
        self.validate().await?;
        let (stop, stopped) = watch::channel(false);
        let grace = self.shutdown_grace;
        let task = tokio::spawn(run_loop(Arc::new(self), Arc::new(handler), stopped));
        Ok(ConsumerHandle {
            stop,
            tasks: vec![task],
            grace,
        })
    }
}

/// A running consumer. Dropping it stops reading (in-flight handlers finish on their own).
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: watch::Sender<bool>,
    /// One task per consumed topic (several for partitions).
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl ConsumerHandle {
    /// Stops reading, waits for the handlers in flight (up to the shutdown grace) and settles
    /// what they return; returns when the consumer is done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.grace + Duration::from_secs(1);
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn run_loop<B, H, F, O>(
    config: Arc<ConsumerBuilder<B>>,
    handler: Arc<H>,
    mut stopped: watch::Receiver<bool>,
) where
    B: Broker + Clone,
    H: Fn(Message) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: Into<Outcome> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let reclaim_every = (config.visibility_timeout / 2).max(Duration::from_millis(50));
    let mut last_reclaim = Instant::now() - reclaim_every;
    let mut last_backlog = Instant::now() - BACKLOG_EVERY;
    let mut last_due = Instant::now() - DUE_RETRIES_EVERY;
    let mut failures = 0u32;
    // Ordered consumption: whether this consumer holds the lease, and when it last renewed.
    let mut holding = false;
    let mut renewed = Instant::now();
    while !*stopped.borrow() {
        // Never read more than can be handled now.
        let free = match permits.clone().acquire_owned().await {
            Ok(permit) => {
                drop(permit);
                permits.available_permits().min(config.batch).max(1)
            }
            Err(_) => break,
        };
        let mut deliveries = Vec::new();
        let c = &config;
        let step: Result<()> = async {
            if let Some(lease) = c.in_order {
                if !holding || renewed.elapsed() >= lease / 3 {
                    let took = c.broker.lease(&c.topic, &c.group, &c.name, lease).await?;
                    renewed = Instant::now();
                    if took && !holding {
                        // Taken over: first what the previous holder left pending, in order.
                        deliveries.extend(
                            c.broker
                                .reclaim(&c.topic, &c.group, &c.name, Duration::ZERO, 1024)
                                .await?,
                        );
                    }
                    holding = took;
                }
                if !holding {
                    tokio::select! {
                        () = tokio::time::sleep(c.poll.min(lease / 3)) => {}
                        _ = stopped.changed() => {}
                    }
                    return Ok(());
                }
            }
            if last_backlog.elapsed() >= BACKLOG_EVERY {
                last_backlog = Instant::now();
                let backlog = c.broker.backlog(&c.topic, &c.group).await?;
                metrics::backlog(&c.topic, &c.group, backlog);
            }
            if c.in_order.is_none() && last_reclaim.elapsed() >= reclaim_every {
                last_reclaim = Instant::now();
                let taken = c
                    .broker
                    .reclaim(&c.topic, &c.group, &c.name, c.visibility_timeout, free)
                    .await?;
                if !taken.is_empty() {
                    c.metrics.reclaimed(taken.len());
                }
                deliveries.extend(taken);
            }
            if deliveries.len() < free && last_due.elapsed() >= DUE_RETRIES_EVERY {
                last_due = Instant::now();
                deliveries.extend(
                    c.broker
                        .due_retries(&c.topic, &c.group, &c.name, free - deliveries.len())
                        .await?,
                );
            }
            if deliveries.is_empty() {
                // An ordered consumer wakes up in time to renew its lease.
                let wait = c.in_order.map_or(c.poll, |lease| c.poll.min(lease / 3));
                tokio::select! {
                    read = c.broker.receive(&c.topic, &c.group, &c.name, free, wait) => deliveries.extend(read?),
                    _ = stopped.changed() => {}
                }
            }
            Ok(())
        }
        .await;
        if let Err(error) = step {
            failures += 1;
            tracing::warn!(%error, topic = %config.topic, group = %config.group, "reading messages failed; retrying");
            let pause = Duration::from_millis(50 * u64::from(failures.min(20)));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        failures = 0;
        if deliveries.is_empty() {
            continue;
        }
        // One task per batch (a task per message costs more than an in-memory delivery): its
        // handlers run concurrently inside it, and each gives its slot back when it is done.
        let wanted = u32::try_from(deliveries.len()).unwrap_or(u32::MAX);
        let Ok(mut slots) = permits.clone().acquire_many_owned(wanted).await else {
            break;
        };
        let batch: FuturesUnordered<_> = deliveries
            .into_iter()
            .map(|delivery| {
                let slot = slots.split(1);
                let (config, handler) = (config.clone(), handler.clone());
                async move {
                    handle(&config, &*handler, delivery).await;
                    drop(slot);
                }
            })
            .collect();
        tokio::spawn(batch.collect::<()>());
    }
    // Graceful: wait for the handlers in flight (all permits back), up to the grace.
    let all = u32::try_from(config.concurrency).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(config.shutdown_grace, permits.acquire_many(all)).await;
    if holding {
        // The next consumer takes over now rather than when the lease runs out.
        let _ = config
            .broker
            .release(&config.topic, &config.group, &config.name)
            .await;
    }
}

async fn handle<B, H, F, O>(config: &ConsumerBuilder<B>, handler: &H, delivery: Delivery)
where
    B: Broker + Clone,
    H: Fn(Message) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: Into<Outcome> + Send + 'static,
{
    let group = &config.group;
    let message = match delivery.message {
        // A dead letter replayed for another group is not this group's business, nor a type
        // it did not subscribe to.
        Ok(message)
            if message
                .header(crate::message::headers::REPLAY_FOR)
                .is_some_and(|g| g != group)
                || !config.wants(message.kind()) =>
        {
            settle(config, delivery.entry, delivery.attempt, Outcome::Ack).await;
            return;
        }
        Ok(mut message) => {
            message.set_attempt(delivery.attempt);
            message
        }
        Err(reason) => {
            settle(
                config,
                delivery.entry,
                delivery.attempt,
                Outcome::Reject(reason),
            )
            .await;
            return;
        }
    };
    let mut attempt = delivery.attempt;
    let outcome = match config.in_order {
        None => invoke(config, handler, message).await,
        // Ordered: retried in place, so nothing after it overtakes it.
        Some(_) => loop {
            let mut this = message.clone();
            this.set_attempt(attempt);
            match invoke(config, handler, this).await {
                Outcome::Retry { after, .. } if attempt < config.max_attempts => {
                    config.metrics.settled(Settled::Retried);
                    let pause = after.unwrap_or_else(|| config.backoff.delay(attempt));
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                outcome => break outcome,
            }
        },
    };
    settle(config, delivery.entry, attempt, outcome).await;
}

/// Runs the handler on one delivery of a message (a panic is a retry), timed and traced.
async fn invoke<B, H, F, O>(config: &ConsumerBuilder<B>, handler: &H, message: Message) -> Outcome
where
    B: Broker + Clone,
    H: Fn(Message) -> F + Send + Sync + 'static,
    F: Future<Output = O> + Send + 'static,
    O: Into<Outcome> + Send + 'static,
{
    let started = Instant::now();
    #[cfg(feature = "tracing")]
    let span = crate::trace::consumer_span(
        &config.topic,
        &config.group,
        &message,
        config.broker.backend(),
    );
    let run = std::panic::AssertUnwindSafe(handler(message)).catch_unwind();
    #[cfg(feature = "tracing")]
    let run = tracing::Instrument::instrument(run, span.clone());
    // A panic is a failure of this attempt, not of the consumer.
    let outcome = match run.await {
        Ok(outcome) => outcome.into(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the handler panicked".to_owned());
            Outcome::retry(format!("panic: {what}"))
        }
    };
    config.metrics.handled(started.elapsed());
    #[cfg(feature = "tracing")]
    if outcome != Outcome::Ack {
        span.record("otel.status_code", "ERROR");
        span.record(
            "error.type",
            match outcome {
                Outcome::Reject(_) => "rejected",
                _ => "retry",
            },
        );
    }
    outcome
}

/// Acknowledges `entry` together with the acks of handlers finishing at the same time: the
/// first handler to queue an ack sends the queue (one broker call per batch) until it finds
/// it empty; the others only queue theirs. Every queued entry is sent by a handler still
/// running, so none is forgotten (and a failed batch stays pending, delivered again).
async fn ack<B: Broker + Clone>(config: &ConsumerBuilder<B>, entry: String) {
    let first = {
        let mut queue = config.acks.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push(entry);
        queue.len() == 1
    };
    if !first {
        return;
    }
    loop {
        let batch = {
            let mut queue = config.acks.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.is_empty() {
                break;
            }
            std::mem::take(&mut *queue)
        };
        let (topic, group) = (&config.topic, &config.group);
        match config.broker.ack_many(topic, group, &batch).await {
            Ok(()) => config.metrics.settled_many(Settled::Acked, batch.len()),
            Err(error) => tracing::warn!(%error, %topic, %group, messages = batch.len(),
                "acknowledging messages failed; they stay pending and will be delivered again"),
        }
    }
}

/// Applies an outcome. A broker failure leaves the message pending: it is reclaimed after the
/// visibility timeout (at least once, never lost).
async fn settle<B: Broker + Clone>(
    config: &ConsumerBuilder<B>,
    entry: String,
    attempt: u32,
    outcome: Outcome,
) {
    let (broker, topic, group) = (&config.broker, &config.topic, &config.group);
    let entry = match outcome {
        Outcome::Ack => {
            ack(config, entry).await;
            return;
        }
        _ => entry.as_str(),
    };
    let (result, label) = match outcome {
        Outcome::Ack => return,
        Outcome::Retry { error, after } if attempt < config.max_attempts => {
            let after = after.unwrap_or_else(|| config.backoff.delay(attempt));
            (
                broker.retry(topic, group, entry, after, &error).await,
                Settled::Retried,
            )
        }
        Outcome::Retry { error, .. } => {
            let error = format!("gave up after {attempt} attempts: {error}");
            (
                broker
                    .dead_letter(topic, group, entry, attempt, &error)
                    .await,
                Settled::DeadLettered,
            )
        }
        Outcome::Reject(error) => (
            broker
                .dead_letter(topic, group, entry, attempt, &error)
                .await,
            Settled::DeadLettered,
        ),
    };
    config.metrics.settled(label);
    if let Err(error) = result {
        tracing::warn!(%error, %topic, %group, entry, "settling a message failed; it stays pending and will be delivered again");
    }
}
