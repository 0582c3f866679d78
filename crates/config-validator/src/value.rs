//! Validated values: [`Value`], [`Secret`], and [`FromValue`] for typed access.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// A validated value, already of its declared type.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string (also enum members and regex-checked strings).
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A TCP port (1..=65535).
    Port(u16),
    /// A URL.
    Url(url::Url),
    /// A duration.
    Duration(Duration),
    /// A comma-separated list of typed items.
    List(Vec<Value>),
    /// A secret string (redacted in every rendering).
    Secret(Secret),
}

impl Value {
    /// How the value is described in type errors (secret contents never shown).
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::String(_) => "a string".into(),
            Value::Integer(i) => format!("an integer {i}"),
            Value::Float(f) => format!("a float {f}"),
            Value::Bool(b) => format!("a bool {b}"),
            Value::Port(p) => format!("a port {p}"),
            Value::Url(_) => "a URL".into(),
            Value::Duration(d) => format!("a duration {d:?}"),
            Value::List(items) => format!("a list of {} items", items.len()),
            Value::Secret(_) => "a secret".into(),
        }
    }

    /// The value as JSON for serde deserialization into the user's struct.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Value::String(s) => json!(s),
            Value::Integer(i) => json!(i),
            Value::Float(f) => json!(f),
            Value::Bool(b) => json!(b),
            Value::Port(p) => json!(p),
            Value::Url(u) => json!(u.as_str()),
            Value::Duration(d) => json!({"secs": d.as_secs(), "nanos": d.subsec_nanos()}),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Secret(s) => json!(s.expose()),
        }
    }
}

/// Renders without secrets: secret strings as `[REDACTED]`, URL passwords as `***`.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write!(f, "{s:?}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Port(p) => write!(f, "{p}"),
            Value::Url(u) => write!(f, "{:?}", redact_url(u)),
            Value::Duration(d) => write!(f, "{d:?}"),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Secret(s) => write!(f, "{s:?}"),
        }
    }
}

/// A URL with its password replaced by `***`.
pub(crate) fn redact_url(u: &url::Url) -> String {
    if u.password().is_some() {
        let mut shown = u.clone();
        let _ = shown.set_password(Some("***"));
        shown.to_string()
    } else {
        u.to_string()
    }
}

/// A secret string: `Debug` and `Display` show `[REDACTED]`; read it with
/// [`expose`](Secret::expose). Deserializable, so a user's config struct can hold one.
///
/// ```
/// use nilecare_config_validator::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s} {s:?}"), "[REDACTED] [REDACTED]");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in characters (safe to show).
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Types a validated [`Value`] converts into with [`Config::get`](crate::Config::get). The
/// conversion does not parse text again: it only checks the value's type (and that integers fit).
pub trait FromValue: Sized {
    /// The Rust type name used in errors.
    const TYPE: &'static str;
    /// Converts, or returns `None` when the value has another type.
    fn from_value(value: &Value) -> Option<Self>;
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            const TYPE: &'static str = stringify!($t);
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::Integer(i) => <$t>::try_from(*i).ok(),
                    Value::Port(p) => <$t>::try_from(*p).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_int!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl FromValue for f64 {
    const TYPE: &'static str = "f64";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    const TYPE: &'static str = "bool";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromValue for String {
    const TYPE: &'static str = "String";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Url(u) => Some(u.to_string()),
            _ => None,
        }
    }
}

impl FromValue for Secret {
    const TYPE: &'static str = "Secret";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Secret(s) => Some(s.clone()),
            Value::String(s) => Some(Secret(s.clone())),
            Value::Url(u) => Some(Secret(u.to_string())),
            _ => None,
        }
    }
}

impl FromValue for url::Url {
    const TYPE: &'static str = "Url";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Url(u) => Some(u.clone()),
            _ => None,
        }
    }
}

impl FromValue for Duration {
    const TYPE: &'static str = "Duration";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Duration(d) => Some(*d),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    const TYPE: &'static str = "Vec";
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::List(items) => items.iter().map(T::from_value).collect(),
            _ => None,
        }
    }
}

impl FromValue for Value {
    const TYPE: &'static str = "Value";
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

pub(crate) fn mismatch<T: FromValue>(name: &str, value: &Value) -> Error {
    Error::TypeMismatch {
        name: name.to_owned(),
        wanted: T::TYPE,
        found: value.describe(),
    }
}
