//! [`VersioningBuilder`]: supported versions, the default, deprecations and transforms.

use std::sync::Arc;
use std::time::SystemTime;

use crate::deprecation::Deprecation;
use crate::error::{Error, Result};
use crate::layer::VersioningLayer;
use crate::transform::{JsonTransform, Route, Transforms};
use crate::version::ApiVersion;

/// The validated configuration a layer shares.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) supported: Vec<ApiVersion>,
    pub(crate) default: ApiVersion,
    pub(crate) latest: ApiVersion,
    pub(crate) prefix: String,
    /// `application/vnd.<vendor>.v`, lowercase.
    pub(crate) media_prefix: String,
    pub(crate) deprecations: Vec<(ApiVersion, Deprecation)>,
    pub(crate) transforms: Transforms,
    pub(crate) max_body_bytes: usize,
}

impl Config {
    pub(crate) fn new(supported: Vec<ApiVersion>, default: ApiVersion) -> Self {
        let latest = supported.iter().copied().max().unwrap_or(default);
        Config {
            supported,
            default,
            latest,
            prefix: "/api".into(),
            media_prefix: "application/vnd.nilecare.v".into(),
            deprecations: Vec::new(),
            transforms: Transforms::default(),
            max_body_bytes: 1 << 20,
        }
    }

    pub(crate) fn supports(&self, version: ApiVersion) -> bool {
        self.supported.contains(&version)
    }

    pub(crate) fn deprecation(&self, version: ApiVersion) -> Option<&Deprecation> {
        self.deprecations
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, d)| d)
    }
}

/// Builds a [`VersioningLayer`].
///
/// ```
/// use nilecare_versioning::VersioningLayer;
///
/// let layer = VersioningLayer::builder()
///     .supported([1, 2])
///     .default_version(1)
///     .prefix("/api")
///     .vendor("nilecare") // Accept: application/vnd.nilecare.v2+json
///     .response_transform(2, "/patients/{id}", |mut v2| {
///         // v1 had flat name fields.
///         let name = v2["name"].take();
///         v2["given_name"] = name["given"].clone();
///         v2["family_name"] = name["family"].clone();
///         v2.as_object_mut().map(|o| o.remove("name"));
///         v2
///     })
///     .build()?;
/// # let _ = layer; Ok::<(), nilecare_versioning::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct VersioningBuilder {
    supported: Vec<u16>,
    default: Option<u16>,
    prefix: Option<String>,
    vendor: Option<String>,
    deprecations: Vec<(u16, Deprecation)>,
    response: Vec<(u16, String, JsonTransform)>,
    request: Vec<(u16, String, JsonTransform)>,
    max_body_bytes: Option<usize>,
}

impl VersioningBuilder {
    /// The supported versions (1 to 8 of them, each 1..=9999).
    pub fn supported(mut self, versions: impl IntoIterator<Item = u16>) -> Self {
        self.supported = versions.into_iter().collect();
        self
    }

    /// The version of unversioned requests without a header (default: the oldest supported).
    pub fn default_version(mut self, version: u16) -> Self {
        self.default = Some(version);
        self
    }

    /// The path prefix the versions live under (default `/api`: `/api/v2/...`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The vendor of the `Accept` media type (default `nilecare`:
    /// `application/vnd.nilecare.v2+json`).
    pub fn vendor(mut self, vendor: impl Into<String>) -> Self {
        self.vendor = Some(vendor.into());
        self
    }

    /// Marks `version` deprecated since `since`: its responses carry `Deprecation` (RFC 9745),
    /// `Sunset` (RFC 8594) when a sunset date is given, and `Link` to the migration document.
    pub fn deprecated(
        mut self,
        version: u16,
        since: SystemTime,
        sunset: Option<SystemTime>,
        migration_doc: Option<&str>,
    ) -> Self {
        self.deprecations.push((
            version,
            Deprecation {
                since,
                sunset,
                link: migration_doc.map(str::to_owned),
            },
        ));
        self
    }

