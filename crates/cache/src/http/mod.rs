//! HTTP response caching for axum (feature `axum`): [`ResponseCacheLayer`] and
//! [`stats_handler`].

mod directives;
mod entry;
mod freshness;
mod layer;
mod routes;
mod stats;
mod status;
mod vary;

pub use layer::{ResponseCacheFuture, ResponseCacheLayer, ResponseCacheService};
pub use stats::stats_handler;
