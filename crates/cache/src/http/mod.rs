//! HTTP response caching for axum (feature `axum`): [`ResponseCacheLayer`] and
//! [`stats_handler`].

mod directives;
mod entry;
mod layer;
mod routes;
mod stats;

pub use layer::{ResponseCacheLayer, ResponseCacheService};
pub use stats::stats_handler;
