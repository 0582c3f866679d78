#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api_error;
mod code;
mod context;
mod error;
mod problem;

#[cfg(feature = "axum")]
mod fallback;
#[cfg(feature = "axum")]
mod json;
#[cfg(feature = "axum")]
mod layer;
#[cfg(feature = "axum")]
mod panic;
#[cfg(feature = "axum")]
mod response;

pub use api_error::{ApiError, FieldError};
pub use code::ErrorCode;
pub use context::{RequestId, TraceId, sane_request_id};
pub use error::{Error, Result};
pub use problem::{PROBLEM_JSON, ProblemConfig, ProblemContext, ProblemDetails};

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use fallback::{method_not_allowed, not_found};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use json::Json;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use layer::{ProblemFuture, ProblemLayer, ProblemService, future};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use panic::{PanicResponse, catch_panic_layer, panic_logged_by_hook};

/// What handlers return: `Result<T, ApiError>`.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
