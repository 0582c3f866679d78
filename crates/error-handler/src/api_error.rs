//! [`ApiError`]: the application error every handler returns.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::code::ErrorCode;

/// One invalid input field: `{"field": "email", "message": "is not an email"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's path in the request (`email`, `address.zip`, `items[2].qty`).
    pub field: String,
    /// What is wrong with it, for the person fixing the request.
    pub message: String,
}

/// Problem-details members reserved by RFC 9457 and this crate; extensions cannot override them.
pub(crate) const RESERVED_MEMBERS: &[&str] = &[
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "code",
    "trace_id",
    "request_id",
    "errors",
];

/// An error a handler returns: a stable [`ErrorCode`] (which fixes the HTTP status), a public
/// message, optional field errors, an optional `Retry-After`, and an internal `source` that is
/// logged but never sent to the client.
///
/// With the `axum` feature it implements `IntoResponse` as RFC 9457 `application/problem+json`.
///
/// ```
/// use nilecare_error_handler::{ApiError, ErrorCode};
///
/// let e = ApiError::not_found("patient 123");
/// assert_eq!(e.code(), ErrorCode::NOT_FOUND);
/// assert_eq!(e.detail(), "patient 123 was not found");
///
/// let e = ApiError::validation()
///     .field("email", "is not an email")
///     .field("birth_date", "is in the future");
/// assert_eq!(e.status().as_u16(), 422);
/// assert_eq!(e.field_errors().len(), 2);
///
/// // Internal causes are kept for the log, never serialized.
/// let io = std::io::Error::other("connection reset by db-7.internal");
/// let e = ApiError::internal("could not load the chart").with_source(io);
/// assert!(e.chain().contains("db-7.internal"));
/// ```
///
/// # Mapping your own errors
///
/// Implement `From<YourError> for ApiError`, choosing the code per variant, and use `?` in
/// handlers returning [`ApiResult`](crate::ApiResult):
///
/// ```
/// use nilecare_error_handler::{ApiError, ErrorCode};
///
/// #[derive(Debug, thiserror::Error)]
/// enum BillingError {
///     #[error("invoice {0} not found")]
///     NoInvoice(u64),
///     #[error("ledger unavailable")]
///     Ledger(#[source] std::io::Error),
/// }
///
/// impl From<BillingError> for ApiError {
///     fn from(e: BillingError) -> Self {
///         match e {
///             BillingError::NoInvoice(id) => ApiError::not_found(format!("invoice {id}")),
///             BillingError::Ledger(_) => {
///                 ApiError::new(ErrorCode::UPSTREAM_UNAVAILABLE, "billing is unavailable").with_source(e)
///             }
///         }
///     }
/// }
///
/// fn load(id: u64) -> Result<(), BillingError> { Err(BillingError::NoInvoice(id)) }
/// fn handler() -> nilecare_error_handler::ApiResult<()> { Ok(load(7)?) }
/// assert_eq!(handler().unwrap_err().status().as_u16(), 404);
/// ```
pub struct ApiError {
    pub(crate) inner: Box<Inner>,
}

