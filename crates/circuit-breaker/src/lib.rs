#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod breaker;
mod call;
mod config;
mod error;
mod event;
#[cfg(feature = "axum")]
mod layer;
pub mod metrics;
mod permit;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod state;
mod window;

pub use any::{AnyBreaker, AnyPermit};
pub use breaker::{BreakerSnapshot, CircuitBreaker, Outcome};
pub use call::{Breaker, CallPermit};
pub use config::{BreakerConfig, WaitStrategy, WindowType};
pub use error::{BreakerError, Error, IllegalTransition, Rejected, Result};
pub use event::BreakerEvent;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use layer::{CircuitBreakerFuture, CircuitBreakerLayer, CircuitBreakerService};
pub use permit::{OwnedPermit, Permit};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{SharedBreaker, SharedOptions, SharedPermit};
pub use registry::BreakerRegistry;
pub use state::State;

/// The clock type breakers read (`quanta::Clock::mock()` gives a controllable one for tests).
pub use quanta::Clock;
