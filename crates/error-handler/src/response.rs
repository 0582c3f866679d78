//! `IntoResponse` for [`ApiError`]: problem+json with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::api_error::ApiError;
use crate::problem::{PROBLEM_JSON, ProblemConfig, ProblemContext, ProblemDetails, ProblemParts};

/// Response extension: the parts of the error that produced this response, so that
/// [`ProblemLayer`](crate::ProblemLayer) can render it again with the request context.
#[derive(Clone, Debug)]
pub(crate) struct RenderedError(pub(crate) Arc<ProblemParts>);

impl IntoResponse for ApiError {
    /// Logs the error once (5xx with the full chain at ERROR), then renders problem+json with the
    /// default [`ProblemConfig`]. Behind [`ProblemLayer`](crate::ProblemLayer) the body is
    /// rendered again with `instance`, `request_id`, `trace_id` and the layer's production mode.
    fn into_response(self) -> Response {
        self.log();
        self.into_response_unlogged()
    }
}

impl ApiError {
    /// The problem+json response, without logging (the error was logged elsewhere).
    pub(crate) fn into_response_unlogged(self) -> Response {
        let parts = ProblemParts::from(&self);
        let body = parts.render(&ProblemConfig::default(), &ProblemContext::default());
        let mut response = problem_response(&body, parts.retry_after);
        response
            .extensions_mut()
            .insert(RenderedError(Arc::new(parts)));
        response
    }
}

/// A problem+json response with `status`, body and optional `Retry-After`.
pub(crate) fn problem_response(
    problem: &ProblemDetails,
    retry_after: Option<Duration>,
) -> Response {
    let status = http::StatusCode::from_u16(problem.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    // Serializing a struct of strings, numbers and JSON values cannot fail.
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(after)));
    }
    response
}

/// Whole seconds, rounded up (a client retrying after 0.2 s as "0" would come back too early).
pub(crate) fn retry_after_secs(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
        assert_eq!(retry_after_secs(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::from_millis(3001)), 4);
    }
}
