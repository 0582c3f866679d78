//! A panic layer (tower-http `CatchPanicLayer`) answering with problem+json 500.

use std::any::Any;
use std::cell::Cell;

use axum::body::Body;
use axum::response::IntoResponse;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

use crate::api_error::ApiError;

/// A `CatchPanicLayer` whose response is problem+json 500 `INTERNAL`. The panic message goes to
/// the log (with the error chain), never into the body; the server keeps serving.
pub fn catch_panic_layer() -> CatchPanicLayer<PanicResponse> {
    CatchPanicLayer::custom(PanicResponse)
}

thread_local! {
    /// Set by a panic hook that logged the panic, taken by the response of the caught panic.
    static LOGGED_BY_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// For panic hooks that log panics themselves (nilecare-logger's `log_panics`): call it from the
/// hook after logging. The 500 answer of [`catch_panic_layer`] for that panic (built on the same
/// thread right after the hook) then does not log it a second time: one log line per panic.
pub fn panic_logged_by_hook() {
    LOGGED_BY_HOOK.with(|logged| logged.set(true));
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
        let error =
            ApiError::internal("The request handler panicked.").with_source(Panicked(message));
        if LOGGED_BY_HOOK.with(|logged| logged.replace(false)) {
            error.into_response_unlogged()
        } else {
            error.into_response()
        }
    }
}

/// The panic message, as an error source (for the log only).
#[derive(Debug, thiserror::Error)]
#[error("panic: {0}")]
struct Panicked(String);
