//! [`RedisBroker`]: topics as Redis Streams, groups as consumer groups.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>{<topic>}` | stream | the messages (`XADD ... MAXLEN ~ max_len`, or `MINID ~` with `max_age`) |
//! | `<prefix>{<topic>}:delay:<group>` | sorted set | entry ids waiting for a retry, by due time (ms, the server's clock) |
//! | `<prefix>{<topic>}:dlq:<group>` | stream | dead letters: the message's fields plus `original`, `error`, `attempts` |
//! | `<prefix>{<topic>}:lease:<group>` | string | the consumer holding the group's ordered-consumption lease (expires with it) |
//! | `<prefix>{<topic>}:once:<message id>` | string | the entry id of a message published with [`publish_once`](Broker::publish_once), expiring with its window |
//!
//! Every key of a topic carries the topic as hash tag, so each script runs on one node of a
//! cluster. Blocking reads (`XREADGROUP ... BLOCK`) use connections of their own, never the
//! pool's: on a shared connection a blocked read would delay every other command.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::{Client, Pool};
use fred::interfaces::{ClientLike, StreamsInterface};
use fred::types::Value;
use fred::types::config::Options;
use nilecare_redis::{KeyPrefix, Script};

use crate::clock::millis as ms;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::store::{Backlog, Broker, DeadLetter, Delivery, Published, StartAt};

const RETRY: &str = include_str!("retry.lua");
const DUE: &str = include_str!("due.lua");
const RECLAIM: &str = include_str!("reclaim.lua");
const DEAD_LETTER: &str = include_str!("dead_letter.lua");
const PUBLISH_ONCE: &str = include_str!("publish_once.lua");
const LEASE: &str = include_str!("lease.lua");
const RELEASE: &str = include_str!("release.lua");

#[derive(Debug)]
struct Scripts {
    retry: Script,
    due: Script,
    reclaim: Script,
    dead_letter: Script,
    publish_once: Script,
    lease: Script,
    release: Script,
}

struct Inner {
    pool: Pool,
    /// `<root>msg:`: topics are hash-tagged segments under it.
    prefix: KeyPrefix,
    max_dead_letters: u64,
    /// Idle connections for blocking reads (one per concurrent reader).
    readers: Mutex<Vec<Client>>,
    scripts: Scripts,
}

/// How much of a topic is kept.
#[derive(Debug, Clone, Copy)]
enum Retention {
    /// About the last n messages.
    Count(u64),
    /// About the messages of this last period.
    Age(Duration),
}

/// The Redis Streams broker (cheap to clone).
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
    /// Retention of each topic, per handle.
    retention: Retention,
    /// Payloads larger than this are stored gzip-compressed, per handle.
    compress_above: Option<usize>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("prefix", &self.inner.prefix.as_str())
            .field("retention", &self.retention)
            .field("compress_above", &self.compress_above)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

impl From<nilecare_redis::Error> for Error {
    fn from(e: nilecare_redis::Error) -> Self {
        unavailable(e)
    }
}

impl RedisBroker {
    /// A broker on `pool`, keys under `nilecare:msg:`, keeping about the last 100 000 messages
    /// of each topic and 10 000 dead letters of each group.
    pub fn new(pool: Pool) -> Self {
        Self::with_prefix(pool, &KeyPrefix::default())
    }

    /// The same with keys under `<root>msg:` (the root prefix the service gives every crate).
    pub fn with_prefix(pool: Pool, root: &KeyPrefix) -> Self {
        RedisBroker {
            inner: Arc::new(Inner {
                pool,
                prefix: root.segment("msg"),
                max_dead_letters: 10_000,
                readers: Mutex::new(Vec::new()),
                scripts: Scripts {
                    retry: Script::new(RETRY),
                    due: Script::new(DUE),
                    reclaim: Script::new(RECLAIM),
                    dead_letter: Script::new(DEAD_LETTER),
                    publish_once: Script::new(PUBLISH_ONCE),
                    lease: Script::new(LEASE),
                    release: Script::new(RELEASE),
                },
            }),
            retention: Retention::Count(100_000),
            compress_above: None,
        }
    }

    /// Keeps about the last `max_len` messages of each topic (`MAXLEN ~`; at least 1). Choose
    /// it above the largest backlog a group may build: a message trimmed before a group read
    /// it is lost to that group.
    #[must_use]
    pub fn max_len(mut self, max_len: u64) -> Self {
        self.retention = Retention::Count(max_len.max(1));
        self
    }

