//! [`ErrorCode`]: the stable machine-readable code of an error and the HTTP status it maps to.

use std::fmt;

use http::StatusCode;

use crate::error::{Error, Result};

/// A stable, machine-readable error code (`NOT_FOUND`, `RATE_LIMITED`, ...) with the HTTP status
/// and the human title it maps to. Clients switch on the code, never on the message.
///
/// Define your own codes as constants; in a `const` an invalid code (not `UPPER_SNAKE_CASE`, or a
/// status outside 400..=599) is a compile error:
///
/// ```
/// use nilecare_error_handler::ErrorCode;
///
/// const PATIENT_DISCHARGED: ErrorCode =
///     ErrorCode::custom("PATIENT_DISCHARGED", 409, "Patient already discharged");
/// assert_eq!(PATIENT_DISCHARGED.status().as_u16(), 409);
/// assert_eq!(PATIENT_DISCHARGED.slug(), "patient-discharged");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    code: &'static str,
    status: u16,
    title: &'static str,
}

macro_rules! builtin_codes {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $title:literal;)*) => {
        impl ErrorCode {
            $(
                $(#[$doc])*
                pub const $name: ErrorCode = ErrorCode { code: stringify!($name), status: $status, title: $title };
            )*

            /// Every built-in code.
            pub const BUILTIN: &'static [ErrorCode] = &[$(ErrorCode::$name),*];
        }
    };
}

builtin_codes! {
    /// 400: the request is malformed (bad JSON, bad query string, bad header).
    BAD_REQUEST = 400, "Bad Request";
    /// 422: the request is well-formed but its content fails validation; see `errors`.
    VALIDATION_FAILED = 422, "Validation Failed";
    /// 401: no or invalid credentials.
    UNAUTHORIZED = 401, "Unauthorized";
    /// 403: authenticated but not allowed.
    FORBIDDEN = 403, "Forbidden";
    /// 404: the resource (or route) does not exist.
    NOT_FOUND = 404, "Not Found";
    /// 405: the route exists but not for this method (`Allow` lists the methods).
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    /// 409: the request conflicts with the current state (duplicate, version mismatch).
    CONFLICT = 409, "Conflict";
    /// 413: the request body is larger than allowed.
    PAYLOAD_TOO_LARGE = 413, "Payload Too Large";
    /// 415: the request body has an unsupported content type.
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    /// 429: a rate limit was exceeded; `Retry-After` says when to come back.
    RATE_LIMITED = 429, "Too Many Requests";
    /// 500: an unexpected failure inside the service.
    INTERNAL = 500, "Internal Server Error";
    /// 503: a dependency (downstream service, database, circuit breaker open) is unavailable.
    UPSTREAM_UNAVAILABLE = 503, "Service Unavailable";
    /// 504: a dependency did not answer in time.
    TIMEOUT = 504, "Gateway Timeout";
}

impl ErrorCode {
    /// A user-defined code. `code` must be `UPPER_SNAKE_CASE` (A-Z, 0-9, `_`, starting with a
    /// letter, at most 64 bytes) and `status` within 400..=599.
    ///
    /// # Panics
    /// On invalid input, which in a `const` item is a compile-time error. Use
    /// [`ErrorCode::try_custom`] for codes built at run time.
    pub const fn custom(code: &'static str, status: u16, title: &'static str) -> ErrorCode {
        match Self::check(code, status) {
            Ok(()) => ErrorCode {
                code,
                status,
                title,
            },
            Err(why) => panic!("{}", why),
        }
    }

    /// Like [`ErrorCode::custom`], returning an error naming the bad field instead of panicking.
    pub fn try_custom(code: &'static str, status: u16, title: &'static str) -> Result<ErrorCode> {
        match Self::check(code, status) {
            Ok(()) => Ok(ErrorCode {
                code,
                status,
                title,
            }),
            Err(why) => Err(Error::InvalidCode {
                field: if why.starts_with("status") {
                    "status"
                } else {
                    "code"
                },
                message: format!("{why} (code {code:?}, status {status})"),
            }),
        }
    }

    #[allow(clippy::manual_range_contains)] // `contains` is not const
    const fn check(code: &str, status: u16) -> std::result::Result<(), &'static str> {
        if status < 400 || status > 599 {
            return Err("status must be within 400..=599");
        }
        let bytes = code.as_bytes();
        if bytes.is_empty() || bytes.len() > 64 {
            return Err("code must be 1 to 64 bytes long");
        }
        if !bytes[0].is_ascii_uppercase() {
            return Err("code must start with an uppercase letter");
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                return Err("code must be UPPER_SNAKE_CASE");
            }
            i += 1;
        }
        Ok(())
    }

    /// The code, e.g. `"NOT_FOUND"`.
    pub const fn as_str(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        // `check` guarantees 400..=599, always a valid status.
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The short human title (`title` in problem+json).
    pub const fn title(&self) -> &'static str {
        self.title
    }

    /// The code in kebab case, used in the problem `type` URI: `NOT_FOUND` → `not-found`.
    pub fn slug(&self) -> String {
        self.code.to_ascii_lowercase().replace('_', "-")
    }

    /// `true` for 5xx codes: their details are hidden in production mode.
    pub const fn is_server_error(&self) -> bool {
        self.status >= 500
    }

    /// The code for a bare error status: the built-in one, else `HTTP_ERROR` with the status and
    /// its standard reason phrase.
    #[cfg(feature = "axum")]
    pub(crate) fn from_status(status: StatusCode) -> ErrorCode {
        Self::for_status(status).unwrap_or(ErrorCode {
            code: "HTTP_ERROR",
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
        })
    }

    /// The built-in code for a status (used for bare error responses), `None` when there is none.
    pub fn for_status(status: StatusCode) -> Option<ErrorCode> {
        Self::BUILTIN
            .iter()
            .copied()
            .find(|c| c.status == status.as_u16())
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.code, self.status)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_maps_to_its_status() {
        let expected = [
            ("BAD_REQUEST", 400),
            ("VALIDATION_FAILED", 422),
            ("UNAUTHORIZED", 401),
            ("FORBIDDEN", 403),
            ("NOT_FOUND", 404),
            ("METHOD_NOT_ALLOWED", 405),
            ("CONFLICT", 409),
            ("PAYLOAD_TOO_LARGE", 413),
            ("UNSUPPORTED_MEDIA_TYPE", 415),
            ("RATE_LIMITED", 429),
            ("INTERNAL", 500),
            ("UPSTREAM_UNAVAILABLE", 503),
            ("TIMEOUT", 504),
        ];
        assert_eq!(ErrorCode::BUILTIN.len(), expected.len());
        for (code, (name, status)) in ErrorCode::BUILTIN.iter().zip(expected) {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.status().as_u16(), status, "{name}");
        }
    }

    #[test]
    fn try_custom_names_the_bad_field() {
        let e = ErrorCode::try_custom("lower", 409, "x").unwrap_err();
        assert!(matches!(e, Error::InvalidCode { field: "code", .. }), "{e}");
        let e = ErrorCode::try_custom("OK_CODE", 200, "x").unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidCode {
                    field: "status",
                    ..
                }
            ),
            "{e}"
        );
        let e = ErrorCode::try_custom("", 400, "x").unwrap_err();
        assert!(e.to_string().contains("code"));
        assert_eq!(
            ErrorCode::try_custom("MY_CODE_2", 418, "Teapot")
                .unwrap()
                .slug(),
            "my-code-2"
        );
    }
}
