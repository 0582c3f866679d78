//! A panic layer (tower-http `CatchPanicLayer`) answering with problem+json 500.

use std::any::Any;

use axum::body::Body;
use axum::response::IntoResponse;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

use crate::api_error::ApiError;

/// A `CatchPanicLayer` whose response is problem+json 500 `INTERNAL`. The panic message goes to
/// the log (with the error chain), never into the body; the server keeps serving.
pub fn catch_panic_layer() -> CatchPanicLayer<PanicResponse> {
    CatchPanicLayer::custom(PanicResponse)
}

/// Builds the response for a caught panic; see [`catch_panic_layer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PanicResponse;

impl ResponseForPanic for PanicResponse {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, err: Box<dyn Any + Send + 'static>) -> http::Response<Body> {
        let message = if let Some(s) = err.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = err.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_owned()
        };
        ApiError::internal("The request handler panicked.")
            .with_source(Panicked(message))
            .into_response()
    }
}

/// The panic message, as an error source (for the log only).
#[derive(Debug, thiserror::Error)]
#[error("panic: {0}")]
struct Panicked(String);
