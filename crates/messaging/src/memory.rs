//! [`MemoryBroker`]: the broker in one process, with the same semantics as Redis Streams
//! (consumer groups, pending messages, reclaiming, delayed retries, dead letters).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::message::Message;
use crate::store::{Backlog, Broker, DeadLetter, Delivery, Published, StartAt};

#[derive(Debug)]
struct Pending {
    delivered_at: Instant,
    deliveries: u32,
    /// Waiting for a retry until then (not reclaimable before).
    due: Option<Instant>,
}

#[derive(Debug, Default)]
struct Group {
    /// The ordered-consumption lease: holder and end.
    lease: Option<(String, Instant)>,
    /// The next sequence number to deliver.
    cursor: u64,
    pending: BTreeMap<u64, Pending>,
    dead: VecDeque<(u64, DeadLetter)>,
    next_dead: u64,
}

#[derive(Debug, Default)]
struct Topic {
    /// Retained entries by sequence number.
    entries: BTreeMap<u64, Message>,
    next: u64,
    groups: HashMap<String, Group>,
    /// Message ids published through `publish_once`: entry id and end of the window.
    recent: HashMap<String, (String, Instant)>,
    /// The same ids in publish order, to forget them once their window ended.
    recent_order: VecDeque<(Instant, String)>,
}

impl Topic {
    fn append(&mut self, message: &Message, max_len: usize, max_age: Option<Duration>) -> String {
        let seq = self.next;
        self.next += 1;
        self.entries.insert(seq, message.clone());
        while self.entries.len() > max_len {
            self.entries.pop_first();
        }
        if let Some(age) = max_age {
            let oldest = crate::clock::now_ms().saturating_sub(crate::clock::millis(age));
            while self
                .entries
                .first_key_value()
                .is_some_and(|(_, m)| m.published_at_ms() < oldest)
            {
                self.entries.pop_first();
            }
        }
        entry_id(seq)
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((until, _)) = self.recent_order.front() {
            if *until > now {
                break;
            }
            if let Some((_, id)) = self.recent_order.pop_front() {
                if self.recent.get(&id).is_some_and(|(_, until)| *until <= now) {
                    self.recent.remove(&id);
                }
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    topics: Mutex<HashMap<String, Topic>>,
    published: Notify,
    /// Receivers waiting on `published` (publishers skip the notification when none).
    waiting: AtomicUsize,
    max_len: usize,
    max_age: Option<Duration>,
    max_dead_letters: usize,
}

/// The in-process broker (cheap to clone; clones share the topics).
///
/// Each topic keeps its last `max_len` messages (default 100 000; older ones are dropped, as
/// Redis trims a stream), each group its last 10 000 dead letters.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

fn entry_id(seq: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(seq);
    let mut id = String::with_capacity(digits.len() + 2);
    id.push_str(digits);
    id.push_str("-0");
    id
}

fn parse_entry(entry: &str) -> Result<u64> {
    entry
        .strip_suffix("-0")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::Invalid {
            field: "entry",
            message: format!("{entry:?} is not an entry id of this broker"),
        })
}

impl MemoryBroker {
    /// A broker keeping the last 100 000 messages of each topic.
    pub fn new() -> Self {
        Self::with_max_len(100_000)
    }

    /// A broker keeping the last `max_len` messages of each topic (at least 1).
    pub fn with_max_len(max_len: usize) -> Self {
        Self::with_retention(max_len.max(1), None)
    }

    /// A broker keeping the messages of the last `age` (by their `published_at_ms`), as
    /// `RedisBroker::max_age` does, whatever their number.
    pub fn with_max_age(age: Duration) -> Self {
        Self::with_retention(usize::MAX, Some(age))
    }

    fn with_retention(max_len: usize, max_age: Option<Duration>) -> Self {
        MemoryBroker {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                published: Notify::new(),
                waiting: AtomicUsize::new(0),
                max_len,
                max_age,
                max_dead_letters: 10_000,
            }),
        }
    }

    fn with_topic<R>(&self, topic: &str, f: impl FnOnce(&mut Topic) -> R) -> R {
        let mut topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // No key allocation when the topic exists (every call but the first).
        if !topics.contains_key(topic) {
            topics.insert(topic.to_owned(), Topic::default());
        }
        match topics.get_mut(topic) {
            Some(t) => f(t),
            None => f(&mut Topic::default()),
        }
    }

    fn with_group<R>(
        &self,
        topic: &str,
        group: &str,
        f: impl FnOnce(&mut Topic, &str) -> Result<R>,
    ) -> Result<R> {
        self.with_topic(topic, |t| {
            if !t.groups.contains_key(group) {
                return Err(Error::Invalid {
                    field: "group",
                    message: format!("{group:?} does not exist on topic {topic:?}"),
                });
            }
            f(t, group)
        })
    }
}

