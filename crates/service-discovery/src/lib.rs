#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod balance;
mod config;
mod error;
mod instance;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod registration;
mod registry;
mod watch;

pub use balance::{Balancer, Guard, Strategy};
pub use config::RegistryConfig;
pub use error::{Error, Result};
pub use instance::{ServiceInstance, Status};
pub use memory::MemoryRegistry;
#[cfg(feature = "redis")]
pub use redis::RedisRegistry;
pub use registration::Registration;
pub use registry::Registry;
pub use watch::{Change, Snapshot, Watch};
