//! [`AnyBroker`]: the broker chosen at run time (memory, or Redis when configured).

use std::time::Duration;

use crate::error::Result;
use crate::memory::MemoryBroker;
use crate::message::Message;
#[cfg(feature = "redis")]
use crate::redis::RedisBroker;
use crate::store::{Backlog, Broker, DeadLetter, Delivery, Published, StartAt};

/// Memory or Redis, picked at run time, so handler and service types carry no backend generic.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyBroker {
    /// In process.
    Memory(MemoryBroker),
    /// Redis Streams.
    #[cfg(feature = "redis")]
    Redis(RedisBroker),
}

impl From<MemoryBroker> for AnyBroker {
    fn from(b: MemoryBroker) -> Self {
        AnyBroker::Memory(b)
    }
}

#[cfg(feature = "redis")]
impl From<RedisBroker> for AnyBroker {
    fn from(b: RedisBroker) -> Self {
        AnyBroker::Redis(b)
    }
}

macro_rules! each {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBroker::Memory($b) => $e,
            #[cfg(feature = "redis")]
            AnyBroker::Redis($b) => $e,
        }
    };
}

impl Broker for AnyBroker {
    async fn publish(&self, topic: &str, message: &Message) -> Result<String> {
        each!(self, b => b.publish(topic, message).await)
    }
    async fn publish_once(
        &self,
        topic: &str,
        message: &Message,
        window: Duration,
    ) -> Result<Published> {
        each!(self, b => b.publish_once(topic, message, window).await)
    }
    async fn create_group(&self, topic: &str, group: &str, start: StartAt) -> Result<()> {
        each!(self, b => b.create_group(topic, group, start).await)
    }
    async fn receive(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        each!(self, b => b.receive(topic, group, consumer, max, wait).await)
    }
    async fn due_retries(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        each!(self, b => b.due_retries(topic, group, consumer, max).await)
    }
    async fn reclaim(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
        idle: Duration,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        each!(self, b => b.reclaim(topic, group, consumer, idle, max).await)
    }
    async fn ack(&self, topic: &str, group: &str, entry: &str) -> Result<()> {
        each!(self, b => b.ack(topic, group, entry).await)
    }
    async fn ack_many(&self, topic: &str, group: &str, entries: &[String]) -> Result<()> {
        each!(self, b => b.ack_many(topic, group, entries).await)
    }
    async fn retry(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        after: Duration,
        error: &str,
    ) -> Result<()> {
        each!(self, b => b.retry(topic, group, entry, after, error).await)
    }
    async fn dead_letter(
        &self,
        topic: &str,
        group: &str,
        entry: &str,
        attempts: u32,
        error: &str,
    ) -> Result<()> {
        each!(self, b => b.dead_letter(topic, group, entry, attempts, error).await)
    }
    async fn dead_letters(&self, topic: &str, group: &str, max: usize) -> Result<Vec<DeadLetter>> {
        each!(self, b => b.dead_letters(topic, group, max).await)
    }
    async fn remove_dead_letter(&self, topic: &str, group: &str, entry: &str) -> Result<bool> {
        each!(self, b => b.remove_dead_letter(topic, group, entry).await)
    }
    async fn backlog(&self, topic: &str, group: &str) -> Result<Backlog> {
        each!(self, b => b.backlog(topic, group).await)
    }
    async fn delete_group(&self, topic: &str, group: &str) -> Result<bool> {
        each!(self, b => b.delete_group(topic, group).await)
    }
    async fn lease(&self, topic: &str, group: &str, owner: &str, ttl: Duration) -> Result<bool> {
        each!(self, b => b.lease(topic, group, owner, ttl).await)
    }
    async fn release(&self, topic: &str, group: &str, owner: &str) -> Result<()> {
        each!(self, b => b.release(topic, group, owner).await)
    }
    fn backend(&self) -> &'static str {
        each!(self, b => b.backend())
    }
}
