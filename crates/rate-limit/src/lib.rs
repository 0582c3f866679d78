#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod algorithm;
mod any;
mod clock;
mod decision;
mod error;
#[cfg(feature = "axum")]
mod forwarded;
mod input;
#[cfg(feature = "axum")]
mod key;
#[cfg(feature = "axum")]
mod layer;
mod memory;
pub mod metrics;
mod quota;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod resilient;
mod store;
#[cfg(feature = "axum")]
mod text;

pub use any::AnyLimiter;
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::Decision;
pub use error::{Error, Result};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use forwarded::ForwardedHeader;
pub use input::{DIGEST_PREFIX, MAX_KEY_LEN, stored_key};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use key::KeyExtractor;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use layer::{OnUnavailable, RateLimitFuture, RateLimitLayer, RateLimitService};
pub use memory::{MemoryLimiter, MemoryLimiterBuilder};
pub use quota::{Algorithm, MAX_LIMIT, MAX_WINDOW, Policy, Quota};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisLimiter;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use resilient::{OnRedisFailure, ResilientLimiter};
pub use store::{Check, RateLimiter};