/// The boxed state of an [`ApiError`] (one pointer wide, so `Result<T, ApiError>` stays small).
pub(crate) struct Inner {
    pub(crate) code: ErrorCode,
    pub(crate) detail: String,
    pub(crate) errors: Vec<FieldError>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) extensions: serde_json::Map<String, serde_json::Value>,
    pub(crate) source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl ApiError {
    /// An error with `code` and a public `detail` message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            inner: Box::new(Inner {
                code,
                detail: detail.into(),
                errors: Vec::new(),
                retry_after: None,
                extensions: serde_json::Map::new(),
                source: None,
            }),
        }
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BAD_REQUEST, detail)
    }

    /// 422 `VALIDATION_FAILED`; add the problems with [`field`](Self::field).
    pub fn validation() -> Self {
        Self::new(
            ErrorCode::VALIDATION_FAILED,
            "The request contains invalid fields.",
        )
    }

    /// 401 `UNAUTHORIZED`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::UNAUTHORIZED, detail)
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::FORBIDDEN, detail)
    }

    /// 404 `NOT_FOUND`: `what` names the missing thing (`"patient 123"` → "patient 123 was not found").
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::NOT_FOUND, format!("{what} was not found"))
    }

    /// 409 `CONFLICT`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::CONFLICT, detail)
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 429 `RATE_LIMITED` with `Retry-After`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::new(ErrorCode::RATE_LIMITED, "Rate limit exceeded.").with_retry_after(retry_after)
    }

    /// 503 `UPSTREAM_UNAVAILABLE`: `service` names the dependency (hidden in production bodies).
    pub fn upstream_unavailable(service: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::UPSTREAM_UNAVAILABLE,
            format!("{service} is unavailable"),
        )
    }

    /// 504 `TIMEOUT`: `what` timed out (hidden in production bodies).
    pub fn timeout(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::TIMEOUT, format!("{what} timed out"))
    }

    /// 500 `INTERNAL` (the detail is hidden in production bodies; attach the cause with
    /// [`with_source`](Self::with_source)).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL, detail)
    }

    /// Adds a field error.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.inner.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    /// Replaces the public message.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.inner.detail = detail.into();
        self
    }

    /// Sets `Retry-After` (whole seconds, rounded up).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.inner.retry_after = Some(after);
        self
    }

    /// Attaches the internal cause: logged with the full chain, never serialized.
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Adds a problem-details extension member (`"limit": 100`). Names reserved by RFC 9457 or
    /// this crate (`type`, `status`, `code`, `errors`, ...) are ignored.
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let name = name.into();
        if RESERVED_MEMBERS.contains(&name.as_str()) {
            tracing::debug!(member = %name, "ignoring reserved problem-details extension");
            return self;
        }
        if let Ok(value) = serde_json::to_value(value) {
            self.inner.extensions.insert(name, value);
        }
        self
    }

    /// The machine code.
    pub fn code(&self) -> ErrorCode {
        self.inner.code
    }

    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        self.inner.code.status()
    }

    /// The public message.
    pub fn detail(&self) -> &str {
        &self.inner.detail
    }

    /// The field errors.
    pub fn field_errors(&self) -> &[FieldError] {
        &self.inner.errors
    }

    /// `Retry-After`, if set.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The message and every cause, `": "`-separated: what the log shows.
    pub fn chain(&self) -> String {
        let mut out = self.inner.detail.clone();
        let mut next: Option<&(dyn StdError + 'static)> = self
            .inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static));
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }

    /// Logs the error once: 5xx at ERROR with the whole chain, 4xx at DEBUG.
    #[cfg(feature = "axum")]
    pub(crate) fn log(&self) {
        if self.inner.code.is_server_error() {
            tracing::error!(
                error.code = %self.inner.code,
                http.status = self.inner.code.status().as_u16(),
                error.chain = %self.chain(),
                "request failed"
            );
        } else {
            tracing::debug!(
                error.code = %self.inner.code,
                http.status = self.inner.code.status().as_u16(),
                error.detail = %self.inner.detail,
                "request rejected"
            );
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.inner.code)
            .field("detail", &self.inner.detail)
            .field("errors", &self.inner.errors)
            .field("retry_after", &self.inner.retry_after)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.code, self.inner.detail)
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<serde_json::Error> for ApiError {
    /// Syntax, EOF and data errors mean the client sent bad JSON: 400 with serde's message.
    /// I/O errors are internal: 500, the message kept for the log only.
    fn from(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match e.classify() {
            Category::Io => ApiError::internal("JSON I/O failed").with_source(e),
            Category::Syntax | Category::Eof => {
                ApiError::bad_request(format!("malformed JSON: {e}"))
            }
            Category::Data => ApiError::bad_request(format!("invalid JSON value: {e}")),
        }
    }
}

#[cfg(feature = "config-validator")]
impl From<nilecare_config_validator::Report> for ApiError {
    /// A configuration report at request time is a server problem: 500, the report (which
    /// never contains secrets) goes to the log only.
    fn from(report: nilecare_config_validator::Report) -> Self {
        ApiError::internal("the service is misconfigured").with_source(report)
    }
}
