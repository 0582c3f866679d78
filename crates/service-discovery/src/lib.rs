#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod balance;
#[cfg(feature = "client")]
mod client;
mod config;
#[cfg(feature = "tower")]
mod discover;
mod error;
mod health;
mod instance;
mod memory;
pub mod metrics;
mod outlier;
#[cfg(feature = "redis")]
mod redis;
mod registration;
mod registry;
mod resolve;
mod tls;
mod watch;

pub use any::AnyRegistry;
pub use balance::{Balancer, Guard, Strategy};
#[cfg(feature = "client")]
pub use client::{CallGate, CallPermit, RetryPolicy, ServiceClient, ServiceClientBuilder};
pub use config::RegistryConfig;
pub use error::{Error, Result};
pub use health::HealthCheck;
pub use instance::{ServiceInstance, Status};
pub use memory::MemoryRegistry;
pub use outlier::OutlierDetection;
#[cfg(feature = "redis")]
pub use redis::RedisRegistry;
pub use registration::Registration;
pub use registry::Registry;
pub use resolve::{Health, ResolvedService, Resolver, ResolverBuilder};
pub use watch::{Change, Snapshot, Watch};
