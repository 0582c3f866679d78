#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod cache;
#[cfg(feature = "tiered")]
mod coherency;
mod config;
mod envelope;
mod error;
#[cfg(feature = "memory")]
mod glob;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod http;
mod load;
#[cfg(feature = "memory")]
mod memory;
pub mod metrics;
#[cfg(feature = "redis")]
mod redis;
mod single_flight;
mod stats;
mod store;
#[cfg(feature = "memory")]
mod tag_index;
mod tags;
mod throttle;
#[cfg(feature = "tiered")]
mod tiered;
mod warm;

pub use any::AnyStore;
pub use cache::Cache;
pub use config::CacheBuilder;
pub use envelope::{Codec, Compression, FORMAT_VERSION};
pub use error::{Error, Result};
pub use load::{LoadError, LoadPolicy};
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use memory::{MemoryStore, MemoryStoreBuilder};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisStore, RedisStoreBuilder};
pub use stats::CacheStats;
pub use store::{KeyTtl, Store};
#[cfg(feature = "tiered")]
#[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
pub use tiered::{DEFAULT_CHANNEL, TieredStore, TieredStoreBuilder};
pub use warm::WarmSummary;