    /// Keeps the messages of about the last `age` instead (`MINID ~ <now - age>`: entry ids
    /// are the server's milliseconds), whatever their number: retention by time, for replaying
    /// "the last 7 days" to a new subscriber. Replaces [`max_len`](Self::max_len). The same
    /// caution: a group further behind than `age` loses what was trimmed.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.retention = Retention::Age(age);
        self
    }

    /// The `XADD` trimming arguments: strategy and threshold.
    fn trim(&self) -> (&'static str, String) {
        match self.retention {
            Retention::Count(n) => ("MAXLEN", n.to_string()),
            Retention::Age(age) => (
                "MINID",
                format!("{}-0", crate::clock::now_ms().saturating_sub(ms(age))),
            ),
        }
    }

    /// Stores payloads larger than `bytes` gzip-compressed (field `z` = `gzip`); consumers of
    /// any handle decompress them (at most 64 MiB; a larger one is a dead letter). Off by
    /// default: worth it for large, repetitive payloads (JSON documents), not for small events.
    #[must_use]
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.compress_above = Some(bytes);
        self
    }

    fn stream(&self, topic: &str) -> String {
        format!("{}{{{topic}}}", self.inner.prefix.as_str())
    }

    fn delay(&self, topic: &str, group: &str) -> String {
        self.inner
            .prefix
            .tagged_key(topic, &format!("delay:{group}"))
    }

    fn lease_key(&self, topic: &str, group: &str) -> String {
        self.inner
            .prefix
            .tagged_key(topic, &format!("lease:{group}"))
    }

    fn dlq(&self, topic: &str, group: &str) -> String {
        self.inner.prefix.tagged_key(topic, &format!("dlq:{group}"))
    }

    /// A connection for one blocking read: an idle one, or a new one like the pool's.
    async fn reader(&self) -> Result<Client> {
        let idle = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(client) = idle {
            return Ok(client);
        }
        let client = self.inner.pool.next().clone_new();
        client.init().await.map_err(unavailable)?;
        Ok(client)
    }

    fn give_back(&self, client: Client) {
        let mut idle = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < 64 {
            idle.push(client);
        }
    }
}

/// `[field, value, ...]` → the fields.
fn fields_of(flat: Value) -> Option<Vec<(String, Bytes)>> {
    let flat = flat.into_array();
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
        fields.push((k.as_str()?.into_owned(), v.into_bytes().unwrap_or_default()));
    }
    Some(fields)
}

/// `[id, [field, value, ...]]` → the entry.
fn entry_of(value: Value) -> Option<(String, Vec<(String, Bytes)>)> {
    let mut parts = value.into_array().into_iter();
    let id = parts.next()?.as_str()?.into_owned();
    Some((id, fields_of(parts.next()?)?))
}

fn delivery(id: String, attempt: u32, fields: &[(String, Bytes)]) -> Delivery {
    Delivery {
        message: Message::from_fields(&id, fields).map_err(|e| e.to_string()),
        entry: id,
        attempt,
    }
}

/// A script's `{{id, deliveries, fields}, ...}`.
fn deliveries_of(value: Value) -> Vec<Delivery> {
    value
        .into_array()
        .into_iter()
        .filter_map(|item| {
            let mut parts = item.into_array().into_iter();
            let id = parts.next()?.as_str()?.into_owned();
            let count = parts.next()?.as_u64().unwrap_or(1);
            let (_, fields) = entry_of(Value::Array(vec![Value::from(id.clone()), parts.next()?]))?;
            Some(delivery(
                id,
                u32::try_from(count).unwrap_or(u32::MAX),
                &fields,
            ))
        })
        .collect()
}

impl Broker for RedisBroker {
    async fn publish(&self, topic: &str, message: &Message) -> Result<String> {
        let fields = message.to_fields(self.compress_above);
        let stream = self.stream(topic);
        let (strategy, threshold) = self.trim();
        let added = self
            .inner
            .pool
            .xadd::<String, _, _, _, _>(
                stream.as_str(),
                false,
                (strategy, "~", threshold.as_str()),
                "*",
                fields,
            )
            .await;
        // Not written when its slot was moving (`ASK`, `MOVED`, `TRYAGAIN` are answered before
        // the command runs): sent again to the slot's new node.
        nilecare_redis::follow_migration(&self.inner.pool, added, stream.as_bytes(), "XADD", || {
            let mut args = vec![
                Value::from(stream.as_str()),
                Value::from(strategy),
                Value::from("~"),
                Value::from(threshold),
                Value::from("*"),
            ];
            for (name, value) in message.to_fields(self.compress_above) {
                args.push(Value::from(name));
                args.push(Value::Bytes(value));
            }
            args
        })
        .await
        .map_err(unavailable)
    }

