#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
pub mod fragments;
mod log_filter;
mod parse;
mod report;
mod schema;
mod source;
mod value;
mod var;

pub use config::Config;
pub use error::{Error, Result};
pub use log_filter::{LOG_FILTER_EXPECTED, LOG_LEVELS, parse_log_filter};
pub use parse::ItemKind;
pub use report::{Problem, ProblemKind, Report};
pub use schema::{EX_CONFIG, Mode, Schema};
pub use source::{Origin, Source};
pub use value::{FromValue, Secret, Value};
pub use var::{Bounds, Var};
