//! Transforms between adjacent versions: JSON body mappings registered per route, chained from
//! the newest version down to the client's (responses) or up from it (requests).

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use crate::error::{Error, Result};
use crate::version::ApiVersion;

/// A JSON body mapping.
pub(crate) type JsonTransform = Arc<dyn Fn(serde_json::Value) -> serde_json::Value + Send + Sync>;

/// A route below the version prefix: literal segments and `{param}` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route(Vec<Option<String>>);

impl Route {
    pub(crate) fn parse(field: &'static str, pattern: &str) -> Result<Self> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(Error::config(
                field,
                format!("route {pattern:?} must start with /"),
            ));
        };
        let mut segments = Vec::new();
        for segment in rest.split('/') {
            if segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2 {
                segments.push(None);
            } else if segment.contains(['{', '}']) || segment.is_empty() {
                return Err(Error::config(
                    field,
                    format!("route {pattern:?}: bad segment {segment:?}"),
                ));
            } else {
                segments.push(Some(segment.to_owned()));
            }
        }
        Ok(Route(segments))
    }

    /// Whether `path` (below the version prefix, e.g. `/patients/7`) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut parts = path.trim_start_matches('/').split('/');
        for segment in &self.0 {
            match (segment, parts.next()) {
                (_, None) => return false,
                (Some(literal), Some(part)) if literal != part => return false,
                _ => {}
            }
        }
        parts.next().is_none()
    }
}

#[derive(Default)]
pub(crate) struct Transforms {
    response: Vec<(ApiVersion, Route, JsonTransform)>,
    request: Vec<(ApiVersion, Route, JsonTransform)>,
}

impl std::fmt::Debug for Transforms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transforms")
            .field("response", &self.response.len())
            .field("request", &self.request.len())
            .finish()
    }
}

impl Transforms {
    pub(crate) fn add_response(&mut self, from: ApiVersion, route: Route, f: JsonTransform) {
        self.response.push((from, route, f));
    }

    pub(crate) fn add_request(&mut self, from: ApiVersion, route: Route, f: JsonTransform) {
        self.request.push((from, route, f));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.response.is_empty() && self.request.is_empty()
    }

    /// Response mappings for a client of `version`: newest first, down to `version + 1 → version`.
    pub(crate) fn response_chain(
        &self,
        path: &str,
        version: ApiVersion,
        latest: ApiVersion,
    ) -> Vec<JsonTransform> {
        ((version.0 + 1)..=latest.0)
            .rev()
            .filter_map(|from| self.find(&self.response, from, path))
            .collect()
    }

    /// Request mappings for a client of `version`: `version → version + 1`, up to the newest.
    pub(crate) fn request_chain(
        &self,
        path: &str,
        version: ApiVersion,
        latest: ApiVersion,
    ) -> Vec<JsonTransform> {
        (version.0..latest.0)
            .filter_map(|from| self.find(&self.request, from, path))
            .collect()
    }

    fn find(
        &self,
        list: &[(ApiVersion, Route, JsonTransform)],
        from: u16,
        path: &str,
    ) -> Option<JsonTransform> {
        list.iter()
            .find(|(v, route, _)| v.0 == from && route.matches(path))
            .map(|(_, _, f)| f.clone())
    }
}

/// Whether a body with these headers is JSON of a known size within `max` (else it passes
/// through untouched: streams, files, other types).
pub(crate) fn transformable(headers: &HeaderMap, size: Option<u64>, max: usize) -> bool {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
        });
    json && size.is_some_and(|n| n <= max as u64)
}

/// Reads the whole (sized, bounded) body, applies `chain`, and returns the new bytes; the
/// original bytes when the body is not JSON after all.
pub(crate) async fn apply(
    body: Body,
    chain: &[JsonTransform],
) -> std::result::Result<Bytes, axum::Error> {
    let bytes = body.collect().await?.to_bytes();
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(bytes);
    };
    for transform in chain {
        value = transform(value);
    }
    Ok(serde_json::to_vec(&value).map(Bytes::from).unwrap_or(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_literals_and_params() {
        let route = Route::parse("f", "/patients/{id}").unwrap();
        assert!(route.matches("/patients/7"));
        assert!(!route.matches("/patients"));
        assert!(!route.matches("/patients/7/invoices"));
        assert!(!route.matches("/invoices/7"));
        assert!(Route::parse("f", "patients").is_err());
        assert!(Route::parse("f", "/a//b").is_err());
        assert!(Route::parse("f", "/a/{b").is_err());
    }

    #[test]
    fn chains_run_from_the_newest_version_down() {
        let mut t = Transforms::default();
        let route = Route::parse("f", "/x").unwrap();
        t.add_response(ApiVersion(3), route.clone(), Arc::new(|v| v));
        t.add_response(ApiVersion(2), route.clone(), Arc::new(|v| v));
        assert_eq!(
            t.response_chain("/x", ApiVersion(1), ApiVersion(3)).len(),
            2
        );
        assert_eq!(
            t.response_chain("/x", ApiVersion(2), ApiVersion(3)).len(),
            1
        );
        assert_eq!(
            t.response_chain("/x", ApiVersion(3), ApiVersion(3)).len(),
            0
        );
        assert_eq!(
            t.response_chain("/y", ApiVersion(1), ApiVersion(3)).len(),
            0
        );
    }
}
