//! Fallback handlers answering unknown routes (404) and wrong methods (405) with problem+json.

use crate::api_error::ApiError;
use crate::code::ErrorCode;

/// `Router::fallback(not_found)`: 404 problem+json for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NOT_FOUND, "No route matches this path.")
}

/// `Router::method_not_allowed_fallback(method_not_allowed)`: 405 problem+json (axum keeps the
/// `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::METHOD_NOT_ALLOWED,
        "This path does not accept this method; see the Allow header.",
    )
}