/// Delivers `seq` of `topic` to a consumer of `group` (pending, one more delivery; which
/// consumer holds it does not matter in one process: reclaiming goes by idle time).
fn deliver(t: &mut Topic, group: &str, seq: u64, now: Instant) -> Option<Delivery> {
    let message = t.entries.get(&seq).cloned();
    let g = t.groups.get_mut(group)?;
    let Some(message) = message else {
        // Trimmed while pending: nothing left to deliver.
        g.pending.remove(&seq);
        return None;
    };
    let p = g.pending.entry(seq).or_insert(Pending {
        delivered_at: now,
        deliveries: 0,
        due: None,
    });
    p.delivered_at = now;
    p.deliveries += 1;
    p.due = None;
    Some(Delivery {
        entry: entry_id(seq),
        attempt: p.deliveries,
        message: Ok(message),
    })
}

/// Counts a receiver as waiting while it lives (a receive can be cancelled mid-wait).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MemoryBroker {
    /// Wakes the waiting receivers after an append. A receiver registers before its last look
    /// at the topic (both under the topic lock, the count sequentially consistent), so either
    /// it sees the new entry or this sees it waiting.
    fn notify(&self) {
        if self.inner.waiting.load(Ordering::SeqCst) > 0 {
            self.inner.published.notify_waiters();
        }
    }
}

impl Broker for MemoryBroker {
    async fn publish(&self, topic: &str, message: &Message) -> Result<String> {
        let id = self.with_topic(topic, |t| {
            t.append(message, self.inner.max_len, self.inner.max_age)
        });
        self.notify();
        Ok(id)
    }

    async fn publish_once(
        &self,
        topic: &str,
        message: &Message,
        window: Duration,
    ) -> Result<Published> {
        let now = Instant::now();
        let published = self.with_topic(topic, |t| {
            t.forget_expired(now);
            if let Some((entry, until)) = t.recent.get(message.id()) {
                if *until > now {
                    return Published {
                        entry: entry.clone(),
                        duplicate: true,
                    };
                }
            }
            let entry = t.append(message, self.inner.max_len, self.inner.max_age);
            let until = now + window;
            t.recent
                .insert(message.id().to_owned(), (entry.clone(), until));
            t.recent_order.push_back((until, message.id().to_owned()));
            Published {
                entry,
                duplicate: false,
            }
        });
        if !published.duplicate {
            self.notify();
        }
        Ok(published)
    }

    async fn create_group(&self, topic: &str, group: &str, start: StartAt) -> Result<()> {
        self.with_topic(topic, |t| {
            let cursor = match start {
                StartAt::Beginning => t.entries.keys().next().copied().unwrap_or(t.next),
                StartAt::Now => t.next,
                StartAt::Time(ms) => t
                    .entries
                    .iter()
                    .find(|(_, m)| m.published_at_ms() >= ms)
                    .map_or(t.next, |(seq, _)| *seq),
                // This broker's entry ids are `<seq>-0`.
                StartAt::After { ms: seq, .. } => seq.saturating_add(1),
            };
            t.groups.entry(group.to_owned()).or_insert_with(|| Group {
                cursor,
                ..Group::default()
            });
        });
        Ok(())
    }

