#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod balance;
mod error;
mod instance;

pub use balance::{Balancer, Guard, Strategy};
pub use error::{Error, Result};
pub use instance::{ServiceInstance, Status};
