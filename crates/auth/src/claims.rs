//! The verified claims handed to the application: the registered claims, roles, scopes and
//! tenant read from configurable claims, and the application's own typed claims.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::TokenError;

/// Claims of a verified token.
///
/// `T` is the application's own claims, deserialized from the whole payload with serde (extra
/// fields ignored unless `T` says otherwise); the default [`NoCustomClaims`] reads nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims<T = NoCustomClaims> {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: Option<String>,
    /// `aud` (one value or several).
    pub audience: Vec<String>,
    /// `exp`, Unix seconds.
    pub expires_at: Option<u64>,
    /// `nbf`, Unix seconds.
    pub not_before: Option<u64>,
    /// `iat`, Unix seconds.
    pub issued_at: Option<u64>,
    /// `jti`.
    pub token_id: Option<String>,
    /// Roles from the configured role claims (e.g. `roles`, `realm_access.roles`).
    pub roles: Vec<String>,
    /// Scopes from the configured scope claims (`scope` space-separated, `scp` array).
    pub scopes: Vec<String>,
    /// The tenant (e.g. `clinic_id`), when a tenant claim is configured and present.
    pub tenant: Option<String>,
    /// The application's typed claims.
    pub custom: T,
}

impl<T> Claims<T> {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Custom claims that read nothing: for applications that need only [`Claims`]' own fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoCustomClaims;

impl<'de> serde::Deserialize<'de> for NoCustomClaims {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| NoCustomClaims)
    }
}

/// Where roles, scopes and the tenant are read from.
#[derive(Debug, Clone)]
pub(crate) struct ClaimPaths {
    pub(crate) roles: Vec<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) tenant: Option<String>,
}

impl Default for ClaimPaths {
    fn default() -> Self {
        ClaimPaths {
            roles: vec!["roles".into()],
            scopes: vec!["scope".into(), "scp".into()],
            tenant: None,
        }
    }
}

/// The value at a dotted path (`realm_access.roles`): each segment a member of an object.
fn at<'v>(payload: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut segments = path.split('.');
    let mut value = payload.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// Strings of a claim that is an array of strings or one space-separated string.
fn strings(name: &str, value: &Value, out: &mut Vec<String>) -> Result<(), TokenError> {
    let invalid = || TokenError::InvalidClaim {
        name: name.to_owned(),
        message: "expected a string or an array of strings".into(),
    };
    match value {
        Value::String(s) => out.extend(s.split_whitespace().map(str::to_owned)),
        Value::Array(items) => {
            for item in items {
                out.push(item.as_str().ok_or_else(invalid)?.to_owned());
            }
        }
        Value::Null => {}
        _ => return Err(invalid()),
    }
    Ok(())
}

fn optional_string(payload: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::InvalidClaim {
            name: name.to_owned(),
            message: "expected a string".into(),
        }),
    }
}

/// A NumericDate claim (RFC 7519 section 2): a non-negative number of seconds; fractions are
/// truncated.
pub(crate) fn numeric_date(
    payload: &Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, TokenError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| TokenError::InvalidClaim {
                name: name.to_owned(),
                message: format!("{n} is not a NumericDate"),
            }),
        Some(_) => Err(TokenError::InvalidClaim {
            name: name.to_owned(),
            message: "expected a number of seconds (NumericDate)".into(),
        }),
    }
}

/// The longest tenant value accepted, and its characters: tenants become cache key parts and
/// metric labels, so a token cannot mint arbitrary ones.
const MAX_TENANT_LEN: usize = 64;

fn tenant_value(name: &str, value: &Value) -> Result<Option<String>, TokenError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(TokenError::InvalidClaim {
                name: name.to_owned(),
                message: "expected a string or a number".into(),
            });
        }
    };
    let ok = !text.is_empty()
        && text.len() <= MAX_TENANT_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !ok {
        return Err(TokenError::InvalidClaim {
            name: name.to_owned(),
            message: format!("a tenant is 1-{MAX_TENANT_LEN} characters of A-Z a-z 0-9 - _ . :"),
        });
    }
    Ok(Some(text))
}

