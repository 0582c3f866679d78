#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod clock;
mod config;
mod consumer;
mod error;
mod memory;
mod message;
pub mod metrics;
mod partition;
mod processed;
mod publisher;
#[cfg(feature = "redis")]
mod redis;
mod replay;
pub mod saga;
mod store;
#[cfg(feature = "tracing")]
mod trace;

pub use any::AnyBroker;
pub use config::Backoff;
pub use consumer::{Consumer, ConsumerBuilder, ConsumerHandle, Outcome};
pub use error::{Error, Result};
pub use memory::MemoryBroker;
pub use message::{
    ENVELOPE_VERSION, MAX_DECOMPRESSED_BYTES, MAX_NAME_LEN, Message, check_name, headers,
};
pub use partition::{MAX_PARTITIONS, Partitions};
pub use processed::{Begin, ProcessedSet};
pub use publisher::{DEFAULT_MAX_MESSAGE_BYTES, Publisher};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisBroker;
pub use replay::replay_dead_letter;
pub use store::{Backlog, Broker, DeadLetter, Delivery, Published, StartAt};