    async fn publish_once(
        &self,
        topic: &str,
        message: &Message,
        window: Duration,
    ) -> Result<Published> {
        let fields = message.to_fields(self.compress_above);
        let mut args = Vec::with_capacity(2 + 2 * fields.len());
        let (strategy, threshold) = self.trim();
        args.push(Value::from(ms(window).max(1).to_string()));
        args.push(Value::from(strategy));
        args.push(Value::from(threshold));
        for (name, value) in fields {
            args.push(Value::from(name));
            args.push(Value::Bytes(value));
        }
        let reply: Value = self
            .inner
            .scripts
            .publish_once
            .run(
                &self.inner.pool,
                vec![
                    self.stream(topic),
                    self.inner
                        .prefix
                        .tagged_key(topic, &format!("once:{}", message.id())),
                ],
                args,
            )
            .await?;
        let mut parts = reply.into_array().into_iter();
        let duplicate = parts.next().and_then(|v| v.as_u64()) == Some(1);
        let entry = parts
            .next()
            .and_then(|v| v.as_string())
            .ok_or_else(|| unavailable("publish_once: unexpected reply"))?;
        Ok(Published { entry, duplicate })
    }

    async fn create_group(&self, topic: &str, group: &str, start: StartAt) -> Result<()> {
        // Entry ids are the server's milliseconds: `<ms>-0` starts at that time.
        let start = match start {
            StartAt::Beginning => "0".to_owned(),
            StartAt::Now => "$".to_owned(),
            StartAt::Time(ms) => format!("{}-0", ms.saturating_sub(1)),
            StartAt::After { ms, seq } => format!("{ms}-{seq}"),
        };
        match self
            .inner
            .pool
            .xgroup_create::<Value, _, _, _>(self.stream(topic), group, start.as_str(), true)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.details().starts_with("BUSYGROUP") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn receive(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let client = self.reader().await?;
        let block = ms(wait).max(1);
        let options = Options {
            timeout: Some(wait + Duration::from_secs(2)),
            ..Options::default()
        };
        let reply = client
            .with_options(&options)
            .xreadgroup::<Value, _, _, _, _>(
                group,
                consumer,
                Some(max as u64),
                Some(block),
                false,
                self.stream(topic),
                ">",
            )
            .await;
        match reply {
            Ok(value) => {
                self.give_back(client);
                let mut out = Vec::new();
                let streams = match value {
                    Value::Map(map) => map.inner().into_values().collect(),
                    Value::Null => Vec::new(),
                    other => other
                        .into_array()
                        .into_iter()
                        .filter_map(|s| s.into_array().into_iter().nth(1))
                        .collect(),
                };
                for entries in streams {
                    for entry in entries.into_array() {
                        if let Some((id, fields)) = entry_of(entry) {
                            out.push(delivery(id, 1, &fields));
                        }
                    }
                }
                Ok(out)
            }
            // A failed connection is dropped, not reused.
            Err(e) => {
                let _ = client.quit().await;
                Err(unavailable(e))
            }
        }
    }

    async fn due_retries(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let reply: Value = self
            .inner
            .scripts
            .due
            .run(
                &self.inner.pool,
                vec![self.stream(topic), self.delay(topic, group)],
                vec![group.to_owned(), consumer.to_owned(), max.to_string()],
            )
            .await?;
        Ok(deliveries_of(reply))
    }

    async fn reclaim(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let reply: Value = self
            .inner
            .scripts
            .reclaim
            .run(
                &self.inner.pool,
                vec![self.stream(topic)],
                vec![
                    group.to_owned(),
                    consumer.to_owned(),
                    ms(idle).max(1).to_string(),
                    max.to_string(),
                ],
            )
            .await?;
        Ok(deliveries_of(reply))
    }

    async fn ack(&self, topic: &str, group: &str, entry: &str) -> Result<()> {
        self.ack_many(topic, group, &[entry.to_owned()]).await
    }

    async fn ack_many(&self, topic: &str, group: &str, entries: &[String]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let stream = self.stream(topic);
        let acked = self
            .inner
            .pool
            .xack::<Value, _, _, _>(stream.as_str(), group, entries.to_vec())
            .await;
        nilecare_redis::follow_migration(&self.inner.pool, acked, stream.as_bytes(), "XACK", || {
            let mut args = vec![Value::from(stream.as_str()), Value::from(group)];
            args.extend(entries.iter().map(|e| Value::from(e.as_str())));
            args
        })
        .await
        .map(|_: Value| ())
        .map_err(unavailable)
    }

    async fn retry(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        after: Duration,
        _error: &str,
    ) -> Result<()> {
        let _: Value = self
            .inner
            .scripts
            .retry
            .run(
                &self.inner.pool,
                vec![self.stream(topic), self.delay(topic, group)],
                vec![group.to_owned(), entry.to_owned(), ms(after).to_string()],
            )
            .await?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        attempts: u32,
        error: &str,
    ) -> Result<()> {
        let _: Value = self
            .inner
            .scripts
            .dead_letter
            .run(
                &self.inner.pool,
                vec![
                    self.stream(topic),
                    self.delay(topic, group),
                    self.dlq(topic, group),
                ],
                vec![
                    group.to_owned(),
                    entry.to_owned(),
                    error.to_owned(),
                    attempts.to_string(),
                    self.inner.max_dead_letters.to_string(),
                ],
            )
            .await?;
        Ok(())
    }

    async fn dead_letters(&self, topic: &str, group: &str, max: usize) -> Result<Vec<DeadLetter>> {
        let reply: Value = self
            .inner
            .pool
            .xrange(self.dlq(topic, group), "-", "+", Some(max as u64))
            .await
            .map_err(unavailable)?;
        Ok(reply
            .into_array()
            .into_iter()
            .filter_map(entry_of)
            .map(|(id, fields)| {
                let text = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                };
                DeadLetter {
                    original: text("original"),
                    error: text("error"),
                    attempts: text("attempts").parse().unwrap_or(0),
                    message: Message::from_fields(&id, &fields).ok(),
                    entry: id,
                }
            })
            .collect())
    }