    /// Maps a JSON response body of `route` (relative to the version prefix, e.g.
    /// `/patients/{id}`) from version `from` to `from - 1`. A client of an older version gets the
    /// chain of transforms from the newest version down to its own; handlers answer in the
    /// newest shape only.
    pub fn response_transform(
        mut self,
        from: u16,
        route: &str,
        transform: impl Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.response
            .push((from, route.to_owned(), Arc::new(transform)));
        self
    }

    /// Maps a JSON request body of `route` from version `from` to `from + 1`: a request of an
    /// older version reaches the handler in the newest shape.
    pub fn request_transform(
        mut self,
        from: u16,
        route: &str,
        transform: impl Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.request
            .push((from, route.to_owned(), Arc::new(transform)));
        self
    }

    /// The largest body transformed (default 1 MiB); larger, unsized (streaming) or non-JSON
    /// bodies pass through untouched.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field: no or too many versions, a version 0, a default
    /// or deprecation or transform for an unsupported version, a transform without the adjacent
    /// version, a prefix that is not a path, a vendor with characters a media type cannot hold.
    pub fn build(self) -> Result<VersioningLayer> {
        let mut versions = self.supported.clone();
        versions.sort_unstable();
        versions.dedup();
        if versions.is_empty() || versions.len() > 8 {
            return Err(Error::config(
                "supported",
                format!("1 to 8 versions, got {}", versions.len()),
            ));
        }
        if let Some(bad) = versions.iter().find(|v| **v == 0 || **v > 9999) {
            return Err(Error::config("supported", format!("{bad} is not 1..=9999")));
        }
        let supported: Vec<ApiVersion> = versions.iter().copied().map(ApiVersion).collect();
        let check = |field: &'static str, v: u16| {
            if versions.contains(&v) {
                Ok(ApiVersion(v))
            } else {
                Err(Error::config(
                    field,
                    format!("v{v} is not a supported version ({versions:?})"),
                ))
            }
        };
        let default = check("default_version", self.default.unwrap_or(versions[0]))?;
        let mut config = Config::new(supported, default);
        if let Some(prefix) = self.prefix {
            if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains(['?', '#']) {
                return Err(Error::config(
                    "prefix",
                    format!("{prefix:?} must start with / and not end with one"),
                ));
            }
            config.prefix = prefix;
        }
        if let Some(vendor) = self.vendor {
            if vendor.is_empty()
                || !vendor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            {
                return Err(Error::config(
                    "vendor",
                    format!("{vendor:?} must be letters, digits, '-' or '.'"),
                ));
            }
            config.media_prefix = format!("application/vnd.{}.v", vendor.to_ascii_lowercase());
        }
        for (version, deprecation) in self.deprecations {
            let version = check("deprecated", version)?;
            config.deprecations.push((version, deprecation));
        }
        for (from, route, transform) in self.response {
            let from = check("response_transform", from)?;
            check("response_transform", from.0.saturating_sub(1))?;
            config.transforms.add_response(
                from,
                Route::parse("response_transform", &route)?,
                transform,
            );
        }
        for (from, route, transform) in self.request {
            let from = check("request_transform", from)?;
            check("request_transform", from.0.saturating_add(1))?;
            config.transforms.add_request(
                from,
                Route::parse("request_transform", &route)?,
                transform,
            );
        }
        if let Some(bytes) = self.max_body_bytes {
            config.max_body_bytes = bytes;
        }
        Ok(VersioningLayer::from_config(config))
    }
}

impl std::fmt::Debug for VersioningBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersioningBuilder")
            .field("supported", &self.supported)
            .field("default", &self.default)
            .field("prefix", &self.prefix)
            .field("response_transforms", &self.response.len())
            .field("request_transforms", &self.request.len())
            .finish_non_exhaustive()
    }
}
