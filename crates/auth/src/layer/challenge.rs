//! The answers of the auth layers: problem+json bodies (nilecare-error-handler) with the
//! `WWW-Authenticate: Bearer ...` challenge of RFC 6750 section 3.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::WWW_AUTHENTICATE;
use nilecare_error_handler::ApiError;

use crate::error::Error;

/// A quoted-string value of the challenge: RFC 6750 allows `%x20-21 / %x23-5B / %x5D-7E` in
/// `error_description` and `scope`, so quotes, backslashes and non-ASCII become `'`, `/`, `?`.
fn quoted(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

fn with_challenge(mut response: Response, challenge: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// 401 for a request without credentials: `Bearer realm="..."` and no error code (RFC 6750
/// section 3.1).
pub(crate) fn missing(realm: &str) -> Response {
    with_challenge(
        ApiError::unauthorized("A bearer token is required.").into_response(),
        format!("Bearer realm=\"{}\"", quoted(realm)),
    )
}

/// 400 `invalid_request` for a malformed `Authorization` header.
pub(crate) fn invalid_request(realm: &str, why: &str) -> Response {
    let mut response = with_challenge(
        ApiError::bad_request(why.to_owned()).into_response(),
        format!(
            "Bearer realm=\"{}\", error=\"invalid_request\", error_description=\"{}\"",
            quoted(realm),
            quoted(why)
        ),
    );
    *response.status_mut() = http::StatusCode::BAD_REQUEST;
    response
}

/// The answer for a failed verification: 401 `invalid_token` for the token's fault, 503 with
/// `Retry-After` when keys or revocations cannot be checked (logged at WARN, cause not in the
/// body).
pub(crate) fn rejected(realm: &str, error: &Error) -> Response {
    match error.token_error() {
        Some(token) => {
            let description = token.to_string();
            with_challenge(
                ApiError::unauthorized(description.clone()).into_response(),
                format!(
                    "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
                    quoted(realm),
                    quoted(&description)
                ),
            )
        }
        None => {
            tracing::warn!(error = %error, "a token could not be verified");
            ApiError::upstream_unavailable("token verification")
                .with_retry_after(Duration::from_secs(5))
                .into_response()
        }
    }
}

/// 403 `insufficient_scope`, naming what was needed.
pub(crate) fn forbidden(realm: &str, needed: &str, scope: Option<&str>) -> Response {
    let mut challenge = format!(
        "Bearer realm=\"{}\", error=\"insufficient_scope\", error_description=\"{}\"",
        quoted(realm),
        quoted(needed)
    );
    if let Some(scope) = scope {
        challenge.push_str(&format!(", scope=\"{}\"", quoted(scope)));
    }
    with_challenge(
        ApiError::forbidden(needed.to_owned()).into_response(),
        challenge,
    )
}

/// The token of an `Authorization: Bearer <token>` header: `Ok(None)` when there is no header
/// or another scheme; `Err` for a malformed bearer header.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return if value.eq_ignore_ascii_case("bearer") {
            Err("the bearer token is empty")
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err("the bearer token is empty");
    }
    if token.contains(' ') {
        return Err("the bearer token contains a space");
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for v in values {
            map.append(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn bearer_tokens_are_read_per_rfc_6750() {
        assert_eq!(bearer(&headers(&[])), Ok(None));
        assert_eq!(
            bearer(&headers(&["Bearer abc.def.ghi"])),
            Ok(Some("abc.def.ghi"))
        );
        assert_eq!(bearer(&headers(&["bearer abc"])), Ok(Some("abc")));
        assert_eq!(bearer(&headers(&["Basic dXNlcjpwdw=="])), Ok(None));
        assert!(bearer(&headers(&["Bearer"])).is_err());
        assert!(bearer(&headers(&["Bearer  "])).is_err());
        assert!(bearer(&headers(&["Bearer a b"])).is_err());
        assert!(bearer(&headers(&["Bearer a", "Bearer b"])).is_err());
    }

    #[test]
    fn challenge_values_stay_within_the_allowed_characters() {
        assert_eq!(
            quoted("no key with kid \"x\\y\" é"),
            "no key with kid 'x/y' ?"
        );
    }
}