    async fn remove_dead_letter(&self, topic: &str, group: &str, entry: &str) -> Result<bool> {
        let removed: u64 = self
            .inner
            .pool
            .xdel(self.dlq(topic, group), entry)
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn backlog(&self, topic: &str, group: &str) -> Result<Backlog> {
        let pool = &self.inner.pool;
        let summary: Value = pool
            .xpending(self.stream(topic), group, ())
            .await
            .map_err(unavailable)?;
        let pending = summary
            .into_array()
            .into_iter()
            .next()
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let groups: Value = pool
            .xinfo_groups(self.stream(topic))
            .await
            .map_err(unavailable)?;
        let lag = groups
            .into_array()
            .into_iter()
            .find_map(|g| {
                let flat = match g {
                    Value::Map(map) => map
                        .inner()
                        .into_iter()
                        .flat_map(|(k, v)| {
                            [Value::from(k.as_str().unwrap_or_default().to_owned()), v]
                        })
                        .collect(),
                    other => other.into_array(),
                };
                let mut name = None;
                let mut lag = None;
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    match k.as_str().as_deref() {
                        Some("name") => name = v.as_str().map(|s| s.into_owned()),
                        Some("lag") => lag = v.as_u64(),
                        _ => {}
                    }
                }
                (name.as_deref() == Some(group)).then_some(lag.unwrap_or(0))
            })
            .unwrap_or(0);
        let dead_letters: u64 = pool
            .xlen(self.dlq(topic, group))
            .await
            .map_err(unavailable)?;
        Ok(Backlog {
            pending,
            lag,
            dead_letters,
        })
    }

    async fn delete_group(&self, topic: &str, group: &str) -> Result<bool> {
        use fred::interfaces::KeysInterface;
        let pool = &self.inner.pool;
        let destroyed: Value = pool
            .xgroup_destroy(self.stream(topic), group)
            .await
            .map_err(unavailable)?;
        let _: Value = pool
            .del(vec![
                self.delay(topic, group),
                self.dlq(topic, group),
                self.lease_key(topic, group),
            ])
            .await
            .map_err(unavailable)?;
        Ok(destroyed.as_u64() == Some(1))
    }

    async fn lease(&self, topic: &str, group: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let held: u64 = self
            .inner
            .scripts
            .lease
            .run(
                &self.inner.pool,
                vec![self.lease_key(topic, group)],
                vec![owner.to_owned(), ms(ttl).max(1).to_string()],
            )
            .await?;
        Ok(held == 1)
    }

    async fn release(&self, topic: &str, group: &str, owner: &str) -> Result<()> {
        let _: u64 = self
            .inner
            .scripts
            .release
            .run(
                &self.inner.pool,
                vec![self.lease_key(topic, group)],
                vec![owner.to_owned()],
            )
            .await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

// Connections idle in the reader list are closed with the broker.
impl Drop for Inner {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for client in self
            .readers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}
