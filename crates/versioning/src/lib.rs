#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod deprecation;
mod error;
mod layer;
pub mod metrics;
mod negotiate;
mod transform;
mod version;

pub use config::VersioningBuilder;
pub use error::{Error, Result};
pub use layer::{VersioningFuture, VersioningLayer, VersioningService};
pub use negotiate::X_API_VERSION;
pub use version::ApiVersion;
