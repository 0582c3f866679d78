//! RFC 9457 problem details: the wire format, the rendering policy (production mode) and the
//! request context (`instance`, `request_id`, `trace_id`) that goes into it.

// Rendering is for the axum integration; the wire types are always public.
#![cfg_attr(not(feature = "axum"), allow(dead_code))]

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api_error::{ApiError, FieldError};
use crate::code::ErrorCode;

/// `Content-Type` of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The JSON body of an error response (RFC 9457), with this crate's extensions `code`,
/// `trace_id`, `request_id` and `errors`. Deserializable, so clients and tests can read it.
///
/// ```json
/// {
///   "type": "urn:nilecare:problem:validation-failed",
///   "title": "Validation Failed",
///   "status": 422,
///   "detail": "The request contains invalid fields.",
///   "instance": "/api/v1/patients",
///   "code": "VALIDATION_FAILED",
///   "request_id": "4f1c…",
///   "trace_id": "0af7651916cd43dd8448eb211c80319c",
///   "errors": [{ "field": "email", "message": "is not an email" }]
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProblemDetails {
    /// A URI identifying the problem type (`<type_base><code-slug>`).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short human summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Human explanation of this occurrence (generic for 5xx in production mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path (without the query string, which may carry tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The stable machine code.
    pub code: String,
    /// The trace id of the request, to find it in the tracing backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The request id (`X-Request-Id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field errors of a validation failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Further extension members.
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// How error bodies are rendered; given to [`ProblemLayer`](crate::ProblemLayer).
///
/// ```
/// use nilecare_error_handler::ProblemConfig;
///
/// let config = ProblemConfig::default()
///     .production(true)
///     .type_base("https://docs.nilecare.example/problems/");
/// assert!(config.is_production());
/// ```
#[derive(Clone, Debug)]
pub struct ProblemConfig {
    production: bool,
    type_base: Arc<str>,
    convert_plain_errors: bool,
}

impl Default for ProblemConfig {
    /// Production mode on in release builds, off in debug builds; type base
    /// `urn:nilecare:problem:`; plain-text error responses converted.
    fn default() -> Self {
        ProblemConfig {
            production: !cfg!(debug_assertions),
            type_base: Arc::from("urn:nilecare:problem:"),
            convert_plain_errors: true,
        }
    }
}

impl ProblemConfig {
    /// Production mode: 5xx bodies carry a generic detail and the trace id, never the internal
    /// message, field errors or extensions. Default: on in release builds.
    #[must_use]
    pub fn production(mut self, on: bool) -> Self {
        self.production = on;
        self
    }

    /// Prefix of every `type` URI; the code slug is appended (`…not-found`).
    #[must_use]
    pub fn type_base(mut self, base: impl Into<String>) -> Self {
        self.type_base = Arc::from(base.into());
        self
    }

    /// Convert error responses that are not problem+json (axum's empty 404/405, its plain-text
    /// extractor rejections, bare statuses from other layers) into problem+json. Default: on.
    #[must_use]
    pub fn convert_plain_errors(mut self, on: bool) -> Self {
        self.convert_plain_errors = on;
        self
    }

    /// Whether production mode is on.
    pub fn is_production(&self) -> bool {
        self.production
    }

    /// Whether non-problem error responses are converted.
    pub fn converts_plain_errors(&self) -> bool {
        self.convert_plain_errors
    }
}

/// What the request contributes to the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProblemContext {
    /// The request path.
    pub instance: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// The trace id (32 hex digits).
    pub trace_id: Option<String>,
}

/// The renderable parts of an [`ApiError`] (everything but its source), kept in the response
/// extensions so `ProblemLayer` (feature `axum`) can render again with request context.
#[derive(Clone, Debug)]
pub(crate) struct ProblemParts {
    pub(crate) code: ErrorCode,
    pub(crate) detail: String,
    pub(crate) errors: Vec<FieldError>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) extensions: serde_json::Map<String, serde_json::Value>,
}

impl From<&ApiError> for ProblemParts {
    fn from(e: &ApiError) -> Self {
        ProblemParts {
            code: e.inner.code,
            detail: e.inner.detail.clone(),
            errors: e.inner.errors.clone(),
            retry_after: e.inner.retry_after,
            extensions: e.inner.extensions.clone(),
        }
    }
}

/// The public detail of a 5xx in production mode.
fn generic_detail(code: ErrorCode) -> &'static str {
    match code.status().as_u16() {
        503 => "The service is temporarily unavailable. Please retry later.",
        504 => "The service did not respond in time. Please retry later.",
        _ => "An unexpected error occurred. Quote the trace_id when reporting this problem.",
    }
}

impl ProblemParts {
    pub(crate) fn render(&self, config: &ProblemConfig, ctx: &ProblemContext) -> ProblemDetails {
        let hide = config.production && self.code.is_server_error();
        ProblemDetails {
            type_uri: format!("{}{}", config.type_base, self.code.slug()),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: Some(if hide {
                generic_detail(self.code).to_owned()
            } else {
                self.detail.clone()
            }),
            instance: ctx.instance.clone(),
            code: self.code.as_str().to_owned(),
            trace_id: ctx.trace_id.clone(),
            request_id: ctx.request_id.clone(),
            errors: if hide {
                Vec::new()
            } else {
                self.errors.clone()
            },
            extensions: if hide {
                serde_json::Map::new()
            } else {
                self.extensions.clone()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_hides_5xx_details_but_not_4xx() {
        let ctx = ProblemContext {
            instance: Some("/x".into()),
            request_id: Some("r1".into()),
            trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        };
        let prod = ProblemConfig::default().production(true);
        let dev = ProblemConfig::default().production(false);

        let internal = ProblemParts::from(
            &ApiError::internal("db pool exhausted on db-7")
                .field("x", "y")
                .with_extension("host", "db-7"),
        );
        let shown = serde_json::to_string(&internal.render(&prod, &ctx)).unwrap();
        assert!(!shown.contains("db-7"), "{shown}");
        assert!(shown.contains("0af7651916cd43dd8448eb211c80319c"));
        let shown = serde_json::to_string(&internal.render(&dev, &ctx)).unwrap();
        assert!(shown.contains("db pool exhausted on db-7"), "{shown}");

        let nf = ProblemParts::from(&ApiError::not_found("patient 9"));
        let p = nf.render(&prod, &ctx);
        assert_eq!(p.detail.as_deref(), Some("patient 9 was not found"));
        assert_eq!(p.type_uri, "urn:nilecare:problem:not-found");
        assert_eq!(p.instance.as_deref(), Some("/x"));
    }

    #[test]
    fn round_trips_through_json_with_extensions() {
        let parts = ProblemParts::from(
            &ApiError::rate_limited(Duration::from_secs(3)).with_extension("limit", 100),
        );
        let p = parts.render(&ProblemConfig::default(), &ProblemContext::default());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["limit"], 100);
        assert_eq!(json["status"], 429);
        let back: ProblemDetails = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
