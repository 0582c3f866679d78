//! [`VersioningService`]: negotiation, path rewrite, headers and transforms around the inner
//! service.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Request, Uri};
use http_body::Body as _;
use nilecare_error_handler::ApiError;
use tower::Service;

use super::Shared;
use super::future::VersioningFuture;
use crate::negotiate::{Negotiated, negotiate};
use crate::transform;
use crate::version::ApiVersion;

/// The service of [`VersioningLayer`](super::VersioningLayer).
#[derive(Debug, Clone)]
pub struct VersioningService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> VersioningService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        VersioningService { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn unsupported(shared: &Shared, field: &'static str, value: &str) -> Response {
    let versions: Vec<String> = shared.config.supported.iter().map(|v| v.label()).collect();
    ApiError::bad_request("Unsupported API version.")
        .field(
            field,
            format!("must name one of {}; got {value:?}", versions.join(", ")),
        )
        .into_response()
}

impl<S> Service<Request<Body>> for VersioningService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = VersioningFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let shared = &self.shared;
        let (version, source, rewrite) =
            match negotiate(request.uri(), request.headers(), &shared.config) {
                Negotiated::NotApi => {
                    return VersioningFuture::passthrough(self.inner.call(request));
                }
                Negotiated::Unsupported { field, value } => {
                    shared.counters.unsupported();
                    return VersioningFuture::respond(unsupported(shared, field, &value));
                }
                Negotiated::Version {
                    version,
                    source,
                    rewrite,
                } => (version, source, rewrite),
            };
        shared.counters.negotiated(version, source);
        if let Some(uri) = rewrite.and_then(|r| r.parse::<Uri>().ok()) {
            *request.uri_mut() = uri;
        }
        request.extensions_mut().insert(version);
        let headers = shared.headers_for(version);
        let latest = shared.config.latest;
        if version == latest || shared.config.transforms.is_empty() {
            return VersioningFuture::with_headers(self.inner.call(request), headers);
        }
        // Below the version prefix: the route the transforms are registered for.
        let below = below_version(request.uri().path(), &shared.config.prefix, version);
        let transforms = &shared.config.transforms;
        let request_chain = transforms.request_chain(below, version, latest);
        let response_chain = transforms.response_chain(below, version, latest);
        let max = shared.config.max_body_bytes;
        let transform_request = !request_chain.is_empty()
            && transform::transformable(request.headers(), request.body().size_hint().exact(), max);
        if !transform_request && response_chain.is_empty() {
            return VersioningFuture::with_headers(self.inner.call(request), headers);
        }
        // The transform path awaits bodies, so it is boxed; the ready inner service goes with it.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        VersioningFuture::transforming(Box::pin(async move {
            if transform_request {
                let (mut parts, body) = request.into_parts();
                let bytes = match transform::apply(body, &request_chain).await {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        return Ok(ApiError::bad_request("The request body could not be read.")
                            .into_response());
                    }
                };
                parts.headers.remove(http::header::CONTENT_LENGTH);
                request = Request::from_parts(parts, Body::from(bytes));
            }
            let response = inner.call(request).await?;
            let (mut parts, body) = response.into_parts();
            let body = if !response_chain.is_empty()
                && parts.status.is_success()
                && transform::transformable(&parts.headers, body.size_hint().exact(), max)
            {
                match transform::apply(body, &response_chain).await {
                    Ok(bytes) => {
                        parts.headers.remove(http::header::CONTENT_LENGTH);
                        Body::from(bytes)
                    }
                    Err(_) => {
                        return Ok(ApiError::internal("The response body could not be read.")
                            .into_response());
                    }
                }
            } else {
                body
            };
            crate::deprecation::apply(&headers, &mut parts.headers);
            Ok(Response::from_parts(parts, body))
        }))
    }
}

/// The path below `/api/vN` (`/patients/7`); the whole path when it does not start with
/// `<prefix>/v<version>`. Nothing is formatted or copied (it runs on every older-version
/// request).
fn below_version<'a>(path: &'a str, prefix: &str, version: ApiVersion) -> &'a str {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(version.0);
    path.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("/v"))
        .and_then(|rest| rest.strip_prefix(digits))
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_version_strips_exactly_the_prefix_and_version() {
        for (path, version, below) in [
            ("/api/v1/patients/7", 1, "/patients/7"),
            ("/api/v1", 1, ""),
            ("/api/v10/patients", 10, "/patients"),
            ("/api/v0/x", 0, "/x"),
            ("/api/v65535/x", u16::MAX, "/x"),
            ("/api/v2/patients", 1, "/api/v2/patients"),
            ("/other/v1/patients", 1, "/other/v1/patients"),
            ("/api/patients", 1, "/api/patients"),
        ] {
            assert_eq!(
                below_version(path, "/api", ApiVersion(version)),
                below,
                "{path} at v{version}"
            );
            let formatted = format!("/api/v{version}");
            assert_eq!(
                below_version(path, "/api", ApiVersion(version)),
                path.strip_prefix(&formatted).unwrap_or(path),
                "as the formatted prefix strips it: {path}"
            );
        }
    }
}
