//! Sagas: a distributed transaction as steps, each with an action and a compensation. A
//! [`SagaRunner`] runs the steps in order, persists the saga after each one (in memory or on
//! Redis), and when a step fails for good runs the compensations of the completed steps in
//! reverse. A saga left mid-way by a dead instance is taken over by another after its lease
//! expires ([`SagaRunner::recover`]).
//!
//! At most one instance runs a saga at a time: ownership is a lease taken and renewed by
//! compare-and-set on the saga's record (the broker's clock). Each step runs under a lease that
//! covers its whole timeout, so no other instance can take the saga while a step may still be
//! running: a step runs twice only if its process was frozen past its timeout. Steps get an
//! idempotency key (`<saga id>:<step>`) for that case.

mod definition;
mod record;
mod runner;
mod store;

pub use definition::{Saga, SagaBuilder, StepContext, StepError};
pub use record::{SagaRecord, SagaStatus};
pub use runner::SagaRunner;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisSagaStore;
pub use store::{AnySagaStore, MemorySagaStore, SagaStore};
