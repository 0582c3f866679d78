#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod catalogue;
mod error;
#[cfg(feature = "axum")]
mod handler;
mod handles;
#[cfg(feature = "axum")]
mod layer;
pub mod names;
mod read_mostly;
#[cfg(feature = "exporter")]
mod recorder;
#[cfg(feature = "axum")]
mod route_handles;
#[cfg(feature = "exporter")]
mod summary;
pub mod tenant;

pub use catalogue::{CATALOGUE, MetricInfo, MetricKind, lookup};
pub use error::{Error, Result};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use handler::{TEXT_FORMAT, metrics_handler};
pub use handles::{CachedCounters, CachedHistograms, CounterSet};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[allow(deprecated)]
pub use layer::{
    HttpMetrics, HttpMetricsFuture, HttpMetricsLayer, HttpMetricsService, StatusLabel, TenantFrom,
    future,
};
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub use recorder::{Metrics, MetricsBuilder, SERVICE_INSTANCE_LABEL};
#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub use summary::{LatencySummary, Summary, TenantSummary};
pub use tenant::{RequestTenant, TenantCounters, TenantLabels};