/// The claims of a verified payload; `issuer` is the (already checked) configured issuer.
pub(crate) fn build<T: DeserializeOwned>(
    payload: Map<String, Value>,
    paths: &ClaimPaths,
    issuer: &str,
) -> Result<Claims<T>, TokenError> {
    let mut roles = Vec::new();
    for path in &paths.roles {
        if let Some(value) = at(&payload, path) {
            strings(path, value, &mut roles)?;
        }
    }
    let mut scopes = Vec::new();
    for path in &paths.scopes {
        if let Some(value) = at(&payload, path) {
            strings(path, value, &mut scopes)?;
        }
    }
    let tenant = match &paths.tenant {
        Some(path) => match at(&payload, path) {
            Some(value) => tenant_value(path, value)?,
            None => None,
        },
        None => None,
    };
    let mut audience = Vec::new();
    if let Some(aud) = payload.get("aud") {
        strings("aud", aud, &mut audience)?;
    }
    let subject = optional_string(&payload, "sub")?;
    let token_id = optional_string(&payload, "jti")?;
    let expires_at = numeric_date(&payload, "exp")?;
    let not_before = numeric_date(&payload, "nbf")?;
    let issued_at = numeric_date(&payload, "iat")?;
    let payload = Value::Object(payload);
    let custom = T::deserialize(&payload).map_err(|e| TokenError::InvalidClaim {
        name: "custom claims".into(),
        message: e.to_string(),
    })?;
    Ok(Claims {
        issuer: issuer.to_owned(),
        subject,
        audience,
        expires_at,
        not_before,
        issued_at,
        token_id,
        roles,
        scopes,
        tenant,
        custom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn roles_scopes_and_tenant_come_from_the_configured_claims() {
        let paths = ClaimPaths {
            roles: vec!["roles".into(), "realm_access.roles".into()],
            scopes: vec!["scope".into(), "scp".into()],
            tenant: Some("clinic_id".into()),
        };
        let claims: Claims = build(
            payload(
                json!({"roles": ["admin"], "realm_access": {"roles": ["clinician"]},
                           "scope": "patients:read  patients:write", "scp": ["billing"],
                           "clinic_id": 7, "aud": "a", "sub": "u1", "jti": "j", "exp": 10.9}),
            ),
            &paths,
            "iss",
        )
        .unwrap();
        assert_eq!(claims.roles, ["admin", "clinician"]);
        assert!(claims.has_role("clinician") && !claims.has_role("nurse"));
        assert_eq!(
            claims.scopes,
            ["patients:read", "patients:write", "billing"]
        );
        assert!(claims.has_scope("billing"));
        assert_eq!(claims.tenant.as_deref(), Some("7"));
        assert_eq!(claims.audience, ["a"]);
        assert_eq!(claims.expires_at, Some(10));
    }

    #[test]
    fn wrong_types_name_the_claim() {
        let paths = ClaimPaths {
            tenant: Some("clinic_id".into()),
            ..ClaimPaths::default()
        };
        for (p, name) in [
            (json!({"roles": 5}), "roles"),
            (json!({"roles": [1]}), "roles"),
            (json!({"clinic_id": "a b"}), "clinic_id"),
            (json!({"clinic_id": "x".repeat(65)}), "clinic_id"),
            (json!({"clinic_id": {}}), "clinic_id"),
            (json!({"exp": "tomorrow"}), "exp"),
            (json!({"iat": -1}), "iat"),
            (json!({"sub": 1}), "sub"),
        ] {
            let err = build::<NoCustomClaims>(payload(p.clone()), &paths, "i").unwrap_err();
            assert!(
                matches!(&err, TokenError::InvalidClaim { name: n, .. } if n == name),
                "{p}: {err}"
            );
        }
    }

    #[test]
    fn custom_claims_are_typed() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Mine {
            department: String,
        }
        let claims: Claims<Mine> = build(
            payload(json!({"department": "cardiology"})),
            &ClaimPaths::default(),
            "i",
        )
        .unwrap();
        assert_eq!(claims.custom.department, "cardiology");
        let err = build::<Mine>(payload(json!({})), &ClaimPaths::default(), "i").unwrap_err();
        assert!(err.to_string().contains("department"), "{err}");
    }
}
