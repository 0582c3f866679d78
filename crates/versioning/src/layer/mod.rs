//! [`VersioningLayer`] → [`VersioningService`] → [`VersioningFuture`].

mod future;
mod service;

use std::sync::Arc;

use http::HeaderValue;

pub use future::VersioningFuture;
pub use service::VersioningService;

use crate::config::{Config, VersioningBuilder};
use crate::deprecation::ResponseHeaders;
use crate::metrics::Counters;
use crate::version::ApiVersion;

/// What every service of one layer shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Per supported version: `X-API-Version` and the deprecation headers, rendered once.
    pub(crate) headers: Vec<(ApiVersion, ResponseHeaders)>,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn headers_for(&self, version: ApiVersion) -> ResponseHeaders {
        self.headers
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }
}

/// Negotiates the API version of every request under the prefix, before routing (add it around
/// the router: `ServiceBuilder::new().layer(versioning).service(router)`, or
/// `Router::layer` when the router has routes for every `/api/vN` prefix):
///
/// 1. `/api/vN/...` in the URL wins (an unsupported `N` is 400 problem+json naming `path`);
/// 2. otherwise (`/api/...`) `X-API-Version: v2` or `2`, then
///    `Accept: application/vnd.<vendor>.v2+json`, then the default version (an unsupported or
///    unreadable value is 400 naming the header); the path is rewritten to `/api/vN/...`, so
///    routing, the response cache's keys and the metrics' route labels all carry the version.
///
/// The version goes into the request's extensions ([`ApiVersion`] is an extractor), is echoed in
/// `X-API-Version` (`v2`), and a deprecated version's responses carry `Deprecation`, `Sunset`
/// and `Link`. Registered transforms map older clients' request bodies up to the newest version
/// and the newest version's response bodies down to theirs.
#[derive(Debug, Clone)]
pub struct VersioningLayer {
    shared: Arc<Shared>,
}

impl VersioningLayer {
    /// The builder.
    pub fn builder() -> VersioningBuilder {
        VersioningBuilder::default()
    }

    pub(crate) fn from_config(config: Config) -> Self {
        let headers = config
            .supported
            .iter()
            .map(|version| {
                let mut headers = Vec::new();
                if let Ok(value) = HeaderValue::from_str(&version.label()) {
                    headers.push((crate::negotiate::X_API_VERSION, value));
                }
                if let Some(deprecation) = config.deprecation(*version) {
                    headers.extend(deprecation.headers());
                }
                (*version, Arc::from(headers))
            })
            .collect();
        let counters = Counters::new(&config.supported);
        VersioningLayer {
            shared: Arc::new(Shared {
                config,
                headers,
                counters,
            }),
        }
    }
}

impl<S> tower::Layer<S> for VersioningLayer {
    type Service = VersioningService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VersioningService::new(inner, self.shared.clone())
    }
}
