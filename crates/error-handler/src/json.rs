//! [`Json`]: a JSON body extractor whose rejections are problem+json (400/413/415/422), and a JSON
//! response type.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;
use crate::code::ErrorCode;

/// JSON request body extractor and JSON response, like `axum::Json`, but every rejection is an
/// [`ApiError`] (problem+json) instead of plain text:
///
/// | problem | status | code |
/// |---|---|---|
/// | `Content-Type` is not `application/json` or `application/*+json` | 415 | `UNSUPPORTED_MEDIA_TYPE` |
/// | body larger than the limit (axum's `DefaultBodyLimit`, 2 MB by default) | 413 | `PAYLOAD_TOO_LARGE` |
/// | not JSON (syntax error, truncated, trailing characters) | 400 | `BAD_REQUEST` |
/// | JSON of the wrong shape (missing field, wrong type) | 422 | `VALIDATION_FAILED`, with the field path in `errors` |
///
/// ```
/// use nilecare_error_handler::{ApiResult, Json};
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct NewPatient { name: String, birth_year: u16 }
///
/// async fn create(Json(p): Json<NewPatient>) -> ApiResult<Json<NewPatient>> {
///     Ok(Json(p))
/// }
/// # let _: axum::Router = axum::Router::new().route("/patients", axum::routing::post(create));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected a request body with `Content-Type: application/json`.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large("The request body is larger than the allowed limit.")
            } else {
                ApiError::bad_request("The request body could not be read.").with_source(rejection)
            }
        })?;
        decode(&bytes).map(Json)
    }
}

/// Deserializes `bytes`, reporting the path of a wrong field.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use serde_json::error::Category;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end()
                .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}.")))?;
            Ok(value)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                Category::Data => {
                    let field = if path == "." { "$".to_owned() } else { path };
                    Err(ApiError::validation().field(field, inner.to_string()))
                }
                Category::Syntax | Category::Eof | Category::Io => {
                    Err(ApiError::bad_request(format!("Malformed JSON: {inner}.")))
                }
            }
        }
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::internal("The response could not be serialized.")
                .with_source(e)
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Patient {
        name: String,
        address: Address,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Address {
        zip: u32,
    }

    #[test]
    fn wrong_shapes_name_the_field_path() {
        let e = decode::<Patient>(br#"{"name":"A","address":{"zip":"x"}}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::VALIDATION_FAILED);
        assert_eq!(e.field_errors()[0].field, "address.zip");
        let e = decode::<Patient>(br#"{"name":"A"}"#).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "$");
        assert!(e.field_errors()[0].message.contains("address"));
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_bad_requests() {
        for body in [
            &b"{"[..],
            b"nope",
            b"{\"name\":\"A\",\"address\":{\"zip\":1}} extra",
            b"",
        ] {
            let e = decode::<Patient>(body).unwrap_err();
            assert_eq!(
                e.code(),
                ErrorCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn content_type_check_accepts_json_and_suffix_types_only() {
        let mut h = http::HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonp", false),
        ] {
            h.insert(CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
