#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "rate-limit")]
mod cost;
mod error;
#[cfg(feature = "axum")]
pub mod http;
pub mod metrics;
mod observe;
mod operation;
#[cfg(feature = "persisted-queries")]
mod persisted;
mod problem;

#[cfg(feature = "rate-limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "rate-limit")))]
pub use cost::{CostKey, CostLimit};
pub use error::{Error, Result};
pub use observe::Observability;
pub use operation::{
    OTHER_OPERATION, Operation, OperationKind, OperationLabels, SelectedOperation,
};
#[cfg(feature = "persisted-queries")]
#[cfg_attr(docsrs, doc(cfg(feature = "persisted-queries")))]
pub use persisted::{PersistedQueries, query_hash};
pub use problem::{error_code, problem_error};
