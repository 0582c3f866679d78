#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod claims;
mod config;
mod error;
mod keys;
mod memory;
pub mod metrics;
#[cfg(feature = "redis")]
mod redis;
mod revocations;
mod store;
mod token;
mod verifier;

#[cfg(feature = "axum")]
mod layer;

pub use any::AnyRevocationStore;
pub use claims::{Claims, NoCustomClaims};
pub use config::{DEFAULT_MAX_TOKEN_BYTES, VerifierBuilder};
pub use error::{Error, Result, TokenError};
/// The `jsonwebtoken` version this crate verifies with, re-exported for minting tokens in
/// tests and development issuers with the same types.
pub use jsonwebtoken;
pub use jsonwebtoken::Algorithm;
pub use keys::KeySet;
pub use memory::MemoryRevocationStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisRevocationStore;
pub use revocations::{RevocationSettings, Revocations};
pub use store::{Revocation, RevocationStore};
pub use verifier::Verifier;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use layer::{AuthFuture, AuthLayer, AuthService, RequireFuture, RequireLayer, RequireService};
