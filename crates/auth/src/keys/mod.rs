//! The issuer's keys: a parsed key set, where it comes from, and the cache that keeps it fresh.

mod cache;
pub(crate) mod fetch;
mod set;
#[cfg(feature = "shared-keys")]
pub(crate) mod shared;

pub(crate) use cache::{KeyCache, KeySettings, Lookup, Source};
pub use set::KeySet;
pub(crate) use set::VerifyingKey;
