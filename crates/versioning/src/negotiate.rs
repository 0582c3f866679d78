//! The platform's precedence: a version in the URL wins; for unversioned paths the
//! `X-API-Version` header, then `Accept: application/vnd.<vendor>.vN+json`, then the default.

use http::{HeaderMap, HeaderName, Uri};

use crate::config::Config;
use crate::version::ApiVersion;

/// The version header, read and echoed.
pub const X_API_VERSION: HeaderName = HeaderName::from_static("x-api-version");

/// Where the version came from (a bounded metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Url,
    Header,
    Accept,
    Default,
}

impl Source {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::Url => "url",
            Source::Header => "header",
            Source::Accept => "accept",
            Source::Default => "default",
        }
    }
}

/// The outcome for one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Negotiated {
    /// Not under the API prefix: untouched.
    NotApi,
    /// A supported version; `rewrite` is the versioned path and query for an unversioned path.
    Version {
        version: ApiVersion,
        source: Source,
        rewrite: Option<String>,
    },
    /// An unsupported or unreadable version, with the field that named it.
    Unsupported { field: &'static str, value: String },
}

/// `vN` as a path segment.
fn url_version(segment: &str) -> Option<&str> {
    let digits = segment.strip_prefix('v')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(segment)
}

fn shown(value: &str) -> String {
    value.chars().take(40).collect()
}

pub(crate) fn negotiate(uri: &Uri, headers: &HeaderMap, config: &Config) -> Negotiated {
    let path = uri.path();
    let prefix = config.prefix.as_str();
    let rest = match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return Negotiated::NotApi,
    };
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    if let Some(segment) = url_version(first) {
        return match ApiVersion::parse(segment).filter(|v| config.supports(*v)) {
            Some(version) => Negotiated::Version {
                version,
                source: Source::Url,
                rewrite: None,
            },
            None => Negotiated::Unsupported {
                field: "path",
                value: shown(segment),
            },
        };
    }
    let (version, source) = if let Some(value) = headers.get(&X_API_VERSION) {
        let text = value.to_str().unwrap_or("");
        match ApiVersion::parse(text).filter(|v| config.supports(*v)) {
            Some(version) => (version, Source::Header),
            None => {
                return Negotiated::Unsupported {
                    field: "X-API-Version",
                    value: shown(text),
                };
            }
        }
    } else if let Some(asked) = accept_version(headers, &config.media_prefix) {
        match asked.filter(|v| config.supports(*v)) {
            Some(version) => (version, Source::Accept),
            None => {
                return Negotiated::Unsupported {
                    field: "Accept",
                    value: shown(
                        headers
                            .get(http::header::ACCEPT)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or(""),
                    ),
                };
            }
        }
    } else {
        (config.default, Source::Default)
    };
    let mut rewritten = format!("{prefix}/v{}{rest}", version.0);
    if let Some(query) = uri.query() {
        rewritten.push('?');
        rewritten.push_str(query);
    }
    Negotiated::Version {
        version,
        source,
        rewrite: Some(rewritten),
    }
}

/// The version of the first `application/vnd.<vendor>.vN+json` in `Accept` (`Some(None)`: the
/// vendor type with an unreadable version).
fn accept_version(headers: &HeaderMap, media_prefix: &str) -> Option<Option<ApiVersion>> {
    for value in headers.get_all(http::header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for media in text.split(',') {
            let media = media.split(';').next().unwrap_or("").trim();
            let lower = media.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix(media_prefix) {
                let version = rest.strip_suffix("+json").and_then(ApiVersion::parse);
                return Some(version);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(vec![ApiVersion(1), ApiVersion(2)], ApiVersion(1))
    }

    fn run(path: &str, headers: &[(&str, &str)]) -> Negotiated {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        negotiate(&path.parse().unwrap(), &map, &config())
    }

    #[test]
    fn the_url_wins_over_every_header() {
        assert_eq!(
            run(
                "/api/v1/patients",
                &[
                    ("x-api-version", "2"),
                    ("accept", "application/vnd.nilecare.v2+json")
                ]
            ),
            Negotiated::Version {
                version: ApiVersion(1),
                source: Source::Url,
                rewrite: None
            }
        );
    }

    #[test]
    fn unversioned_paths_are_rewritten_with_the_query() {
        assert_eq!(
            run("/api/patients?limit=2", &[("x-api-version", "v2")]),
            Negotiated::Version {
                version: ApiVersion(2),
                source: Source::Header,
                rewrite: Some("/api/v2/patients?limit=2".into())
            }
        );
        assert_eq!(run("/apis/patients", &[]), Negotiated::NotApi);
        assert_eq!(run("/health", &[]), Negotiated::NotApi);
    }

    #[test]
    fn unsupported_versions_name_their_field() {
        for (path, headers, field) in [
            ("/api/v9/patients", vec![], "path"),
            (
                "/api/patients",
                vec![("x-api-version", "9")],
                "X-API-Version",
            ),
            (
                "/api/patients",
                vec![("x-api-version", "two")],
                "X-API-Version",
            ),
            (
                "/api/patients",
                vec![("accept", "application/vnd.nilecare.v7+json")],
                "Accept",
            ),
        ] {
            match run(path, &headers) {
                Negotiated::Unsupported { field: f, .. } => assert_eq!(f, field, "{path}"),
                other => panic!("{path} {headers:?}: {other:?}"),
            }
        }
    }
}
