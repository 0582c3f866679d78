#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
mod config;
#[cfg(feature = "client")]
mod connect;
mod error;
#[cfg(feature = "client")]
mod health;
mod keys;
#[cfg(feature = "client")]
mod migration;
#[cfg(feature = "pubsub")]
mod pubsub;
#[cfg(feature = "client")]
mod reconnect;
#[cfg(feature = "client")]
mod scan;
#[cfg(feature = "client")]
mod script;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use config::{RedisConfig, Topology};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use connect::connect;
pub use error::{Error, Result};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use health::ping;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use keys::key_slot;
pub use keys::{KeyPrefix, StackKey, escape_glob, escape_key_part};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use migration::{follow_migration, is_migration_error};
#[cfg(feature = "pubsub")]
#[cfg_attr(docsrs, doc(cfg(feature = "pubsub")))]
pub use pubsub::{ChannelEvent, ChannelListener, listen, publish};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use reconnect::ReconnectPolicy;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use scan::{delete_matching, delete_matching_where, scan_keys, unlink_keys};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use script::Script;

/// The fred version every NileCare crate is built on, re-exported so that users name the same
/// types (`fred::clients::Pool`, `fred::prelude::*`) without a version mismatch.
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use fred;
