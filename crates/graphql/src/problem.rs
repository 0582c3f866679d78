//! GraphQL errors with the platform's error codes: an [`ApiError`] becomes a GraphQL error whose
//! `extensions.code` is the problem+json `code` (`NOT_FOUND`, `FORBIDDEN`, `RATE_LIMITED`, ...),
//! so a client switches on the same codes over REST and GraphQL.

use async_graphql::{ErrorExtensions, ServerError};
use nilecare_error_handler::ApiError;

/// `error` as a GraphQL error: its detail as the message, its code in `extensions.code`. A
/// server error (5xx) keeps its generic detail (the cause stays in the logs, never in a body).
///
/// ```
/// use nilecare_error_handler::ApiError;
///
/// let error = nilecare_graphql::problem_error(ApiError::forbidden("clinicians only"));
/// assert_eq!(error.message, "clinicians only");
/// let code = error.extensions.as_ref().and_then(|e| e.get("code")).cloned();
/// assert_eq!(code, Some(async_graphql::Value::from("FORBIDDEN")));
/// ```
pub fn problem_error(error: ApiError) -> async_graphql::Error {
    let code = error.code().as_str();
    async_graphql::Error::new(error.detail().to_owned()).extend_with(|_, e| e.set("code", code))
}

/// The `extensions.code` of a GraphQL error, when it has one.
pub fn error_code(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}