    async fn receive(
        &self,
        topic: &str,
        group: &str,
        _consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        let take = || {
            self.with_group(topic, group, |t, group| {
                let cursor = t.groups.get(group).map_or(0, |g| g.cursor);
                let seqs: Vec<u64> = t
                    .entries
                    .range(cursor..)
                    .take(max)
                    .map(|(s, _)| *s)
                    .collect();
                if let Some(g) = t.groups.get_mut(group) {
                    g.cursor = seqs.last().map_or(g.cursor.max(t.next), |last| last + 1);
                }
                let now = Instant::now();
                Ok(seqs
                    .into_iter()
                    .filter_map(|seq| deliver(t, group, seq, now))
                    .collect::<Vec<_>>())
            })
        };
        loop {
            let batch = take()?;
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(batch);
            }
            // Nothing yet: register as a waiter (publishers notify only when someone waits),
            // look once more, then wait.
            let notified = self.inner.published.notified();
            tokio::pin!(notified);
            let _waiting = Waiting::new(&self.inner.waiting);
            notified.as_mut().enable();
            let batch = take()?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    async fn due_retries(
        &self,
        topic: &str,
        group: &str,
        _consumer: &str,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let now = Instant::now();
        self.with_group(topic, group, |t, group| {
            let due: Vec<u64> = t.groups[group]
                .pending
                .iter()
                .filter(|(_, p)| p.due.is_some_and(|d| d <= now))
                .map(|(s, _)| *s)
                .take(max)
                .collect();
            Ok(due
                .into_iter()
                .filter_map(|seq| deliver(t, group, seq, Instant::now()))
                .collect())
        })
    }

    async fn reclaim(
        &self,
        topic: &str,
        group: &str,
        _consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let now = Instant::now();
        self.with_group(topic, group, |t, group| {
            let stale: Vec<u64> = t.groups[group]
                .pending
                .iter()
                .filter(|(_, p)| p.due.is_none() && now.duration_since(p.delivered_at) >= idle)
                .map(|(s, _)| *s)
                .take(max)
                .collect();
            Ok(stale
                .into_iter()
                .filter_map(|seq| deliver(t, group, seq, Instant::now()))
                .collect())
        })
    }

    async fn ack(&self, topic: &str, group: &str, entry: &str) -> Result<()> {
        let seq = parse_entry(entry)?;
        self.with_group(topic, group, |t, group| {
            if let Some(g) = t.groups.get_mut(group) {
                g.pending.remove(&seq);
            }
            Ok(())
        })
    }

    async fn ack_many(&self, topic: &str, group: &str, entries: &[String]) -> Result<()> {
        let seqs = entries
            .iter()
            .map(|e| parse_entry(e))
            .collect::<Result<Vec<u64>>>()?;
        self.with_group(topic, group, |t, group| {
            if let Some(g) = t.groups.get_mut(group) {
                for seq in seqs {
                    g.pending.remove(&seq);
                }
            }
            Ok(())
        })
    }

    async fn retry(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        after: Duration,
        _error: &str,
    ) -> Result<()> {
        let seq = parse_entry(entry)?;
        self.with_group(topic, group, |t, group| {
            if let Some(p) = t
                .groups
                .get_mut(group)
                .and_then(|g| g.pending.get_mut(&seq))
            {
                p.due = Some(Instant::now() + after);
            }
            Ok(())
        })
    }

    async fn dead_letter(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        attempts: u32,
        error: &str,
    ) -> Result<()> {
        let seq = parse_entry(entry)?;
        let max_dead = self.inner.max_dead_letters;
        self.with_group(topic, group, |t, group| {
            let message = t.entries.get(&seq).cloned();
            let Some(g) = t.groups.get_mut(group) else {
                return Ok(());
            };
            if g.pending.remove(&seq).is_none() {
                return Ok(()); // settled already
            }
            let n = g.next_dead;
            g.next_dead += 1;
            g.dead.push_back((
                n,
                DeadLetter {
                    entry: entry_id(n),
                    original: entry.to_owned(),
                    error: error.to_owned(),
                    attempts,
                    message,
                },
            ));
            while g.dead.len() > max_dead {
                g.dead.pop_front();
            }
            Ok(())
        })
    }

    async fn dead_letters(&self, topic: &str, group: &str, max: usize) -> Result<Vec<DeadLetter>> {
        self.with_group(topic, group, |t, group| {
            Ok(t.groups[group]
                .dead
                .iter()
                .take(max)
                .map(|(_, d)| d.clone())
                .collect())
        })
    }

    async fn remove_dead_letter(&self, topic: &str, group: &str, entry: &str) -> Result<bool> {
        let n = parse_entry(entry)?;
        self.with_group(topic, group, |t, group| {
            let Some(g) = t.groups.get_mut(group) else {
                return Ok(false);
            };
            let before = g.dead.len();
            g.dead.retain(|(k, _)| *k != n);
            Ok(g.dead.len() != before)
        })
    }

    async fn backlog(&self, topic: &str, group: &str) -> Result<Backlog> {
        self.with_group(topic, group, |t, group| {
            let g = &t.groups[group];
            Ok(Backlog {
                pending: g.pending.len() as u64,
                lag: t.entries.range(g.cursor..).count() as u64,
                dead_letters: g.dead.len() as u64,
            })
        })
    }

    async fn delete_group(&self, topic: &str, group: &str) -> Result<bool> {
        Ok(self.with_topic(topic, |t| t.groups.remove(group).is_some()))
    }

    async fn lease(&self, topic: &str, group: &str, owner: &str, ttl: Duration) -> Result<bool> {
        self.with_group(topic, group, |t, group| {
            let now = Instant::now();
            let g = t.groups.get_mut(group).ok_or_else(|| Error::Invalid {
                field: "group",
                message: format!("{group:?} does not exist"),
            })?;
            match &g.lease {
                Some((holder, until)) if holder != owner && *until > now => Ok(false),
                _ => {
                    g.lease = Some((owner.to_owned(), now + ttl));
                    Ok(true)
                }
            }
        })
    }

    async fn release(&self, topic: &str, group: &str, owner: &str) -> Result<()> {
        self.with_topic(topic, |t| {
            if let Some(g) = t.groups.get_mut(group) {
                if g.lease.as_ref().is_some_and(|(holder, _)| holder == owner) {
                    g.lease = None;
                }
            }
        });
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
