#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod roots;

pub use roots::{CaError, ca_roots, client_config, system_client_config, system_roots};
